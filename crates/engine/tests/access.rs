//! Authorised use (一证一接口) through the engine: grants, the uniform lookup, data checks,
//! fetches, holder authorisations and use records, over a real store and real signatures.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use serde_json::{json, Map, Value};
use zhengyin_engine::{AuthoriseRequest, EngineError, GrantActor, GrantApplication, UseContext, UseRefusal};
use zhengyin_model::{GrantState, HolderCodeType, HolderRef, ServiceItem, TypeCode, UseOperation, UseOutcome};

const DEPT: &str = "220100-market-approval";
const TYPE: &str = "11100000000013338W032";
/// The authority that defines the business-licence type.
const DEFINER: &str = "11100000000013338W";
const ITEM: &str = "220100-FOOD-001";

fn type_code() -> TypeCode {
    TypeCode::parse(TYPE).unwrap()
}

fn ctx(authorisation: Option<&str>) -> UseContext {
    UseContext {
        service_item: ITEM.to_owned(),
        use_cause: "办理食品经营许可，核验营业执照".to_owned(),
        authorisation: authorisation.map(str::to_owned),
    }
}

fn holder() -> HolderRef {
    HolderRef {
        code_type: HolderCodeType::Uscc,
        code: "91350100M000100Y43".to_owned(),
    }
}

fn application(fields: &[&str], requires_authorisation: bool, w: &World) -> GrantApplication {
    GrantApplication {
        type_code: TYPE.to_owned(),
        fields: fields.iter().map(|f| (*f).to_owned()).collect(),
        service_items: vec![ITEM.to_owned()],
        requires_authorisation,
        purpose: "《食品经营许可和备案管理办法》第十二条".to_owned(),
        until: w.engine.now() + time::Duration::days(30),
    }
}

async fn with_items(w: &World) {
    for code in [ITEM, "220100-OTHER-002"] {
        w.engine
            .register_service_item(ServiceItem {
                code: code.to_owned(),
                name: "食品经营许可".to_owned(),
            })
            .await
            .unwrap();
    }
}

/// A world with the service items, one issued licence and an approved grant for `fields`.
async fn granted(fields: &[&str], requires_authorisation: bool) -> (World, String, String) {
    let w = world().await;
    with_items(&w).await;
    let (licence, _) = issued(&w, "11220000013544541J").await;
    let grant = w
        .engine
        .apply_for_grant(DEPT, application(fields, requires_authorisation, &w))
        .await
        .unwrap();
    w.engine
        .change_grant(
            &grant.id,
            &GrantActor::Authority(uscc(DEFINER)),
            GrantState::Approved,
            None,
        )
        .await
        .unwrap();
    (w, licence.id.to_string(), grant.id)
}

