//! Objections (异议) through the engine: verifiers warned until the issuer corrects the licence,
//! bad objections refused, the review limit taken from the licence type.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use serde_json::json;
use zhengyin_engine::{EngineError, UpdateRequest};
use zhengyin_model::{LicenceId, Outcome, Verdict};

mod common;
use common::*;

fn objection_request(licence: &LicenceId, fields: &[&str]) -> zhengyin_engine::FileObjection {
    serde_json::from_value(json!({
        "licence": licence.as_str(), "fields": fields, "kind": "inaccurate",
        "statement": "注册资本登记有误，应为1000万元",
        "evidence": [{"name": "验资报告.pdf", "sha256": "ab".repeat(32), "size": 1024}]
    }))
    .unwrap()
}

#[tokio::test]
async fn an_objection_warns_verifiers_until_the_issuer_corrects_the_licence() {
    use zhengyin_engine::ObjectionActor;
    use zhengyin_model::objection::{Action, Channel};
    let w = world().await;
    let issuer = uscc("11220000013544541J");
    let (licence, _) = issued(&w, issuer.as_str()).await;
    let department = "department:11100000000013338W";
    let objection = w
        .engine
        .file_objection(
            department,
            Channel::Platform,
            objection_request(&licence.id, &["capital"]),
        )
        .await
        .unwrap();
    let report = w.engine.verify(&licence.bytes, None);
    assert_eq!(
        report.verdict,
        Verdict::Valid,
        "an objection does not make a licence invalid"
    );
    let warning = check(&report, "objection");
    assert_eq!(warning.outcome, Outcome::Warning);
    assert!(warning.message.contains(&objection.id) && warning.message.contains("capital"));
    // A restarted engine knows the licence is disputed (it looks objections up only then).
    let restarted = engine_over(
        Arc::clone(&w.store),
        Arc::new(zhengyin_engine::FixedClock::new(w.engine.now())),
    )
    .await;
    let after_restart = restarted.verify(&licence.bytes, None);
    assert_eq!(check(&after_restart, "objection").message, warning.message);

    let by_issuer = ObjectionActor::Issuer(issuer.clone());
    let by_objector = ObjectionActor::Objector(department.to_owned());
    let id = objection.id.as_str();
    // Only the issuer reviews; only the objector supplies evidence.
    let other_issuer = ObjectionActor::Issuer(uscc("11100000000013338W"));
    assert!(matches!(
        w.engine.act_on_objection(id, &other_issuer, Action::Accept, "").await,
        Err(EngineError::Forbidden(_))
    ));
    assert!(matches!(
        w.engine.act_on_objection(id, &by_objector, Action::Accept, "").await,
        Err(EngineError::Forbidden(_))
    ));
    w.engine
        .act_on_objection(id, &by_issuer, Action::Accept, "")
        .await
        .unwrap();
    w.engine
        .act_on_objection(id, &by_issuer, Action::Review, "")
        .await
        .unwrap();
    w.engine
        .act_on_objection(id, &by_issuer, Action::RequestEvidence, "请提供验资报告原件")
        .await
        .unwrap();
    w.engine
        .act_on_objection(id, &by_objector, Action::SupplyEvidence, "")
        .await
        .unwrap();
    w.engine
        .act_on_objection(id, &by_issuer, Action::Extend, "需核实")
        .await
        .unwrap();
    assert!(matches!(
        w.engine.act_on_objection(id, &by_issuer, Action::Extend, "again").await,
        Err(EngineError::Objection(_))
    ));
    assert!(w.engine.deadline(&w.engine.objection(id).unwrap()).is_some());

    // The correction: a new version through the normal update path, then linked.
    let update = UpdateRequest {
        number: None,
        holder_name: None,
        valid_from: None,
        valid_until: None,
        long_term: false,
        face: Some(serde_json::from_value(json!({"company_name": "吉林示例科技有限公司", "established": "2020-02-29", "capital": 1000, "form": "有限责任公司"})).unwrap()),
        reason: format!("异议 {id} 更正"),
        seal: None,
    };
    let corrected = w.engine.update(&issuer, &licence.id, update).await.unwrap();
    assert!(matches!(
        w.engine
            .act_on_objection(
                id,
                &by_issuer,
                Action::Correct {
                    new_version: licence.id.clone()
                },
                ""
            )
            .await,
        Err(EngineError::InvalidRequest(_))
    ));
    let done = w
        .engine
        .act_on_objection(
            id,
            &by_issuer,
            Action::Correct {
                new_version: corrected.id.clone(),
            },
            "",
        )
        .await
        .unwrap();
    assert_eq!(done.workflow.state().name(), "corrected");
    assert_eq!(done.workflow.history.len(), 6);
    let report = w.engine.verify(&corrected.bytes, None);
    assert_eq!(report.verdict, Verdict::Valid);
    assert!(report.checks.iter().all(|c| c.code != "objection"));
    let old = w.engine.verify(&licence.bytes, None);
    assert!(
        old.checks.iter().all(|c| c.code != "objection"),
        "resolving clears the warning"
    );
    assert!(matches!(
        w.engine.act_on_objection(id, &by_objector, Action::Withdraw, "").await,
        Err(EngineError::Objection(_))
    ));

    // Another objection left alone past its deadline is listed as overdue; a closed one never is.
    let late = w
        .engine
        .file_objection(department, Channel::Platform, objection_request(&corrected.id, &[]))
        .await
        .unwrap();
    assert!(w.engine.overdue_objections().unwrap().is_empty());
    w.clock.advance(60 * 86400);
    let overdue: Vec<String> = w
        .engine
        .overdue_objections()
        .unwrap()
        .into_iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(overdue, [late.id]);
}

