//! Mutual recognition between provinces (互通互认), end to end: a national node publishes a
//! trust list signed with `zhengyin trust-list sign`; two provinces, each aggregating two
//! cities, follow it — every node a separate `zhengyin` process on loopback. A licence of one
//! province verifies in the other with no registration by hand, and its revocation reaches the
//! other within the staleness bound (the latency is printed, not asserted); forged, older and
//! expired lists are refused with the reason, at the node and by `zhengyin trust-list verify`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::nodes::*;
use common::{binary, get, log_verifier_key, root, TempDir};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

const PROVINCE_1: &str = "zhengyin.example/province-220000";
const PROVINCE_2: &str = "zhengyin.example/province-340000";
const NATIONAL: &str = "zhengyin.example/national-000000";

/// A region of the list: its province's log and the demo authorities of its cities.
async fn region(http: &Client, code: &str, province: &Node, authorities: &[&str]) -> Value {
    let anchors = std::fs::read_to_string(root().join("keys-example/root-ca.pem")).unwrap();
    json!({
        "region": code,
        "name": format!("示例省 {code}"),
        "trust_anchors": [anchors],
        "logs": [{
            "origin": if code == "220000" { PROVINCE_1 } else { PROVINCE_2 },
            "key": log_verifier_key(http, province.server()).await,
            "url": province.url(),
        }],
        "authorities": authorities,
        "licence_types": ["11100000000013338W032"],
    })
}

/// `zhengyin trust-list sign` of `list` with the example key (or `key`), into `out`.
fn sign(dir: &TempDir, list: &Value, key: &str, out: &Path) {
    let json = dir.0.join("list.json");
    std::fs::write(&json, serde_json::to_vec_pretty(list).unwrap()).unwrap();
    let status = std::process::Command::new(binary())
        .args(["trust-list", "sign", json.to_str().unwrap(), "--key"])
        .arg(root().join("keys-example").join(key))
        .arg("--out")
        .arg(out)
        .status()
        .unwrap();
    assert!(status.success());
}

fn list(sequence: u64, regions: &[Value], issued: &str, next_update: &str) -> Value {
    json!({
        "format": "zhengyin/trust-list/v1",
        "scheme_operator": "示例国家节点",
        "sequence": sequence,
        "issued": issued,
        "next_update": next_update,
        "regions": regions,
    })
}

/// The trust list a node holds (`null` when none).
async fn held(http: &Client, node: &Node) -> Value {
    let (status, body) = get(http, node.server(), "/v1/sync/sources", "demo-operator").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["trust_list"].clone()
}

