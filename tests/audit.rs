//! `zhengyin audit` against a really started node: OK on an honest log, FAIL on a checkpoint
//! signed by another key, a log that went backwards, equivocation, and a rewritten entry.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{audit, business_licence, post_json, wait_for_checkpoint, Server, TempDir};
use serde_json::Value;

async fn issue(http: &reqwest::Client, server: &Server, n: usize) -> u64 {
    // Licence numbers are unique per type and issuer: every call issues new ones.
    static ISSUED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let mut last = 0;
    for _ in 0..n {
        let i = ISSUED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let body = business_licence(&format!("AUDIT-{i}"));
        let r = post_json(http, server, "/v1/licences", "demo-authority-ed25519", &body).await;
        last = r["log_index"].as_u64().unwrap();
    }
    last
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).unwrap()
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn edit_state(state: &Path, f: impl FnOnce(&mut Value)) -> std::path::PathBuf {
    let mut v: Value = serde_json::from_slice(&std::fs::read(state).unwrap()).unwrap();
    f(&mut v);
    let copy = state.with_extension("edited.json");
    std::fs::write(&copy, serde_json::to_vec(&v).unwrap()).unwrap();
    copy
}

#[tokio::test(flavor = "multi_thread")]
async fn the_auditor_passes_an_honest_log_and_catches_a_dishonest_one() {
    let dir = TempDir::new("audit");
    let data = dir.0.join("data");
    let server = Server::start(&data);
    let http = reqwest::Client::new();
    let key = common::log_verifier_key(&http, &server).await;
    let state = dir.0.join("audit.json");

    let last = issue(&http, &server, 5).await;
    wait_for_checkpoint(&http, &server, last + 1).await;
    let (code, out) = audit(&server, &key, &state);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("OK: log zhengyin.example/demo at size"), "{out}");
    assert!(out.contains("5 licence.issued"), "{out}");

    // The log grows; the next audit checks consistency with the last one and the new entries.
    let last = issue(&http, &server, 3).await;
    wait_for_checkpoint(&http, &server, last + 1).await;
    let (code, out) = audit(&server, &key, &state);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("3 new entries"), "{out}");

    // The same audit offline, on an exported bundle; then on damaged copies of it.
    let bundle = dir.0.join("bundle");
    let out = Command::new(common::binary())
        .args([
            "log",
            "export",
            "--url",
            &server.url,
            "--token",
            "demo-auditor",
            "--out",
        ])
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let offline = |state: &str| {
        let out = Command::new(common::binary())
            .args(["audit", "--key", &key, "--offline"])
            .arg(&bundle)
            .arg("--state")
            .arg(dir.0.join(state))
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let (code, out) = offline("offline.json");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("14 new entries"),
        "4 authorities, 2 licence types and 8 licences: {out}"
    );
    let entries_path = bundle.join("entries.txt");
    let honest = std::fs::read_to_string(&entries_path).unwrap();
    let mut lines: Vec<String> = honest.lines().map(str::to_owned).collect();
    let issued = lines
        .iter()
        .position(|l| String::from_utf8(base64_decode(l)).unwrap().contains("licence.issued"))
        .unwrap();
    let changed = String::from_utf8(base64_decode(&lines[issued]))
        .unwrap()
        .replace("licence.issued", "licence.issueD");
    lines[issued] = base64_encode(changed.as_bytes());
    std::fs::write(&entries_path, lines.join("\n") + "\n").unwrap();
    let (code, out) = offline("offline-fresh-1.json");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("rewritten or removed"), "{out}");
    let truncated: Vec<&str> = honest.lines().take(10).collect();
    std::fs::write(&entries_path, truncated.join("\n") + "\n").unwrap();
    let (code, out) = offline("offline-fresh-2.json");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("no entry 10"), "{out}");

    // A checkpoint that the configured key did not sign.
    let mut der = hex::decode("302e020100300506032b657004220420").unwrap();
    der.extend_from_slice(&[9; 32]);
    let other = zhengyin_crypto::FileKey::from_pkcs8_der(&der).unwrap();
    let wrong_key = zhengyin_tlog::NoteVerifier::new(
        "zhengyin.example/demo",
        zhengyin_crypto::Signer::public_key(&other).clone(),
    )
    .unwrap()
    .encode();
    let (code, out) = audit(&server, &wrong_key, &state);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("does not verify"), "{out}");

    // What the auditor saw before says the log was bigger: it went backwards.
    let bigger = edit_state(&state, |v| v["size"] = Value::from(v["size"].as_u64().unwrap() + 10));
    let (code, out) = audit(&server, &key, &bigger);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("went backwards"), "{out}");

    // Another root for the same size: equivocation, with both checkpoints shown.
    let forked = edit_state(&state, |v| {
        v["root"] = Value::from("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    });
    let (code, out) = audit(&server, &key, &forked);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("equivocation"), "{out}");

    // Someone rewrites an entry on disk: a fresh auditor recomputes the root and fails.
    server.kill();
    common::rewrite_log_entry(&data, 6, "licence.issued", "licence.issueD");
    let server = Server::start(&data);
    let (code, out) = audit(&server, &key, &dir.0.join("fresh.json"));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("rewritten or removed"), "{out}");
}
