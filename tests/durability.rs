//! Crash safety: the real server is killed with SIGKILL in the middle of a burst of concurrent
//! issues, 20 times over the same database. Every licence that got a 2xx must be there after the
//! restart, byte for byte, and VALID; nothing half-written may be visible. The same for the use
//! records of departments' verifications, which are journaled before they are committed. Under
//! the PostgreSQL backend each node is two frontends over one database, clients spread over
//! both, and the kill takes one frontend and then the other mid-burst.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{business_licence, Server, TempDir, ALGORITHMS};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::Mutex;

#[derive(Deserialize)]
struct Envelope {
    id: String,
    licence: Box<RawValue>,
}

const CYCLES: usize = 20;

/// Every licence in `entries` can be read back byte for byte and verifies VALID.
async fn check_present(server: &Server, entries: &[(String, String)], when: &str) {
    let http = reqwest::Client::new();
    for (id, bytes) in entries {
        let r = http
            .get(server.at(&format!("/v1/licences/{id}")))
            .bearer_auth("demo-operator")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{when}: acknowledged licence {id} lost");
        assert_eq!(r.bytes().await.unwrap(), bytes.as_bytes(), "{when}: {id} changed");
        let report = common::verify_at(&http, server, "/v1/verify", "demo-operator", bytes.as_bytes()).await;
        assert_eq!(report["verdict"], "VALID", "{when}: {id}: {report}");
    }
}
const CLIENTS: usize = 16;

/// The frontends of the node whose data is in `dir`: one process with the embedded store; two
/// over one database under the PostgreSQL backend.
fn frontends(dir: &std::path::Path) -> Vec<Server> {
    let count = if common::postgres() { 2 } else { 1 };
    (0..count).map(|_| Server::start(dir)).collect()
}

