//! The README's walk-throughs, run as written: every ```` ```sh walk-through ```` block, in order,
//! as one bash script against a started demo node (`$ZY` is its base URL, `cargo run … --` is the
//! built binary), in a scratch folder holding the example keys and test vectors. The verdicts it
//! prints must be the ones the README's comments announce, and no request may fail with a 5xx,
//! so the README cannot drift from the service again.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{root, Server, TempDir};

/// The walk-through blocks of the README, in order.
fn walk_throughs(readme: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in readme.lines() {
        match &mut current {
            None if line == "```sh walk-through" => current = Some(Vec::new()),
            Some(lines) if line == "```" => {
                blocks.push(lines.join("\n"));
                current = None;
            }
            Some(lines) => lines.push(line),
            None => {}
        }
    }
    blocks
}

/// Runs `cargo run … -- ARGS` as the built binary with ARGS (and `cargo build …` as nothing: it
/// is built); every curl also writes its status to standard error.
const PRELUDE: &str = r#"set -uo pipefail
cargo() {
  case " $* " in
    *" -- "*) while [ "$1" != "--" ]; do shift; done; shift; "$ZHENGYIN" "$@" ;;
    *) : ;;
  esac
}
curl() { command curl -w '%{stderr}HTTP %{http_code}\n' "$@"; }
trap 'kill $(jobs -p) 2>/dev/null' EXIT   # nodes a walk-through started in the background
"#;

#[test]
fn the_readme_walk_throughs_run_as_written() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let blocks = walk_throughs(&readme);
    assert!(blocks.len() >= 8, "walk-through blocks found: {}", blocks.len());
    for block in &blocks {
        assert!(
            !block.contains("localhost:8080"),
            "a walk-through names the node other than $ZY:\n{block}"
        );
    }
    let data = TempDir::new("readme-data");
    let server = Server::start(&data.0);
    let work = TempDir::new("readme-work");
    for shared in ["keys-example", "tests"] {
        std::os::unix::fs::symlink(root().join(shared), work.0.join(shared)).unwrap();
    }
    // `./target/release/zhengyin`, as the multi-node walk-through names it.
    std::fs::create_dir_all(work.0.join("target/release")).unwrap();
    std::os::unix::fs::symlink(common::binary(), work.0.join("target/release/zhengyin")).unwrap();
    let script = format!("{PRELUDE}\n{}\n", blocks.join("\n\n"));
    // Bounded: a walk-through that waits for something that never comes fails here.
    let out = std::process::Command::new("timeout")
        .args(["300", "bash", "-c"])
        .arg(&script)
        .current_dir(&work.0)
        .env("ZY", &server.url)
        .env("ZHENGYIN", common::binary())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let context = format!("--- stdout\n{stdout}\n--- stderr\n{stderr}");

    let statuses: Vec<u16> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("HTTP "))
        .map(|code| code.trim().parse().unwrap())
        .collect();
    assert!(statuses.len() >= 30, "requests made: {statuses:?}\n{context}");
    assert!(
        statuses.iter().all(|s| (200..500).contains(s)),
        "a request failed or did not connect: {statuses:?}\n{context}"
    );
    // The refusals the README shows, and no other: the withdrawn authorisation.
    let refused: Vec<&u16> = statuses.iter().filter(|s| **s >= 400).collect();
    assert_eq!(refused, [&403], "{context}");

    let verdicts: Vec<&str> = stdout
        .match_indices("\"verdict\"")
        .filter_map(|(at, _)| {
            let rest = stdout[at + 9..].trim_start().strip_prefix(':')?.trim_start();
            rest.strip_prefix('"')?.split('"').next()
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            // Five minutes: verified, tampered, revoked, as it stood before the revocation.
            "VALID",
            "INVALID",
            "INVALID",
            "VALID",
            // The scanned presentation, the annotated copy, the copy offline (no status offline).
            "VALID",
            "VALID",
            "INDETERMINATE",
            // The disputed licence: valid, with the objection's warning.
            "VALID",
            // At the province: the city's licence once synced, then once its revocation is.
            "VALID",
            "INVALID",
            // The sealed signature, then after the seal's revocation; the ofdrw sample offline.
            "VALID",
            "INVALID",
            "INVALID",
            // The licence file.
            "VALID",
        ],
        "{context}"
    );
    for said in [
        "INDETERMINATE\n",              // the offline licence, as text
        "authorisation.invalid",        // the withdrawn authorisation
        "\"state\":\"corrected\"",      // the objection's outcome
        "OK: log ",                     // the audit
        "SES_Signature version 4",      // seal inspect
        "zhengyin.example/city-220100", // sync status
    ] {
        assert!(
            stdout.contains(said),
            "the walk-through did not show {said:?}\n{context}"
        );
    }
}
