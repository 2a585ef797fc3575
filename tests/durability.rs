//! Crash safety: the real server is killed with SIGKILL in the middle of a burst of concurrent
//! issues, 20 times over the same database. Every licence that got a 2xx must be there after the
//! restart, byte for byte, and VALID; nothing half-written may be visible.

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
        let report: serde_json::Value = http
            .post(server.at("/v1/verify"))
            .bearer_auth("demo-operator")
            .header("content-type", "application/json")
            .body(bytes.clone())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(report["verdict"], "VALID", "{when}: {id}: {report}");
    }
}
const CLIENTS: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_licences_survive_sigkill() {
    let dir = TempDir::new("durability");
    let acknowledged: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let mut checked = 0;
    for cycle in 0..CYCLES {
        let server = Server::start(&dir.0);
        let http = reqwest::Client::new();

        // Everything acknowledged before this start is still there, identical and VALID.
        let all = acknowledged.lock().await.clone();
        check_present(&server, &all[checked..], &format!("cycle {cycle}")).await;
        checked = all.len();

        // A burst from many clients, killed part-way through.
        let stop_at = Instant::now() + Duration::from_millis(200 + 37 * (cycle as u64 % 11));
        let url = server.url.clone();
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let http = http.clone();
                let url = url.clone();
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
        tokio::time::sleep_until(stop_at.into()).await;
        server.kill();
        for c in clients {
            c.await.unwrap();
        }
    }
    // One last restart checks the final burst.
    let server = Server::start(&dir.0);
    let all = acknowledged.lock().await.clone();
    check_present(&server, &all[checked..], "after the last kill").await;
    let http = reqwest::Client::new();
    // The signature log survived too: an auditor recomputes the signed root from every entry.
    let key = common::get_json(&http, &server, "/v1/log/key", "demo-auditor").await;
    let audit = std::process::Command::new(common::binary())
        .args(["audit", "--url", &server.url, "--token", "demo-auditor", "--key"])
        .arg(key["verifier_key"].as_str().unwrap())
        .arg("--state")
        .arg(dir.0.join("audit.json"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&audit.stdout);
    assert!(audit.status.success() && report.starts_with("OK"), "{report}");
    common::assert_no_server_errors(&server).await;
    assert!(
        all.len() > CYCLES * CLIENTS,
        "the bursts issued too little to mean anything: {}",
        all.len()
    );
    println!("{} acknowledged licences survived {CYCLES} SIGKILLs", all.len());
}