/// Kills the frontends with SIGKILL from `stop_at` on, one after the other 50 ms apart (the
/// others take writes meanwhile), then waits for the clients of the burst to stop.
async fn kill_at(servers: Vec<Server>, stop_at: Instant, clients: Vec<tokio::task::JoinHandle<()>>) {
    tokio::time::sleep_until(stop_at.into()).await;
    for server in servers {
        server.kill();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for c in clients {
        c.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_licences_survive_sigkill() {
    let dir = TempDir::new("durability");
    let acknowledged: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let mut checked = 0;
    for cycle in 0..CYCLES {
        let servers = frontends(&dir.0);
        let http = reqwest::Client::new();

        // Everything acknowledged before this start is still there, identical and VALID.
        let all = acknowledged.lock().await.clone();
        check_present(
            &servers[cycle % servers.len()],
            &all[checked..],
            &format!("cycle {cycle}"),
        )
        .await;
        checked = all.len();

        // A burst from many clients, killed part-way through.
        let stop_at = Instant::now() + Duration::from_millis(200 + 37 * (cycle as u64 % 11));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let http = http.clone();
                let url = servers[c % servers.len()].url.clone();
                let acknowledged = Arc::clone(&acknowledged);
                tokio::spawn(async move {
                    let alg = ALGORITHMS[c % ALGORITHMS.len()];
                    for n in 0.. {
                        let r = http
                            .post(format!("{url}/v1/licences"))
                            .bearer_auth(format!("demo-authority-{alg}"))
                            .json(&business_licence(&format!("D{cycle}-{c}-{n}")))
                            .send()
                            .await;
                        let Ok(r) = r else { break }; // the server is gone
                        if r.status() != 201 {
                            break;
                        }
                        let Ok(body) = r.bytes().await else { break };
                        let e: Envelope = serde_json::from_slice(&body).unwrap();
                        acknowledged.lock().await.push((e.id, e.licence.get().to_owned()));
                    }
                })
            })
            .collect();
        kill_at(servers, stop_at, clients).await;
    }
    // One last restart checks the final burst.
    let server = Server::start(&dir.0);
    let all = acknowledged.lock().await.clone();
    check_present(&server, &all[checked..], "after the last kill").await;
    let http = reqwest::Client::new();
    // The signature log survived too: an auditor recomputes the signed root from every entry.
    let key = common::log_verifier_key(&http, &server).await;
    let (code, report) = common::audit(&server, &key, &dir.0.join("audit.json"));
    assert!(code == 0 && report.starts_with("OK"), "{report}");
    common::assert_no_server_errors(&server).await;
    assert!(
        all.len() > CYCLES * CLIENTS,
        "the bursts issued too little to mean anything: {}",
        all.len()
    );
    println!("{} acknowledged licences survived {CYCLES} SIGKILLs", all.len());
}

const USE_CYCLES: usize = 6;
const PURPOSE: &str = "service_item=220100-FOOD-001&use_cause=%E6%A0%B8%E9%AA%8C";

/// Every use record listed, oldest first, through the auditors' interface (page by page).
async fn listed_use_records(http: &reqwest::Client, server: &Server) -> Vec<serde_json::Value> {
    let mut all: Vec<serde_json::Value> = Vec::new();
    loop {
        let after = all
            .last()
            .map(|r| format!("&after={}", r["id"].as_str().unwrap()))
            .unwrap_or_default();
        let page = common::get_json(
            http,
            server,
            &format!("/v1/use-records?limit=500{after}"),
            "demo-auditor",
        )
        .await;
        let records = page["use_records"].as_array().unwrap().clone();
        if records.is_empty() {
            return all;
        }
        all.extend(records);
    }
}

/// The `licence.used` entries of the log, decoded.
async fn use_entries(http: &reqwest::Client, server: &Server) -> Vec<serde_json::Value> {
    use base64::Engine as _;
    let (mut entries, mut start) = (Vec::new(), 0);
    loop {
        let path = format!("/v1/log/entries?start={start}&end={}", start + 1000);
        let page = common::get_json(http, server, &path, "demo-auditor").await;
        let batch = page["entries"].as_array().unwrap();
        for e in batch {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(e.as_str().unwrap())
                .unwrap();
            let entry: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            if entry["event"] == "licence.used" {
                entries.push(entry);
            }
        }
        if batch.len() < 1000 {
            return entries;
        }
        start += batch.len();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_use_records_survive_sigkill() {
    let dir = TempDir::new("use-durability");
    let server = Server::start(&dir.0);
    let http = reqwest::Client::new();
    let issued = common::post_json(
        &http,
        &server,
        "/v1/licences",
        "demo-authority-ed25519",
        &business_licence("USE-1"),
    )
    .await;
    let licence = issued["licence"].to_string();
    server.kill();

    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    for cycle in 0..USE_CYCLES {
        let servers = frontends(&dir.0);
        let stop_at = Instant::now() + Duration::from_millis(300 + 53 * cycle as u64);
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let url = servers[c % servers.len()].url.clone();
                let (http, licence) = (http.clone(), licence.clone());
                let acknowledged = Arc::clone(&acknowledged);
                tokio::spawn(async move {
                    loop {
                        let r = http
                            .post(format!("{url}/v1/verify?{PURPOSE}"))
                            .bearer_auth("demo-verifier")
                            .header("content-type", "application/json")
                            .body(licence.clone())
                            .send()
                            .await;
                        let Ok(r) = r else { break }; // the server is gone
                        if r.status() != 200 {
                            break;
                        }
                        let Some(id) = r.headers().get("zhengyin-use-record").cloned() else {
                            panic!("a department's verification without its use record")
                        };
                        if r.bytes().await.is_err() {
                            break;
                        }
                        acknowledged.lock().await.push(id.to_str().unwrap().to_owned());
                    }
                })
            })
            .collect();
        kill_at(servers, stop_at, clients).await;
    }
    let server = Server::start(&dir.0);
    let acknowledged = acknowledged.lock().await.clone();
    let listed = listed_use_records(&http, &server).await;
    let ids: std::collections::BTreeSet<&str> = listed.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), listed.len(), "a use record listed twice");
    let lost: Vec<&String> = acknowledged.iter().filter(|id| !ids.contains(id.as_str())).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged use records lost, e.g. {:?}",
        lost.len(),
        lost.first()
    );
    // Every record is committed to the log (at the restart, for those the crash left journaled),
    // each in exactly one entry.
    let entries = use_entries(&http, &server).await;
    let covered: u64 = entries.iter().map(|e| e["count"].as_u64().unwrap()).sum();
    assert_eq!(covered, listed.len() as u64, "records and log entries disagree");
    for record in &listed {
        let id = record["id"].as_str().unwrap();
        let holding = entries
            .iter()
            .filter(|e| e["first"].as_str().unwrap() <= id && id <= e["last"].as_str().unwrap())
            .count();
        assert_eq!(holding, 1, "{id} is in {holding} log entries");
    }
    assert!(
        acknowledged.len() > USE_CYCLES * CLIENTS,
        "the bursts verified too little to mean anything: {}",
        acknowledged.len()
    );
    println!(
        "{} acknowledged use records survived {USE_CYCLES} SIGKILLs",
        acknowledged.len()
    );
}
