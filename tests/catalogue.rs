//! The catalogue over HTTP on a really started node: a changed licence type is a new version that
//! earlier licences do not follow, and a licence number is unique per (type, issuer).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{business_licence, get, send, Server, TempDir};
use reqwest::StatusCode;
use serde_json::{json, Value};

const TYPE: &str = "/v1/licence-types/11100000000013338W032";

fn problem_code(answer: &(StatusCode, Value)) -> (StatusCode, &str) {
    (answer.0, answer.1["code"].as_str().unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_type_change_is_a_new_version_and_numbers_are_unique() {
    let dir = TempDir::new("catalogue");
    let server = Server::start(&dir.0);
    let http = reqwest::Client::new();

    let before = send(
        &http,
        &server,
        "/v1/licences",
        "demo-authority-ed25519",
        &business_licence("CAT-1"),
    )
    .await;
    assert_eq!(before.0, StatusCode::CREATED, "{}", before.1);
    let (_, original) = get(&http, &server, TYPE, "demo-verifier").await;
    assert_eq!(original["version"], json!(1));

    // A changed schema: version 2, sent version ignored; the same again changes nothing.
    let mut changed = original.clone();
    changed["version"] = json!(40);
    changed["face_schema"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "website", "label": "网址", "kind": "string"}));
    let (status, registered) = send(&http, &server, "/v1/licence-types", "demo-operator", &changed).await;
    assert_eq!((status, registered["version"].clone()), (StatusCode::CREATED, json!(2)));
    let (status, again) = send(&http, &server, "/v1/licence-types", "demo-operator", &changed).await;
    assert_eq!((status, again), (StatusCode::OK, registered.clone()));
    let refused = send(&http, &server, "/v1/licence-types", "demo-authority-ed25519", &changed).await;
    assert_eq!(problem_code(&refused), (StatusCode::FORBIDDEN, "auth.forbidden"));

    let (status, versions) = get(&http, &server, &format!("{TYPE}/versions"), "demo-auditor").await;
    assert_eq!(status, StatusCode::OK, "{versions}");
    let numbers: Vec<&Value> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| &v["version"])
        .collect();
    assert_eq!(numbers, [&json!(1), &json!(2)]);
    assert_eq!(
        get(&http, &server, &format!("{TYPE}/versions/1"), "demo-verifier").await,
        (StatusCode::OK, original)
    );
    let missing = get(&http, &server, &format!("{TYPE}/versions/3"), "demo-verifier").await;
    assert_eq!(
        problem_code(&missing),
        (StatusCode::NOT_FOUND, "licence_type.version_unknown")
    );
    let malformed = get(&http, &server, &format!("{TYPE}/versions/x"), "demo-verifier").await;
    assert_eq!(problem_code(&malformed), (StatusCode::BAD_REQUEST, "request.malformed"));

    // New licences name version 2; the earlier one keeps version 1 and verifies.
    let after = send(
        &http,
        &server,
        "/v1/licences",
        "demo-authority-ed25519",
        &business_licence("CAT-2"),
    )
    .await;
    assert_eq!(after.0, StatusCode::CREATED, "{}", after.1);
    let signed = |answer: &Value| answer["licence"].clone();
    assert_eq!(signed(&after.1)["type"]["version"], json!(2));
    assert_eq!(signed(&before.1)["type"]["version"], json!(1));
    let (status, report) = send(&http, &server, "/v1/verify", "demo-operator", &signed(&before.1)).await;
    assert_eq!(
        (status, report["verdict"].clone()),
        (StatusCode::OK, json!("VALID")),
        "{report}"
    );

    // A number is the licence's own: the same authority cannot issue it twice for the type.
    let twice = send(
        &http,
        &server,
        "/v1/licences",
        "demo-authority-ed25519",
        &business_licence("CAT-1"),
    )
    .await;
    assert_eq!(
        problem_code(&twice),
        (StatusCode::CONFLICT, "licence.number_taken"),
        "{}",
        twice.1
    );
    let elsewhere = send(
        &http,
        &server,
        "/v1/licences",
        "demo-authority-p256",
        &business_licence("CAT-1"),
    )
    .await;
    assert_eq!(elsewhere.0, StatusCode::CREATED, "another issuer: {}", elsewhere.1);
}
