//! Sync between nodes, end to end: two cities and a province, each a separate `zhengyin`
//! process on loopback. Every wait is a bounded poll; latencies are printed, not asserted
//! (benches/sync.sh measures them).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::nodes::*;
use common::{business_licence, get, root, send, Server, TempDir};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

const CITY_A: &str = "zhengyin.example/city-220100";
const CITY_B: &str = "zhengyin.example/city-220200";

/// How many of `city`'s entries a province applies: licence and authority events.
async fn licence_events(http: &Client, city: &Node) -> usize {
    common::log_entries(http, city.server())
        .await
        .iter()
        .filter(|e| {
            e["event"]
                .as_str()
                .is_some_and(|e| e.starts_with("licence.") || e == "authority.registered")
        })
        .count()
}

/// What a province holds: every licence with its status, and the (origin, index) of every
/// entry it applied — each exactly once.
async fn holdings(http: &Client, node: &Node, ids: &[String]) -> (Vec<(String, Value)>, BTreeSet<(String, u64)>) {
    let mut licences = Vec::new();
    for id in ids {
        let (status, body) = get(
            http,
            node.server(),
            &format!("/v1/licences/{id}/status"),
            "demo-operator",
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{id}: {body}");
        licences.push((id.clone(), body));
    }
    let mut applied = BTreeSet::new();
    for e in common::log_entries(http, node.server()).await {
        if e["event"] == "sync.applied" {
            let key = (e["origin"].as_str().unwrap().to_owned(), e["index"].as_u64().unwrap());
            assert!(applied.insert(key.clone()), "{key:?} applied twice");
        }
    }
    (licences, applied)
}

#[tokio::test(flavor = "multi_thread")]
async fn licences_issued_and_revoked_in_two_cities_are_verified_at_the_province() {
    let dir = TempDir::new("sync-two-cities");
    let http = Client::new();
    let a = Node::city(&dir, "a", CITY_A, "ed25519,p256");
    let b = Node::city(&dir, "b", CITY_B, "rsa2048,sm2");
    let province = Node::province(&dir, "p", &[(CITY_A, &a.url()), (CITY_B, &b.url())], &[]);

    let (id_a, licence_a) = issue(&http, &a, "ed25519", "JL-SYNC-A").await;
    let (id_b, licence_b) = issue(&http, &b, "sm2", "JL-SYNC-B").await;
    let arrived = until_verdict(&http, &province, &licence_a, "VALID", Duration::from_secs(30)).await;
    until_verdict(&http, &province, &licence_b, "VALID", Duration::from_secs(30)).await;
    eprintln!("issue → VALID at the province: {arrived:?}");
    let report = verify(&http, &province, &licence_b, true).await;
    assert!(
        report["status_source"]
            .as_str()
            .unwrap()
            .starts_with(&format!("source {CITY_B} as of its checkpoint")),
        "{report}"
    );

    // The one interface at the province covers the cities' licences too.
    let (status, grant) = send(
        &http,
        province.server(),
        "/v1/grants",
        "demo-verifier",
        &json!({
            "type_code": "11100000000013338W032", "fields": ["company_name"], "service_items": ["220100-FOOD-001"],
            "purpose": "跨地区通办", "until": zhengyin_model::licence::format_time(time::OffsetDateTime::now_utc() + time::Duration::days(30))
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{grant}");
    let grant = grant["id"].as_str().unwrap();
    let (status, body) = send(
        &http,
        province.server(),
        &format!("/v1/grants/{grant}/approve"),
        "demo-operator",
        &json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, found) = send(
        &http,
        province.server(),
        "/v1/licence-types/11100000000013338W032/lookup",
        "demo-verifier",
        &json!({"id": id_b, "service_item": "220100-FOOD-001", "use_cause": "跨地区核验"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(
        found["licences"][0]["face"]["company_name"], "吉林示例科技有限公司",
        "{found}"
    );

    // What a city serves its province: objects by range, for node tokens only.
    let (status, objects) = get(&http, a.server(), "/v1/sync/objects?start=0&end=1000", "demo-node").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        objects["objects"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["licence"].is_string()),
        "{objects}"
    );
    let (status, _) = get(&http, a.server(), "/v1/sync/objects?start=0&end=10", "demo-verifier").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, problem) = get(&http, a.server(), "/v1/sync/objects?start=9&end=1", "demo-node").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");

    // Revocations propagate; the province never changes a city's licence itself.
    let (status, body) = send(
        &http,
        province.server(),
        &format!("/v1/licences/{id_a}/revoke"),
        "demo-authority-ed25519",
        &json!({"reason": "吊销", "note": "不应在省级节点吊销"}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("sync.replicated")),
        "{body}"
    );
    revoke(&http, &a, "ed25519", &id_a).await;
    let propagated = until_verdict(&http, &province, &licence_a, "INVALID", Duration::from_secs(30)).await;
    eprintln!("revocation → INVALID at the province: {propagated:?}");
    let report = verify(&http, &province, &licence_a, true).await;
    let status = common::report_check(&report, "status");
    assert_eq!(status["message"], "revoked, withdrawn (吊销): 违法经营", "{report}");
    revoke(&http, &b, "sm2", &id_b).await;
    until_verdict(&http, &province, &licence_b, "INVALID", Duration::from_secs(30)).await;

    // The operator view and its CLI.
    for origin in [CITY_A, CITY_B] {
        let s = until_source(&http, &province, origin, |s| s["lag_entries"] == 0).await;
        assert_eq!(s["state"], "syncing", "{s}");
    }
    let out = std::process::Command::new(common::binary())
        .args(["sync", "status", "--url", &province.url(), "--token", "demo-operator"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(CITY_A) && text.contains(CITY_B) && text.contains("syncing"),
        "{text}"
    );
    let metrics = reqwest::get(province.server().at("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!("zhengyin_sync_open_incidents{{origin=\"{CITY_A}\"}} 0")),
        "{metrics}"
    );
    common::assert_no_server_errors(province.server()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_province_killed_mid_sync_resumes_without_losing_or_repeating_an_entry() {
    let dir = TempDir::new("sync-crash");
    let http = Client::new();
    let a = Node::city(&dir, "a", CITY_A, "ed25519");
    let mut ids = Vec::new();
    for n in 0..200 {
        ids.push(issue(&http, &a, "ed25519", &format!("JL-CRASH-{n}")).await.0);
    }
    for id in ids.iter().step_by(7) {
        revoke(&http, &a, "ed25519", id).await;
    }
    tokio::time::sleep(Duration::from_millis(1200)).await; // the city's next checkpoint
    let size = common::log_size(&http, a.server()).await;

    // Pages of 5 entries; the city's proxy holds the 10th page's objects, and the province is
    // killed while it waits: mid-sync, with 45 entries applied.
    let control = Arc::new(Control::default());
    control.hold_objects_after.store(9, Ordering::SeqCst);
    let proxy = proxy(a.url(), Arc::clone(&control)).await;
    let mut province = Node::province(&dir, "p", &[(CITY_A, &proxy)], &["--sync-page-size", "5"]);
    until_source(&http, &province, CITY_A, |s| s["applied"] == 45).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        source(&http, &province, CITY_A).await["applied"],
        45,
        "held at the 10th page"
    );
    province.kill();
    control.release.store(true, Ordering::SeqCst);
    province.restart();
    until_source(&http, &province, CITY_A, |s| s["applied"] == size).await;

    // Equal to a province that synced in one go.
    let fresh = Node::province(&dir, "q", &[(CITY_A, &a.url())], &[]);
    until_source(&http, &fresh, CITY_A, |s| s["applied"] == size).await;
    let after_crash = holdings(&http, &province, &ids).await;
    assert_eq!(after_crash, holdings(&http, &fresh, &ids).await);
    let relevant = licence_events(&http, &a).await;
    assert_eq!(
        after_crash.1.len(),
        relevant,
        "every licence event applied exactly once"
    );
    common::assert_no_server_errors(province.server()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn while_a_city_is_down_its_status_goes_stale_then_the_province_catches_up() {
    let dir = TempDir::new("sync-stale");
    let http = Client::new();
    let mut a = Node::city(&dir, "a", CITY_A, "ed25519");
    let province = Node::province(&dir, "p", &[(CITY_A, &a.url())], &["--max-staleness-seconds", "2"]);
    let (_, licence) = issue(&http, &a, "ed25519", "JL-STALE-1").await;
    until_verdict(&http, &province, &licence, "VALID", Duration::from_secs(30)).await;

    a.kill();
    let stale = until_verdict(&http, &province, &licence, "INDETERMINATE", Duration::from_secs(30)).await;
    eprintln!("city down → INDETERMINATE (fresh status required, maximum 2 s): {stale:?}");
    let report = verify(&http, &province, &licence, true).await;
    let freshness = common::report_check(&report, "status_freshness");
    assert_eq!(freshness["outcome"], "indeterminate", "{report}");
    let relaxed = verify(&http, &province, &licence, false).await;
    assert_eq!(
        relaxed["verdict"], "VALID",
        "without fresh=true a warning only: {relaxed}"
    );
    let down = source(&http, &province, CITY_A).await;
    assert_eq!(down["state"], "failing", "{down}");
    assert!(down["last_error"].as_str().unwrap().contains("unreachable"), "{down}");

    // Down long enough for the province's back-off to grow past several seconds; it probes the
    // city meanwhile and follows it again as soon as it answers.
    tokio::time::sleep(Duration::from_secs(6)).await;
    a.restart();
    let (_, later) = issue(&http, &a, "ed25519", "JL-STALE-2").await;
    let caught_up = until_verdict(&http, &province, &later, "VALID", Duration::from_secs(60)).await;
    eprintln!("city back after ~9 s down → a licence it issued then VALID at the province after {caught_up:?}");
    until_verdict(&http, &province, &licence, "VALID", Duration::from_secs(30)).await;
    common::assert_no_server_errors(province.server()).await;
}

/// How the proxy in front of a city misbehaves.
#[derive(Default)]
struct Control {
    /// Rewrite the first entry of every page of entries: what a province would see of a city
    /// whose store was altered.
    tamper: AtomicBool,
    /// Hold every objects request after this many (0: never) until `release`.
    hold_objects_after: AtomicUsize,
    objects_served: AtomicUsize,
    release: AtomicBool,
}

/// A proxy in front of `city`, misbehaving as `control` says; its URL.
async fn proxy(city: String, control: Arc<Control>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let http = Client::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            let (http, city, control) = (http.clone(), city.clone(), Arc::clone(&control));
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).await.unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let Some(path) = head.split_whitespace().nth(1).map(str::to_owned) else {
                    return;
                };
                if path.starts_with("/v1/sync/objects") {
                    let served = control.objects_served.fetch_add(1, Ordering::SeqCst) + 1;
                    let hold = control.hold_objects_after.load(Ordering::SeqCst);
                    let started = Instant::now();
                    while hold > 0 && served > hold && !control.release.load(Ordering::SeqCst) {
                        if started.elapsed() > Duration::from_secs(60) {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                let token = head
                    .lines()
                    .find_map(|l| l.strip_prefix("authorization: ").or(l.strip_prefix("Authorization: ")))
                    .unwrap_or_default()
                    .to_owned();
                let Ok(answer) = http
                    .get(format!("{city}{path}"))
                    .header("authorization", token)
                    .send()
                    .await
                else {
                    return;
                };
                let status = answer.status();
                let mut body = answer.bytes().await.unwrap_or_default().to_vec();
                if path.starts_with("/v1/log/entries") && control.tamper.load(Ordering::SeqCst) {
                    let mut page: Value = serde_json::from_slice(&body).unwrap();
                    if let Some(first) = page["entries"].get_mut(0) {
                        let b64 = base64::engine::general_purpose::STANDARD;
                        let entry = String::from_utf8(b64.decode(first.as_str().unwrap()).unwrap()).unwrap();
                        *first = Value::String(b64.encode(entry.replacen("licence", "1icence", 1)));
                    }
                    body = serde_json::to_vec(&page).unwrap();
                }
                let head = format!(
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&body).await;
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tampered_city_is_stopped_with_an_incident_while_the_other_keeps_syncing() {
    let dir = TempDir::new("sync-tamper");
    let http = Client::new();
    let a = Node::city(&dir, "a", CITY_A, "ed25519");
    let b = Node::city(&dir, "b", CITY_B, "sm2");
    let control = Arc::new(Control::default());
    let proxy = proxy(a.url(), Arc::clone(&control)).await;
    let province = Node::province(&dir, "p", &[(CITY_A, &proxy), (CITY_B, &b.url())], &[]);
    let (_, honest) = issue(&http, &a, "ed25519", "JL-TAMPER-1").await;
    until_verdict(&http, &province, &honest, "VALID", Duration::from_secs(30)).await;

    control.tamper.store(true, Ordering::SeqCst);
    let (_, unseen) = issue(&http, &a, "ed25519", "JL-TAMPER-2").await;
    let halted = until_source(&http, &province, CITY_A, |s| s["state"] == "halted").await;
    let (status, incidents) = get(&http, province.server(), "/v1/sync/incidents", "demo-auditor").await;
    assert_eq!(status, StatusCode::OK);
    let incident = &incidents["incidents"][0];
    assert_eq!(
        (incident["kind"].as_str(), incident["origin"].as_str()),
        (Some("entries_mismatch"), Some(CITY_A)),
        "{incidents}"
    );
    assert_eq!(halted["open_incidents"][0], incident["id"]);
    assert_eq!(incident["evidence"].as_array().unwrap().len(), 2, "{incident}");
    // Halted, what city A changed since is not known here: fresh status is in doubt at once, and
    // an answer without `fresh` warns, naming the incident.
    let doubtful = verify(&http, &province, &honest, true).await;
    assert_eq!(doubtful["verdict"], "INDETERMINATE", "{doubtful}");
    let relaxed = verify(&http, &province, &honest, false).await;
    assert_eq!(relaxed["verdict"], "VALID", "{relaxed}");
    let incident_id = incident["id"].as_str().unwrap();
    assert!(
        relaxed["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["code"] == "status_freshness"
                && c["outcome"] == "warning"
                && c["message"].as_str().is_some_and(|m| m.contains(incident_id))),
        "{relaxed}"
    );
    assert_eq!(
        verify(&http, &province, &unseen, true).await["verdict"],
        "INDETERMINATE",
        "never applied"
    );

    // The other city is untouched.
    let (_, other) = issue(&http, &b, "sm2", "JL-TAMPER-B").await;
    until_verdict(&http, &province, &other, "VALID", Duration::from_secs(30)).await;
    let out = std::process::Command::new(common::binary())
        .args(["sync", "status", "--url", &province.url(), "--token", "demo-operator"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("INCIDENTS {incident_id}")),
        "plain text, no debug form: {text}"
    );
    let out = std::process::Command::new(common::binary())
        .args([
            "sync",
            "status",
            "--url",
            &province.url(),
            "--token",
            "demo-operator",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let sources: Value = serde_json::from_slice(&out.stdout).unwrap();
    let halted_a = sources["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["origin"] == CITY_A)
        .unwrap();
    assert_eq!(halted_a["open_incidents"][0], incident_id, "{sources}");

    // Only an operator resolves it; then sync resumes and the honest city's licence arrives.
    let id = incident["id"].as_str().unwrap();
    let path = format!("/v1/sync/incidents/{id}/resolve");
    let (status, _) = send(&http, province.server(), &path, "demo-auditor", &json!({"note": "x"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    control.tamper.store(false, Ordering::SeqCst);
    let (status, resolved) = send(
        &http,
        province.server(),
        &path,
        "demo-operator",
        &json!({"note": "城市节点代理故障已排除"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{resolved}");
    // Listed still, a page at a time, but no longer among the open ones.
    let listed = common::every_page(
        &http,
        province.server(),
        ("/v1/sync/incidents", "incidents", None),
        "demo-auditor",
        1,
    )
    .await;
    assert_eq!(listed.iter().filter(|i| i["id"] == id).count(), 1);
    let (_, open) = get(&http, province.server(), "/v1/sync/incidents?open=true", "demo-auditor").await;
    assert!(
        open["incidents"].as_array().unwrap().iter().all(|i| i["id"] != id),
        "{open}"
    );
    let (status, _) = get(&http, province.server(), "/v1/sync/incidents?limit=0", "demo-auditor").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    until_verdict(&http, &province, &unseen, "VALID", Duration::from_secs(30)).await;
    common::assert_no_server_errors(province.server()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_province_configured_by_file_follows_its_source_and_a_bad_source_is_refused_at_start() {
    let dir = TempDir::new("sync-config");
    let http = Client::new();
    let a = Node::city(&dir, "a", CITY_A, "ed25519");
    // The city's verifier key, as its operators would hand it over out of band.
    let (_, key) = get(&http, a.server(), "/v1/log/key", "demo-auditor").await;
    let key = key["verifier_key"].as_str().unwrap().to_owned();
    let keys = root().join("keys-example");
    std::fs::copy(keys.join("root-ca.pem"), dir.0.join("roots.pem")).unwrap();
    std::fs::copy(keys.join("log-ed25519.key"), dir.0.join("log.key")).unwrap();
    std::fs::write(dir.0.join("city-a.token"), "demo-node\n").unwrap();
    let operator = zhengyin_crypto::hash::sha256_hex(b"province-operator");
    let config = |log_key: &str, token_file: &str| {
        format!(
            "data_dir = \"p\"\ntrust_anchors = \"roots.pem\"\nlog_key = \"log.key\"\nlog_origin = \"{PROVINCE}\"\n\n\
             [[tokens]]\nname = \"op\"\nsha256 = \"{operator}\"\nrole = \"operator\"\n\n\
             [sync]\nmax_staleness_seconds = 60\npoll_interval_ms = 200\npage_size = 100\n\n\
             [[sync.sources]]\norigin = \"{CITY_A}\"\nurl = \"{}\"\nlog_key = \"{log_key}\"\n\
             trust_anchors = \"roots.pem\"\ntoken_file = \"{token_file}\"\n",
            a.url()
        )
    };
    let path = dir.0.join("province.toml");
    std::fs::write(&path, config(&key, "city-a.token")).unwrap();
    let province = Server::start_with(&["serve", "--config", path.to_str().unwrap()]);
    let (id, _) = issue(&http, &a, "ed25519", "JL-CONFIG-1").await;
    let started = Instant::now();
    loop {
        let (status, body) = get(
            &http,
            &province,
            &format!("/v1/licences/{id}/status"),
            "province-operator",
        )
        .await;
        if status == StatusCode::OK {
            assert_eq!(body["state"], "valid", "{body}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{status} {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(province);

    for (bad, why) in [
        (config("not-a-key", "city-a.token"), "the log key of"),
        (config(&key, "missing.token"), "reading the token of"),
    ] {
        std::fs::write(&path, bad).unwrap();
        let out = std::process::Command::new(common::binary())
            .args(["serve", "--config", path.to_str().unwrap(), "--listen", "127.0.0.1:0"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(why), "{stderr}");
    }
}

/// A province run as two frontends of one database (PostgreSQL pass only): one follows the city
/// at a time (the source's lease), the other answers as fresh from the shared cursor, and when the
/// one following is killed the other takes over.
#[tokio::test(flavor = "multi_thread")]
async fn a_province_of_two_frontends_follows_a_city_once_and_survives_losing_one() {
    if !common::postgres() {
        eprintln!("two frontends need a shared database: PostgreSQL pass only");
        return;
    }
    let dir = TempDir::new("sync-two-frontends");
    let http = Client::new();
    let a = Node::city(&dir, "a", CITY_A, "ed25519");
    let stale_after = ["--max-staleness-seconds", "3"];
    let mut first = Node::province(&dir, "p", &[(CITY_A, &a.url())], &stale_after);
    let second = Node::province(&dir, "p", &[(CITY_A, &a.url())], &stale_after);

    let (id, licence) = issue(&http, &a, "ed25519", "JL-SYNC-2F-1").await;
    for p in [&first, &second] {
        until_verdict(&http, p, &licence, "VALID", Duration::from_secs(30)).await;
    }
    // Longer than the staleness bound: the frontend that does not follow stays fresh too.
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        for p in [&first, &second] {
            let report = verify(&http, p, &licence, true).await;
            assert_eq!(report["verdict"], "VALID", "{report}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for p in [&first, &second] {
        let s = source(&http, p, CITY_A).await;
        assert!(s["last_error"].is_null(), "no frontend raced the other: {s}");
    }

    revoke(&http, &a, "ed25519", &id).await;
    for p in [&first, &second] {
        until_verdict(&http, p, &licence, "INVALID", Duration::from_secs(30)).await;
    }

    first.kill();
    let (_, later) = issue(&http, &a, "ed25519", "JL-SYNC-2F-2").await;
    let taken_over = until_verdict(&http, &second, &later, "VALID", Duration::from_secs(60)).await;
    eprintln!("the other frontend took over following the city in {taken_over:?}");
    let size = common::log_size(&http, a.server()).await;
    until_source(&http, &second, CITY_A, |s| s["applied"] == size).await;
    let (_, applied) = holdings(&http, &second, &[]).await;
    let relevant = licence_events(&http, &a).await;
    assert_eq!(applied.len(), relevant, "every licence event applied exactly once");
    common::assert_no_server_errors(second.server()).await;
}

/// A city's claim on another city's authority: skipped at the province (a `conflict` incident,
/// B's other licences go on), the operator's decision logged; with the province's ownership map,
/// the city refuses such a registration itself.
#[tokio::test(flavor = "multi_thread")]
async fn a_claim_on_another_citys_authority_is_a_conflict_at_the_province_and_refused_at_the_city() {
    let dir = TempDir::new("sync-conflict");
    let http = Client::new();
    let a = Node::city(&dir, "a", CITY_A, "ed25519");
    // The province learns A's authorities first.
    let mut first = Node::province(&dir, "p", &[(CITY_A, &a.url())], &[]);
    let (_, from_a) = issue(&http, &a, "ed25519", "JL-OWN-A").await;
    until_verdict(&http, &first, &from_a, "VALID", Duration::from_secs(30)).await;
    first.kill();
    // City B, without a map yet, registers A's authority next to its own.
    let mut b = Node::city(&dir, "b", CITY_B, "sm2,ed25519");
    let province = Node::province(&dir, "p", &[(CITY_A, &a.url()), (CITY_B, &b.url())], &[]);
    let (_, claimed) = issue(&http, &b, "ed25519", "JL-CLAIM-B").await;
    let (_, own) = issue(&http, &b, "sm2", "JL-OWN-B").await;
    until_verdict(&http, &province, &own, "VALID", Duration::from_secs(30)).await;
    let report = verify(&http, &province, &claimed, false).await;
    assert_ne!(report["verdict"], "VALID", "{report}");
    let view = source(&http, &province, CITY_B).await;
    assert_eq!(view["state"], "syncing", "{view}");
    let conflict = view["conflicts"][0].as_str().unwrap().to_owned();
    let (status, incidents) = get(
        &http,
        province.server(),
        "/v1/sync/incidents?open=true",
        "demo-operator",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let incident = &incidents["incidents"][0];
    assert_eq!(
        (
            incident["id"].as_str(),
            incident["kind"].as_str(),
            incident["conflict"]["owner"].as_str()
        ),
        (Some(conflict.as_str()), Some("conflict"), Some(CITY_A)),
        "{incidents}"
    );
    // B's later licences keep arriving while the conflict is open.
    let (_, later) = issue(&http, &b, "sm2", "JL-OWN-B2").await;
    until_verdict(&http, &province, &later, "VALID", Duration::from_secs(30)).await;

    // The operator decides; a conflict without a decision is refused.
    let resolve = format!("/v1/sync/incidents/{conflict}/resolve");
    let (status, problem) = send(
        &http,
        province.server(),
        &resolve,
        "demo-operator",
        &json!({"note": "checked"}),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("request.invalid")),
        "{problem}"
    );
    let (status, resolved) = send(
        &http,
        province.server(),
        &resolve,
        "demo-operator",
        &json!({"note": "B registered it by mistake; A keeps it", "decision": "keep_owner"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{resolved}");
    assert_eq!(resolved["resolved"]["decision"], "keep_owner");
    let logged = common::log_entries(&http, province.server()).await;
    assert!(
        logged
            .iter()
            .any(|e| e["event"] == "sync.incident.resolved" && e["incident"] == conflict.as_str()),
        "the resolution is in the province's log"
    );

    // With the province's map, B refuses A's authority (to register it again or to issue for it).
    b.kill();
    let mut args = b.args.clone();
    args.extend(["--upstream".to_owned(), format!("{PROVINCE}={}", province.url())]);
    b.args = args;
    b.restart();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, sources) = get(&http, b.server(), "/v1/sync/sources", "demo-operator").await;
        if sources["ownership"]["publisher"] == PROVINCE {
            break;
        }
        assert!(Instant::now() < deadline, "B never held the map: {sources}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let keys = root().join("keys-example");
    let chain = std::fs::read_to_string(keys.join("authority-ed25519.pem")).unwrap()
        + &std::fs::read_to_string(keys.join("issuing-ca.pem")).unwrap();
    let (status, problem) = send(
        &http,
        b.server(),
        "/v1/authorities",
        "demo-operator",
        &json!({"uscc": "11220000013544541J", "name": "示例发证机构", "level": "city", "region_code": "220200", "certificates": [chain]}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["code"], "authority.owned_elsewhere", "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains(CITY_A), "{problem}");
    let (status, problem) = send(
        &http,
        b.server(),
        "/v1/licences",
        "demo-authority-ed25519",
        &business_licence("JL-CLAIM-B2"),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    issue(&http, &b, "sm2", "JL-OWN-B3").await;
}
