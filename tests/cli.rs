//! The `zhengyin` command line: offline verification and its errors.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use common::{root, TempDir};
use serde_json::Value;

fn worked_example_licence(dir: &TempDir) -> std::path::PathBuf {
    let spec: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(root().join("api-spec/openapi.yaml")).unwrap()).unwrap();
    let path = dir.0.join("licence.json");
    std::fs::write(&path, spec["x-worked-example"]["signed_licence"].as_str().unwrap()).unwrap();
    path
}

fn verify(licence: &std::path::Path, certs: &str) -> std::process::Output {
    Command::new(common::binary())
        .arg("verify")
        .arg(licence)
        .arg("--anchors")
        .arg(root().join("keys-example/root-ca.pem"))
        .arg("--certs")
        .arg(root().join(certs))
        .output()
        .unwrap()
}

fn chain_file(dir: &TempDir) -> String {
    let chain = std::fs::read_to_string(root().join("keys-example/authority-ed25519.pem")).unwrap()
        + &std::fs::read_to_string(root().join("keys-example/issuing-ca.pem")).unwrap();
    let path = dir.0.join("chain.pem");
    std::fs::write(&path, chain).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn offline_verification_checks_signature_and_chain() {
    let dir = TempDir::new("cli");
    let licence = worked_example_licence(&dir);
    let out = verify(&licence, &chain_file(&dir));
    assert_eq!(
        out.status.code(),
        Some(3),
        "INDETERMINATE exits 3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verdict"], "INDETERMINATE", "no status offline: {report}");
    let signature = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == "signature")
        .unwrap();
    assert_eq!(signature["outcome"], "passed");

    let tampered = dir.0.join("tampered.json");
    let text = std::fs::read_to_string(&licence)
        .unwrap()
        .replace("JL2024000001", "JL2024000002");
    std::fs::write(&tampered, text).unwrap();
    let out = verify(&tampered, &chain_file(&dir));
    assert_eq!(out.status.code(), Some(1), "INVALID exits 1");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verdict"], "INVALID");
}

