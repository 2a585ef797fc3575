//! The signature log over HTTP: an issued licence's entry is in a signed checkpoint within the
//! merge delay, and its inclusion and consistency proofs verify offline.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use common::{business_licence, post_json, Server, TempDir};
use serde_json::Value;
use zhengyin_tlog::{open_checkpoint, verify_consistency, verify_inclusion, Checkpoint, Hash, LeafIndex, NoteVerifier};

async fn get(http: &reqwest::Client, server: &Server, path: &str, token: &str) -> reqwest::Response {
    http.get(server.at(path)).bearer_auth(token).send().await.unwrap()
}

fn hashes(v: &Value) -> Vec<Hash> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| B64.decode(h.as_str().unwrap()).unwrap().try_into().unwrap())
        .collect()
}

/// Waits (bounded) until a published checkpoint covers `size` entries.
async fn checkpoint_covering(
    http: &reqwest::Client,
    server: &Server,
    verifier: &NoteVerifier,
    size: u64,
) -> Checkpoint {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let note = get(http, server, "/v1/log/checkpoint", "demo-verifier")
            .await
            .text()
            .await
            .unwrap();
        let checkpoint = open_checkpoint(&note, verifier).unwrap();
        if checkpoint.size.0 >= size {
            return checkpoint;
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint covered {size} entries within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn issued_licences_are_provably_in_the_log() {
    let dir = TempDir::new("log");
    let server = Server::start(&dir.0);
    let http = reqwest::Client::new();
    let key: Value = get(&http, &server, "/v1/log/key", "demo-auditor")
        .await
        .json()
        .await
        .unwrap();
    let verifier = NoteVerifier::parse(key["verifier_key"].as_str().unwrap()).unwrap();

    let issued = post_json(
        &http,
        &server,
        "/v1/licences",
        "demo-authority-sm2",
        &business_licence("LOG-1"),
    )
    .await;
    let index = issued["log_index"].as_u64().unwrap();
    let first = checkpoint_covering(&http, &server, &verifier, index + 1).await;

    // The entry names the licence and commits to its exact bytes.
    let page: Value = get(
        &http,
        &server,
        &format!("/v1/log/entries?start={index}&end={}", index + 1),
        "demo-auditor",
    )
    .await
    .json()
    .await
    .unwrap();
    let entry = B64.decode(page["entries"][0].as_str().unwrap()).unwrap();
    let event: Value = serde_json::from_slice(&entry).unwrap();
    assert_eq!(event["event"], "licence.issued");
    assert_eq!(event["licence"], issued["id"]);
    let licence = issued["licence"].to_string();
    assert_eq!(
        event["licence_sha256"],
        zhengyin_crypto::hash::sha256_hex(licence.as_bytes())
    );

    let leaf = zhengyin_tlog::leaf_hash(&entry);
    let by_index: Value = get(
        &http,
        &server,
        &format!("/v1/log/proof/inclusion?index={index}&size={}", first.size.0),
        "demo-auditor",
    )
    .await
    .json()
    .await
    .unwrap();
    verify_inclusion(
        LeafIndex(index),
        first.size,
        &leaf,
        &hashes(&by_index["proof"]),
        &first.root,
    )
    .unwrap();
    let by_hash: Value = get(
        &http,
        &server,
        &format!(
            "/v1/log/proof/inclusion?leaf_hash={}&size={}",
            B64.encode(leaf)
                .replace('+', "%2B")
                .replace('/', "%2F")
                .replace('=', "%3D"),
            first.size.0
        ),
        "demo-auditor",
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(by_hash["index"], index);

    // A revocation appends, and the log stays consistent with what the auditor saw.
    let id = issued["id"].as_str().unwrap();
    let revoke = serde_json::json!({"reason": "注销"});
    let revoked = post_json(
        &http,
        &server,
        &format!("/v1/licences/{id}/revoke"),
        "demo-authority-sm2",
        &revoke,
    )
    .await;
    assert_eq!(revoked["log_index"].as_u64().unwrap(), first.size.0.max(index + 1));
    let second = checkpoint_covering(&http, &server, &verifier, first.size.0 + 1).await;
    let consistency: Value = get(
        &http,
        &server,
        &format!(
            "/v1/log/proof/consistency?first={}&second={}",
            first.size.0, second.size.0
        ),
        "demo-auditor",
    )
    .await
    .json()
    .await
    .unwrap();
    verify_consistency(
        first.size,
        second.size,
        &hashes(&consistency["proof"]),
        &first.root,
        &second.root,
    )
    .unwrap();

    // Only auditors and operators read entries and proofs; bad ranges are clear errors.
    assert_eq!(
        get(&http, &server, "/v1/log/entries?start=0&end=1", "demo-verifier")
            .await
            .status(),
        403
    );
    assert_eq!(
        get(&http, &server, "/v1/log/entries?start=0", "demo-auditor")
            .await
            .status(),
        422
    );
    assert_eq!(
        get(&http, &server, "/v1/log/entries?start=5&end=1", "demo-auditor")
            .await
            .status(),
        422
    );
    let beyond = format!("/v1/log/proof/inclusion?index={}&size={}", second.size.0, second.size.0);
    assert_eq!(get(&http, &server, &beyond, "demo-auditor").await.status(), 422);
    assert_eq!(
        get(
            &http,
            &server,
            "/v1/log/proof/inclusion?leaf_hash=AAAA&size=1",
            "demo-auditor"
        )
        .await
        .status(),
        422
    );
    assert_eq!(
        get(
            &http,
            &server,
            "/v1/log/proof/consistency?first=0&second=1",
            "demo-auditor"
        )
        .await
        .status(),
        422
    );
    let unknown = format!(
        "/v1/log/proof/inclusion?leaf_hash={}&size=1",
        B64.encode([0u8; 32]).replace('=', "%3D")
    );
    assert_eq!(get(&http, &server, &unknown, "demo-auditor").await.status(), 404);
}