#[tokio::test]
async fn bad_objections_are_refused() {
    use zhengyin_model::objection::Channel;
    let w = world().await;
    let (licence, _) = issued(&w, "11220000013544541J").await;
    let file = |who: &'static str, req| {
        let engine = &w.engine;
        async move { engine.file_objection(who, Channel::Platform, req).await }
    };
    let dept = "department:11100000000013338W";
    assert!(file(dept, objection_request(&licence.id, &["no_such_field"]))
        .await
        .is_err());
    let unknown = licence.id.next_version().unwrap();
    assert!(matches!(
        file(dept, objection_request(&unknown, &[])).await,
        Err(EngineError::LicenceNotFound(_))
    ));
    assert!(matches!(
        file("holder:001:91110000000000000A", objection_request(&licence.id, &[])).await,
        Err(EngineError::Forbidden(_)) | Err(EngineError::InvalidRequest(_))
    ));
    let mut req = objection_request(&licence.id, &[]);
    req.statement = " ".to_owned();
    assert!(file(dept, req).await.is_err());
    let mut req = objection_request(&licence.id, &[]);
    req.evidence = vec![serde_json::from_value(json!({"name": "x"})).unwrap(); 1];
    assert!(file(dept, req).await.is_err(), "evidence without a hash or a reference");
    let mut req = objection_request(&licence.id, &[]);
    req.evidence = vec![serde_json::from_value(json!({"name": "x", "reference": "案卷 1"})).unwrap(); 21];
    assert!(file(dept, req).await.is_err(), "too many evidence items");
    // The holder itself may object to its own licence.
    assert!(
        file("holder:001:91350100M000100Y43", objection_request(&licence.id, &[]))
            .await
            .is_ok()
    );
    assert!(matches!(
        w.engine.objection("OB0"),
        Err(EngineError::ObjectionNotFound(_))
    ));
}

#[tokio::test]
async fn the_review_limit_is_the_licence_types() {
    use zhengyin_model::objection::Channel;
    let w = world().await;
    let mut quick = business_licence_type();
    quick.code = zhengyin_model::TypeCode::parse("11100000000013338W033").unwrap();
    quick.name = "食品经营许可证".to_owned();
    quick.review_days = Some(5);
    w.engine.register_licence_type(quick.clone()).await.unwrap();
    let mut req = issue_request();
    req.type_code = quick.code.clone();
    let licence = w.engine.issue(&uscc("11220000013544541J"), req).await.unwrap();
    let o = w
        .engine
        .file_objection(
            "department:d",
            Channel::Platform,
            objection_request(&licence.id, &["capital"]),
        )
        .await
        .unwrap();
    assert_eq!(o.workflow.review_days, 5);
    let (default, _) = issued(&w, "11220000013544541J").await;
    let o = w
        .engine
        .file_objection("department:d", Channel::Platform, objection_request(&default.id, &[]))
        .await
        .unwrap();
    assert_eq!(o.workflow.review_days, 15, "the default");
    // A limit of 0 or over 60 working days is refused.
    for days in [0, 61] {
        let mut bad = business_licence_type();
        bad.code = zhengyin_model::TypeCode::parse("11100000000013338W034").unwrap();
        bad.review_days = Some(days);
        assert!(w.engine.register_licence_type(bad).await.is_err(), "{days}");
    }
}
