//! The engine's licence use cases end to end over a real sled store, the example PKI and real
//! keys (e-seals and objections have files of their own: seals.rs, objections.rs).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use serde_json::{json, Value};
use time::macros::datetime;
use zhengyin_crypto::{FileKey, Signer};
use zhengyin_engine::{EngineError, IssueRequest, RegisterAuthority, RevokeRequest, SuspendRequest, UpdateRequest};
use zhengyin_model::{LicenceId, Outcome, RevocationReason, Verdict, VerificationReport};

mod common;
use common::*;

#[tokio::test]
async fn every_cryptosuite_issues_and_verifies() {
    let w = world().await;
    for (alg, issuer) in ALGS {
        let licence = w.engine.issue(&uscc(issuer), issue_request()).await.unwrap();
        let doc: Value = serde_json::from_slice(&licence.bytes).unwrap();
        let suite = doc["proof"]["cryptosuite"].as_str().unwrap();
        let report = w.engine.verify(&licence.bytes, None);
        assert_eq!(report.verdict, Verdict::Valid, "{alg} {suite}: {report:#?}");
        assert_eq!(report.licence_id.as_deref(), Some(licence.id.as_str()));
        assert!(LicenceId::parse(doc["id"].as_str().unwrap()).is_ok());
        assert_eq!(doc["proof"]["proofValue"].as_str().unwrap().chars().next(), Some('z'));
        // The stored bytes are the canonical form, byte for byte.
        assert_eq!(w.engine.licence(&licence.id).unwrap().bytes, licence.bytes);
    }
}

#[tokio::test]
async fn any_changed_byte_is_never_valid() {
    let w = world().await;
    for (_, issuer) in ALGS {
        let licence = w.engine.issue(&uscc(issuer), issue_request()).await.unwrap();
        let bytes = licence.bytes;
        // Verified once, so its signature is in the verified-signature cache: a cache hit must
        // never make a licence that differs in one byte VALID.
        assert_eq!(w.engine.verify(&bytes, None).verdict, Verdict::Valid);
        // Every byte position, one bit flipped: never VALID, never a panic.
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            let report = w.engine.verify(&bad, None);
            assert_ne!(
                report.verdict,
                Verdict::Valid,
                "byte {i} ({:?}) changed, still VALID",
                bytes[i] as char
            );
        }
        assert_eq!(w.engine.verify(&bytes, None).verdict, Verdict::Valid);
    }
    let stats = w.engine.signature_cache_stats();
    assert!(
        stats.hits >= 4,
        "the unchanged licences were answered from the cache: {stats:?}"
    );
}

#[tokio::test]
async fn reformatted_json_still_verifies_but_changed_content_does_not() {
    let w = world().await;
    let (licence, value) = issued(&w, "11220000013544541J").await;
    // Pretty-printed (non-canonical whitespace and order-preserving) is the same JSON: VALID.
    let pretty = serde_json::to_vec_pretty(&value).unwrap();
    assert_eq!(w.engine.verify(&pretty, None).verdict, Verdict::Valid);
    let mut changed = value.clone();
    changed["face"]["capital"] = json!(5000);
    let report = w.engine.verify(&serde_json::to_vec(&changed).unwrap(), None);
    assert_eq!(report.verdict, Verdict::Invalid);
    assert_eq!(check(&report, "signature").outcome, Outcome::Failed);
    // An extra member is refused as malformed.
    let mut extra = value.clone();
    extra["note"] = json!("x");
    assert_eq!(
        w.engine.verify(&serde_json::to_vec(&extra).unwrap(), None).verdict,
        Verdict::Invalid
    );
    // Duplicate members cannot be canonicalised without doubt.
    let text = String::from_utf8(licence.bytes.clone()).unwrap();
    let dup = text.replacen(
        "{\"defining_authority\"",
        "{\"defining_authority\":\"x\",\"defining_authority\"",
        1,
    );
    let report = w.engine.verify(dup.as_bytes(), None);
    assert_eq!(report.verdict, Verdict::Invalid);
    assert_eq!(check(&report, "format").outcome, Outcome::Failed);
}

