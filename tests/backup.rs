//! Backups of a really started node, taken while writers run, restored into a fresh node; and a
//! node restored behind a checkpoint it published, which signs nothing until its log reaches that
//! checkpoint again. On the embedded store through `zhengyin backup` and `zhengyin restore`; on
//! PostgreSQL (the suite's second pass) with pg_dump and pg_restore, as the operations guide says.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use common::{audit, business_licence, get, postgres, wait_for_checkpoint, Server, TempDir, PURPOSE};
use serde_json::Value;

/// Licence numbers are unique per type and issuer: every issue gets a new one.
static NUMBER: AtomicUsize = AtomicUsize::new(0);

/// Issues one licence; the answer's status and body.
async fn issue(http: &reqwest::Client, server: &Server) -> (u16, Value) {
    let n = NUMBER.fetch_add(1, Ordering::Relaxed);
    let response = http
        .post(server.at("/v1/licences"))
        .bearer_auth("demo-authority-p256")
        .json(&business_licence(&format!("BACKUP-{n}")))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// A department's verification of `licence`: the verdict.
async fn verdict(http: &reqwest::Client, server: &Server, licence: &Value) -> String {
    let response = http
        .post(server.at(&format!("/v1/verify?{PURPOSE}")))
        .bearer_auth("demo-verifier")
        .json(licence)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    report["verdict"].as_str().unwrap_or_default().to_owned()
}

/// The node is ready, issues a licence, and the auditor with `state` finds its log consistent
/// with what it saw before; no request got a 5xx.
async fn signs_on_and_audits_ok(http: &reqwest::Client, server: &Server, key: &str, state: &Path) {
    let (status, ready) = get(http, server, "/readyz", "demo-operator").await;
    assert_eq!(status, 200, "{ready}");
    let (status, body) = issue(http, server).await;
    assert_eq!(status, 201, "{body}");
    wait_for_checkpoint(http, server, body["log_index"].as_u64().unwrap() + 1).await;
    let (code, report) = audit(server, key, state);
    assert_eq!(code, 0, "{report}");
    common::assert_no_server_errors(server).await;
}

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(common::binary()).args(args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn database_name(data: &Path) -> String {
    common::database_for(data).rsplit('/').next().unwrap().to_owned()
}

/// Backs up the node serving `data` while it runs, into `out`.
fn take_backup(server: &Server, data: &Path, out: &Path) {
    if postgres() {
        common::cluster().dump(&database_name(data), out).unwrap();
        return;
    }
    let out = out.to_str().unwrap();
    let (ok, text) = run(&["backup", "--url", &server.url, "--token", "demo-operator", "--out", out]);
    assert!(ok, "{text}");
    assert!(text.starts_with("backup written to"), "{text}");
}

/// Puts `backup` in place as the data of the (stopped) node of `data`.
fn put_back(backup: &Path, data: &Path) {
    if postgres() {
        common::cluster().restore_dump(&database_name(data), backup).unwrap();
        return;
    }
    let _ = std::fs::remove_dir_all(data);
    let (ok, text) = run(&[
        "restore",
        "--from",
        backup.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_taken_under_load_restores_every_licence_acknowledged_before_it() {
    let dir = TempDir::new("backup-load");
    let data = dir.0.join("data");
    let server = Arc::new(Server::start(&data));
    let http = reqwest::Client::new();
    if postgres() {
        // The node does not copy a database: the database's own tools do.
        let (status, refused) = get(&http, &server, "/v1/backup", "demo-operator").await;
        assert_eq!(status, 409, "{refused}");
        assert_eq!(refused["code"], "backup.database_tools", "{refused}");
    }
    let (status, _) = get(&http, &server, "/v1/backup", "demo-verifier").await;
    assert_eq!(status, 403);
    let acknowledged = Arc::new(tokio::sync::Mutex::new(Vec::<Value>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let (server, http, acknowledged, stop) = (server.clone(), http.clone(), acknowledged.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let (status, body) = issue(&http, &server).await;
                    assert_eq!(status, 201, "{body}");
                    acknowledged.lock().await.push(body);
                }
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let before: Vec<Value> = acknowledged.lock().await.clone();
    let archive = dir.0.join("under-load.backup");
    let taken = {
        let (server, data, archive) = (server.clone(), data.clone(), archive.clone());
        tokio::task::spawn_blocking(move || take_backup(&server, &data, &archive))
    };
    taken.await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let during = acknowledged.lock().await.len() - before.len();
    assert!(
        before.len() >= 10 && during > 0,
        "writers ran before ({}) and around ({during}) the backup",
        before.len()
    );
    common::assert_no_server_errors(&server).await;

    // A fresh node on the backup holds every licence acknowledged before it, as issued, byte
    // for byte as the node that issued it serves it.
    let restored_data = dir.0.join("restored");
    put_back(&archive, &restored_data);
    let restored = Server::start(&restored_data);
    let raw = |server: &Server, id: &str| {
        let request = http
            .get(server.at(&format!("/v1/licences/{id}")))
            .bearer_auth("demo-operator");
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.bytes().await.unwrap()
        }
    };
    for issued in &before {
        let id = issued["licence"]["id"].as_str().unwrap();
        let stored = raw(&restored, id).await;
        assert_eq!(stored, raw(&server, id).await, "{id} differs from the original node's");
        let stored: Value = serde_json::from_slice(&stored).unwrap();
        assert_eq!(stored, issued["licence"], "{id} is not the licence issued");
    }
    // Its log audits OK, and it goes on issuing (no serial handed out twice).
    let key = common::log_verifier_key(&http, &restored).await;
    let (code, report) = audit(&restored, &key, &dir.0.join("audit.json"));
    assert_eq!(code, 0, "{report}");
    let (status, body) = issue(&http, &restored).await;
    assert_eq!(status, 201, "{body}");
    common::assert_no_server_errors(&restored).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_restored_behind_its_published_checkpoint_signs_nothing_until_its_log_reaches_it() {
    let dir = TempDir::new("backup-rollback");
    let data = dir.0.join("data");
    let server = Server::start(&data);
    let http = reqwest::Client::new();
    let key = common::log_verifier_key(&http, &server).await;
    let state = dir.0.join("auditor.json");

    let (_, first) = issue(&http, &server).await;
    let older = dir.0.join("older.backup");
    take_backup(&server, &data, &older);
    let mut last = 0;
    for _ in 0..3 {
        let (status, body) = issue(&http, &server).await;
        assert_eq!(status, 201, "{body}");
        last = body["log_index"].as_u64().unwrap();
    }
    wait_for_checkpoint(&http, &server, last + 1).await;
    // An auditor holds the newer checkpoint; a backup is taken after it.
    let (code, report) = audit(&server, &key, &state);
    assert_eq!(code, 0, "{report}");
    let newer = dir.0.join("newer.backup");
    take_backup(&server, &data, &newer);
    server.kill();

    // Restored from the older backup: it refuses to sign, and says why.
    put_back(&older, &data);
    let server = Server::start(&data);
    let (status, ready) = get(&http, &server, "/readyz", "demo-operator").await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["code"], "log.behind", "{ready}");
    let detail = ready["detail"].as_str().unwrap();
    assert!(
        detail.contains("published a checkpoint of") && detail.contains("restore a backup"),
        "{detail}"
    );
    let (status, refused) = issue(&http, &server).await;
    assert_eq!(status, 503, "{refused}");
    assert_eq!(refused["code"], "log.behind", "{refused}");
    let id = first["licence"]["id"].as_str().unwrap();
    let revoke = http
        .post(server.at(&format!("/v1/licences/{id}/revoke")))
        .bearer_auth("demo-authority-p256")
        .json(&serde_json::json!({"reason": "吊销", "note": "违法经营"}))
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 503);
    // Verification goes on (a department's use record stays journaled meanwhile).
    assert_eq!(verdict(&http, &server, &first["licence"]).await, "VALID");
    // It publishes no checkpoint meanwhile: the auditor sees a log behind, never a fork.
    let (code, report) = audit(&server, &key, &state);
    assert_eq!(code, 1, "{report}");
    assert!(report.contains("went backwards"), "{report}");
    server.kill();

    // The documented recovery: put back a backup taken after the checkpoint. It signs again,
    // and the auditor holding the newer checkpoint finds the log consistent with it.
    put_back(&newer, &data);
    let server = Server::start(&data);
    signs_on_and_audits_ok(&http, &server, &key, &state).await;
}

/// A node moved from the embedded store to PostgreSQL with `zhengyin store copy` serves the same
/// licences, and its log extends the one its auditor and its checkpoint mark hold. (The target is
/// PostgreSQL in either pass; the source is the embedded store, so the second pass skips it.)
#[tokio::test(flavor = "multi_thread")]
async fn a_node_moved_to_postgres_serves_the_same_licences_and_extends_the_same_log() {
    if postgres() {
        return;
    }
    let dir = TempDir::new("store-copy");
    let data = dir.0.join("data");
    let server = Server::start(&data);
    let http = reqwest::Client::new();
    let key = common::log_verifier_key(&http, &server).await;
    let mut issued = Vec::new();
    for _ in 0..5 {
        let (status, body) = issue(&http, &server).await;
        assert_eq!(status, 201, "{body}");
        issued.push(body);
    }
    let last = issued.last().unwrap()["log_index"].as_u64().unwrap();
    wait_for_checkpoint(&http, &server, last + 1).await;
    let state = dir.0.join("auditor.json");
    let (code, report) = audit(&server, &key, &state);
    assert_eq!(code, 0, "{report}");
    // A running node is refused: the copy must see the data whole.
    let url = common::cluster().database().unwrap();
    let from = format!("sled:{}", data.display());
    let copy = || run(&["store", "copy", "--from", &from, "--to", &url]);
    let (ok, text) = copy();
    assert!(!ok && text.contains("stop its node"), "{text}");
    server.kill();

    let (ok, text) = copy();
    assert!(ok, "{text}");
    assert!(text.contains("checked on both sides"), "{text}");
    // Copying again into the same database is refused.
    let (ok, text) = copy();
    assert!(!ok && text.contains("already holds"), "{text}");

    let server = Server::start_demo(&data, &["--database", &url]);
    for licence in &issued {
        assert_eq!(verdict(&http, &server, &licence["licence"]).await, "VALID");
    }
    signs_on_and_audits_ok(&http, &server, &key, &state).await;
}

/// On PostgreSQL the database can be restored under running frontends: each notices within a
/// second or so that the store's log is behind its mark and stops signing, and resumes once a
/// newer copy is put back.
#[tokio::test(flavor = "multi_thread")]
async fn a_database_restored_under_a_running_frontend_stops_its_signing_until_a_newer_copy_returns() {
    if !postgres() {
        return;
    }
    let dir = TempDir::new("backup-under");
    let data = dir.0.join("data");
    let server = Server::start(&data);
    let http = reqwest::Client::new();
    let older = dir.0.join("older.backup");
    take_backup(&server, &data, &older);
    let (_, body) = issue(&http, &server).await;
    wait_for_checkpoint(&http, &server, body["log_index"].as_u64().unwrap() + 1).await;
    let newer = dir.0.join("newer.backup");
    take_backup(&server, &data, &newer);

    let ready_becomes = |expected: u16| {
        let (http, server) = (&http, &server);
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
            loop {
                let (status, body) = get(http, server, "/readyz", "demo-operator").await;
                if status.as_u16() == expected {
                    return body;
                }
                assert!(std::time::Instant::now() < deadline, "/readyz stayed {status}: {body}");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    };
    put_back(&older, &data);
    let behind = ready_becomes(503).await;
    assert_eq!(behind["code"], "log.behind", "{behind}");
    let (status, refused) = issue(&http, &server).await;
    assert_eq!(status, 503, "{refused}");
    put_back(&newer, &data);
    ready_becomes(200).await;
    let (status, body) = issue(&http, &server).await;
    assert_eq!(status, 201, "{body}");
}