fn refusal(e: EngineError) -> UseRefusal {
    match e {
        EngineError::UseRefused(r) => r,
        other => panic!("expected a use refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn grants_are_applied_for_and_decided_by_the_defining_authority() {
    let w = world().await;
    with_items(&w).await;
    let grant = w
        .engine
        .apply_for_grant(DEPT, application(&["company_name"], false, &w))
        .await
        .unwrap();
    assert_eq!(grant.state, GrantState::Applied);
    // Another authority, and the department itself, may not approve.
    for actor in [
        GrantActor::Authority(uscc("11220000013544541J")),
        GrantActor::Department(DEPT.to_owned()),
    ] {
        let e = w
            .engine
            .change_grant(&grant.id, &actor, GrantState::Approved, None)
            .await;
        assert!(matches!(e, Err(EngineError::Forbidden(_))), "{actor:?}: {e:?}");
    }
    // Rejection needs a reason.
    let e = w
        .engine
        .change_grant(&grant.id, &GrantActor::Operator, GrantState::Rejected, None)
        .await;
    assert!(matches!(e, Err(EngineError::InvalidRequest(_))), "{e:?}");
    let approved = w
        .engine
        .change_grant(
            &grant.id,
            &GrantActor::Authority(uscc(DEFINER)),
            GrantState::Approved,
            None,
        )
        .await
        .unwrap();
    assert_eq!(approved.history.len(), 2);
    let e = w
        .engine
        .change_grant(&grant.id, &GrantActor::Operator, GrantState::Approved, None)
        .await;
    assert!(matches!(e, Err(EngineError::GrantConflict { .. })), "{e:?}");
    // Applications naming unknown fields, items or types are refused.
    let mut bad = application(&["no_such_field"], false, &w);
    assert!(w.engine.apply_for_grant(DEPT, bad.clone()).await.is_err());
    bad.fields = vec!["company_name".into()];
    bad.service_items = vec!["NOPE".into()];
    assert!(matches!(
        w.engine.apply_for_grant(DEPT, bad.clone()).await,
        Err(EngineError::UseRefused(UseRefusal::UnknownServiceItem(_)))
    ));
    bad.service_items = vec![ITEM.into()];
    bad.until = w.engine.now();
    assert!(w.engine.apply_for_grant(DEPT, bad).await.is_err());
    // Each actor sees its own.
    assert_eq!(w.engine.grants_for(&GrantActor::Department(DEPT.into())).len(), 1);
    assert_eq!(w.engine.grants_for(&GrantActor::Department("other".into())).len(), 0);
    assert_eq!(w.engine.grants_for(&GrantActor::Authority(uscc(DEFINER))).len(), 1);
    assert_eq!(
        w.engine
            .grants_for(&GrantActor::Authority(uscc("11220000013544541J")))
            .len(),
        0
    );
}

#[tokio::test]
async fn a_lookup_returns_only_granted_fields_and_is_recorded_before_the_answer() {
    let (w, id, grant) = granted(&["company_name", "number"], false).await;
    let answer = w
        .engine
        .lookup_by_id(DEPT, &type_code(), &id, &ctx(None))
        .await
        .unwrap();
    let licence = &answer.licences[0];
    assert_eq!(licence["id"], json!(id));
    assert_eq!(licence["status"], json!("valid"));
    assert_eq!(licence["face"], json!({"company_name": "吉林示例科技有限公司"}));
    let signed: serde_json::Value = serde_json::from_slice(
        &w.engine
            .licence(&zhengyin_model::LicenceId::parse(&id).unwrap())
            .unwrap()
            .bytes,
    )
    .unwrap();
    assert_eq!(licence["number"], signed["number"]);
    assert!(licence.get("holder.name").is_none() && licence.get("holder").is_none());
    assert!(!licence.to_string().contains("established") && !licence.to_string().contains("91350100M000100Y43"));

    let records = w.engine.use_records_of_holder(&holder(), None, 100).unwrap();
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r.id, answer.use_record);
    assert_eq!(
        (r.department.as_str(), r.operation, r.outcome),
        (DEPT, UseOperation::LookupById, UseOutcome::Answered)
    );
    assert_eq!(r.grant.as_deref(), Some(grant.as_str()));
    assert_eq!(r.use_cause, ctx(None).use_cause);
    assert_eq!(r.licences[0].to_string(), id);

    // A missing identifier and one of another type: "not found", and still recorded.
    let other_type = zhengyin_model::LicenceId::parse(&id).unwrap();
    let other_type = zhengyin_model::LicenceId::new(
        TypeCode::parse("11100000000013338W033").unwrap(),
        other_type.issuer().clone(),
        other_type.serial(),
        zhengyin_model::Version::FIRST,
    )
    .unwrap()
    .to_string();
    for probe in [unissued(TYPE), other_type] {
        let probe = probe.as_str();
        let e = w.engine.lookup_by_id(DEPT, &type_code(), probe, &ctx(None)).await;
        assert!(matches!(e, Err(EngineError::LicenceNotFound(_))), "{probe}: {e:?}");
    }
    let by_dept = w.engine.use_records(Some(DEPT.into()), None, None, None, 100).unwrap();
    assert!(by_dept.len() >= 2 && by_dept.iter().skip(1).all(|r| r.outcome == UseOutcome::NotFound));
}

#[tokio::test]
async fn without_a_live_grant_existing_and_missing_identifiers_get_the_same_refusal() {
    let w = world().await;
    with_items(&w).await;
    let (licence, _) = issued(&w, "11220000013544541J").await;
    let id = licence.id.to_string();
    let missing = unissued(TYPE);
    let existing = refusal(
        w.engine
            .lookup_by_id(DEPT, &type_code(), &id, &ctx(None))
            .await
            .unwrap_err(),
    );
    let absent = w
        .engine
        .lookup_by_id(DEPT, &type_code(), &missing, &ctx(None))
        .await
        .unwrap_err();
    assert_eq!(existing, UseRefusal::NoGrant);
    assert_eq!(refusal(absent), UseRefusal::NoGrant);
    let malformed = w
        .engine
        .lookup_by_id(DEPT, &type_code(), "1.2.3", &ctx(None))
        .await
        .unwrap_err();
    assert_eq!(
        refusal(malformed),
        UseRefusal::NoGrant,
        "the grant is checked before the identifier is parsed"
    );
    assert!(w.engine.use_records(None, None, None, None, 100).unwrap().is_empty());

    // An applied (not approved), then withdrawn, then expired grant: still no access.
    let grant = w
        .engine
        .apply_for_grant(DEPT, application(&["number"], false, &w))
        .await
        .unwrap();
    assert_eq!(
        refusal(
            w.engine
                .lookup_by_id(DEPT, &type_code(), &id, &ctx(None))
                .await
                .unwrap_err()
        ),
        UseRefusal::NoGrant
    );
    w.engine
        .change_grant(&grant.id, &GrantActor::Operator, GrantState::Approved, None)
        .await
        .unwrap();
    assert!(w.engine.lookup_by_id(DEPT, &type_code(), &id, &ctx(None)).await.is_ok());
    w.clock.advance(31 * 86_400);
    assert_eq!(
        refusal(
            w.engine
                .lookup_by_id(DEPT, &type_code(), &id, &ctx(None))
                .await
                .unwrap_err()
        ),
        UseRefusal::NoGrant,
        "expired"
    );
    let (w, id, grant) = granted(&["number"], false).await;
    w.engine
        .change_grant(
            &grant,
            &GrantActor::Department(DEPT.into()),
            GrantState::Withdrawn,
            Some("项目结束".into()),
        )
        .await
        .unwrap();
    assert_eq!(
        refusal(
            w.engine
                .lookup_by_id(DEPT, &type_code(), &id, &ctx(None))
                .await
                .unwrap_err()
        ),
        UseRefusal::NoGrant,
        "withdrawn"
    );
    // A grant for another department lets this one in nowhere.
    assert_eq!(
        refusal(
            w.engine
                .lookup_by_id("other-dept", &type_code(), &id, &ctx(None))
                .await
                .unwrap_err()
        ),
        UseRefusal::NoGrant
    );
}

#[tokio::test]
async fn use_cause_and_service_item_are_checked_on_every_call() {
    let (w, id, _) = granted(&["number"], false).await;
    let mut c = ctx(None);
    for cause in ["", "   ", &"事".repeat(201)] {
        c.use_cause = cause.to_owned();
        assert!(matches!(
            refusal(w.engine.lookup_by_id(DEPT, &type_code(), &id, &c).await.unwrap_err()),
            UseRefusal::UseCause(_)
        ));
    }
    c.use_cause = "事".repeat(200);
    assert!(w.engine.lookup_by_id(DEPT, &type_code(), &id, &c).await.is_ok());
    c.service_item = "NOT-REGISTERED".into();
    assert!(matches!(
        refusal(w.engine.lookup_by_id(DEPT, &type_code(), &id, &c).await.unwrap_err()),
        UseRefusal::UnknownServiceItem(_)
    ));
    c.service_item = "220100-OTHER-002".into();
    assert!(matches!(
        refusal(w.engine.lookup_by_id(DEPT, &type_code(), &id, &c).await.unwrap_err()),
        UseRefusal::ServiceItemNotGranted(_)
    ));
}

#[tokio::test]
async fn lookup_by_holder_finds_current_versions_and_filters_by_number() {
    let (w, id, _) = granted(&["company_name", "number"], false).await;
    let answer = w
        .engine
        .lookup_by_holder(DEPT, &type_code(), &holder(), None, &ctx(None))
        .await
        .unwrap();
    assert_eq!(answer.licences.len(), 1);
    assert_eq!(answer.licences[0]["id"], json!(id));
    let none = w
        .engine
        .lookup_by_holder(DEPT, &type_code(), &holder(), Some("JL-OTHER"), &ctx(None))
        .await
        .unwrap();
    assert!(none.licences.is_empty());
    let nobody = HolderRef {
        code_type: HolderCodeType::Uscc,
        code: "91110000600037341L".into(),
    };
    assert!(w
        .engine
        .lookup_by_holder(DEPT, &type_code(), &nobody, None, &ctx(None))
        .await
        .unwrap()
        .licences
        .is_empty());
    let mut bad = nobody;
    bad.code = "91110000600037341X".into();
    assert!(matches!(
        w.engine
            .lookup_by_holder(DEPT, &type_code(), &bad, None, &ctx(None))
            .await,
        Err(EngineError::Identifier(_))
    ));
    // An update: the holder lookup gives the new version only.
    let updated = w
        .engine
        .update(
            &uscc("11220000013544541J"),
            &zhengyin_model::LicenceId::parse(&id).unwrap(),
            update_request(),
        )
        .await
        .unwrap();
    let answer = w
        .engine
        .lookup_by_holder(DEPT, &type_code(), &holder(), None, &ctx(None))
        .await
        .unwrap();
    assert_eq!(answer.licences.len(), 1);
    assert_eq!(answer.licences[0]["id"], json!(updated.id.to_string()));
    // The old version by id says it is superseded, and by what.
    let old = w
        .engine
        .lookup_by_id(DEPT, &type_code(), &id, &ctx(None))
        .await
        .unwrap();
    assert_eq!(old.licences[0]["status"], json!("superseded"));
    assert_eq!(old.licences[0]["superseded_by"], json!(updated.id.to_string()));
}

fn update_request() -> zhengyin_engine::UpdateRequest {
    serde_json::from_value(json!({
        "face": {"company_name": "吉林示例科技有限公司", "established": "2020-02-29", "capital": 800, "form": "有限责任公司"},
        "reason": "增资"
    }))
    .unwrap()
}

/// A well-formed identifier no licence has.
fn unissued(type_code: &str) -> String {
    zhengyin_model::LicenceId::new(
        TypeCode::parse(type_code).unwrap(),
        uscc("11220000013544541J"),
        "ZZZZZZ",
        zhengyin_model::Version::FIRST,
    )
    .unwrap()
    .to_string()
}

#[tokio::test]
async fn a_data_check_says_match_or_mismatch_and_never_returns_stored_values() {
    let (w, id, _) = granted(&["company_name", "capital"], false).await;
    let claims: Map<String, Value> =
        serde_json::from_value(json!({"company_name": "吉林示例科技有限公司", "capital": 600})).unwrap();
    let answer = w
        .engine
        .check_claims(DEPT, &type_code(), &id, &claims, &ctx(None))
        .await
        .unwrap();
    assert_eq!(
        answer.licences[0]["results"],
        json!({"company_name": "match", "capital": "mismatch"})
    );
    assert!(
        !answer.licences[0].to_string().contains("500"),
        "the stored capital is not revealed"
    );
    let records = w.engine.use_records_of_holder(&holder(), None, 10).unwrap();
    assert_eq!(records.last().unwrap().operation, UseOperation::Check);

    let ungranted: Map<String, Value> = serde_json::from_value(json!({"established": "2020-02-29"})).unwrap();
    assert_eq!(
        refusal(
            w.engine
                .check_claims(DEPT, &type_code(), &id, &ungranted, &ctx(None))
                .await
                .unwrap_err()
        ),
        UseRefusal::FieldNotGranted("established".into())
    );
    let unknown: Map<String, Value> = serde_json::from_value(json!({"colour": "red"})).unwrap();
    assert!(matches!(
        w.engine
            .check_claims(DEPT, &type_code(), &id, &unknown, &ctx(None))
            .await,
        Err(EngineError::InvalidRequest(_))
    ));
    assert!(w
        .engine
        .check_claims(DEPT, &type_code(), &id, &Map::new(), &ctx(None))
        .await
        .is_err());
}

#[tokio::test]
async fn fetching_the_signed_licence_needs_a_grant_for_every_field() {
    let (w, id, _) = granted(&["company_name"], false).await;
    assert_eq!(
        refusal(
            w.engine
                .fetch_for_use(DEPT, &type_code(), &id, &ctx(None))
                .await
                .unwrap_err()
        ),
        UseRefusal::FieldsInsufficient
    );
    let (w, id, _) = granted(
        &[
            "company_name",
            "established",
            "capital",
            "form",
            "number",
            "holder.name",
            "holder.code",
        ],
        false,
    )
    .await;
    let (licence, record) = w
        .engine
        .fetch_for_use(DEPT, &type_code(), &id, &ctx(None))
        .await
        .unwrap();
    assert!(w.engine.verify(&licence.bytes, None).verdict == zhengyin_model::Verdict::Valid);
    assert!(record.starts_with("UR"));
}

#[tokio::test]
async fn holder_authorisations_open_and_close_uses() {
    let (w, id, _) = granted(&["company_name"], true).await;
    // The grant requires the holder's authorisation.
    assert_eq!(
        refusal(
            w.engine
                .lookup_by_id(DEPT, &type_code(), &id, &ctx(None))
                .await
                .unwrap_err()
        ),
        UseRefusal::AuthorisationRequired
    );
    let request = |department: &str| AuthoriseRequest {
        licence: id.clone(),
        department: department.to_owned(),
        service_item: ITEM.to_owned(),
        until: w.engine.now() + time::Duration::days(7),
    };
    // Only the holder authorises uses of its licences.
    let stranger = HolderRef {
        code_type: HolderCodeType::Uscc,
        code: "91110000600037341L".into(),
    };
    assert!(matches!(
        w.engine.authorise(&stranger, request(DEPT)).await,
        Err(EngineError::Forbidden(_))
    ));
    let authorisation = w.engine.authorise(&holder(), request(DEPT)).await.unwrap();
    let for_other = w.engine.authorise(&holder(), request("other-dept")).await.unwrap();
    let ok = w
        .engine
        .lookup_by_id(DEPT, &type_code(), &id, &ctx(Some(&authorisation.id)))
        .await
        .unwrap();
    assert_eq!(ok.licences.len(), 1);
    let by_holder = w
        .engine
        .lookup_by_holder(DEPT, &type_code(), &holder(), None, &ctx(Some(&authorisation.id)))
        .await
        .unwrap();
    assert_eq!(by_holder.licences.len(), 1);
    // Another department's authorisation, an unknown one: refused.
    for wrong in [for_other.id.as_str(), "AU0000000000009999"] {
        assert_eq!(
            refusal(
                w.engine
                    .lookup_by_id(DEPT, &type_code(), &id, &ctx(Some(wrong)))
                    .await
                    .unwrap_err()
            ),
            UseRefusal::AuthorisationInvalid
        );
    }
    // A stranger cannot withdraw it; the holder can, and the next call is refused.
    assert!(matches!(
        w.engine.withdraw_authorisation(&stranger, &authorisation.id).await,
        Err(EngineError::AuthorisationNotFound(_))
    ));
    w.engine
        .withdraw_authorisation(&holder(), &authorisation.id)
        .await
        .unwrap();
    assert_eq!(
        refusal(
            w.engine
                .lookup_by_id(DEPT, &type_code(), &id, &ctx(Some(&authorisation.id)))
                .await
                .unwrap_err()
        ),
        UseRefusal::AuthorisationInvalid
    );
    // An expired authorisation is refused too (the grant, 30 days, is still live).
    let week = w.engine.authorise(&holder(), request(DEPT)).await.unwrap();
    assert!(w
        .engine
        .lookup_by_id(DEPT, &type_code(), &id, &ctx(Some(&week.id)))
        .await
        .is_ok());
    w.clock.advance(8 * 86_400);
    assert_eq!(
        refusal(
            w.engine
                .lookup_by_id(DEPT, &type_code(), &id, &ctx(Some(&week.id)))
                .await
                .unwrap_err()
        ),
        UseRefusal::AuthorisationInvalid
    );
    let mine = w.engine.authorisations_of(&holder()).unwrap();
    assert_eq!(mine.len(), 3);
    assert!(w.engine.authorisations_of(&stranger).unwrap().is_empty());
}

#[tokio::test]
async fn use_records_are_listed_per_holder_and_per_period_only() {
    let (w, id, _) = granted(&["number"], false).await;
    let t0 = w.engine.now();
    w.engine
        .lookup_by_id(DEPT, &type_code(), &id, &ctx(None))
        .await
        .unwrap();
    w.clock.advance(3600);
    let t1 = w.engine.now();
    w.engine
        .lookup_by_id(DEPT, &type_code(), &id, &ctx(None))
        .await
        .unwrap();
    let all = w.engine.use_records(None, None, None, None, 100).unwrap();
    assert_eq!(all.len(), 2);
    let first_hour = w.engine.use_records(None, Some(t0), Some(t1), None, 100).unwrap();
    assert_eq!(first_hour.len(), 1);
    assert_eq!(first_hour[0].time, t0);
    let later = w
        .engine
        .use_records(Some(DEPT.into()), Some(t1), None, None, 100)
        .unwrap();
    assert_eq!(later.len(), 1);
    let paged = w
        .engine
        .use_records(None, None, None, Some(all[0].id.clone()), 100)
        .unwrap();
    assert_eq!(paged, all[1..]);
    let stranger = HolderRef {
        code_type: HolderCodeType::Uscc,
        code: "91110000600037341L".into(),
    };
    assert!(w.engine.use_records_of_holder(&stranger, None, 100).unwrap().is_empty());
    // Each commit of uses is a log entry committing to its records: an auditor recomputes it.
    w.engine.settle_use_records().await.unwrap();
    let entries = w.engine.log_entries(0, 1000).unwrap();
    let used: Vec<Value> = entries
        .iter()
        .map(|e| serde_json::from_slice::<Value>(e).unwrap())
        .filter(|e| e["event"] == "licence.used")
        .collect();
    assert!(!used.is_empty(), "the uses are committed to the log");
    assert_eq!(
        used.iter().map(|e| e["count"].as_u64().unwrap()).sum::<u64>(),
        all.len() as u64,
        "every record in exactly one entry"
    );
    for entry in &used {
        let covered: Vec<_> = all
            .iter()
            .filter(|r| {
                r.id.as_str() >= entry["first"].as_str().unwrap() && r.id.as_str() <= entry["last"].as_str().unwrap()
            })
            .collect();
        assert_eq!(covered.len() as u64, entry["count"].as_u64().unwrap());
        let concatenated: Vec<u8> = covered
            .iter()
            .flat_map(|r| {
                let jcs = zhengyin_model::canonical::to_canonical(&serde_json::to_value(r).unwrap()).unwrap();
                zhengyin_crypto::hash::sha256(&jcs)
            })
            .collect();
        assert_eq!(
            entry["records_sha256"],
            json!(zhengyin_crypto::hash::sha256_hex(&concatenated))
        );
    }
    assert!(
        entries.iter().all(|e| !String::from_utf8_lossy(e).contains("办理")),
        "no use cause in the log"
    );
}

#[tokio::test]
async fn a_presentation_is_scanned_once_before_it_expires() {
    use zhengyin_engine::presentation::PresentationRefusal;
    let (w, id, _) = granted(&["number"], false).await;
    let scan_refusal = |e: EngineError| match e {
        EngineError::Presentation(r) => r,
        other => panic!("expected a presentation refusal, got {other:?}"),
    };
    // Only the holder presents its licence, for at most 10 minutes.
    let stranger = HolderRef {
        code_type: HolderCodeType::Uscc,
        code: "91110000600037341L".into(),
    };
    assert!(matches!(
        w.engine.present(&stranger, &id, None).await,
        Err(EngineError::Forbidden(_))
    ));
    assert!(w
        .engine
        .present(&holder(), &id, Some(time::Duration::minutes(11)))
        .await
        .is_err());
    let shown = w.engine.present(&holder(), &id, None).await.unwrap();
    assert!(shown.token.len() < 400, "fits a small QR code: {}", shown.token.len());

    // A department scans it (no grant needed: the holder shows it), stating its purpose.
    let answer = w.engine.scan(DEPT, &ctx(None), &shown.token).await.unwrap();
    assert_eq!(answer.licence.id.to_string(), id);
    assert_eq!(answer.report.verdict, zhengyin_model::Verdict::Valid);
    let records = w.engine.use_records_of_holder(&holder(), None, 10).unwrap();
    let scan = records.iter().find(|r| r.id == answer.use_record).unwrap();
    assert_eq!(scan.operation, UseOperation::Scan);
    // Replayed: refused.
    assert_eq!(
        scan_refusal(w.engine.scan(DEPT, &ctx(None), &shown.token).await.unwrap_err()),
        PresentationRefusal::Used
    );

    // Expired: refused.
    let later = w
        .engine
        .present(&holder(), &id, Some(time::Duration::minutes(1)))
        .await
        .unwrap();
    w.clock.advance(61);
    assert_eq!(
        scan_refusal(w.engine.scan(DEPT, &ctx(None), &later.token).await.unwrap_err()),
        PresentationRefusal::Expired
    );

    // Altered, or not a presentation token of this node: refused, and nothing consumed.
    let fresh = w.engine.present(&holder(), &id, None).await.unwrap();
    let mut parts: Vec<String> = fresh.token.split('.').map(str::to_owned).collect();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: Value = serde_json::from_slice(&b64.decode(&parts[1]).unwrap()).unwrap();
    claims["exp"] = json!(claims["exp"].as_i64().unwrap() + 3600);
    parts[1] = b64.encode(claims.to_string());
    let altered = parts.join(".");
    let holder_jwt = zhengyin_engine::identity::mint_holder_token(
        &zhengyin_crypto::FileKey::from_pem_file(&keys_dir().join("token-ed25519.key")).unwrap(),
        &zhengyin_engine::identity::HolderTokenClaims {
            issuer: "x",
            audience: "zhengyin",
            holder: &holder(),
            issued_at: w.engine.now(),
            lifetime: time::Duration::minutes(5),
            nonce: None,
        },
    )
    .unwrap();
    for bad in [
        altered.as_str(),
        holder_jwt.as_str(),
        "",
        "a.b.c",
        &fresh.token[..fresh.token.len() - 2],
    ] {
        assert_eq!(
            scan_refusal(w.engine.scan(DEPT, &ctx(None), bad).await.unwrap_err()),
            PresentationRefusal::Invalid,
            "{bad:.30}"
        );
    }
    assert!(
        w.engine.scan(DEPT, &ctx(None), &fresh.token).await.is_ok(),
        "the genuine token still works once"
    );
    // A scan states its purpose like any use.
    let fresh = w.engine.present(&holder(), &id, None).await.unwrap();
    let mut no_cause = ctx(None);
    no_cause.use_cause.clear();
    assert!(matches!(
        w.engine.scan(DEPT, &no_cause, &fresh.token).await,
        Err(EngineError::UseRefused(_))
    ));
}

#[tokio::test]
async fn an_annotated_copy_verifies_offline_until_it_expires() {
    use zhengyin_engine::annotated::verify_annotated_copy;
    use zhengyin_model::Verdict;
    let (w, id, _) = granted(&["number"], false).await;
    let until = w.engine.now() + time::Duration::days(7);
    let stranger = HolderRef {
        code_type: HolderCodeType::Uscc,
        code: "91110000600037341L".into(),
    };
    assert!(matches!(
        w.engine
            .annotate(&stranger, &id, "仅供办理企业银行开户使用", until)
            .await,
        Err(EngineError::Forbidden(_))
    ));
    assert!(
        w.engine.annotate(&holder(), &id, "", until).await.is_err(),
        "a use cause is required"
    );
    assert!(w
        .engine
        .annotate(&holder(), &id, "x", w.engine.now() + time::Duration::days(91))
        .await
        .is_err());
    let copy = w
        .engine
        .annotate(&holder(), &id, "仅供办理企业银行开户使用", until)
        .await
        .unwrap();
    let report = w.engine.verify_annotated(&copy);
    assert_eq!(report.verdict, Verdict::Valid, "{report:#?}");

    // Offline: the node's token public key and the licence verified offline (chain given).
    let token_key = zhengyin_crypto::FileKey::from_pem_file(&keys_dir().join("token-ed25519.key")).unwrap();
    let public = zhengyin_crypto::Signer::public_key(&token_key).clone();
    let offline = |copy: &[u8], key: Option<&zhengyin_crypto::PublicKey>, now| {
        verify_annotated_copy(copy, key, now, |licence| {
            zhengyin_engine::verify_offline(licence, anchors(), &[chain_pem("ed25519")], Vec::new(), now, None).unwrap()
        })
    };
    let report = offline(&copy, Some(&public), w.engine.now());
    assert_eq!(
        report.verdict,
        Verdict::Indeterminate,
        "offline, the licence's status is unknown: {report:#?}"
    );
    assert!(report
        .checks
        .iter()
        .any(|c| c.code == "copy_signature" && c.outcome == zhengyin_model::Outcome::Passed));
    assert_eq!(offline(&copy, None, w.engine.now()).verdict, Verdict::Indeterminate);

    // A changed use cause, another key: the copy's signature fails.
    let text = String::from_utf8(copy.clone()).unwrap();
    let changed = text
        .replace("仅供办理企业银行开户使用", "仅供办理任何业务使用")
        .into_bytes();
    assert_eq!(w.engine.verify_annotated(&changed).verdict, Verdict::Invalid);
    let other = zhengyin_crypto::FileKey::from_pem_file(&keys_dir().join("log-ed25519.key")).unwrap();
    let report = offline(&copy, Some(zhengyin_crypto::Signer::public_key(&other)), w.engine.now());
    assert_eq!(report.verdict, Verdict::Invalid);
    // Malformed input: INVALID with a format failure, never a panic.
    for junk in [&b"{}"[..], b"[]", b"not json", br#"{"type":"AnnotatedCopy"}"#] {
        assert_eq!(w.engine.verify_annotated(junk).verdict, Verdict::Invalid);
    }

    // Refused after expiry.
    w.clock.advance(8 * 86_400);
    let report = w.engine.verify_annotated(&copy);
    assert_eq!(report.verdict, Verdict::Invalid);
    assert!(report
        .checks
        .iter()
        .any(|c| c.code == "copy_validity" && c.outcome == zhengyin_model::Outcome::Failed));
}

#[tokio::test]
async fn use_record_ids_keep_growing_across_a_restart_even_if_the_clock_went_back() {
    let (w, id, _) = granted(&["number"], false).await;
    let before = w
        .engine
        .lookup_by_id(DEPT, &type_code(), &id, &ctx(None))
        .await
        .unwrap();
    // A restarted engine over the same store, its clock an hour behind (the first one has
    // stopped committing: one engine commits to a store at a time).
    w.engine.settle_use_records().await.unwrap();
    let behind = std::sync::Arc::new(zhengyin_engine::FixedClock::new(
        w.engine.now() - time::Duration::hours(1),
    ));
    let restarted = engine_over(std::sync::Arc::clone(&w.store), behind).await;
    let after = restarted
        .lookup_by_id(DEPT, &type_code(), &id, &ctx(None))
        .await
        .unwrap();
    assert!(
        after.use_record > before.use_record,
        "{} then {}",
        before.use_record,
        after.use_record
    );
    let records = restarted.use_records_of_holder(&holder(), None, 10).unwrap();
    assert_eq!(records.len(), 2);
}