#[tokio::test]
async fn wrong_key_unknown_suite_and_unknown_certificate() {
    let w = world().await;
    let (_, value) = issued(&w, "11220000013544541J").await;
    let (_, other) = issued(&w, "11100000000013338W").await;

    // Claims another authority's certificate: the signature cannot verify under that key.
    let mut wrong = value.clone();
    wrong["proof"]["verificationMethod"] = other["proof"]["verificationMethod"].clone();
    wrong["proof"]["cryptosuite"] = other["proof"]["cryptosuite"].clone();
    let report = w.engine.verify(&serde_json::to_vec(&wrong).unwrap(), None);
    assert_eq!(report.verdict, Verdict::Invalid, "{report:#?}");

    let mut suite = value.clone();
    suite["proof"]["cryptosuite"] = json!("eddsa-rdfc-2022");
    let report = w.engine.verify(&serde_json::to_vec(&suite).unwrap(), None);
    assert_eq!(report.verdict, Verdict::Indeterminate);
    assert_eq!(check(&report, "cryptosuite").outcome, Outcome::Indeterminate);

    let mut unknown = value.clone();
    unknown["proof"]["verificationMethod"] = json!("urn:zhengyin:cert:sha256:00");
    assert_eq!(
        w.engine.verify(&serde_json::to_vec(&unknown).unwrap(), None).verdict,
        Verdict::Indeterminate
    );

    let mut future = value.clone();
    future["proof"]["created"] = json!("2030-01-01T00:00:00Z");
    let report = w.engine.verify(&serde_json::to_vec(&future).unwrap(), None);
    assert_eq!(report.verdict, Verdict::Invalid);
    assert_eq!(check(&report, "signing_time").outcome, Outcome::Failed);
}

#[tokio::test]
async fn a_signature_made_after_the_certificate_expired_is_invalid() {
    let w = world().await;
    // Forge what a stolen key could do after expiry: sign a licence dated 2036 with the real key.
    let key = FileKey::from_pem_file(&keys_dir().join("authority-ed25519.key")).unwrap();
    let licence = w
        .engine
        .issue(&uscc("11220000013544541J"), issue_request())
        .await
        .unwrap();
    let mut value: Value = serde_json::from_slice(&licence.bytes).unwrap();
    value["proof"]["created"] = json!("2036-01-01T00:00:00Z");
    let mut proof = value["proof"].clone();
    proof.as_object_mut().unwrap().remove("proofValue");
    let mut document = value.clone();
    document.as_object_mut().unwrap().remove("proof");
    let input = zhengyin_model::SigningInput::from_values(&document, &proof).unwrap();
    let suite = zhengyin_crypto::Cryptosuite::EddsaJcs2022;
    let sig = key
        .sign(&suite.hash_data(&input.proof_config, &input.document))
        .unwrap();
    value["proof"]["proofValue"] = json!(zhengyin_crypto::suite::encode_proof_value(&sig));
    w.clock.advance(10 * 365 * 86400);
    let report = w.engine.verify(&serde_json::to_vec(&value).unwrap(), None);
    assert_eq!(check(&report, "signature").outcome, Outcome::Passed);
    assert_eq!(check(&report, "certificate").outcome, Outcome::Failed, "{report:#?}");
    assert_eq!(report.verdict, Verdict::Invalid);
    // And the engine itself refuses to sign with the expired certificate.
    assert!(matches!(
        w.engine.issue(&uscc("11220000013544541J"), issue_request()).await,
        Err(EngineError::Certificate(_))
    ));
}

