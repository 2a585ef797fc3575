//! Key rotation and retirement for authorities: a new certificate signs from its registration
//! on, a retired key signs nothing more while what it signed stays VALID, a signature claiming
//! the retired key after its retirement is INVALID, and the retirement is logged and reaches
//! the nodes that aggregate this one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::nodes::*;
use common::*;
use serde_json::Value;
use zhengyin_engine::{Engine, EngineError, RegisterAuthority, VerifyOptions};
use zhengyin_model::Verdict;

const ED25519: &str = "11220000013544541J";

/// The certificate a licence names (`verificationMethod`).
fn signed_with(licence: &[u8]) -> String {
    let v: Value = serde_json::from_slice(licence).unwrap();
    v["proof"]["verificationMethod"].as_str().unwrap().to_owned()
}

fn verdict(engine: &Engine, licence: &[u8]) -> zhengyin_model::VerificationReport {
    engine.verify_with(licence, &VerifyOptions { at: None, fresh: false })
}

/// Registers the ed25519 authority's next certificate beside its first.
async fn rotate(engine: &Engine) {
    engine
        .register_authority(RegisterAuthority {
            uscc: ED25519.to_owned(),
            name: "示例发证机构 ed25519".to_owned(),
            level: "city".to_owned(),
            region_code: "220100".to_owned(),
            certificates: vec![chain_pem_of("authority-ed25519-next")],
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_rotated_then_retired_key_signs_nothing_more_and_what_it_signed_stays_valid() {
    let w = world().await;
    let before = w.engine.issue(&uscc(ED25519), issue_request()).await.unwrap();
    let old = signed_with(&before.bytes);
    rotate(&w.engine).await;
    let after = w.engine.issue(&uscc(ED25519), issue_request()).await.unwrap();
    let new = signed_with(&after.bytes);
    assert_ne!(old, new, "the new key signs from its registration on");

    w.clock.advance(60);
    let authority = w.engine.retire_key(&uscc(ED25519), &old, "轮换到新密钥").await.unwrap();
    assert_eq!(authority.retired.len(), 1);
    assert_eq!(authority.retired[0].certificate, old);
    for licence in [&before, &after] {
        let report = verdict(&w.engine, &licence.bytes);
        assert_eq!(report.verdict, Verdict::Valid, "{report:#?}");
    }
    let later = w.engine.issue(&uscc(ED25519), issue_request()).await.unwrap();
    assert_eq!(signed_with(&later.bytes), new);
    let (size, _) = w.engine.log_sizes().unwrap();
    let logged: Vec<Value> = w
        .engine
        .log_entries(0, size)
        .unwrap()
        .iter()
        .map(|e| serde_json::from_slice(e).unwrap())
        .filter(|e: &Value| e["event"] == "authority.key_retired")
        .collect();
    assert_eq!(logged.len(), 1);
    assert_eq!(
        (logged[0]["authority"].as_str(), logged[0]["certificate"].as_str()),
        (Some(ED25519), Some(old.as_str()))
    );

    // Refusals: again, a certificate that is not the authority's, and the last key retired.
    assert!(matches!(
        w.engine.retire_key(&uscc(ED25519), &old, "again").await,
        Err(EngineError::KeyRetired { .. })
    ));
    assert!(matches!(
        w.engine.retire_key(&uscc(ED25519), "not-a-certificate", "x").await,
        Err(EngineError::KeyNotFound { .. })
    ));
    let sm2_cert = signed_with(
        &w.engine
            .issue(&uscc("12100000400010398P"), issue_request())
            .await
            .unwrap()
            .bytes,
    );
    assert!(matches!(
        w.engine.retire_key(&uscc(ED25519), &sm2_cert, "another's").await,
        Err(EngineError::KeyNotFound { .. })
    ));
    w.engine.retire_key(&uscc(ED25519), &new, "机构撤并").await.unwrap();
    assert!(matches!(
        w.engine.issue(&uscc(ED25519), issue_request()).await,
        Err(EngineError::NoSigningKey(_))
    ));
    // Re-registering keeps the retirements: the old keys stay retired.
    rotate(&w.engine).await;
    assert_eq!(w.engine.authority(&uscc(ED25519)).unwrap().retired.len(), 2);
    assert!(matches!(
        w.engine.issue(&uscc(ED25519), issue_request()).await,
        Err(EngineError::NoSigningKey(_))
    ));
}

#[tokio::test]
async fn a_signature_with_a_retired_key_made_after_the_retirement_is_invalid_here_and_upstream() {
    // A node that retired the key, and a copy of the key elsewhere that goes on signing.
    let city = city_with("zhengyin.example/city-keys", &["ed25519"]).await;
    let rogue = city_with("zhengyin.example/rogue", &["ed25519"]).await;
    let first = city.engine.issue(&uscc(ED25519), issue_request()).await.unwrap();
    let old = signed_with(&first.bytes);
    rotate(&city.engine).await;
    city.clock.advance(60);
    city.engine.retire_key(&uscc(ED25519), &old, "密钥泄露").await.unwrap();
    rogue.clock.advance(120);
    let forged = rogue.engine.issue(&uscc(ED25519), issue_request()).await.unwrap();
    assert_eq!(signed_with(&forged.bytes), old);
    let report = verdict(&city.engine, &forged.bytes);
    assert_eq!(report.verdict, Verdict::Invalid, "{report:#?}");
    assert!(check(&report, "certificate").message.contains("retired"), "{report:#?}");
    assert_eq!(verdict(&city.engine, &first.bytes).verdict, Verdict::Valid);

    // The province that aggregates the city learns of the retirement from its log.
    let province = node_named("zhengyin.example/province-keys").await;
    province
        .engine
        .sync_round(
            &source_named("zhengyin.example/city-keys"),
            &NodeFeed(Arc::clone(&city)),
            1000,
        )
        .await
        .unwrap();
    assert_eq!(province.engine.authority(&uscc(ED25519)).unwrap().retired.len(), 1);
    let report = verdict(&province.engine, &forged.bytes);
    assert!(check(&report, "certificate").message.contains("retired"), "{report:#?}");
    assert_eq!(verdict(&province.engine, &first.bytes).verdict, Verdict::Valid);
}
