//! Clients generated from `api-spec/openapi.yaml`, as an integrator would make them
//! (`scripts/clients.sh`, pinned generators, no warning allowed), used against a really started
//! node: every operation of the spec is in the Python client, a whole day of the service (issue,
//! verify with a purpose, the one interface under a grant, the holder's view, an objection,
//! revocation, the auditor's proofs) runs through it alone, and the TypeScript types type-check
//! an approval system's calls.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use common::{holder_token, root, Server, TempDir};

/// The generated Python client's folder, generated and installed once per test process.
fn python_client() -> &'static PathBuf {
    static CLIENT: OnceLock<PathBuf> = OnceLock::new();
    CLIENT.get_or_init(|| {
        generate("python");
        root().join("target/clients/python")
    })
}

/// Runs `scripts/clients.sh <language>`; panics with its output if it fails.
fn generate(language: &str) {
    let out = Command::new("bash")
        .arg("scripts/clients.sh")
        .arg(language)
        .current_dir(root())
        .output()
        .expect("running scripts/clients.sh");
    assert!(
        out.status.success(),
        "generating the {language} client failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `someOperationId` as openapi-python-client names its module: `some_operation_id`.
fn snake_case(id: &str) -> String {
    let mut name = String::new();
    for c in id.chars() {
        if c.is_ascii_uppercase() {
            name.push('_');
        }
        name.push(c.to_ascii_lowercase());
    }
    name
}

#[test]
fn every_operation_of_the_spec_is_in_the_generated_python_client() {
    let spec = spec();
    let api = python_client().join("zhengyin_client/api");
    let generated: Vec<String> = std::fs::read_dir(&api)
        .unwrap()
        .flat_map(|tag| std::fs::read_dir(tag.unwrap().path()).into_iter().flatten())
        .map(|f| {
            f.unwrap()
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".py")
                .to_owned()
        })
        .collect();
    let mut operations = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            assert!(
                generated.contains(&snake_case(id)),
                "{method} {path} ({id}) is missing from the generated client"
            );
            operations += 1;
        }
    }
    assert!(operations > 70, "only {operations} operations read from the spec");
}

fn spec() -> serde_json::Value {
    serde_yaml_ng::from_str(&std::fs::read_to_string(root().join("api-spec/openapi.yaml")).unwrap()).unwrap()
}

/// Every object an operation takes or answers, and every object inside one, is a named
/// component: a generator never has to invent a name (invented names collided once and dropped
/// whole operations).
#[test]
fn every_body_an_operation_takes_or_answers_is_a_named_schema() {
    let spec = spec();
    let mut inline = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let bodies = operation["requestBody"]["content"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(media, c)| (format!("request {media}"), c))
                .chain(
                    operation["responses"]
                        .as_object()
                        .unwrap()
                        .iter()
                        .flat_map(|(status, r)| {
                            r["content"]
                                .as_object()
                                .into_iter()
                                .flatten()
                                .map(move |(media, c)| (format!("{status} {media}"), c))
                        }),
                );
            for (what, content) in bodies {
                if content["schema"]["type"] == "object" {
                    inline.push(format!("{method} {path}: {what}"));
                }
            }
        }
    }
    // Within the components too: an object with properties nested in another is named (an
    // `allOf` member is merged into its parent, not named).
    fn nested(v: &serde_json::Value, at: &str, top: bool, found: &mut Vec<String>) {
        let serde_json::Value::Object(members) = v else {
            return;
        };
        if !top && v["type"] == "object" && v.get("properties").is_some() {
            found.push(at.to_owned());
        }
        for (k, child) in members {
            match child {
                serde_json::Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        nested(item, &format!("{at}/{k}/{i}"), k == "allOf", found);
                    }
                }
                _ => nested(child, &format!("{at}/{k}"), false, found),
            }
        }
    }
    for (name, schema) in spec["components"]["schemas"].as_object().unwrap() {
        nested(schema, name, true, &mut inline);
    }
    assert!(inline.is_empty(), "inline object schemas: {inline:#?}");
}

/// An unquoted comma in a flow-style text (`{description: a, b}`) silently makes `b` a key with
/// no value: no key of the document may be null.
#[test]
fn no_text_of_the_spec_fell_apart_into_keys() {
    fn nulls(v: &serde_json::Value, at: &str, found: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(members) => {
                for (k, v) in members {
                    if v.is_null() {
                        found.push(format!("{at}/{k}"));
                    }
                    nulls(v, &format!("{at}/{k}"), found);
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| nulls(v, at, found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    nulls(&spec(), "", &mut found);
    assert!(found.is_empty(), "null keys: {found:#?}");
}

#[test]
fn a_day_of_the_service_runs_through_the_generated_python_client() {
    let client = python_client();
    let dir = TempDir::new("generated-clients");
    let server = Server::start(&dir.0);
    let out = Command::new(root().join("target/clients/venv/bin/python"))
        .arg(root().join("tests/clients/scenario.py"))
        .arg(&server.url)
        .arg(holder_token("91350100M000100Y43"))
        .env("PYTHONPATH", client)
        .output()
        .expect("running the scenario");
    assert!(
        out.status.success(),
        "the scenario failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
}

/// The TypeScript types openapi-typescript makes of the spec type-check, under `tsc --strict`,
/// the calls an approval system in TypeScript makes through openapi-fetch (tests/clients/check.ts).
#[test]
fn typescript_types_generated_from_the_spec_type_check_an_approval_systems_calls() {
    generate("typescript");
}