/// A licence presented again is neither parsed nor canonicalised again (the prepared-licence
/// cache), yet everything that can change is checked every time: status, the evaluation time,
/// and a report identical to one made without the cache.
#[tokio::test]
async fn a_licence_presented_again_is_prepared_once_and_its_status_still_checked() {
    let w = world().await;
    let uncached = engine_over(Arc::clone(&w.store), Arc::clone(&w.clock))
        .await
        .with_prepared_cache(0)
        .with_signature_cache(0);
    let issuer = uscc("12100000400010398P");
    let licence = w.engine.issue(&issuer, issue_request()).await.unwrap();
    let before = w.engine.prepared_cache_stats();
    let first = w.engine.verify(&licence.bytes, None);
    let second = w.engine.verify(&licence.bytes, None);
    assert_eq!(first.verdict, Verdict::Valid, "{first:#?}");
    assert_eq!(second, first);
    assert_eq!(
        uncached.verify(&licence.bytes, None),
        first,
        "the same report without caches"
    );
    let after = w.engine.prepared_cache_stats();
    assert_eq!(after.misses - before.misses, 1, "parsed once: {after:?}");
    assert_eq!(after.hits - before.hits, 1, "then answered from the cache: {after:?}");

    w.clock.advance(60);
    let req = RevokeRequest {
        reason: RevocationReason::Withdrawn,
        effective: None,
        note: "违法经营".to_owned(),
    };
    w.engine.revoke(&issuer, &licence.id, req).await.unwrap();
    let revoked = w.engine.verify(&licence.bytes, None);
    assert_eq!(revoked.verdict, Verdict::Invalid, "{revoked:#?}");
    assert!(check(&revoked, "status").message.contains("revoked"));
    assert_eq!(uncached.verify(&licence.bytes, None), revoked);
    let earlier = w.engine.verify(&licence.bytes, Some(first.evaluated_at));
    assert_eq!(earlier.verdict, Verdict::Valid, "evaluated before the revocation");
    assert_eq!(
        w.engine.prepared_cache_stats().misses,
        after.misses,
        "all from the cache"
    );
}

#[tokio::test]
async fn revocation_is_reported_and_time_aware() {
    let w = world().await;
    let issuer = uscc("12100000400010398P");
    let licence = w.engine.issue(&issuer, issue_request()).await.unwrap();
    w.clock.advance(3600);
    let req = || RevokeRequest {
        reason: RevocationReason::Withdrawn,
        effective: None,
        note: "违法经营".to_owned(),
    };
    let revoked = w.engine.revoke(&issuer, &licence.id, req()).await.unwrap();
    let again = w.engine.revoke(&issuer, &licence.id, req()).await.unwrap();
    assert_eq!(revoked.status, again.status, "revoking twice changes nothing");
    let report = w.engine.verify(&licence.bytes, None);
    assert_eq!(report.verdict, Verdict::Invalid);
    assert!(check(&report, "status").message.contains("revoked"));
    let before = w.engine.verify(&licence.bytes, Some(datetime!(2026-11-22 08:30 UTC)));
    assert_eq!(
        before.verdict,
        Verdict::Valid,
        "valid before the revocation took effect"
    );
    let update = UpdateRequest {
        number: None,
        holder_name: None,
        valid_from: None,
        valid_until: None,
        long_term: false,
        face: None,
        reason: "x".to_owned(),
        seal: None,
    };
    assert!(matches!(
        w.engine.update(&issuer, &licence.id, update).await,
        Err(EngineError::StatusConflict { .. })
    ));
    assert!(matches!(
        w.engine
            .suspend(&issuer, &licence.id, SuspendRequest { reason: "x".into() })
            .await,
        Err(EngineError::StatusConflict { .. })
    ));
}

