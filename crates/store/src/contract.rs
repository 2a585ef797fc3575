//! The contract every [`Store`] backend must pass. Call [`run`] on a fresh, empty store from the
//! backend's tests; it returns the first broken rule.

use time::macros::datetime;
use zhengyin_model::{
    Authority, HolderCodeType, LicenceId, LicenceType, RevocationReason, Status, StatusChange, StatusHistory, TypeCode,
    Uscc, Version,
};

use crate::{Intent, LicenceCommit, Store, StoreError};

type Outcome = Result<(), String>;

fn ensure(cond: bool, what: &str) -> Outcome {
    if cond {
        Ok(())
    } else {
        Err(format!("contract broken: {what}"))
    }
}

fn ok<T>(r: Result<T, StoreError>, what: &str) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

fn wait(r: Result<crate::Durable, StoreError>, what: &str) -> Outcome {
    ok(ok(r, what)?.wait(), what)
}

fn sample_id(serial: &str, version: u16) -> Result<LicenceId, String> {
    let mut id = LicenceId::new(
        TypeCode::parse("11100000000013338W032").map_err(|e| e.to_string())?,
        Uscc::parse("11220000013544541J").map_err(|e| e.to_string())?,
        serial,
        Version::FIRST,
    )
    .map_err(|e| e.to_string())?;
    for _ in 1..version {
        id = id.next_version().map_err(|e| e.to_string())?;
    }
    Ok(id)
}

fn history(status: Status) -> StatusHistory {
    let t = datetime!(2024-01-01 0:00 UTC);
    let mut h = StatusHistory::default();
    h.push(StatusChange {
        status,
        effective: t,
        recorded: t,
    });
    h
}

fn commit(id: &LicenceId, supersedes: Option<(LicenceId, StatusHistory, StatusHistory)>) -> LicenceCommit {
    LicenceCommit {
        id: id.clone(),
        signed: format!("{{\"id\":\"{id}\"}}").into_bytes(),
        document_sha256: [id.serial().len() as u8; 32],
        status: history(Status::Valid),
        holder: (HolderCodeType::Uscc, "91350100M000100Y43".to_owned()),
        supersedes,
    }
}

/// Runs every rule against `store`, which must be empty.
pub fn run(store: &dyn Store) -> Outcome {
    catalogue(store)?;
    serials(store)?;
    intents(store)?;
    licences(store)?;
    status_changes(store)?;
    Ok(())
}

fn catalogue(store: &dyn Store) -> Outcome {
    let mut a = Authority {
        uscc: Uscc::parse("11220000013544541J").map_err(|e| e.to_string())?,
        name: "某市市场监督管理局".to_owned(),
        level: "city".to_owned(),
        region_code: "220100".to_owned(),
        certificates: vec!["PEM".to_owned()],
        registered: datetime!(2024-01-01 0:00 UTC),
    };
    wait(store.put_authority(&a), "put authority")?;
    a.name.push_str("（新）");
    wait(store.put_authority(&a), "replace authority")?;
    ensure(
        ok(store.authorities(), "authorities")? == vec![a],
        "an authority is replaced, not duplicated",
    )?;
    let t: LicenceType = serde_json::from_value(serde_json::json!({
        "code": "11100000000013338W032", "name": "营业执照", "defining_authority": "11100000000013338W",
        "holder_code_types": ["001"], "face_schema": []
    }))
    .map_err(|e| e.to_string())?;
    wait(store.put_licence_type(&t), "put type")?;
    ensure(
        ok(store.licence_types(), "types")? == vec![t],
        "a licence type reads back",
    )
}

fn serials(store: &dyn Store) -> Outcome {
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..100 {
        ensure(
            seen.insert(ok(store.next_serial(), "serial")?),
            "serials are never repeated",
        )?;
    }
    Ok(())
}

