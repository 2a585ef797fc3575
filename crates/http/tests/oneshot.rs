//! The router in process (`oneshot`, no port): the error mapping, the body limit, roles and
//! request ids. The same behaviour against a started server is tested in the workspace's tests/.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::Value;
use tower::ServiceExt as _;
use zhengyin_crypto::{FileKey, TrustAnchors};
use zhengyin_engine::{Engine, FixedClock, Keyring, LogConfig, SeededRandom};
use zhengyin_http::{app, AppState, HttpConfig, Role, TokenConfig, Tokens};
use zhengyin_store::SledStore;

async fn router(body_limit: usize) -> axum::Router {
    let keys = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../keys-example");
    let anchors = TrustAnchors::from_pem(&std::fs::read_to_string(keys.join("root-ca.pem")).unwrap()).unwrap();
    let log = LogConfig {
        origin: "zhengyin.example/oneshot".to_owned(),
        signer: Arc::new(FileKey::from_pem_file(&keys.join("log-ed25519.key")).unwrap()),
        published: None,
    };
    let engine = Engine::new(
        Arc::new(SledStore::temporary().unwrap()),
        Arc::new(FixedClock::new(time::OffsetDateTime::now_utc())),
        Arc::new(SeededRandom::new(1)),
        anchors,
        Keyring::default(),
        log,
    )
    .await
    .unwrap();
    let token = |t: &str, role: Role| TokenConfig::new(t, zhengyin_crypto::hash::sha256_hex(t.as_bytes()), &role);
    let mut limited = token("limited", Role::Auditor);
    limited.rate_per_second = Some(1.0);
    let verifier = token(
        "verifier",
        Role::Verifier {
            department: "d".to_owned(),
        },
    );
    let tokens = Tokens::from_config(&[token("op", Role::Operator), verifier, limited]).unwrap();
    app(
        AppState::new(Arc::new(engine), tokens).unwrap(),
        HttpConfig {
            body_limit,
            ..HttpConfig::default()
        },
    )
}

async fn send(router: axum::Router, req: Request<Body>) -> (StatusCode, Value, String) {
    let response = router.oneshot(req).await.unwrap();
    let status = response.status();
    let request_id = response
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        request_id,
    )
}

fn post(path: &str, token: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut b = Request::post(path).header("content-type", "application/json");
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(body.into()).unwrap()
}

#[tokio::test]
async fn problems_carry_code_status_and_request_id() {
    let (status, body, request_id) = send(router(1024).await, post("/v1/verify", None, "{}")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "auth.missing");
    assert_eq!(body["request_id"], request_id.as_str());
    assert!(!request_id.is_empty());
}