#[tokio::test]
async fn updates_make_a_new_version_and_supersede_the_old() {
    let w = world().await;
    let issuer = uscc("11100000000013338W");
    let v1 = w.engine.issue(&issuer, issue_request()).await.unwrap();
    let mut face = issue_request().face;
    face.insert("capital".to_owned(), json!(1000));
    let req = UpdateRequest {
        number: None,
        holder_name: Some("吉林示例科技股份有限公司".to_owned()),
        valid_from: None,
        valid_until: None,
        long_term: true,
        face: Some(face),
        reason: "增资".to_owned(),
        seal: None,
    };
    let v2 = w.engine.update(&issuer, &v1.id, req.clone()).await.unwrap();
    assert_eq!(v2.id.version().to_string(), "002");
    assert_eq!(v2.id.lineage(), v1.id.lineage());
    let doc: Value = serde_json::from_slice(&v2.bytes).unwrap();
    assert_eq!(doc["valid_until"], Value::Null);
    assert_eq!(doc["face"]["capital"], 1000);
    assert_eq!(w.engine.verify(&v2.bytes, None).verdict, Verdict::Valid);
    let old = w.engine.verify(&v1.bytes, None);
    assert_eq!(old.verdict, Verdict::Invalid);
    assert!(check(&old, "status").message.contains("superseded"));
    assert!(matches!(
        w.engine.update(&issuer, &v1.id, req.clone()).await,
        Err(EngineError::StatusConflict { .. })
    ));
    let revoke = RevokeRequest {
        reason: RevocationReason::Cancelled,
        effective: None,
        note: String::new(),
    };
    assert!(matches!(
        w.engine.revoke(&issuer, &v1.id, revoke).await,
        Err(EngineError::Superseded { .. })
    ));
    // Bad face data in an update is refused and nothing changes.
    let mut bad = req;
    bad.face = Some(serde_json::from_value(json!({"company_name": 1})).unwrap());
    assert!(matches!(
        w.engine.update(&issuer, &v2.id, bad).await,
        Err(EngineError::Schema(_))
    ));
    assert_eq!(w.engine.verify(&v2.bytes, None).verdict, Verdict::Valid);
}

