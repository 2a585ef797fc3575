//! The server held to its OpenAPI document from outside: schemathesis (pinned, `--checks all`),
//! once per role's token, against a really started demo node (`scripts/conformance.sh`, with the
//! exceptions of `api-spec/schemathesis.toml`, each a rule no schema can say). No failure, no
//! error, and no 5xx in the node's own metrics afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use common::{assert_no_server_errors, holder_token_with, identity_key, root, Server, TempDir, DEMO_ISSUER};

/// Cases per operation and phase: small enough for CI, where the coverage phase's own cases (all
/// of them, whatever this says) do most of the work.
const EXAMPLES: &str = "10";

#[tokio::test(flavor = "multi_thread")]
async fn every_role_gets_only_answers_the_spec_allows() {
    let dir = TempDir::new("conformance");
    let server = Server::start(&dir.0);
    let holder = holder_token_with(
        &identity_key(),
        DEMO_ISSUER,
        "91350100M000100Y43",
        time::OffsetDateTime::now_utc(),
        3600,
    );
    let tokens = [
        "demo-operator",
        "demo-authority-ed25519",
        "demo-verifier",
        "demo-auditor",
        "demo-node",
        holder.as_str(),
    ];
    let out = Command::new("bash")
        .arg("scripts/conformance.sh")
        .arg(&server.url)
        .arg(EXAMPLES)
        .args(tokens)
        .current_dir(root())
        .output()
        .expect("running scripts/conformance.sh");
    assert!(
        out.status.success(),
        "schemathesis found answers outside the spec:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_server_errors(&server).await;
}
