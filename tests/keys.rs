//! Key rotation and retirement over HTTP, as an operator would do them on a running node: the
//! authority's next certificate registered, the old key retired, licences from before and after
//! both VALID, the retired key signing nothing more, refusals as problem+json, the retirement in
//! the log and the log still passing `zhengyin audit`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{business_licence, get, log_verifier_key, root, send, Server, TempDir, PURPOSE};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

const ED25519: &str = "11220000013544541J";

/// Issues a business licence with the ed25519 authority: its bytes and the certificate it names.
async fn issue(http: &Client, server: &Server, number: &str) -> (Vec<u8>, String) {
    let (status, issued) = send(
        http,
        server,
        "/v1/licences",
        "demo-authority-ed25519",
        &business_licence(number),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    let id = issued["id"].as_str().unwrap();
    let bytes = common::licence_bytes(http, server, id, "demo-authority-ed25519").await;
    let licence: Value = serde_json::from_slice(&bytes).unwrap();
    let certificate = licence["proof"]["verificationMethod"].as_str().unwrap().to_owned();
    (bytes, certificate)
}

async fn verdict(http: &Client, server: &Server, licence: &[u8]) -> Value {
    common::verify_at(http, server, &format!("/v1/verify?{PURPOSE}"), "demo-verifier", licence).await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_rotates_and_retires_an_authoritys_key() {
    let dir = TempDir::new("keys");
    let server = Server::start(&dir.0.join("data"));
    let http = Client::new();
    let (before, old) = issue(&http, &server, "JL-KEY-1").await;

    let keys = root().join("keys-example");
    let chain = std::fs::read_to_string(keys.join("authority-ed25519-next.pem")).unwrap()
        + &std::fs::read_to_string(keys.join("issuing-ca.pem")).unwrap();
    let (status, body) = send(
        &http,
        &server,
        "/v1/authorities",
        "demo-operator",
        &json!({"uscc": ED25519, "name": "示例发证机构", "level": "city", "region_code": "220100", "certificates": [chain]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (after, new) = issue(&http, &server, "JL-KEY-2").await;
    assert_ne!(old, new);

    let retire = |certificate: &str| format!("/v1/authorities/{ED25519}/keys/{certificate}/retire");
    let (status, problem) = send(&http, &server, &retire(&old), "demo-verifier", &json!({"reason": "x"})).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("auth.forbidden"))
    );
    let (status, authority) = send(
        &http,
        &server,
        &retire(&old),
        "demo-operator",
        &json!({"reason": "轮换"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{authority}");
    assert_eq!(authority["retired"][0]["certificate"], old.as_str());
    for licence in [&before, &after] {
        let report = verdict(&http, &server, licence).await;
        assert_eq!(report["verdict"], "VALID", "{report}");
    }
    let (_, later) = issue(&http, &server, "JL-KEY-3").await;
    assert_eq!(later, new, "the retired key signs nothing more");

    let (status, problem) = send(
        &http,
        &server,
        &retire(&old),
        "demo-operator",
        &json!({"reason": "again"}),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::CONFLICT, Some("key.retired")),
        "{problem}"
    );
    let (status, problem) = send(
        &http,
        &server,
        &retire("urn:zhengyin:cert:sha256:00"),
        "demo-operator",
        &json!({"reason": "x"}),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("key.not_found")),
        "{problem}"
    );
    let (status, problem) = send(&http, &server, &retire(&new), "demo-operator", &json!({"reason": ""})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let (status, _) = send(
        &http,
        &server,
        &retire(&new),
        "demo-operator",
        &json!({"reason": "机构撤并"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, problem) = send(
        &http,
        &server,
        "/v1/licences",
        "demo-authority-ed25519",
        &business_licence("JL-KEY-4"),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::CONFLICT, Some("authority.no_signing_key")),
        "{problem}"
    );

    let retirements: Vec<Value> = common::log_entries(&http, &server)
        .await
        .into_iter()
        .filter(|e| e["event"] == "authority.key_retired")
        .collect();
    assert_eq!(retirements.len(), 2, "{retirements:?}");
    let (_, fetched) = get(&http, &server, &format!("/v1/authorities/{ED25519}"), "demo-auditor").await;
    assert_eq!(fetched["retired"].as_array().map(Vec::len), Some(2), "{fetched}");
    let key = log_verifier_key(&http, &server).await;
    common::wait_for_checkpoint(&http, &server, common::log_size(&http, &server).await).await;
    let (code, out) = common::audit(&server, &key, &dir.0.join("audit.state"));
    assert_eq!(code, 0, "{out}");
}
