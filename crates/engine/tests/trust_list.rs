//! Mutual recognition (互通互认) at the engine level: province 2 holds a trust list naming
//! province 1's log, follows it as the list says, and verifies province 1's licences; lists
//! that are forged, older or expired are refused. (Processes and HTTP: the root package's
//! `tests/federation.rs`.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::nodes::*;
use common::*;
use time::macros::datetime;
use zhengyin_crypto::FileKey;
use zhengyin_engine::sync::SyncSource;
use zhengyin_engine::trust_list::{TrustList, TrustListError, TrustedLog, TrustedRegion};
use zhengyin_engine::VerifyOptions;
use zhengyin_model::Verdict;

const CITY: &str = "zhengyin.example/city-220100";
const PROVINCE_1: &str = "zhengyin.example/province-220000";
const PROVINCE_2: &str = "zhengyin.example/province-340000";
const ED25519: &str = "11220000013544541J";
const SM2: &str = "12100000400010398P";

fn operator_key() -> FileKey {
    FileKey::from_pem_file(&keys_dir().join("trust-list-ed25519.key")).unwrap()
}

fn public_key(key: &FileKey) -> zhengyin_crypto::PublicKey {
    zhengyin_crypto::Signer::public_key(key).clone()
}

fn region(code: &str, origin: &str, authorities: &[&str]) -> TrustedRegion {
    TrustedRegion {
        region: code.to_owned(),
        name: format!("示例地区 {code}"),
        trust_anchors: vec![read(&keys_dir().join("root-ca.pem"))],
        logs: vec![TrustedLog {
            origin: origin.to_owned(),
            key: source_named(origin).verifier.encode(),
            url: "http://127.0.0.1:1".to_owned(),
        }],
        authorities: authorities.iter().map(|a| uscc(a)).collect(),
        licence_types: vec![business_licence_type().code],
        witness_keys: Vec::new(),
    }
}

/// Sequence `n`: province 1 vouching for its ed25519 authority only, and province 2.
fn list(sequence: u64) -> TrustList {
    TrustList {
        format: zhengyin_engine::trust_list::FORMAT.to_owned(),
        scheme_operator: "示例国家节点".to_owned(),
        sequence,
        issued: datetime!(2026-11-22 00:00 UTC),
        next_update: datetime!(2026-11-23 00:00 UTC),
        regions: vec![
            region("220000", PROVINCE_1, &[ED25519]),
            region("340000", PROVINCE_2, &[]),
        ],
    }
}

