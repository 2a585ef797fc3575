//! Bulk issuance over HTTP on a really started node (on each backend): a batch of 1,000 answers
//! one result per request in order, refuses bad items alone with their reasons, and every licence
//! it acknowledged is stored, logged and verifies.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{business_licence, get_json, log_size, send, Server, TempDir};
use reqwest::StatusCode;
use serde_json::{json, Value};

const AUTHORITY: &str = "demo-authority-ed25519";

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_issues_every_good_request_and_refuses_each_bad_one_alone() {
    let dir = TempDir::new("bulk");
    let server = Server::start(&dir.0);
    let http = reqwest::Client::new();

    let mut licences: Vec<Value> = (0..1000).map(|i| business_licence(&format!("BULK-{i:04}"))).collect();
    licences[3].as_object_mut().unwrap().remove("holder");
    licences[5]["number"] = json!("BULK-0004");
    licences[7]["face"]["established"] = json!("2023-02-29");
    licences[9]["holder"]["code"] = json!("91350100M000100Y44");
    let (status, answer) = send(
        &http,
        &server,
        "/v1/licences/batch",
        AUTHORITY,
        &json!({ "licences": licences }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results.len(), 1000);
    let refused: Vec<(usize, &str)> = results
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r["code"].as_str().map(|code| (i, code)))
        .collect();
    assert_eq!(
        refused,
        [
            (3, "request.invalid"),
            (5, "licence.number_taken"),
            (7, "face.invalid"),
            (9, "identifier.invalid")
        ],
        "each bad request is refused alone, with its reason"
    );
    assert!(results[5]["request_id"].is_string() && results[5]["status"] == 409);

    // Every acknowledged licence is stored as answered, logged once, and verifies.
    let issued: Vec<&Value> = results.iter().filter(|r| r["id"].is_string()).collect();
    assert_eq!(issued.len(), 996);
    let mut indices: Vec<u64> = issued.iter().map(|r| r["log_index"].as_u64().unwrap()).collect();
    indices.sort_unstable();
    indices.dedup();
    assert_eq!(indices.len(), 996, "one log entry each");
    for (i, result) in results
        .iter()
        .enumerate()
        .step_by(97)
        .filter(|(_, r)| r["id"].is_string())
    {
        assert_eq!(result["licence"]["number"], json!(format!("BULK-{i:04}")), "in order");
        let stored = get_json(
            &http,
            &server,
            &format!("/v1/licences/{}", result["id"].as_str().unwrap()),
            AUTHORITY,
        )
        .await;
        assert_eq!(stored, result["licence"]);
        let (status, report) = send(&http, &server, "/v1/verify", "demo-operator", &stored).await;
        assert_eq!(
            (status, report["verdict"].clone()),
            (StatusCode::OK, json!("VALID")),
            "{report}"
        );
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while log_size(&http, &server).await <= *indices.last().unwrap() {
        assert!(std::time::Instant::now() < deadline, "no checkpoint covers the batch");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // Whole-request refusals: the wrong role, too many, none.
    let one = json!({"licences": [business_licence("BULK-X")]});
    let (status, body) = send(&http, &server, "/v1/licences/batch", "demo-verifier", &one).await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::FORBIDDEN, json!("auth.forbidden"))
    );
    let many: Vec<Value> = (0..1001).map(|i| business_licence(&format!("BULK-M{i}"))).collect();
    let (status, body) = send(
        &http,
        &server,
        "/v1/licences/batch",
        AUTHORITY,
        &json!({ "licences": many }),
    )
    .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("licence.batch_too_large"))
    );
    let (status, body) = send(
        &http,
        &server,
        "/v1/licences/batch",
        AUTHORITY,
        &json!({"licences": []}),
    )
    .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("licence.batch_too_large"))
    );
}
