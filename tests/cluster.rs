//! Two frontends over one PostgreSQL database, as separate `zhengyin serve` processes: what one
//! does, the other serves. Status is read from the database on every verification, so a
//! revocation through one frontend is seen by the other at once; grants and API tokens are held
//! in memory and followed from the shared log every 200 ms, so a change through one frontend
//! takes effect at the other within about that (the delay measured is printed).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{business_licence, cluster, get_json, root, send, Server};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

const TYPE: &str = "11100000000013338W032";
const DEFINER: &str = "demo-authority-p256";
const DEPARTMENT: &str = "demo-verifier";
const ITEM: &str = "220100-FOOD-001";

/// `serve --demo` as a frontend of the database at `url`.
fn frontend(url: &str) -> Server {
    let keys = root().join("keys-example");
    // Only its checkpoint mark goes there (named by the database), out of the working folder.
    let folder = std::env::temp_dir().join(format!("zhengyin-cluster-{}", std::process::id()));
    Server::start_with(&[
        "serve",
        "--demo",
        "--keys-dir",
        keys.to_str().unwrap(),
        "--database",
        url,
        "--data-dir",
        folder.join("data").to_str().unwrap(),
    ])
}

/// Two frontends of one fresh database.
fn two_frontends() -> (Server, Server, String) {
    let url = cluster().database().unwrap();
    let a = frontend(&url);
    let b = frontend(&url);
    (a, b, url)
}

/// Polls `check` until it holds (at most 10 s); answers how long that took.
async fn within<F, Fut>(what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{what}: not seen within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = start.elapsed();
    eprintln!("{what}: seen after {} ms", took.as_millis());
    took
}