/// The city's news reaches province 2: the city → province 1, then province 1 → province 2.
async fn two_hops(city: &Arc<Province>, p1: &Arc<Province>, p2: &Province, p1_source: &SyncSource) {
    p1.engine
        .sync_round(&source_named(CITY), &NodeFeed(Arc::clone(city)), 1000)
        .await
        .unwrap();
    p2.engine
        .sync_round(p1_source, &NodeFeed(Arc::clone(p1)), 1000)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_region_in_the_trust_list_is_followed_and_its_listed_authorities_licences_verify() {
    // Province 1 aggregates a city with two authorities; the list vouches for one of them.
    let city = city_with(CITY, &["ed25519", "sm2"]).await;
    let listed = city.engine.issue(&uscc(ED25519), issue_request()).await.unwrap();
    let unlisted = city.engine.issue(&uscc(SM2), issue_request()).await.unwrap();
    let p1 = Arc::new(node_named(PROVINCE_1).await);
    p1.engine
        .sync_round(&source_named(CITY), &NodeFeed(Arc::clone(&city)), 1000)
        .await
        .unwrap();

    let p2 = node_named(PROVINCE_2).await;
    let key = operator_key();
    let view = p2
        .engine
        .adopt_trust_list(&list(3).sign(&key).unwrap(), &public_key(&key))
        .unwrap();
    assert_eq!(view.sequence, 3);
    let sources = p2.engine.recognised_sources();
    assert_eq!(
        sources.iter().map(|s| s.source.origin.as_str()).collect::<Vec<_>>(),
        [PROVINCE_1],
        "its own region is not followed"
    );
    let p1_source = &sources[0].source;
    let (size_before, _) = p2.engine.log_sizes().unwrap();
    p2.engine
        .sync_round(p1_source, &NodeFeed(Arc::clone(&p1)), 1000)
        .await
        .unwrap();

    let report = p2
        .engine
        .verify_with(&listed.bytes, &VerifyOptions { at: None, fresh: true });
    assert_eq!(report.verdict, Verdict::Valid, "{report:#?}");
    let named = report.status_source.clone().unwrap();
    assert!(
        named.contains("region 220000") && named.contains("sequence 3") && named.contains(PROVINCE_1),
        "{named}"
    );
    let report = p2
        .engine
        .verify_with(&unlisted.bytes, &VerifyOptions { at: None, fresh: false });
    assert_ne!(
        report.verdict,
        Verdict::Valid,
        "an authority the list does not name: {report:#?}"
    );
    assert!(p2.engine.authority(&uscc(SM2)).is_none());
    let (size, _) = p2.engine.log_sizes().unwrap();
    let relayed: Vec<String> = p2
        .engine
        .log_entries(size_before, size)
        .unwrap()
        .iter()
        .map(|e| String::from_utf8_lossy(e).into_owned())
        .filter(|e| e.contains("sync.applied"))
        .collect();
    assert!(
        relayed.is_empty(),
        "another region's entries are not relayed: {relayed:?}"
    );

    // Revoked in the city: INVALID at province 2 once both hops have synced.
    rescind(&city.engine, ED25519, &listed.id).await;
    two_hops(&city, &p1, &p2, p1_source).await;
    let report = p2
        .engine
        .verify_with(&listed.bytes, &VerifyOptions { at: None, fresh: true });
    assert_eq!(report.verdict, Verdict::Invalid, "{report:#?}");

    // Past the list's next update nothing it vouches for is fresh.
    let other = city.engine.issue(&uscc(ED25519), issue_request()).await.unwrap();
    two_hops(&city, &p1, &p2, p1_source).await;
    p2.clock.advance(24 * 3600);
    let report = p2
        .engine
        .verify_with(&other.bytes, &VerifyOptions { at: None, fresh: true });
    assert_eq!(report.verdict, Verdict::Indeterminate, "{report:#?}");
    assert!(
        check(&report, "status_freshness").message.contains("next update"),
        "{report:#?}"
    );
    assert!(p2.engine.trust_list().unwrap().expired);
}

#[tokio::test]
async fn forged_older_reused_and_expired_lists_are_refused_and_the_held_one_stays() {
    let p2 = node_named(PROVINCE_2).await;
    let key = operator_key();
    let public = public_key(&key);
    p2.engine
        .adopt_trust_list(&list(5).sign(&key).unwrap(), &public)
        .unwrap();

    let forger = FileKey::from_pem_file(&keys_dir().join("token-ed25519.key")).unwrap();
    let forged = list(6).sign(&forger).unwrap();
    assert!(matches!(
        p2.engine.adopt_trust_list(&forged, &public),
        Err(TrustListError::Signature(_))
    ));
    let older = list(4).sign(&key).unwrap();
    assert_eq!(
        p2.engine.adopt_trust_list(&older, &public),
        Err(TrustListError::RolledBack { got: 4, held: 5 })
    );
    let mut changed = list(5);
    changed.regions.pop();
    assert_eq!(
        p2.engine.adopt_trust_list(&changed.sign(&key).unwrap(), &public),
        Err(TrustListError::Reused(5))
    );
    let mut expired = list(7);
    expired.issued = datetime!(2026-11-20 00:00 UTC);
    expired.next_update = datetime!(2026-11-21 00:00 UTC);
    assert!(matches!(
        p2.engine.adopt_trust_list(&expired.sign(&key).unwrap(), &public),
        Err(TrustListError::Expired(_))
    ));
    // A payload changed after signing fails the signature.
    let signed = list(8).sign(&key).unwrap();
    let mut parts: Vec<String> = signed.split('.').map(str::to_owned).collect();
    parts[1] = parts[1].replacen('e', "f", 1);
    assert!(p2.engine.adopt_trust_list(&parts.join("."), &public).is_err());
    let held = p2.engine.trust_list().unwrap();
    assert_eq!(held.sequence, 5);
    assert!(
        held.refused.unwrap().contains("signature"),
        "the last refusal is kept for operators"
    );
    // A restart takes the kept list back, and still refuses the older one.
    p2.engine
        .adopt_trust_list(&list(9).sign(&key).unwrap(), &public)
        .unwrap();
    let restarted = node_named(PROVINCE_2).await;
    restarted
        .engine
        .restore_trust_list(&p2.engine.trust_list_signed().unwrap(), &public)
        .unwrap();
    assert!(matches!(
        restarted.engine.adopt_trust_list(&list(8).sign(&key).unwrap(), &public),
        Err(TrustListError::RolledBack { got: 8, held: 9 })
    ));
}

#[test]
fn a_list_with_bad_contents_is_not_signed() {
    let key = operator_key();
    let mut twice = list(1);
    twice.regions.push(region("220000", "zhengyin.example/other", &[]));
    assert!(matches!(twice.sign(&key), Err(TrustListError::Malformed(_))));
    let mut wrong_key = list(1);
    wrong_key.regions[0].logs[0].key = source_named("zhengyin.example/other").verifier.encode();
    assert!(matches!(wrong_key.sign(&key), Err(TrustListError::Malformed(_))));
    let mut no_anchor = list(1);
    no_anchor.regions[0].trust_anchors = vec!["not a certificate".to_owned()];
    assert!(matches!(no_anchor.sign(&key), Err(TrustListError::Malformed(_))));
    let mut backwards = list(1);
    backwards.next_update = backwards.issued;
    assert!(matches!(backwards.sign(&key), Err(TrustListError::Malformed(_))));
}
