//! E-seals through the engine: made, applied, verified and revoked on the record; bad requests
//! refused; an SM2 licence naming its authority's seal; a signer certificate revoked by a CRL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use serde_json::{json, Value};
use time::macros::datetime;
use zhengyin_engine::{Clock, EngineError, MakeSealRequest, PictureRequest};
use zhengyin_model::{Outcome, SealState, Verdict};

mod common;
use common::*;

fn log_size(w: &World) -> u64 {
    zhengyin_store::LogStore::log_size(&*w.store).unwrap().0
}

fn seal_request() -> MakeSealRequest {
    use base64::Engine as _;
    MakeSealRequest {
        name: "吉林示例科技有限公司合同专用章".to_owned(),
        seal_type: 1,
        holder: serde_json::from_value(
            json!({"name": "吉林示例科技有限公司", "code": "91350100M000100Y43", "code_type": "001"}),
        )
        .unwrap(),
        valid_start: datetime!(2026-01-01 00:00 UTC),
        valid_end: datetime!(2030-01-01 00:00 UTC),
        signer_certificates: vec![chain_pem("sm2")],
        picture: PictureRequest {
            kind: "PNG".to_owned(),
            data_base64: base64::engine::general_purpose::STANDARD.encode(b"\x89PNG\r\n\x1a\nexample"),
            width: 40,
            height: 40,
        },
    }
}

#[tokio::test]
async fn seals_are_made_applied_verified_and_revoked_on_the_record() {
    let w = world().await;
    let size = log_size(&w);
    let seal = w.engine.make_seal(seal_request()).await.unwrap();
    assert_eq!(w.engine.seal(&seal.record.es_id).unwrap(), seal);
    let report = w.engine.verify_seal(&seal.der, None);
    assert_eq!(report.verdict, Verdict::Valid, "{report:#?}");

    let document = b"<ofd:Signature/>";
    let sm3 = zhengyin_crypto::hash::sm3(document);
    let signature = w
        .engine
        .apply_seal(&seal.record.es_id, sm3, "/Doc_0/Signs/Sign_0/Signature.xml")
        .await
        .unwrap();
    let data = zhengyin_ses::verify::Protected::Bytes(document);
    let report = w.engine.verify_sealed(&signature, data);
    assert_eq!(report.verdict, Verdict::Valid, "{report:#?}");
    let other = w
        .engine
        .verify_sealed(&signature, zhengyin_ses::verify::Protected::Bytes(b"changed"));
    assert_eq!(other.verdict, Verdict::Invalid);

    // Made, applied: two log entries.
    assert_eq!(log_size(&w), size + 2);

    w.clock.advance(60);
    let es_id = seal.record.es_id.clone();
    let suspended = w
        .engine
        .change_seal_status(
            &es_id,
            SealState::Suspended {
                reason: "核查".into()
            },
        )
        .await
        .unwrap();
    assert_eq!(suspended.status.latest().map(SealState::name), Some("suspended"));
    assert!(matches!(
        w.engine.apply_seal(&es_id, sm3, "/x").await,
        Err(EngineError::SealStatusConflict { .. })
    ));
    assert_eq!(w.engine.verify_sealed(&signature, data).verdict, Verdict::Invalid);
    w.engine.change_seal_status(&es_id, SealState::Active).await.unwrap();
    assert_eq!(w.engine.verify_sealed(&signature, data).verdict, Verdict::Valid);
    w.clock.advance(60);
    let lost = SealState::Revoked {
        reason: "遗失".into()
    };
    let revoked = w.engine.change_seal_status(&es_id, lost.clone()).await.unwrap();
    assert_eq!(
        w.engine.change_seal_status(&es_id, lost).await.unwrap(),
        revoked,
        "revoking twice changes nothing"
    );
    assert!(matches!(
        w.engine.change_seal_status(&es_id, SealState::Active).await,
        Err(EngineError::SealStatusConflict { .. })
    ));
    let report = w.engine.verify_sealed(&signature, data);
    assert_eq!(report.verdict, Verdict::Invalid);
    assert!(report
        .checks
        .iter()
        .any(|c| c.code == "seal_status" && c.message.contains("遗失")));
    assert_eq!(log_size(&w), size + 5, "every status change is logged");
    // A restarted engine reads the same seal.
    let again = engine_over(Arc::clone(&w.store), Arc::clone(&w.clock)).await;
    assert_eq!(again.seal(&es_id).unwrap(), revoked);
}