/// Polls the held list until `done` holds (at most 30 s).
async fn until_held(http: &Client, node: &Node, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let list = held(http, node).await;
        if done(&list) {
            return list;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the held list never got there: {list}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `zhengyin trust-list verify FILE --key … [--held HELD]`: exit code and output.
fn cli_verify(file: &Path, held: Option<&Path>) -> (i32, String) {
    let mut command = std::process::Command::new(binary());
    command
        .args(["trust-list", "verify", file.to_str().unwrap(), "--key"])
        .arg(root().join("keys-example/trust-list-ed25519.pub.pem"));
    if let Some(held) = held {
        command.arg("--held").arg(held);
    }
    let out = command.output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_licence_of_one_province_verifies_in_the_other_through_the_national_trust_list() {
    let dir = TempDir::new("federation");
    let http = Client::new();
    let published = dir.0.join("published.jws");
    let mut national = Node::prepare(
        &dir,
        "national",
        NATIONAL,
        &[
            "--demo-authorities".into(),
            "none".into(),
            "--publish-trust-list".into(),
            published.to_str().unwrap().into(),
        ],
    );
    let follow = ["--trust-list", &national.url()];
    let a1 = Node::city(&dir, "a1", "zhengyin.example/city-220100", "ed25519");
    let b1 = Node::city(&dir, "b1", "zhengyin.example/city-220200", "sm2");
    let a2 = Node::city(&dir, "a2", "zhengyin.example/city-340100", "p256");
    let b2 = Node::city(&dir, "b2", "zhengyin.example/city-340200", "rsa2048");
    let (a1_origin, b1_origin) = ("zhengyin.example/city-220100", "zhengyin.example/city-220200");
    let (a2_origin, b2_origin) = ("zhengyin.example/city-340100", "zhengyin.example/city-340200");
    let p1 = Node::province_of(
        &dir,
        "p1",
        PROVINCE_1,
        &[(a1_origin, &a1.url()), (b1_origin, &b1.url())],
        &follow,
    );
    let p2 = Node::province_of(
        &dir,
        "p2",
        PROVINCE_2,
        &[(a2_origin, &a2.url()), (b2_origin, &b2.url())],
        &follow,
    );
    let regions = [
        region(&http, "220000", &p1, &["11220000013544541J", "12100000400010398P"]).await,
        region(&http, "340000", &p2, &["11100000000013338W", "91350100M000100Y43"]).await,
    ];
    let first = dir.0.join("first.jws");
    sign(
        &dir,
        &list(1, &regions, "2026-01-01T00:00:00Z", "2099-01-01T00:00:00Z"),
        "trust-list-ed25519.key",
        &first,
    );
    std::fs::copy(&first, &published).unwrap();
    national.restart();
    let (code, out) = cli_verify(&first, None);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("region 220000") && out.contains(PROVINCE_1), "{out}");

    // Province 1's licences verify in province 2, and the other way round.
    let (id, licence) = issue(&http, &a1, "ed25519", "JL-HUTONG-1").await;
    let took = until_verdict(&http, &p2, &licence, "VALID", Duration::from_secs(60)).await;
    println!("a licence of province 1 was VALID in province 2 {took:?} after issue");
    let report = verify(&http, &p2, &licence, true).await;
    let vouched = report["status_source"].as_str().unwrap();
    assert!(
        vouched.contains("region 220000") && vouched.contains("示例国家节点 sequence 1"),
        "{report}"
    );
    let (_, sm2) = issue(&http, &b1, "sm2", "JL-HUTONG-2").await;
    until_verdict(&http, &p2, &sm2, "VALID", Duration::from_secs(60)).await;
    let (_, from_2) = issue(&http, &b2, "rsa2048", "WAN-HUTONG-1").await;
    until_verdict(&http, &p1, &from_2, "VALID", Duration::from_secs(60)).await;
    // Recognised, not aggregated: province 2 relays nothing of province 1 into its own log.
    let relayed = common::log_entries(&http, p2.server())
        .await
        .into_iter()
        .filter(|e| e["event"] == "sync.applied" && e["origin"] == PROVINCE_1)
        .count();
    assert_eq!(relayed, 0);

    // Revoked in city A1: INVALID in province 2 well within the staleness bound (300 s).
    revoke(&http, &a1, "ed25519", &id).await;
    let took = until_verdict(&http, &p2, &licence, "INVALID", Duration::from_secs(60)).await;
    println!("cross-province revocation latency (city → province 1 → province 2): {took:?}");

    // Lists that must be refused; the held one stays.
    let sequence_of = |list: &Value| list["sequence"].as_u64();
    let second = dir.0.join("second.jws");
    sign(
        &dir,
        &list(2, &regions, "2026-01-02T00:00:00Z", "2099-01-01T00:00:00Z"),
        "trust-list-ed25519.key",
        &second,
    );
    std::fs::copy(&second, &published).unwrap();
    until_held(&http, &p2, |l| sequence_of(l) == Some(2)).await;
    let cases = [
        (
            3,
            "token-ed25519.key",
            "2026-01-03T00:00:00Z",
            "2099-01-01T00:00:00Z",
            "signature",
        ),
        (
            1,
            "trust-list-ed25519.key",
            "2026-01-01T00:00:00Z",
            "2099-01-01T00:00:00Z",
            "older",
        ),
        (
            4,
            "trust-list-ed25519.key",
            "2026-01-04T00:00:00Z",
            "2026-01-05T00:00:00Z",
            "expired",
        ),
    ];
    for (sequence, key, issued, next_update, why) in cases {
        let bad = dir.0.join(format!("bad-{sequence}.jws"));
        sign(&dir, &list(sequence, &regions, issued, next_update), key, &bad);
        std::fs::copy(&bad, &published).unwrap();
        let refused = until_held(&http, &p2, |l| l["refused"].as_str().is_some_and(|r| r.contains(why))).await;
        assert_eq!(sequence_of(&refused), Some(2), "{refused}");
        let (code, out) = cli_verify(&bad, Some(&second));
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("refused") && out.contains(why), "{out}");
    }
    let status = std::process::Command::new(binary())
        .args(["sync", "status", "--url", &p2.url(), "--token", "demo-operator"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("trust list of 示例国家节点: sequence 2")
            && text.contains("last refused")
            && text.contains(PROVINCE_1),
        "{text}"
    );
    // Province 2 still recognises province 1 under the list it holds.
    let (_, later) = issue(&http, &a1, "ed25519", "JL-HUTONG-3").await;
    until_verdict(&http, &p2, &later, "VALID", Duration::from_secs(60)).await;
    // The list is public, served as published; a node that publishes none says so.
    let served = http
        .get(national.server().at("/v1/federation/trust-list"))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.headers()["content-type"], "application/jose");
    let published = std::fs::read_to_string(&published).unwrap();
    assert_eq!(served.text().await.unwrap(), published.trim());
    let none = http
        .get(p1.server().at("/v1/federation/trust-list"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), StatusCode::NOT_FOUND);
    let problem: Value = none.json().await.unwrap();
    assert_eq!(problem["code"], "trust_list.not_published");
}
