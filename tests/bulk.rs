//! Bulk issuance over HTTP on a really started node (on each backend): a batch of 1,000 answers
//! one result per request in order, refuses bad items alone with their reasons, and every licence
//! it acknowledged is stored, logged and verifies; 10,000 in concurrent batches are each logged once
//! and the log audits OK.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{
    assert_no_server_errors, audit, business_licence, get_json, log_size, log_verifier_key, send, wait_for_checkpoint,
    Server, TempDir,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;

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

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_licences_in_concurrent_batches_are_each_issued_once_and_the_log_audits() {
    let dir = TempDir::new("bulk-10k");
    let server = Server::start(&dir.0);
    let http = reqwest::Client::new();
    let before = log_size(&http, &server).await;

    // Ten batches of 1,000, four in flight at a time, as `zhengyin import` sends them.
    let in_flight = Arc::new(tokio::sync::Semaphore::new(4));
    let mut batches = tokio::task::JoinSet::new();
    for b in 0..10 {
        let (http, url, in_flight) = (http.clone(), server.at("/v1/licences/batch"), in_flight.clone());
        batches.spawn(async move {
            let _turn = in_flight.acquire_owned().await.unwrap();
            let licences: Vec<Value> = (0..1000)
                .map(|i| business_licence(&format!("TENK-{b}-{i:03}")))
                .collect();
            let r = http
                .post(url)
                .bearer_auth(AUTHORITY)
                .json(&json!({ "licences": licences }))
                .send()
                .await
                .unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        });
    }
    let batches = batches.join_all().await;
    let mut indices = Vec::new();
    for (status, answer) in &batches {
        assert_eq!(*status, StatusCode::OK, "{answer}");
        for result in answer["results"].as_array().unwrap() {
            assert!(result["id"].is_string(), "{result}");
            indices.push(result["log_index"].as_u64().unwrap());
        }
    }
    indices.sort_unstable();
    indices.dedup();
    assert_eq!(indices.len(), 10_000, "one log entry each");
    assert!(indices[0] >= before);

    // The published log holds all of them, and an auditor replaying it finds it consistent.
    let last = *indices.last().unwrap();
    wait_for_checkpoint(&http, &server, last + 1).await;
    let key = log_verifier_key(&http, &server).await;
    let (code, report) = audit(&server, &key, &dir.0.join("audit.json"));
    assert_eq!(code, 0, "{report}");
    assert_no_server_errors(&server).await;
}