async fn verify(http: &Client, server: &Server, licence: &Value) -> String {
    let (status, report) = send(http, server, "/v1/verify", "demo-operator", licence).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    report["verdict"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_licence_issued_and_revoked_through_one_frontend_is_answered_so_by_the_other() {
    let (a, b, _) = two_frontends();
    let http = Client::new();
    let (status, issued) = send(&http, &a, "/v1/licences", DEFINER, &business_licence("JL-CLUSTER-1")).await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    let id = issued["id"].as_str().unwrap();
    let licence = &issued["licence"];
    assert_eq!(verify(&http, &b, licence).await, "VALID");
    let (status, revoked) = send(
        &http,
        &a,
        &format!("/v1/licences/{id}/revoke"),
        DEFINER,
        &json!({"reason": "吊销", "note": "cluster test"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    // Not eventually: the very next verification at the other frontend.
    assert_eq!(verify(&http, &b, licence).await, "INVALID");
    assert_eq!(verify(&http, &a, licence).await, "INVALID");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_demo_frontend_seeds_nothing_twice() {
    let url = cluster().database().unwrap();
    let name = url.rsplit('/').next().unwrap().to_owned();
    let size = || cluster().sql(&name, "SELECT size FROM log_head").unwrap();
    let _a = frontend(&url);
    let seeded = size();
    assert_ne!(seeded, "0", "the first frontend seeds the demo");
    let _b = frontend(&url);
    assert_eq!(size(), seeded, "the second frontend wrote no entry");
    let authorities = cluster().sql(&name, "SELECT COUNT(*) FROM authorities").unwrap();
    assert_eq!(authorities, "4");
}

/// Three demo frontends started at the same moment on one fresh database: the demo is seeded
/// once, as by one frontend alone.
#[tokio::test(flavor = "multi_thread")]
async fn demo_frontends_started_together_seed_once() {
    let alone = cluster().database().unwrap();
    let together = cluster().database().unwrap();
    let size = |url: &str| {
        let name = url.rsplit('/').next().unwrap();
        cluster().sql(name, "SELECT size FROM log_head").unwrap()
    };
    drop(frontend(&alone));
    let frontends: Vec<Server> = std::thread::scope(|scope| {
        let starting: Vec<_> = (0..3).map(|_| scope.spawn(|| frontend(&together))).collect();
        starting.into_iter().map(|f| f.join().unwrap()).collect()
    });
    assert_eq!(size(&together), size(&alone), "as many entries as one frontend seeds");
    let http = Client::new();
    for f in &frontends {
        let listed = get_json(&http, f, "/v1/authorities", "demo-operator").await;
        assert_eq!(listed["authorities"].as_array().map(Vec::len), Some(4), "{listed}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn grants_and_tokens_changed_through_one_frontend_take_effect_at_the_other() {
    let (a, b, _) = two_frontends();
    let http = Client::new();
    let (status, issued) = send(&http, &a, "/v1/licences", DEFINER, &business_licence("JL-CLUSTER-2")).await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    let id = issued["id"].as_str().unwrap().to_owned();
    let lookup = format!("/v1/licence-types/{TYPE}/lookup");
    let body = json!({"service_item": ITEM, "use_cause": "办理食品经营许可", "id": id});

    // The department applies at A, the defining authority approves at B: A answers lookups.
    let until = zhengyin_model::licence::format_time(time::OffsetDateTime::now_utc() + time::Duration::days(30));
    let (status, g) = send(
        &http,
        &a,
        "/v1/grants",
        DEPARTMENT,
        &json!({"type_code": TYPE, "fields": ["number"], "service_items": [ITEM],
                "purpose": "《食品经营许可和备案管理办法》", "until": until}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{g}");
    let grant = g["id"].as_str().unwrap().to_owned();
    let approve = format!("/v1/grants/{grant}/approve");
    within("the application at A, at B", || async {
        send(&http, &b, &approve, DEFINER, &json!({})).await.0 == StatusCode::OK
    })
    .await;
    within("the approval at B, at A", || async {
        send(&http, &a, &lookup, DEPARTMENT, &body).await.0 == StatusCode::OK
    })
    .await;

    // The grant withdrawn at B: A refuses.
    let withdraw = json!({"reason": "审批系统停用"});
    let (status, w) = send(&http, &b, &format!("/v1/grants/{grant}/withdraw"), DEFINER, &withdraw).await;
    assert_eq!(status, StatusCode::OK, "{w}");
    within("the withdrawal at B, at A", || async {
        let (status, p) = send(&http, &a, &lookup, DEPARTMENT, &body).await;
        status == StatusCode::FORBIDDEN && p["code"] == "grant.missing"
    })
    .await;

    // A token issued at A works at B; revoked at A, B refuses it.
    let (status, t) = send(
        &http,
        &a,
        "/v1/tokens",
        "demo-operator",
        &json!({"name": "cluster auditor", "role": "auditor"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    let secret = t["token"].as_str().unwrap().to_owned();
    let token_id = t["issued"]["id"].as_str().unwrap().to_owned();
    let checkpoint = |server: &Server| {
        let (http, url, secret) = (http.clone(), server.at("/v1/log/checkpoint"), secret.clone());
        async move { http.get(url).bearer_auth(secret).send().await.unwrap().status() }
    };
    assert_eq!(checkpoint(&a).await, StatusCode::OK);
    within("the token issued at A, at B", || async {
        checkpoint(&b).await == StatusCode::OK
    })
    .await;
    let (status, r) = send(
        &http,
        &a,
        &format!("/v1/tokens/{token_id}/revoke"),
        "demo-operator",
        &json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(checkpoint(&a).await, StatusCode::UNAUTHORIZED);
    within("the token revoked at A, at B", || async {
        checkpoint(&b).await == StatusCode::UNAUTHORIZED
    })
    .await;
}

/// What one client saw: licences acknowledged (id and signed JSON), and how many answers were
/// refusals while the database was away.
#[derive(Default)]
struct Seen {
    acknowledged: Vec<(String, Value)>,
    unavailable: usize,
    verified: usize,
}

/// Issues licences at `server` until `stop`, alternating with verifications of `known` (VALID);
/// every answer is a success or, while the database is away, a 503 problem (for a write, and for a
/// verification that cannot read the registry): never another 5xx nor a wrong verdict.
async fn client(http: Client, server: String, n: usize, known: Value, stop: Instant) -> Seen {
    let mut seen = Seen::default();
    let mut i = 0;
    while Instant::now() < stop {
        i += 1;
        let (path, token, body) = if i % 2 == 0 {
            ("/v1/verify", "demo-operator", known.clone())
        } else {
            ("/v1/licences", DEFINER, business_licence(&format!("JL-CRASH-{n}-{i}")))
        };
        let r = match http
            .post(format!("{server}{path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
        {
            Ok(r) => r,
            // The frontend itself stays up; a transport error would be a defect.
            Err(e) => panic!("{path}: {e}"),
        };
        let status = r.status();
        let problem = r
            .headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
        let answer: Value = r.json().await.unwrap_or(Value::Null);
        match status {
            StatusCode::CREATED => seen
                .acknowledged
                .push((answer["id"].as_str().unwrap().to_owned(), answer["licence"].clone())),
            StatusCode::OK => {
                // Without the registry a verification is refused (503), never answered.
                assert_eq!(
                    answer["verdict"], "VALID",
                    "a wrong verdict during the outage: {answer}"
                );
                seen.verified += 1;
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(problem, "503 as problem+json: {answer}");
                seen.unavailable += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => panic!("{path}: {other} {answer}"),
        }
    }
    seen
}

/// Runs 8 clients (issuing and verifying, half at each frontend) for 8 s while `faults` does
/// its damage; answers the licences acknowledged. Every answer was a success or a refusal (see
/// [`client`]), some of them refusals, and the clients went on afterwards.
async fn burst<F: std::future::Future<Output = ()>>(
    http: &Client,
    (a, b): (&Server, &Server),
    known: &Value,
    faults: F,
) -> Vec<(String, Value)> {
    let stop = Instant::now() + Duration::from_secs(8);
    let clients: Vec<_> = (0..8)
        .map(|n| {
            let server = if n % 2 == 0 { a.url.clone() } else { b.url.clone() };
            tokio::spawn(client(http.clone(), server, n, known.clone(), stop))
        })
        .collect();
    faults.await;
    let repaired = Instant::now();
    let mut seen = Vec::new();
    for c in clients {
        seen.push(c.await.unwrap());
    }
    let acknowledged: Vec<(String, Value)> = seen.iter().flat_map(|s| s.acknowledged.clone()).collect();
    let unavailable: usize = seen.iter().map(|s| s.unavailable).sum();
    let verified: usize = seen.iter().map(|s| s.verified).sum();
    eprintln!(
        "{} licences acknowledged, {verified} verifications VALID, {unavailable} refusals (503) \
         while the database was away",
        acknowledged.len()
    );
    assert!(unavailable > 0, "the outage was seen");
    assert!(
        repaired.elapsed() > Duration::from_secs(1),
        "clients ran on after the repair"
    );
    acknowledged
}

/// Both frontends serve again by themselves; every acknowledged licence is stored, byte for
/// byte; nothing is half-written (a status and a log entry for every licence) and the log is
/// contiguous — read on `db`, database `name`.
async fn nothing_lost(
    http: &Client,
    (a, b): (&Server, &Server),
    known: &Value,
    acknowledged: &[(String, Value)],
    (db, name): (&zhengyin_testdb::Cluster, &str),
) {
    for server in [a, b] {
        within("a frontend serving again", || async {
            send(http, server, "/v1/verify", "demo-operator", known).await.0 == StatusCode::OK
        })
        .await;
    }
    for (i, (id, licence)) in acknowledged.iter().enumerate() {
        let server = if i % 2 == 0 { a } else { b };
        let r = http
            .get(server.at(&format!("/v1/licences/{id}")))
            .bearer_auth(DEFINER)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "acknowledged licence {id} is missing");
        let stored: Value = r.json().await.unwrap();
        assert_eq!(&stored, licence, "licence {id} changed");
    }
    let count = |sql: &str| -> usize { db.sql(name, sql).unwrap().parse().unwrap() };
    assert_eq!(count("SELECT COUNT(*) FROM licences WHERE status IS NULL"), 0);
    let licences = count("SELECT COUNT(*) FROM licences");
    assert!(
        licences > acknowledged.len(),
        "at least the acknowledged ones and the known one"
    );
    let issued_entries = common::log_entries(http, a)
        .await
        .iter()
        .filter(|e| e["event"] == "licence.issued")
        .count();
    assert_eq!(issued_entries, licences, "one log entry per stored licence");
    let log = db
        .sql(
            name,
            "SELECT (SELECT size FROM log_head) || ' ' || COUNT(*) || ' ' || (MAX(idx) + 1) FROM log_entries",
        )
        .unwrap();
    let [size, count, next]: [&str; 3] = log.split(' ').collect::<Vec<_>>().try_into().unwrap();
    assert!(
        size == count && count == next,
        "a contiguous log after the fault: {log}"
    );
}

/// Issues the licence the clients verify; answers it.
async fn known_licence(http: &Client, server: &Server) -> Value {
    let (status, known) = send(
        http,
        server,
        "/v1/licences",
        DEFINER,
        &business_licence("JL-FAULT-KNOWN"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{known}");
    known["licence"].clone()
}

/// The database stopped as by a crash (`pg_ctl stop -m immediate`) while two frontends take
/// writes and verifications, then started again: meanwhile only refusals (503), afterwards
/// both frontends serve again by themselves, and every licence acknowledged is there.
#[tokio::test(flavor = "multi_thread")]
async fn a_database_crash_mid_burst_loses_nothing_acknowledged_and_the_frontends_reconnect() {
    let own = zhengyin_testdb::Cluster::start().unwrap();
    let url = own.database().unwrap();
    let (a, b) = (frontend(&url), frontend(&url));
    let http = Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let known = known_licence(&http, &a).await;
    let acknowledged = burst(&http, (&a, &b), &known, async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        own.stop_immediately().unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        own.start_server().unwrap();
    })
    .await;
    let name = url.rsplit('/').next().unwrap();
    nothing_lost(&http, (&a, &b), &known, &acknowledged, (&own, name)).await;
}

/// Synchronous replication to a standby; the primary killed mid-burst and the standby promoted.
/// The frontends, given both hosts with `target_session_attrs=read-write`, follow the promotion
/// by themselves, and every licence acknowledged before, during and after is on the new primary.
#[tokio::test(flavor = "multi_thread")]
async fn a_standby_promoted_after_the_primary_dies_holds_every_acknowledged_licence() {
    let primary = zhengyin_testdb::Cluster::start().unwrap();
    let url = primary.database().unwrap();
    let name = url.rsplit('/').next().unwrap().to_owned();
    let standby = zhengyin_testdb::Cluster::standby_of(&primary, "standby1").unwrap();
    // Synchronous from now on (before, CREATE DATABASE would have waited for a standby).
    primary
        .sql("postgres", "ALTER SYSTEM SET synchronous_standby_names = 'standby1'")
        .unwrap();
    primary.sql("postgres", "SELECT pg_reload_conf()").unwrap();
    within("the standby replicating synchronously", || async {
        primary
            .sql("postgres", "SELECT sync_state FROM pg_stat_replication")
            .unwrap()
            == "sync"
    })
    .await;
    let both = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/{name}?target_session_attrs=read-write",
        primary.port(),
        standby.port()
    );
    let (a, b) = (frontend(&both), frontend(&both));
    let http = Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let known = known_licence(&http, &a).await;
    let acknowledged = burst(&http, (&a, &b), &known, async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        primary.stop_immediately().unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        standby.promote().unwrap();
    })
    .await;
    nothing_lost(&http, (&a, &b), &known, &acknowledged, (&standby, &name)).await;
}

/// `/readyz` follows the database: 503 `store.unwritable` while it is down, ready again once it
/// is back, without a restart of the frontend.
#[tokio::test(flavor = "multi_thread")]
async fn readiness_fails_while_the_database_is_down_and_returns_with_it() {
    let own = zhengyin_testdb::Cluster::start().unwrap();
    let a = frontend(&own.database().unwrap());
    let http = Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let readiness = || async {
        let r = http.get(a.at("/readyz")).send().await.unwrap();
        (r.status(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(readiness().await.0, StatusCode::OK);
    own.stop_immediately().unwrap();
    within("readyz failing with the database down", || async {
        let (status, body) = readiness().await;
        status == StatusCode::SERVICE_UNAVAILABLE && body["code"] == "store.unwritable"
    })
    .await;
    own.start_server().unwrap();
    within("readyz ready with the database back", || async {
        readiness().await.0 == StatusCode::OK
    })
    .await;
}