/// `zhengyin … | head -0`: the reader has gone before the output is written; the CLI ends
/// quietly with success instead of panicking on the broken pipe.
#[test]
fn a_reader_that_goes_away_ends_the_cli_quietly() {
    for _ in 0..3 {
        let mut child = Command::new(common::binary())
            .current_dir(root())
            .args(["holder-token", "--holder", "91350100M000100Y43"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{:?}: {stderr}", out.status);
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn bad_input_is_a_plain_message_and_a_nonzero_exit() {
    let dir = TempDir::new("cli-bad");
    let licence = worked_example_licence(&dir);
    let missing = verify(&dir.0.join("nope.json"), "keys-example/root-ca.pem");
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope.json"));
    let not_pem = verify(&licence, "README.md");
    assert_eq!(
        not_pem.status.code(),
        Some(2),
        "a certificate file without certificates"
    );
    assert!(String::from_utf8_lossy(&not_pem.stderr).starts_with("zhengyin: "));
    let no_args = Command::new(common::binary()).arg("verify").output().unwrap();
    assert!(!no_args.status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_reads_a_configuration_file() {
    let dir = TempDir::new("config");
    let keys = root().join("keys-example");
    std::fs::copy(keys.join("root-ca.pem"), dir.0.join("roots.pem")).unwrap();
    std::fs::copy(keys.join("log-ed25519.key"), dir.0.join("log.key")).unwrap();
    let hash = zhengyin_crypto::hash::sha256_hex(b"secret-operator-token");
    let config = format!(
        "data_dir = \"data\"\ntrust_anchors = \"roots.pem\"\nlog_key = \"log.key\"\nlog_origin = \"zhengyin.example/test\"\n\n\
         [[tokens]]\nname = \"op\"\nsha256 = \"{hash}\"\nrole = \"operator\"\n"
    );
    let path = dir.0.join("zhengyin.toml");
    std::fs::write(&path, config).unwrap();
    let server = common::Server::start_with(&["serve", "--config", path.to_str().unwrap()]);
    let http = reqwest::Client::new();
    let r = http
        .get(server.at("/v1/licence-types"))
        .bearer_auth("secret-operator-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the configured token works");
    let r = http
        .get(server.at("/v1/licence-types"))
        .bearer_auth("demo-operator")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "no demo tokens outside demo mode");
    // (Under the PostgreSQL backend the data is in the database, not in data_dir.)
    assert!(
        common::postgres() || dir.0.join("data").is_dir(),
        "relative paths are relative to the configuration file"
    );
    drop(server);

    // An unknown setting, and trust anchors without a certificate: the node refuses to start.
    std::fs::write(dir.0.join("empty.pem"), "").unwrap();
    for (config, expected) in [
        (
            "trust_anchors = \"roots.pem\"\nlog_key = \"log.key\"\ncolour = \"red\"\n",
            "colour",
        ),
        (
            "data_dir = \"data\"\ntrust_anchors = \"empty.pem\"\nlog_key = \"log.key\"\n",
            "hold no certificate",
        ),
    ] {
        std::fs::write(&path, config).unwrap();
        let out = Command::new(common::binary())
            .args(["serve", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }
}

fn ofdrw(name: &str) -> std::path::PathBuf {
    common::root().join("tests/vectors/gmt0031-gbt38540-ofdrw").join(name)
}

#[test]
fn seal_inspect_and_verify_offline() {
    let run = |args: &[&std::ffi::OsStr]| Command::new(common::binary()).args(args).output().unwrap();
    let file = ofdrw("SignedValueV4.dat");
    let out = run(&["seal".as_ref(), "inspect".as_ref(), file.as_os_str()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("SES_Signature version 4") && text.contains("OFD R&W 测试用印章"),
        "{text}"
    );

    let anchors = common::root().join("keys-example/root-ca.pem");
    let verify = |file: &std::path::Path| {
        run(&[
            "seal".as_ref(),
            "verify".as_ref(),
            file.as_os_str(),
            "--anchors".as_ref(),
            anchors.as_os_str(),
        ])
    };
    // The third-party seal's maker signature does not verify: INVALID, exit 1, and the report says why.
    let out = verify(&ofdrw("SESealData.DER"));
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let seal_signature = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == "seal_signature")
        .unwrap();
    assert_eq!(seal_signature["outcome"], "failed");

    // Not a seal at all: verified, it is an INVALID report naming the structure; inspected, a
    // plain message and exit 2.
    let out = verify(&anchors);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["checks"][0]["code"], "structure");
    assert_eq!(report["checks"][0]["outcome"], "failed");
    let out = run(&["seal".as_ref(), "inspect".as_ref(), anchors.as_os_str()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("neither a seal nor a signature"));

    // Anchors that hold no certificate are a usage error, not a verification without anchors.
    let readme = common::root().join("README.md");
    let out = run(&[
        "verify".as_ref(),
        "seal".as_ref(),
        ofdrw("UserV4.esl").as_os_str(),
        "--anchors".as_ref(),
        readme.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds no certificate"));
}

fn zhengyin(args: &[&str], cwd: &std::path::Path) -> std::process::Output {
    Command::new(common::binary())
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

/// `verify licence|copy|seal|ofd` share their options and exit by the verdict; the old spellings
/// answer the same.
#[test]
fn every_verify_has_one_shape_and_exits_by_its_verdict() {
    let dir = TempDir::new("cli-verify");
    let licence = worked_example_licence(&dir);
    let chain = chain_file(&dir);
    let anchors = root().join("keys-example/root-ca.pem");
    let (licence, anchors) = (licence.to_str().unwrap(), anchors.to_str().unwrap());
    let here = root();
    // `verify licence` of the worked example with the example anchors, then `extra`.
    let verify_licence = |extra: &[&str]| {
        let mut args = vec!["verify", "licence", licence, "--anchors", anchors];
        args.extend_from_slice(extra);
        zhengyin(&args, &here)
    };

    let out = verify_licence(&["--chain", &chain, "--format", "text"]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("INDETERMINATE\n"), "{text}");
    assert!(
        text.lines().any(|l| l.contains("passed") && l.contains("signature")),
        "{text}"
    );

    // A CRL of the issuing CA that lists the signing certificate (key compromise): INVALID.
    let crl = root().join("keys-example/test-only/issuing-ca-revocations.crl.pem");
    let issuing_ca = root().join("keys-example/issuing-ca.pem");
    let out = verify_licence(&["--chain", &chain, "--crl", crl.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("revoked"));
    // A CRL no given CA signed is an input error.
    let out = verify_licence(&["--chain", issuing_ca.to_str().unwrap(), "--crl", anchors]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    // --at: the report is evaluated at that time; offline, no registry is claimed.
    let out = verify_licence(&["--chain", &chain, "--at", "2030-01-01T00:00:00Z"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["evaluated_at"], "2030-01-01T00:00:00Z", "{report}");
    let registry = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == "registry")
        .unwrap();
    assert!(registry["message"].as_str().unwrap().contains("offline"), "{registry}");
    // A licence needs its signing certificate.
    let out = verify_licence(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--chain"));

    // Seals: the new and the old spelling give the same report and status.
    let seal = ofdrw("SignedValueV4.dat");
    let new = zhengyin(&["verify", "seal", seal.to_str().unwrap(), "--anchors", anchors], &here);
    let old = zhengyin(&["seal", "verify", seal.to_str().unwrap(), "--anchors", anchors], &here);
    assert_eq!(new.status.code(), old.status.code());
    let report = |out: &std::process::Output| {
        let mut report: Value = serde_json::from_slice(&out.stdout).unwrap();
        report["evaluated_at"] = Value::Null; // "now", a moment apart
        report
    };
    assert_eq!(report(&new), report(&old));
    assert!(
        matches!(new.status.code(), Some(1 | 3)),
        "{}",
        String::from_utf8_lossy(&new.stdout)
    );
    let out = zhengyin(&["verify", "seal", seal.to_str().unwrap()], &here);
    assert_eq!(out.status.code(), Some(2), "no --anchors");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--anchors"));
}

#[test]
fn every_help_states_the_exit_statuses() {
    for args in [
        vec!["--help"],
        vec!["verify", "--help"],
        vec!["verify", "licence", "--help"],
        vec!["serve", "--help"],
        vec!["audit", "--help"],
        vec!["seal", "verify", "--help"],
        vec!["store", "copy", "--help"],
    ] {
        let out = zhengyin(&args, &root());
        assert!(out.status.success(), "{args:?}");
        let help = String::from_utf8(out.stdout).unwrap();
        assert!(
            help.contains("Exit status: 0 VALID") && help.contains("3 INDETERMINATE"),
            "{args:?}: {help}"
        );
    }
    let serve = String::from_utf8(zhengyin(&["serve", "--help"], &root()).stdout).unwrap();
    for default in ["[default: 127.0.0.1:8080", "[default: data", "[default: keys-example]"] {
        assert!(serve.contains(default), "serve --help shows {default}: {serve}");
    }
}

#[test]
fn completions_and_the_manual_page_come_from_the_same_definition() {
    for shell in ["bash", "zsh", "fish"] {
        let out = zhengyin(&["completions", shell], &root());
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(
            script.contains("zhengyin") && script.contains("verify"),
            "{shell}: {script}"
        );
    }
    let out = zhengyin(&["completions", "tcsh-9"], &root());
    assert_eq!(out.status.code(), Some(2));
    let man = String::from_utf8(zhengyin(&["man"], &root()).stdout).unwrap();
    assert!(man.contains(".TH zhengyin 1") && man.contains("Exit status"), "{man}");
}

/// From any folder, nothing written there unless asked; a node that cannot be reached exits 4.
#[test]
fn paths_resolve_from_any_folder_and_nothing_lands_in_the_current_one() {
    let elsewhere = TempDir::new("cli-elsewhere");
    let keys = root().join("keys-example");
    let out = zhengyin(
        &[
            "holder-token",
            "--holder",
            "91350100M000100Y43",
            "--keys-dir",
            keys.to_str().unwrap(),
        ],
        &elsewhere.0,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = zhengyin(&["holder-token", "--holder", "91350100M000100Y43"], &elsewhere.0);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--keys-dir"));

    let dead = format!("http://127.0.0.1:{}", common::free_port());
    let key = "zhengyin.example/demo+05190cb8+AQ4jO0Kz+uAb3sVpwVuPL5Xe9bzdMXpAcaNOE3SDeH/3";
    let out = zhengyin(
        &["audit", "--url", &dead, "--key", key, "--token", "demo-auditor"],
        &elsewhere.0,
    );
    assert_eq!(
        out.status.code(),
        Some(4),
        "unreachable: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let left: Vec<_> = std::fs::read_dir(&elsewhere.0).unwrap().collect();
    assert!(left.is_empty(), "written to the current folder: {left:?}");
}