#[tokio::test]
async fn bad_seal_requests_are_refused() {
    let w = world().await;
    let mut bad = Vec::new();
    let mut r = seal_request();
    r.signer_certificates = vec![chain_pem("ed25519")];
    bad.push(("non-SM2 signer", r));
    let mut r = seal_request();
    r.signer_certificates = vec![];
    bad.push(("no signer", r));
    let mut r = seal_request();
    r.signer_certificates = vec![read(&keys_dir().join("test-only/untrusted.pem"))];
    bad.push(("untrusted signer", r));
    let mut r = seal_request();
    r.picture.kind = "GIF".to_owned();
    bad.push(("GIF", r));
    let mut r = seal_request();
    r.picture.data_base64 = "not base64!".to_owned();
    bad.push(("bad base64", r));
    let mut r = seal_request();
    {
        use base64::Engine as _;
        r.picture.data_base64 =
            base64::engine::general_purpose::STANDARD.encode(vec![0x89; zhengyin_engine::MAX_PICTURE_BYTES + 1]);
    }
    bad.push(("oversized picture", r));
    let mut r = seal_request();
    r.picture.data_base64 = "iVBORw==".to_owned();
    bad.push(("not a PNG", r));
    let mut r = seal_request();
    r.valid_end = r.valid_start;
    bad.push(("empty validity", r));
    let mut r = seal_request();
    r.holder.code = "91350100M000100Y44".to_owned();
    bad.push(("holder code with a wrong check character", r));
    let mut r = seal_request();
    r.seal_type = 9;
    bad.push(("seal type", r));
    for (what, req) in bad {
        assert!(w.engine.make_seal(req).await.is_err(), "{what} accepted");
    }
    assert!(matches!(w.engine.seal("ZY0"), Err(EngineError::SealNotFound(_))));
    assert!(matches!(
        w.engine.apply_seal("ZY0", [0; 32], "/x").await,
        Err(EngineError::SealNotFound(_))
    ));
}

#[tokio::test]
async fn an_sm2_licence_names_its_authoritys_seal_and_verification_checks_it() {
    let w = world().await;
    let sm2 = "12100000400010398P";
    let mut req = seal_request();
    req.holder = serde_json::from_value(json!({"name": "示例事业单位", "code": sm2, "code_type": "001"})).unwrap();
    let seal = w.engine.make_seal(req).await.unwrap();
    let es_id = seal.record.es_id.clone();

    let mut issue = issue_request();
    issue.seal = Some(es_id.clone());
    let licence = w.engine.issue(&uscc(sm2), issue.clone()).await.unwrap();
    let doc: Value = serde_json::from_slice(&licence.bytes).unwrap();
    assert_eq!(doc["proof"]["seal"], es_id.as_str());
    let report = w.engine.verify(&licence.bytes, None);
    assert_eq!(report.verdict, Verdict::Valid, "{report:#?}");
    assert_eq!(check(&report, "seal").outcome, Outcome::Passed);

    // Other authorities cannot name it; non-SM2 licences name no seal; unknown seals are refused.
    assert!(w
        .engine
        .issue(&uscc("11220000013544541J"), issue.clone())
        .await
        .is_err());
    let mut unknown = issue_request();
    unknown.seal = Some("ZY404".to_owned());
    assert!(matches!(
        w.engine.issue(&uscc(sm2), unknown).await,
        Err(EngineError::SealNotFound(_))
    ));

    // The seal revoked: the licence that names it is no longer VALID (as of now), and no new
    // licence can name it.
    w.clock.advance(60);
    w.engine
        .change_seal_status(
            &es_id,
            SealState::Revoked {
                reason: "法定代表人变更".into(),
            },
        )
        .await
        .unwrap();
    let report = w.engine.verify(&licence.bytes, None);
    assert_eq!(report.verdict, Verdict::Invalid);
    assert!(check(&report, "seal").message.contains("revoked"));
    let before = w
        .engine
        .verify(&licence.bytes, Some(w.clock.now() - time::Duration::seconds(30)));
    assert_eq!(before.verdict, Verdict::Valid, "valid as of before the revocation");
    assert!(w.engine.issue(&uscc(sm2), issue).await.is_err());
}

#[tokio::test]
async fn a_sealed_signature_by_a_revoked_signer_certificate_is_invalid() {
    let w = world().await;
    let seal = w.engine.make_seal(seal_request()).await.unwrap();
    let document = b"<ofd:Signature/>";
    let signature = w
        .engine
        .apply_seal(
            &seal.record.es_id,
            zhengyin_crypto::hash::sm3(document),
            "/Doc_0/Signs/Sign_0/Signature.xml",
        )
        .await
        .unwrap();
    let data = zhengyin_ses::verify::Protected::Bytes(document);
    assert_eq!(w.engine.verify_sealed(&signature, data).verdict, Verdict::Valid);
    // The SM2 authority's key is compromised (the later CRL): its sealed signatures fail.
    let crl = read(&keys_dir().join("test-only/issuing-ca-revocations-later.crl.pem"));
    w.engine.add_crl(crl.as_bytes()).await.unwrap();
    let report = w
        .engine
        .verify_sealed(&signature, zhengyin_ses::verify::Protected::Bytes(document));
    assert_eq!(report.verdict, Verdict::Invalid);
    assert!(
        check(&report, "signer_certificate").message.contains("revoked"),
        "{report:#?}"
    );
    // And a newer CRL replaces an older one, never the reverse.
    let older = read(&keys_dir().join("test-only/issuing-ca-revocations.crl.pem"));
    assert!(w.engine.add_crl(older.as_bytes()).await.is_err());
}