#[tokio::test]
async fn the_body_limit_is_enforced_before_parsing() {
    let big = vec![b' '; 4096];
    let (status, body, _) = send(router(1024).await, post("/v1/verify", Some("verifier"), big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["code"], "request.too_large");
    // The batch route has its own, larger limit: 4 KiB passes the general 1 KiB limit there…
    let batch = format!("{{\"licences\":[\"{}\"]}}", "x".repeat(4096));
    let (status, body, _) = send(router(1024).await, post("/v1/verify/batch", Some("op"), batch)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // …and is enforced too (default 4 MiB).
    let huge = vec![b' '; HttpConfig::default().batch_body_limit + 1];
    let (status, body, _) = send(router(1024).await, post("/v1/verify/batch", Some("verifier"), huge)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["code"], "request.too_large");
}

#[tokio::test]
async fn roles_are_checked_before_the_body_is_read() {
    let (status, body, _) = send(
        router(1024).await,
        post("/v1/licence-types", Some("verifier"), "not json"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body, _) = send(router(1024).await, post("/v1/licence-types", Some("op"), "not json")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "request.malformed_json");
}

#[tokio::test]
async fn a_verdict_is_an_answer_not_an_error() {
    let (status, body, _) = send(router(4096).await, post("/v1/verify", Some("op"), "{\"proof\":{}}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["verdict"], "INVALID");
}

#[tokio::test]
async fn a_department_states_its_purpose_to_verify() {
    for path in [
        "/v1/verify",
        "/v1/verify/batch",
        "/v1/verify?use_cause=x",
        "/v1/verify?service_item=S1",
    ] {
        let (status, body, _) = send(router(4096).await, post(path, Some("verifier"), "{}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {body}");
        assert_eq!(body["code"], "use.cause_invalid");
    }
    let (status, body, _) = send(
        router(4096).await,
        post("/v1/verify?service_item=UNKNOWN&use_cause=x", Some("verifier"), "{}"),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("use.unknown_service_item"))
    );
}

#[tokio::test]
async fn the_first_checkpoint_is_of_the_empty_log() {
    let router = router(1024).await;
    let req = Request::get("/v1/log/key")
        .header("authorization", "Bearer op")
        .body(Body::empty())
        .unwrap();
    let (status, key, _) = send(router.clone(), req).await;
    assert_eq!(status, StatusCode::OK);
    assert!(zhengyin_tlog::NoteVerifier::parse(key["verifier_key"].as_str().unwrap()).is_ok());
    let req = Request::get("/v1/log/checkpoint")
        .header("authorization", "Bearer op")
        .body(Body::empty())
        .unwrap();
    let (status, _, _) = send(router, req).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "nothing published until the server publishes"
    );
}

#[test]
fn token_configuration_is_checked() {
    let parse = |toml_like: serde_json::Value| {
        let config: TokenConfig = serde_json::from_value(toml_like)?;
        Tokens::from_config(&[config]).map_err(|e| serde::de::Error::custom(e.to_string()))
    };
    let ok = |v: serde_json::Value| parse(v).map_err(|e: serde_json::Error| e.to_string());
    let hash = "00".repeat(32);
    assert!(
        ok(serde_json::json!({"name": "a", "sha256": hash, "role": "authority", "uscc": "12100000400010398P"})).is_ok()
    );
    assert!(ok(serde_json::json!({"name": "a", "sha256": hash, "role": "verifier", "department": "x"})).is_ok());
    for bad in [
        serde_json::json!({"name": "a", "sha256": hash, "role": "authority"}),
        serde_json::json!({"name": "a", "sha256": hash, "role": "authority", "uscc": "12100000400010398Q"}),
        serde_json::json!({"name": "a", "sha256": hash, "role": "operator", "uscc": "12100000400010398P"}),
        serde_json::json!({"name": "a", "sha256": hash, "role": "root"}),
        serde_json::json!({"name": "a", "sha256": "abc", "role": "operator"}),
        serde_json::json!({"name": "a", "sha256": hash, "role": "operator", "colour": "red"}),
    ] {
        assert!(ok(bad.clone()).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn callers_over_their_rate_get_429_with_retry_after() {
    let router = router(1024).await;
    let get = || {
        Request::get("/v1/log/key")
            .header("authorization", "Bearer limited")
            .body(Body::empty())
            .unwrap()
    };
    // A burst of twice the rate passes; the next request is refused.
    for _ in 0..2 {
        assert_eq!(router.clone().oneshot(get()).await.unwrap().status(), StatusCode::OK);
    }
    let response = router.clone().oneshot(get()).await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "1");
    // Other callers are not affected.
    let other = Request::get("/v1/log/key")
        .header("authorization", "Bearer op")
        .body(Body::empty())
        .unwrap();
    assert_eq!(router.oneshot(other).await.unwrap().status(), StatusCode::OK);
}

/// A request refused before its body was read tells the client not to reuse the connection;
/// one whose body was read keeps it.
#[tokio::test]
async fn early_refusals_close_the_connection() {
    let request = |token: &str| {
        Request::post("/v1/licence-types")
            .header("content-type", "application/json")
            .header("content-length", "8")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::from("not json"))
            .unwrap()
    };
    let refused = router(1024).await.oneshot(request("verifier")).await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(refused.headers()["connection"], "close");
    let read = router(1024).await.oneshot(request("op")).await.unwrap();
    assert_eq!(read.status(), StatusCode::BAD_REQUEST);
    assert!(read.headers().get("connection").is_none());
}
