//! Objections over HTTP against a really started `zhengyin serve --demo`: a using department
//! disputes a licence, the issuer reviews and corrects it, verifiers are warned meanwhile.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{assert_no_server_errors, business_licence, get, send, Server, TempDir};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

async fn verify(http: &Client, server: &Server, licence: &Value) -> Value {
    send(
        http,
        server,
        &format!("/v1/verify?{}", common::PURPOSE),
        "demo-verifier",
        licence,
    )
    .await
    .1
}

#[tokio::test(flavor = "multi_thread")]
async fn a_department_objects_the_issuer_corrects_and_verifiers_are_warned_meanwhile() {
    let dir = TempDir::new("objections");
    let server = Server::start(&dir.0);
    let http = Client::new();
    let authority = "demo-authority-ed25519";
    let (status, issued) = send(&http, &server, "/v1/licences", authority, &business_licence("OBJ-1")).await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    let id = issued["id"].as_str().unwrap().to_owned();
    let licence = issued["licence"].clone();

    let objection = json!({"licence": id, "fields": ["address"], "kind": "inaccurate",
        "statement": "住所与实际经营地不符", "evidence": [{"name": "租赁合同", "reference": "案卷 2026-118"}]});
    let (status, filed) = send(&http, &server, "/v1/objections", "demo-verifier", &objection).await;
    assert_eq!(status, StatusCode::CREATED, "{filed}");
    assert_eq!(filed["state"], "filed");
    let oid = filed["objection"]["id"].as_str().unwrap().to_owned();
    let report = verify(&http, &server, &licence).await;
    assert_eq!(report["verdict"], "VALID");
    let warning = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == "objection")
        .unwrap();
    assert_eq!(warning["outcome"], "warning");
    assert!(warning["message"].as_str().unwrap().contains("address"));

    let act = |token: &'static str, body: Value| {
        let (http, server, oid) = (&http, &server, oid.clone());
        async move { send(http, server, &format!("/v1/objections/{oid}/actions"), token, &body).await }
    };
    // Refusals first: another authority, the objector reviewing, an unknown action, an illegal step.
    let (status, p) = act("demo-authority-p256", json!({"action": "accept"})).await;
    assert_eq!(
        (status, p["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("auth.scope"))
    );
    let (status, _) = act("demo-verifier", json!({"action": "accept"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, p) = act(authority, json!({"action": "approve"})).await;
    assert_eq!(
        (status, p["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("request.invalid"))
    );
    let (status, p) = act(authority, json!({"action": "reject", "reason": "数据无误"})).await;
    assert_eq!(
        (status, p["code"].as_str()),
        (StatusCode::CONFLICT, Some("objection.illegal_transition"))
    );

    for (token, body) in [
        (authority, json!({"action": "accept"})),
        (authority, json!({"action": "review"})),
        (
            authority,
            json!({"action": "request_evidence", "reason": "请提供租赁合同扫描件"}),
        ),
        ("demo-verifier", json!({"action": "supply_evidence"})),
    ] {
        let (status, o) = act(token, body.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body}: {o}");
    }
    // The correction: version 002 through the normal update path, then linked.
    let (status, updated) = send(
        &http,
        &server,
        &format!("/v1/licences/{id}/versions"),
        authority,
        &json!({"face": business_licence("OBJ-1")["face"].clone().as_object().cloned().map(|mut f| {
            f.insert("address".into(), json!("长春市示例路2号")); f }), "reason": format!("异议 {oid} 更正")}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{updated}");
    let new_id = updated["id"].as_str().unwrap();
    let (status, done) = act(authority, json!({"action": "correct", "new_version": new_id})).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["state"], "corrected");
    assert_eq!(done["objection"]["workflow"]["history"].as_array().unwrap().len(), 5);

    // The objector's notifications, a page at a time: following the cursor gives the whole list.
    let (_, all) = get(&http, &server, "/v1/notifications", "demo-verifier").await;
    let all = all["notifications"].as_array().unwrap().clone();
    assert!(all.len() >= 3, "a notification per issuer step: {all:?}");
    let paged = common::every_page(
        &http,
        &server,
        ("/v1/notifications", "notifications", None),
        "demo-verifier",
        2,
    )
    .await;
    assert_eq!(paged, all);
    for bad in ["limit=0", "limit=501"] {
        let (status, _) = get(&http, &server, &format!("/v1/notifications?{bad}"), "demo-verifier").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }

    // The objector sees the result; the issuer lists the licence's objections; others may not.
    let (status, seen) = get(&http, &server, &format!("/v1/objections/{oid}"), "demo-verifier").await;
    assert_eq!((status, seen["state"].as_str()), (StatusCode::OK, Some("corrected")));
    let (status, _) = get(&http, &server, &format!("/v1/objections/{oid}"), "demo-authority-p256").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, list) = get(&http, &server, &format!("/v1/licences/{id}/objections"), authority).await;
    assert_eq!(
        (status, list["objections"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(1))
    );
    let (status, _) = get(
        &http,
        &server,
        &format!("/v1/licences/{id}/objections"),
        "demo-verifier",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, p) = get(&http, &server, "/v1/objections/OB404", "demo-operator").await;
    assert_eq!(
        (status, p["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("objection.not_found"))
    );

    // Resolved: the warning is gone from the new version.
    let report = verify(&http, &server, &updated["licence"]).await;
    assert_eq!(report["verdict"], "VALID");
    assert!(report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["code"] != "objection"));

    // Hotline: an operator files on someone's behalf, and must say whose.
    let (status, p) = send(&http, &server, "/v1/objections", "demo-operator", &objection).await;
    assert_eq!(
        (status, p["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("request.invalid"))
    );
    let mut hotline = objection.clone();
    hotline["licence"] = json!(new_id);
    hotline["on_behalf_of"] = json!("holder:001:91350100M000100Y43");
    let (status, o) = send(&http, &server, "/v1/objections", "demo-operator", &hotline).await;
    assert_eq!(
        (status, o["objection"]["channel"].as_str()),
        (StatusCode::CREATED, Some("hotline")),
        "{o}"
    );
    let mut bad = objection.clone();
    bad["fields"] = json!(["no_such_field"]);
    let (status, _) = send(&http, &server, "/v1/objections", "demo-verifier", &bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // Oversight: nothing is overdue yet; only operators and auditors may ask; /metrics counts it.
    let (status, overdue) = get(&http, &server, "/v1/objections/overdue", "demo-operator").await;
    assert_eq!(
        (status, overdue["objections"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0))
    );
    let (status, _) = get(&http, &server, "/v1/objections/overdue", "demo-verifier").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let metrics = reqwest::get(server.at("/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("zhengyin_objections_overdue 0"), "{metrics}");
    assert_no_server_errors(&server).await;
}

/// Each caller lists the objections that concern it, a page at a time: the department its own,
/// each authority those to its licences, the operator all; `open=true` leaves closed ones out.
#[tokio::test(flavor = "multi_thread")]
async fn objections_are_listed_a_page_at_a_time_to_whom_they_concern() {
    let dir = TempDir::new("objection-listings");
    let server = Server::start(&dir.0);
    let http = Client::new();
    let mut filed = Vec::new();
    for (authority, number) in [
        ("demo-authority-ed25519", "LIST-1"),
        ("demo-authority-ed25519", "LIST-2"),
        ("demo-authority-p256", "LIST-3"),
        ("demo-authority-ed25519", "LIST-4"),
    ] {
        let (status, issued) = send(&http, &server, "/v1/licences", authority, &business_licence(number)).await;
        assert_eq!(status, StatusCode::CREATED, "{issued}");
        let objection = json!({"licence": issued["id"], "fields": [], "kind": "inaccurate", "statement": number});
        let (status, o) = send(&http, &server, "/v1/objections", "demo-verifier", &objection).await;
        assert_eq!(status, StatusCode::CREATED, "{o}");
        filed.push((authority, o["objection"]["id"].as_str().unwrap().to_owned()));
    }
    let withdrawn = &filed[1].1;
    let (status, done) = send(
        &http,
        &server,
        &format!("/v1/objections/{withdrawn}/actions"),
        "demo-verifier",
        &json!({"action": "withdraw"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{done}");

    let list = |path: &'static str, token: &'static str, limit: usize| {
        let (http, server) = (&http, &server);
        async move {
            common::every_page(http, server, (path, "objections", Some("objection")), token, limit)
                .await
                .iter()
                .map(|o| o["objection"]["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    let ids = |keep: &dyn Fn(&(&str, String)) -> bool| {
        filed
            .iter()
            .filter(|f| keep(f))
            .map(|f| f.1.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(list("/v1/objections", "demo-verifier", 1).await, ids(&|_| true));
    assert_eq!(
        list("/v1/objections?open=true", "demo-verifier", 2).await,
        ids(&|f| f.1 != *withdrawn),
        "a withdrawn objection is not open"
    );
    assert_eq!(
        list("/v1/objections", "demo-authority-ed25519", 2).await,
        ids(&|f| f.0 == "demo-authority-ed25519")
    );
    assert_eq!(
        list("/v1/objections?open=true", "demo-authority-p256", 1).await,
        ids(&|f| f.0 == "demo-authority-p256")
    );
    assert_eq!(list("/v1/objections", "demo-operator", 3).await, ids(&|_| true));
    for bad in ["limit=0", "limit=501"] {
        let (status, p) = get(&http, &server, &format!("/v1/objections?{bad}"), "demo-operator").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {p}");
    }
    assert_no_server_errors(&server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_holder_signs_in_objects_to_its_own_licence_and_withdraws() {
    let dir = TempDir::new("objections-holder");
    let server = Server::start(&dir.0);
    let http = Client::new();
    let (status, issued) = send(
        &http,
        &server,
        "/v1/licences",
        "demo-authority-ed25519",
        &business_licence("OBJ-H1"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    let id = issued["id"].as_str().unwrap().to_owned();
    let me = common::holder_token("91350100M000100Y43");
    let objection = json!({"licence": id, "fields": ["address"], "kind": "inaccurate", "statement": "住所已变更"});
    // Someone else cannot object to this holder's licence as a holder.
    let (status, p) = send(
        &http,
        &server,
        "/v1/objections",
        &common::holder_token("91110000600037341L"),
        &objection,
    )
    .await;
    assert_eq!(
        (status, p["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("auth.scope")),
        "{p}"
    );
    let (status, filed) = send(&http, &server, "/v1/objections", &me, &objection).await;
    assert_eq!(status, StatusCode::CREATED, "{filed}");
    assert_eq!(filed["objection"]["objector"], "holder:001:91350100M000100Y43");
    let oid = filed["objection"]["id"].as_str().unwrap().to_owned();
    let (status, _) = get(&http, &server, &format!("/v1/objections/{oid}"), &me).await;
    assert_eq!(status, StatusCode::OK);
    let (status, p) = get(&http, &server, &format!("/v1/objections/{oid}"), "demo-verifier").await;
    assert_eq!(
        (status, p["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("auth.scope"))
    );
    let (status, withdrawn) = send(
        &http,
        &server,
        &format!("/v1/objections/{oid}/actions"),
        &me,
        &json!({"action": "withdraw", "reason": "已自行办理变更"}),
    )
    .await;
    assert_eq!(
        (status, withdrawn["state"].as_str()),
        (StatusCode::OK, Some("withdrawn")),
        "{withdrawn}"
    );
}

type Received = tokio::sync::mpsc::UnboundedReceiver<(std::collections::HashMap<String, String>, Vec<u8>)>;

/// A webhook receiver on loopback: refuses its first request (500), accepts the rest; hands
/// over each request's headers (lower-case) and body.
async fn webhook_receiver() -> (String, Received) {
    let accept = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    webhook_receiver_with(accept, true).await
}

/// A webhook receiver that answers 500 while `accept` is false (and, with `after_first`, accepts
/// everything after the first request anyway).
async fn webhook_receiver_with(
    accept: std::sync::Arc<std::sync::atomic::AtomicBool>,
    after_first: bool,
) -> (String, Received) {
    receiver(accept, after_first, false).await
}

/// The receiver behind the two above; with `hang_first`, the first request gets no answer at all.
async fn receiver(
    accept: std::sync::Arc<std::sync::atomic::AtomicBool>,
    after_first: bool,
    hang_first: bool,
) -> (String, Received) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        for n in 0.. {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let head_end = loop {
                let read = stream.read(&mut chunk).await.unwrap_or(0);
                if read == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..read]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break Some(i + 4);
                }
            };
            let Some(head_end) = head_end else { continue };
            let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
            let headers: std::collections::HashMap<String, String> = head
                .lines()
                .skip(1)
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                .collect();
            let length: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
            while buf.len() < head_end + length {
                let read = stream.read(&mut chunk).await.unwrap_or(0);
                if read == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..read]);
            }
            let body = buf[head_end..].to_vec();
            if hang_first && n == 0 {
                // Never answer: the node must time out and retry. Keep the socket open.
                let _ = tx.send((headers, body));
                tokio::spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                    drop(stream);
                });
                continue;
            }
            let taken = accept.load(std::sync::atomic::Ordering::SeqCst) || (after_first && n > 0);
            let status = if taken { "200 OK" } else { "500 Internal Server Error" };
            let _ = stream
                .write_all(format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").as_bytes())
                .await;
            let _ = tx.send((headers, body));
        }
    });
    (url, rx)
}

/// A demo node in `dir` that pushes the demo department's notifications to `hook`: its
/// command line, the node, and the id of an objection the department filed and the issuer
/// accepted (so one notification is on its way).
async fn node_with_webhook(dir: &TempDir, hook: &str, number: &str) -> (Vec<String>, Server, String) {
    let keys = common::root().join("keys-example");
    let args: Vec<String> = [
        "serve",
        "--demo",
        "--keys-dir",
        keys.to_str().unwrap(),
        "--data-dir",
        dir.0.join("data").to_str().unwrap(),
        "--webhook",
        &format!("示例审批系统={hook}"),
    ]
    .iter()
    .map(|a| (*a).to_owned())
    .collect();
    let server = Server::start_with(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let http = Client::new();
    let authority = "demo-authority-ed25519";
    let (_, issued) = send(&http, &server, "/v1/licences", authority, &business_licence(number)).await;
    let id = issued["id"].as_str().unwrap().to_owned();
    let (status, filed) = send(
        &http,
        &server,
        "/v1/objections",
        "demo-verifier",
        &json!({"licence": id, "fields": ["address"], "kind": "inaccurate", "statement": "住所有误"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{filed}");
    let oid = filed["objection"]["id"].as_str().unwrap().to_owned();
    let (status, _) = send(
        &http,
        &server,
        &format!("/v1/objections/{oid}/actions"),
        authority,
        &json!({"action": "accept", "reason": "属本机关职责"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    (args, server, oid)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_objector_is_told_each_outcome_by_a_signed_webhook_retried_until_taken() {
    let (hook, mut received) = webhook_receiver().await;
    let dir = TempDir::new("objections-webhook");
    let (_, server, oid) = node_with_webhook(&dir, &hook, "OBJ-W1").await;
    let http = Client::new();

    // Refused once (500), then retried with the same idempotency key and taken.
    let wait = std::time::Duration::from_secs(20);
    let (first_headers, first_body) = tokio::time::timeout(wait, received.recv()).await.unwrap().unwrap();
    let (second_headers, second_body) = tokio::time::timeout(wait, received.recv()).await.unwrap().unwrap();
    assert_eq!(first_body, second_body);
    let key = &first_headers["zhengyin-idempotency-key"];
    assert!(key.starts_with("NT"));
    assert_eq!(&second_headers["zhengyin-idempotency-key"], key);
    let notification: Value = serde_json::from_slice(&second_body).unwrap();
    assert_eq!(
        (
            notification["objection"].as_str(),
            notification["action"].as_str(),
            notification["state"].as_str()
        ),
        (Some(oid.as_str()), Some("accept"), Some("accepted"))
    );
    assert_eq!(notification["reason"], "属本机关职责");
    // The signature is the node's token key over the exact body.
    let (_, published) = get(&http, &server, "/v1/token-key", "demo-verifier").await;
    assert_eq!(
        second_headers["zhengyin-key"],
        published["verification_method"].as_str().unwrap()
    );
    let der = zhengyin_crypto::pem::decode_label(published["public_key_pem"].as_str().unwrap(), "PUBLIC KEY").unwrap();
    let public = zhengyin_crypto::PublicKey::from_spki_der(&der[0]).unwrap();
    use base64::Engine as _;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(&second_headers["zhengyin-signature"])
        .unwrap();
    public
        .verify(zhengyin_crypto::SignatureScheme::Ed25519, &second_body, &signature)
        .unwrap();
    assert!(public
        .verify(zhengyin_crypto::SignatureScheme::Ed25519, b"{}", &signature)
        .is_err());
    // Taken: no more attempts. And the department can list it.
    assert!(tokio::time::timeout(std::time::Duration::from_secs(3), received.recv())
        .await
        .is_err());
    let (status, list) = get(&http, &server, "/v1/notifications", "demo-verifier").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["notifications"][0]["id"], key.as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_notification_queued_before_a_crash_is_delivered_after_the_restart_with_the_same_key() {
    let accept = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (hook, mut received) = webhook_receiver_with(std::sync::Arc::clone(&accept), false).await;
    let dir = TempDir::new("objections-restart");
    let (args, server, oid) = node_with_webhook(&dir, &hook, "OBJ-R1").await;
    let http = Client::new();
    // The receiver is down (500); the node crashes after trying.
    let wait = std::time::Duration::from_secs(20);
    let (refused, _) = tokio::time::timeout(wait, received.recv()).await.unwrap().unwrap();
    let key = refused["zhengyin-idempotency-key"].clone();
    server.kill();
    while received.try_recv().is_ok() {}

    // Restarted, with the receiver up: delivered, same key, and once taken never again.
    accept.store(true, std::sync::atomic::Ordering::SeqCst);
    let server = Server::start_with(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let (delivered, body) = tokio::time::timeout(wait, received.recv()).await.unwrap().unwrap();
    assert_eq!(delivered["zhengyin-idempotency-key"], key);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["objection"],
        oid.as_str()
    );
    assert!(tokio::time::timeout(std::time::Duration::from_secs(3), received.recv())
        .await
        .is_err());
    let (_, list) = get(&http, &server, "/v1/notifications", "demo-verifier").await;
    assert_eq!(list["notifications"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_that_never_answers_is_timed_out_and_retried() {
    let accept = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (hook, mut received) = receiver(accept, true, true).await;
    let dir = TempDir::new("objections-timeout");
    let (_args, _server, _oid) = node_with_webhook(&dir, &hook, "OBJ-T1").await;
    // First attempt: no answer (the node gives up after 10 s); then retried and taken.
    let wait = std::time::Duration::from_secs(30);
    let (first, _) = tokio::time::timeout(wait, received.recv()).await.unwrap().unwrap();
    let (second, _) = tokio::time::timeout(wait, received.recv()).await.unwrap().unwrap();
    assert_eq!(first["zhengyin-idempotency-key"], second["zhengyin-idempotency-key"]);
}