#[tokio::test]
async fn suspend_and_reinstate() {
    let w = world().await;
    let issuer = uscc("91350100M000100Y43");
    let l = w.engine.issue(&issuer, issue_request()).await.unwrap();
    w.engine
        .suspend(
            &issuer,
            &l.id,
            SuspendRequest {
                reason: "核查中".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(w.engine.verify(&l.bytes, None).verdict, Verdict::Invalid);
    assert!(w
        .engine
        .suspend(&issuer, &l.id, SuspendRequest { reason: "x".into() })
        .await
        .is_err());
    w.clock.advance(60);
    w.engine.reinstate(&issuer, &l.id).await.unwrap();
    assert_eq!(w.engine.verify(&l.bytes, None).verdict, Verdict::Valid);
    assert!(w.engine.reinstate(&issuer, &l.id).await.is_err());
}

#[tokio::test]
async fn bad_requests_are_refused_with_their_reason() {
    let w = world().await;
    let issuer = uscc("11220000013544541J");
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = serde_json::to_value(json!({
            "type_code": "11100000000013338W032",
            "number": "N1",
            "holder": {"name": "x", "code": "91350100M000100Y43", "code_type": "001"},
            "face": {"company_name": "x", "established": "2020-01-01"}
        }))
        .unwrap();
        f(&mut v);
        serde_json::from_value::<IssueRequest>(v)
    };
    assert!(
        with(&|v| v["type_code"] = json!("11100000000013338W03X")).is_err(),
        "bad type code"
    );
    type Expect = fn(&EngineError) -> bool;
    let cases: Vec<(IssueRequest, Expect)> = vec![
        (
            with(&|v| v["holder"]["code"] = json!("91350100M000100Y44")).unwrap(),
            |e| matches!(e, EngineError::Identifier(_)),
        ),
        (with(&|v| v["holder"]["code_type"] = json!("111")).unwrap(), |e| {
            matches!(e, EngineError::InvalidRequest(_))
        }),
        (with(&|v| v["face"]["capital"] = json!("many")).unwrap(), |e| {
            matches!(e, EngineError::Schema(_))
        }),
        (with(&|v| v["face"] = json!({})).unwrap(), |e| {
            matches!(e, EngineError::Schema(_))
        }),
        (
            with(&|v| v["type_code"] = json!("11100000000013338W033")).unwrap(),
            |e| matches!(e, EngineError::UnknownLicenceType(_)),
        ),
        (with(&|v| v["valid_until"] = json!("2001-01-01")).unwrap(), |e| {
            matches!(e, EngineError::InvalidRequest(_))
        }),
        (with(&|v| v["valid_from"] = json!("2001-02-30")).unwrap(), |e| {
            matches!(e, EngineError::InvalidRequest(_))
        }),
        (with(&|v| v["number"] = json!("")).unwrap(), |e| {
            matches!(e, EngineError::InvalidRequest(_))
        }),
    ];
    for (req, expected) in cases {
        let err = w.engine.issue(&issuer, req.clone()).await.unwrap_err();
        assert!(expected(&err), "{req:?}: {err}");
    }
    let stranger = uscc("91110000MA01ABCDEX");
    assert!(matches!(
        w.engine.issue(&stranger, issue_request()).await,
        Err(EngineError::UnknownAuthority(_))
    ));
    let l = w.engine.issue(&issuer, issue_request()).await.unwrap();
    let other = uscc("11100000000013338W");
    let revoke = RevokeRequest {
        reason: RevocationReason::Cancelled,
        effective: None,
        note: String::new(),
    };
    assert!(matches!(
        w.engine.revoke(&other, &l.id, revoke).await,
        Err(EngineError::NotIssuer(_))
    ));
}

#[tokio::test]
async fn authorities_need_a_chain_to_a_trust_anchor() {
    let w = world().await;
    let register = |pem: String| RegisterAuthority {
        uscc: "91110000MA01ABCDEX".to_owned(),
        name: "x".to_owned(),
        level: "county".to_owned(),
        region_code: "110101".to_owned(),
        certificates: vec![pem],
    };
    let test_only =
        |name: &str| read(&keys_dir().join("test-only").join(name)) + &read(&keys_dir().join("issuing-ca.pem"));
    for bad in [
        "expired.pem",
        "not-yet-valid.pem",
        "wrong-usage.pem",
        "ca-as-leaf.pem",
        "untrusted.pem",
    ] {
        let err = w.engine.register_authority(register(test_only(bad))).await.unwrap_err();
        assert!(matches!(err, EngineError::Certificate(_)), "{bad}: {err}");
    }
    // Without the intermediate, the leaf does not chain.
    let leaf_only = read(&keys_dir().join("authority-p256.pem"));
    assert!(w.engine.register_authority(register(leaf_only)).await.is_err());
    let mut bad_uscc = register(chain_pem("p256"));
    bad_uscc.uscc = "91110000MA01ABCDE0".to_owned();
    assert!(matches!(
        w.engine.register_authority(bad_uscc).await,
        Err(EngineError::Identifier(_))
    ));
    // A certificate already registered to another authority is refused.
    assert!(w.engine.register_authority(register(chain_pem("p256"))).await.is_err());
}

#[tokio::test]
async fn a_restarted_engine_knows_everything_it_acknowledged() {
    let w = world().await;
    let licence = w
        .engine
        .issue(&uscc("11220000013544541J"), issue_request())
        .await
        .unwrap();
    let World {
        engine,
        clock,
        store,
        _dir,
    } = w;
    drop(engine);
    let engine = engine_over(Arc::clone(&store), clock).await;
    assert_eq!(engine.verify(&licence.bytes, None).verdict, Verdict::Valid);
    assert_eq!(engine.authorities().len(), 4);
    assert_eq!(engine.licence_types().len(), 1);
}

#[tokio::test]
async fn a_licence_from_another_node_is_indeterminate_here() {
    let a = world().await;
    let b = world().await;
    let licence = a
        .engine
        .issue(&uscc("11220000013544541J"), issue_request())
        .await
        .unwrap();
    let report = b.engine.verify(&licence.bytes, None);
    assert_eq!(check(&report, "signature").outcome, Outcome::Passed);
    assert_eq!(
        report.verdict,
        Verdict::Indeterminate,
        "no status record here: never VALID"
    );
}

#[tokio::test]
async fn every_signing_event_is_logged_and_provable_against_a_signed_checkpoint() {
    use zhengyin_tlog::{open_checkpoint, verify_consistency, verify_inclusion, LeafIndex, NoteVerifier, TreeSize};
    let w = world().await;
    // Four authorities and the catalogue's types registered: an entry each.
    let registered = w.engine.log_entries(0, 100).unwrap();
    let events: Vec<String> = registered
        .iter()
        .map(|e| {
            serde_json::from_slice::<Value>(e).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(events.iter().filter(|e| *e == "authority.registered").count(), 4);
    assert!(events.iter().any(|e| e == "licence_type.registered"), "{events:?}");
    let b = registered.len() as u64;
    let issuer = uscc("11220000013544541J");
    let l = w.engine.issue(&issuer, issue_request()).await.unwrap();
    assert_eq!(l.log_index, Some(b));
    let revoke = RevokeRequest {
        reason: RevocationReason::Cancelled,
        effective: None,
        note: "歇业".to_owned(),
    };
    let revoked = w.engine.revoke(&issuer, &l.id, revoke.clone()).await.unwrap();
    assert_eq!(revoked.log_index, Some(b + 1));
    assert_eq!(
        w.engine.revoke(&issuer, &l.id, revoke).await.unwrap().log_index,
        None,
        "nothing changed, nothing logged"
    );

    let entries = w.engine.log_entries(0, b + 2).unwrap();
    let at = |i: u64| entries[usize::try_from(i).unwrap()].clone();
    let issued: Value = serde_json::from_slice(&at(b)).unwrap();
    assert_eq!(issued["event"], "licence.issued");
    assert_eq!(issued["licence"], l.id.as_str());
    assert_eq!(issued["licence_sha256"], zhengyin_crypto::hash::sha256_hex(&l.bytes));
    let text = String::from_utf8(at(b + 1)).unwrap();
    assert!(
        text.contains("licence.revoked") && !text.contains("歇业"),
        "notes only as hashes: {text}"
    );
    assert!(
        !String::from_utf8(at(b)).unwrap().contains("91350100M000100Y43"),
        "no holder code in the log"
    );

    let verifier = NoteVerifier::parse(&w.engine.log_verifier().unwrap()).unwrap();
    let note = w.engine.publish_checkpoint().await.unwrap().unwrap();
    assert!(
        w.engine.publish_checkpoint().await.unwrap().is_none(),
        "no new entries, no new checkpoint"
    );
    let cp6 = open_checkpoint(&note, &verifier).unwrap();
    assert_eq!(cp6.size, TreeSize(b + 2));
    for (i, e) in entries.iter().enumerate() {
        let proof = w.engine.inclusion_proof(i as u64, b + 2).unwrap();
        verify_inclusion(
            LeafIndex(i as u64),
            cp6.size,
            &zhengyin_tlog::leaf_hash(e),
            &proof,
            &cp6.root,
        )
        .unwrap();
        assert_eq!(
            w.engine.log_index_of(&zhengyin_tlog::leaf_hash(e)).unwrap(),
            Some(LeafIndex(i as u64))
        );
    }
    w.engine.issue(&issuer, issue_request()).await.unwrap();
    let cp7 = open_checkpoint(&w.engine.publish_checkpoint().await.unwrap().unwrap(), &verifier).unwrap();
    let proof = w.engine.consistency_proof(b + 2, b + 3).unwrap();
    verify_consistency(cp6.size, cp7.size, &proof, &cp6.root, &cp7.root).unwrap();
    assert!(w.engine.inclusion_proof(b + 3, b + 3).is_err());
    assert!(w.engine.inclusion_proof(0, b + 4).is_err(), "beyond the log");
    assert!(w.engine.consistency_proof(0, b + 3).is_err());
    assert!(w.engine.consistency_proof(b + 3, b + 2).is_err());
    assert!(w.engine.log_entries(5, 4).is_err());
}

/// A batch mixing every kind of licence: each report is the one a single verification gives,
/// whether the batch equation held, failed (one bad signature among good ones) or the cache
/// answered.
#[tokio::test]
async fn a_batch_reports_each_licence_as_a_single_verification_would() {
    let w = world().await;
    let cold = engine_over(Arc::clone(&w.store), Arc::clone(&w.clock))
        .await
        .with_signature_cache(0);
    let mut good = Vec::new();
    for _ in 0..6 {
        good.push(issued(&w, "11220000013544541J").await.0.bytes);
    }
    for (_, issuer) in &ALGS[1..] {
        good.push(issued(&w, issuer).await.0.bytes);
    }
    let revoked = issued(&w, "11220000013544541J").await.0;
    let req = RevokeRequest {
        reason: RevocationReason::Cancelled,
        effective: None,
        note: "注销".to_owned(),
    };
    w.engine
        .revoke(&uscc("11220000013544541J"), &revoked.id, req)
        .await
        .unwrap();
    let mut bad_signature: Value = serde_json::from_slice(&good[2]).unwrap();
    let proof_value = bad_signature["proof"]["proofValue"].as_str().unwrap().to_owned();
    let flipped = if proof_value.ends_with('2') { '3' } else { '2' };
    bad_signature["proof"]["proofValue"] = json!(format!("{}{flipped}", &proof_value[..proof_value.len() - 1]));
    let mut changed: Value = serde_json::from_slice(&good[3]).unwrap();
    changed["holder"]["name"] = json!("另一家公司");
    let mixed: Vec<Vec<u8>> = good
        .iter()
        .cloned()
        .chain([
            revoked.bytes.clone(),
            serde_json::to_vec(&bad_signature).unwrap(),
            serde_json::to_vec(&changed).unwrap(),
            b"{not json".to_vec(),
            b"[]".to_vec(),
        ])
        .collect();
    let refs: Vec<&[u8]> = mixed.iter().map(Vec::as_slice).collect();

    let single: Vec<VerificationReport> = refs.iter().map(|l| cold.verify(l, None)).collect();
    let verdicts: Vec<Verdict> = single.iter().map(|r| r.verdict).collect();
    let mut expected = vec![Verdict::Valid; good.len()];
    expected.extend([Verdict::Invalid; 5]);
    assert_eq!(verdicts, expected);

    // The good licences alone: one batch equation holds for the six Ed25519 signatures.
    let good_refs = &refs[..good.len()];
    assert_eq!(
        cold.verify_batch(good_refs, &zhengyin_engine::VerifyOptions::default()),
        single[..good.len()]
    );
    let stats = cold.batch_stats();
    assert_eq!((stats.passed, stats.failed, stats.signatures), (1, 0, 6));

    // With a bad Ed25519 signature in it the equation fails, and each is checked alone.
    assert_eq!(
        cold.verify_batch(&refs, &zhengyin_engine::VerifyOptions::default()),
        single
    );
    assert_eq!(cold.batch_stats().failed, 1);

    // Through the cache: the first batch fills it with single checks, the second is answered from it.
    assert_eq!(
        w.engine.verify_batch(&refs, &zhengyin_engine::VerifyOptions::default()),
        single
    );
    let hits = w.engine.signature_cache_stats().hits;
    assert_eq!(
        w.engine.verify_batch(&refs, &zhengyin_engine::VerifyOptions::default()),
        single
    );
    assert!(w.engine.signature_cache_stats().hits >= hits + good.len() as u64);

    // Evaluated at another time: the revoked licence was valid before its revocation.
    let before = Some(datetime!(2026-11-22 07:00 UTC));
    let at: Vec<VerificationReport> = refs.iter().map(|l| cold.verify(l, before)).collect();
    assert_eq!(
        cold.verify_batch(
            &refs,
            &zhengyin_engine::VerifyOptions {
                at: before,
                fresh: false
            }
        ),
        at
    );
    assert!(cold
        .verify_batch(&[], &zhengyin_engine::VerifyOptions::default())
        .is_empty());
}

/// Licences that share everything but one byte, in one batch with their originals: never VALID.
#[tokio::test]
async fn a_batch_never_lets_a_changed_byte_through() {
    let w = world().await;
    let cold = engine_over(Arc::clone(&w.store), Arc::clone(&w.clock))
        .await
        .with_signature_cache(0);
    let a = issued(&w, "11220000013544541J").await.0.bytes;
    let b = issued(&w, "11220000013544541J").await.0.bytes;
    for i in (0..a.len()).step_by(7) {
        let mut bad = a.clone();
        bad[i] ^= 0x01;
        let reports = cold.verify_batch(&[&a, &bad, &b], &zhengyin_engine::VerifyOptions::default());
        assert_eq!(reports[0].verdict, Verdict::Valid);
        assert_ne!(
            reports[1].verdict,
            Verdict::Valid,
            "byte {i} changed, still VALID in a batch"
        );
        assert_eq!(reports[2].verdict, Verdict::Valid);
    }
}

#[tokio::test]
async fn certificates_revoked_by_a_crl_are_refused_as_the_reason_requires() {
    let w = world().await;
    let (ed25519, _) = issued(&w, "11220000013544541J").await;
    let (p256, _) = issued(&w, "11100000000013338W").await;
    for l in [&ed25519, &p256] {
        assert_eq!(w.engine.verify(&l.bytes, None).verdict, Verdict::Valid);
    }
    // Garbage, and a CRL no trusted CA signed, are refused.
    assert!(w.engine.add_crl(b"not a CRL").await.is_err());
    let crl = read(&keys_dir().join("test-only/issuing-ca-revocations.crl.pem"));
    let mut forged = zhengyin_crypto::pem::decode_label(&crl, "X509 CRL")
        .unwrap()
        .remove(0)
        .to_vec();
    let at = forged.len() / 2;
    forged[at] ^= 1;
    assert!(matches!(
        w.engine.add_crl(&forged).await,
        Err(EngineError::Certificate(_))
    ));

    let summary = w.engine.add_crl(crl.as_bytes()).await.unwrap();
    assert_eq!(summary.revoked, 2);
    assert!(
        w.engine.add_crl(crl.as_bytes()).await.is_err(),
        "not newer than the one held"
    );
    // Key compromise: even licences signed before the revocation are INVALID.
    let report = w.engine.verify(&ed25519.bytes, None);
    assert_eq!(report.verdict, Verdict::Invalid);
    assert!(
        check(&report, "certificate").message.contains("key compromise"),
        "{report:#?}"
    );
    // Superseded after signing: the signature stands, with a warning.
    let report = w.engine.verify(&p256.bytes, None);
    assert_eq!(report.verdict, Verdict::Valid, "{report:#?}");
    assert_eq!(check(&report, "revocation").outcome, Outcome::Warning);
    // A revoked certificate signs nothing more.
    for issuer in ["11220000013544541J", "11100000000013338W"] {
        assert!(matches!(
            w.engine.issue(&uscc(issuer), issue_request()).await,
            Err(EngineError::Certificate(_))
        ));
    }
    assert!(
        w.engine
            .issue(&uscc("12100000400010398P"), issue_request())
            .await
            .is_ok(),
        "others still sign"
    );
    // After a restart the CRL is still held.
    let restarted = engine_over(std::sync::Arc::clone(&w.store), std::sync::Arc::clone(&w.clock)).await;
    assert_eq!(restarted.crls().len(), 1);
    assert_eq!(restarted.verify(&ed25519.bytes, None).verdict, Verdict::Invalid);
}
