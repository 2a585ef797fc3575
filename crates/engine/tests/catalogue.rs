//! The catalogue over a real sled store: licence-type versions, and licence numbers unique per
//! (type, issuer).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value};
use zhengyin_engine::{EngineError, IssueRequest, UpdateRequest};
use zhengyin_model::{LicenceType, Verdict};

mod common;
use common::*;

const ISSUER: &str = "11220000013544541J";

fn log_size(w: &World) -> u64 {
    use zhengyin_store::LogStore;
    w.store.log_size().unwrap().0
}

fn document(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

/// The business licence with one more required field: a change of schema.
fn with_scope() -> LicenceType {
    let mut t = business_licence_type();
    t.face_schema.push(
        serde_json::from_value(json!({"name": "scope", "label": "经营范围", "kind": "string", "required": true}))
            .unwrap(),
    );
    t
}

fn update(v: Value) -> UpdateRequest {
    serde_json::from_value(v).unwrap()
}

#[tokio::test]
async fn a_changed_schema_is_a_new_version_and_licences_keep_the_one_they_were_issued_under() {
    let w = world().await;
    let code = business_licence_type().code;
    let before = w.engine.issue(&uscc(ISSUER), issue_request()).await.unwrap();
    assert_eq!(document(&before.bytes)["type"]["version"], json!(1));

    let (v2, changed) = w.engine.register_licence_type(with_scope()).await.unwrap();
    assert!(changed);
    assert_eq!(v2.version, 2);
    let (again, changed) = w.engine.register_licence_type(with_scope()).await.unwrap();
    assert!(!changed, "the same definition again changes nothing");
    assert_eq!(again, v2);
    let versions = w.engine.licence_type_versions(&code).unwrap();
    assert_eq!(versions.iter().map(|t| t.version).collect::<Vec<_>>(), vec![1, 2]);
    assert!(versions[0].same_definition(&business_licence_type()));
    assert_eq!(w.engine.licence_type_version(&code, 1).unwrap(), versions[0]);
    assert!(matches!(
        w.engine.licence_type_version(&code, 3),
        Err(EngineError::UnknownTypeVersion { version: 3, .. })
    ));

    // New licences follow the new schema and name its version.
    let refused = w.engine.issue(&uscc(ISSUER), issue_request()).await.unwrap_err();
    assert!(refused.to_string().contains("scope"), "{refused}");
    let mut req = issue_request();
    req.face.insert("scope".to_owned(), json!("软件开发"));
    let after = w.engine.issue(&uscc(ISSUER), req).await.unwrap();
    assert_eq!(document(&after.bytes)["type"]["version"], json!(2));

    // The earlier licence still verifies, and is updated under its own version's schema.
    assert_eq!(w.engine.verify(&before.bytes, None).verdict, Verdict::Valid);
    let mut face = document(&before.bytes)["face"].clone();
    face["capital"] = json!(800);
    let next = w
        .engine
        .update(
            &uscc(ISSUER),
            &before.id,
            update(json!({"reason": "增资", "face": face})),
        )
        .await
        .unwrap();
    assert_eq!(document(&next.bytes)["type"]["version"], json!(1));
    assert_eq!(w.engine.verify(&next.bytes, None).verdict, Verdict::Valid);
}

#[tokio::test]
async fn a_binding_change_is_logged_without_a_new_version_and_versions_survive_a_restart() {
    let w = world().await;
    let code = business_licence_type().code;
    w.engine.register_licence_type(with_scope()).await.unwrap();
    let size = log_size(&w);
    let bound = w
        .engine
        .set_type_issuers(None, &code, vec![uscc(ISSUER)])
        .await
        .unwrap();
    assert_eq!((bound.version, bound.issuers.clone()), (2, vec![uscc(ISSUER)]));
    assert_eq!(log_size(&w), size + 1, "the binding change is a log entry");

    let reopened = engine_over(std::sync::Arc::clone(&w.store), std::sync::Arc::clone(&w.clock)).await;
    assert_eq!(reopened.licence_type(&code), Some(bound));
    assert_eq!(reopened.licence_type_versions(&code).unwrap().len(), 2);
}

#[tokio::test]
async fn a_licence_number_is_unique_per_type_and_issuer_across_versions_but_its_own() {
    let w = world().await;
    let numbered = |number: &str| IssueRequest {
        number: number.to_owned(),
        ..issue_request()
    };
    let first = w.engine.issue(&uscc(ISSUER), numbered("吉2026-1")).await.unwrap();
    let second = w.engine.issue(&uscc(ISSUER), numbered("吉2026-2")).await.unwrap();
    let size = log_size(&w);
    assert!(matches!(
        w.engine.issue(&uscc(ISSUER), numbered("吉2026-1")).await,
        Err(EngineError::NumberTaken { .. })
    ));
    assert_eq!(log_size(&w), size, "a refused issue signs and logs nothing");
    // Another issuer of the same type may use the number.
    w.engine
        .issue(&uscc("91350100M000100Y43"), numbered("吉2026-1"))
        .await
        .unwrap();

    // An update may not take another lineage's number, but keeps or changes its own.
    assert!(matches!(
        w.engine
            .update(
                &uscc(ISSUER),
                &second.id,
                update(json!({"reason": "更正", "number": "吉2026-1"}))
            )
            .await,
        Err(EngineError::NumberTaken { .. })
    ));
    let renumbered = w
        .engine
        .update(
            &uscc(ISSUER),
            &first.id,
            update(json!({"reason": "换号", "number": "吉2026-9"})),
        )
        .await
        .unwrap();
    let back = w
        .engine
        .update(
            &uscc(ISSUER),
            &renumbered.id,
            update(json!({"reason": "复原", "number": "吉2026-1"})),
        )
        .await
        .unwrap();
    assert_eq!(document(&back.bytes)["number"], json!("吉2026-1"));
    // The number the lineage carried once stays its own: no one else takes it.
    assert!(matches!(
        w.engine.issue(&uscc(ISSUER), numbered("吉2026-9")).await,
        Err(EngineError::NumberTaken { .. })
    ));
}