fn intents(store: &dyn Store) -> Outcome {
    let id = sample_id("INTENT1", 1)?;
    let other = sample_id("INTENT2", 1)?;
    for i in [&id, &other] {
        let intent = Intent {
            id: i.clone(),
            authority: i.issuer().clone(),
            document: b"{}".to_vec(),
            recorded: datetime!(2024-01-01 0:00 UTC),
        };
        wait(store.record_intent(&intent), "record intent")?;
    }
    ensure(
        ok(store.pending_intents(), "pending")?.len() == 2,
        "intents are pending until resolved",
    )?;
    wait(store.commit_licence(&commit(&id, None)), "commit")?;
    wait(store.abandon_intent(&other), "abandon")?;
    ensure(
        ok(store.pending_intents(), "pending")?.is_empty(),
        "commit and abandon both resolve an intent",
    )?;
    ensure(
        ok(store.licence(&other), "read")?.is_none(),
        "an abandoned intent is no licence",
    )
}

fn licences(store: &dyn Store) -> Outcome {
    let v1 = sample_id("LIC1", 1)?;
    let v2 = sample_id("LIC1", 2)?;
    wait(store.commit_licence(&commit(&v1, None)), "commit v1")?;
    let stored = ok(store.licence(&v1), "read v1")?.ok_or("v1 missing")?;
    ensure(
        stored.signed == commit(&v1, None).signed,
        "signed bytes read back exactly",
    )?;
    ensure(
        stored.document_sha256 == commit(&v1, None).document_sha256,
        "the document digest reads back",
    )?;
    ensure(
        matches!(store.commit_licence(&commit(&v1, None)), Err(StoreError::Conflict)),
        "a licence is never overwritten",
    )?;
    let superseded = history(Status::Superseded { by: v2.clone() });
    let stale = history(Status::Suspended { reason: "x".to_owned() });
    let r = store.commit_licence(&commit(&v2, Some((v1.clone(), stale, superseded.clone()))));
    ensure(
        matches!(r, Err(StoreError::Conflict)),
        "superseding checks the old status",
    )?;
    ensure(
        ok(store.licence(&v2), "read v2")?.is_none(),
        "a refused commit writes nothing",
    )?;
    let current = stored.status;
    wait(
        store.commit_licence(&commit(&v2, Some((v1.clone(), current, superseded.clone())))),
        "commit v2",
    )?;
    ensure(
        ok(store.licence(&v1), "v1")?.map(|l| l.status) == Some(superseded),
        "v1 is superseded with v2",
    )?;
    ensure(
        ok(store.current_version(&v1.lineage()), "head")? == Some(v2.clone()),
        "the head is the newest version",
    )?;
    let held = ok(
        store.licences_of_holder(HolderCodeType::Uscc, "91350100M000100Y43", Some(v1.type_code())),
        "holder",
    )?;
    ensure(
        held.contains(&v1) && held.contains(&v2),
        "the holder index lists every version",
    )?;
    let none = ok(
        store.licences_of_holder(HolderCodeType::Uscc, "91350100M000100Y4", None),
        "holder prefix",
    )?;
    ensure(none.is_empty(), "holder lookup matches whole codes, not prefixes")
}

fn status_changes(store: &dyn Store) -> Outcome {
    let id = sample_id("STATUS1", 1)?;
    wait(store.commit_licence(&commit(&id, None)), "commit")?;
    let valid = history(Status::Valid);
    let revoked = history(Status::Revoked {
        reason: RevocationReason::Cancelled,
        note: String::new(),
    });
    wait(store.update_status(&id, &valid, &revoked), "revoke")?;
    ensure(
        matches!(store.update_status(&id, &valid, &revoked), Err(StoreError::Conflict)),
        "a status change checks what it replaces",
    )?;
    ensure(
        matches!(
            store.update_status(&sample_id("NONE", 1)?, &valid, &revoked),
            Err(StoreError::NotFound)
        ),
        "no status change for a licence that does not exist",
    )?;
    ensure(
        ok(store.licence(&id), "read")?.map(|l| l.status) == Some(revoked),
        "the new status reads back",
    )
}
