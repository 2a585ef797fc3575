//! The contract every [`Store`] backend must pass. Call [`run`] on a fresh, empty store, and
//! [`run_durability`] with a way to open one (empty at first) store again and again, from the
//! backend's tests; it returns the first broken rule.

use time::macros::datetime;
use zhengyin_model::licence::{Change, History, Holder};
use zhengyin_model::{
    Authority, HolderCodeType, LicenceId, LicenceType, Objection, RevocationReason, SealRecord, SealState, Status,
    StatusHistory, TypeCode, Uscc, Version,
};

use crate::{
    Intent, LeafIndex, LicenceCommit, ReplicatedLicence, Store, StoreError, StoredSeal, SyncApply, SyncCursor, UseQuery,
};

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

/// Waits for a logged write; returns its log index.
fn logged(r: Result<crate::Logged, StoreError>, what: &str) -> Result<u64, String> {
    let l = ok(r, what)?;
    ok(l.durable.wait(), what)?;
    Ok(l.index.0)
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

fn history<S>(status: S) -> History<S> {
    let t = datetime!(2024-01-01 0:00 UTC);
    let mut h = History::default();
    h.push(Change {
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
    log(store)?;
    seals(store)?;
    objections(store)?;
    access(store)?;
    use_records(store)?;
    presentations(store)?;
    api_tokens(store)?;
    sync(store)?;
    Ok(())
}

fn holder(code: &str) -> zhengyin_model::HolderRef {
    zhengyin_model::HolderRef {
        code_type: HolderCodeType::Uscc,
        code: code.to_owned(),
    }
}

fn access(store: &dyn Store) -> Outcome {
    use zhengyin_model::{Authorisation, Grant, GrantState, ServiceItem};
    let item = ServiceItem {
        code: "S-001".to_owned(),
        name: "食品经营许可".to_owned(),
    };
    wait(store.put_service_item(&item), "service item")?;
    ensure(
        ok(store.service_items(), "items")? == vec![item],
        "service items read back",
    )?;

    let t = datetime!(2024-01-02 0:00 UTC);
    let grant = Grant {
        id: "GR1".to_owned(),
        department: "dept".to_owned(),
        type_code: sample_id("GRT1", 1)?.type_code().clone(),
        fields: vec!["number".to_owned()],
        service_items: vec!["S-001".to_owned()],
        requires_authorisation: false,
        purpose: "审批".to_owned(),
        until: datetime!(2025-01-01 0:00 UTC),
        state: GrantState::Applied,
        history: Vec::new(),
    };
    logged(store.put_grant(&grant, b"applied"), "grant")?;
    ensure(
        matches!(store.put_grant(&grant, b"again"), Err(StoreError::Conflict)),
        "a grant id is never reused",
    )?;
    let mut approved = grant.clone();
    approved.state = GrantState::Approved;
    logged(store.update_grant(&grant, &approved, b"approved"), "approve")?;
    ensure(
        matches!(store.update_grant(&grant, &approved, b"x"), Err(StoreError::Conflict)),
        "a grant change checks what it replaces",
    )?;
    ensure(ok(store.grants(), "grants")? == vec![approved], "grants read back")?;

    let licence = sample_id("AUT1", 1)?;
    let authorisation = |id: &str, code: &str, minute: u8| Authorisation {
        id: id.to_owned(),
        holder: holder(code),
        lineage: licence.lineage(),
        licence: licence.clone(),
        department: "dept".to_owned(),
        service_item: "S-001".to_owned(),
        created: t + time::Duration::minutes(minute.into()),
        until: datetime!(2025-01-01 0:00 UTC),
        withdrawn: None,
    };
    let first = authorisation("AU2", "91110000600037341L", 1);
    logged(store.put_authorisation(&first, b"given"), "authorise")?;
    logged(
        store.put_authorisation(&authorisation("AU1", "91110000600037341L", 2), b"given"),
        "authorise",
    )?;
    logged(
        store.put_authorisation(&authorisation("AU3", "91110000MA01ABCD1X", 0), b"given"),
        "authorise other",
    )?;
    ensure(
        matches!(store.put_authorisation(&first, b"again"), Err(StoreError::Conflict)),
        "an authorisation id is never reused",
    )?;
    let mut withdrawn = first.clone();
    withdrawn.withdrawn = Some(t);
    logged(store.update_authorisation(&first, &withdrawn, b"withdrawn"), "withdraw")?;
    let mine = ok(store.authorisations_of_holder(&holder("91110000600037341L")), "list")?;
    ensure(
        mine.iter().map(|a| a.id.as_str()).collect::<Vec<_>>() == ["AU2", "AU1"] && mine[0] == withdrawn,
        "a holder's authorisations are its own, oldest first, as changed",
    )?;
    ensure(
        ok(store.authorisation("AU9"), "read")?.is_none(),
        "an unknown authorisation is absent",
    )
}

fn api_tokens(store: &dyn Store) -> Outcome {
    let token = zhengyin_model::ApiToken {
        id: "TK1".to_owned(),
        name: "city approval".to_owned(),
        role: "verifier".to_owned(),
        uscc: None,
        department: Some("dept".to_owned()),
        rate_per_second: None,
        sha256: "00".repeat(32),
        created: datetime!(2024-01-02 0:00 UTC),
        revoked: None,
    };
    logged(store.put_api_token(&token, b"made"), "token")?;
    ensure(
        matches!(store.put_api_token(&token, b"again"), Err(StoreError::Conflict)),
        "a token id is never reused",
    )?;
    let revoked = zhengyin_model::ApiToken {
        revoked: Some(datetime!(2024-01-03 0:00 UTC)),
        ..token.clone()
    };
    logged(store.update_api_token(&token, &revoked, b"revoked"), "revoke")?;
    ensure(
        matches!(
            store.update_api_token(&token, &revoked, b"x"),
            Err(StoreError::Conflict)
        ),
        "a token change checks what it replaces",
    )?;
    ensure(ok(store.api_tokens(), "tokens")? == vec![revoked], "tokens read back")
}

fn presentations(store: &dyn Store) -> Outcome {
    let p = zhengyin_model::Presentation {
        id: "PR1".to_owned(),
        licence: sample_id("PRE1", 1)?,
        holder: holder("91110000600037341L"),
        created: datetime!(2024-01-02 0:00 UTC),
        expires: datetime!(2024-01-02 0:05 UTC),
        scanned: None,
    };
    wait(store.put_presentation(&p), "present")?;
    ensure(
        matches!(store.put_presentation(&p), Err(StoreError::Conflict)),
        "a presentation id is never reused",
    )?;
    let scanned = zhengyin_model::Presentation {
        scanned: Some(("2024-01-02T00:01:00Z".to_owned(), "dept".to_owned())),
        ..p.clone()
    };
    wait(store.update_presentation(&p, &scanned), "scan")?;
    ensure(
        matches!(store.update_presentation(&p, &scanned), Err(StoreError::Conflict)),
        "a presentation is consumed once",
    )?;
    ensure(
        ok(store.presentation("PR1"), "read")? == Some(scanned),
        "the scan reads back",
    )?;
    ensure(
        ok(store.presentation("PR2"), "read")?.is_none(),
        "an unknown presentation is absent",
    )
}

fn use_records(store: &dyn Store) -> Outcome {
    use zhengyin_model::{UseOperation, UseOutcome, UseRecord};
    let type_code = sample_id("USE1", 1)?.type_code().clone();
    let record = |id: &str, department: &str, code: Option<&str>| UseRecord {
        id: id.to_owned(),
        time: datetime!(2024-01-02 0:00 UTC),
        department: department.to_owned(),
        operation: UseOperation::LookupById,
        type_code: type_code.clone(),
        licences: Vec::new(),
        holder: code.map(holder),
        service_item: "S-001".to_owned(),
        use_cause: "审批".to_owned(),
        authorisation: None,
        grant: None,
        outcome: UseOutcome::NotFound,
    };
    let a = "91110000600037341L";
    // "d" and "dx": one department's name is a prefix of another's.
    let before = ok(store.log_size(), "size")?.0;
    logged(store.record_uses(&[record("UR01", "d", Some(a))], b"u1"), "record use")?;
    let batch = [
        record("UR02", "dx", Some(a)),
        record("UR03", "d", None),
        record("UR04", "d", Some("91110000MA01ABCD1X")),
        record("UR05", "dx", Some(a)),
    ];
    ensure(
        logged(store.record_uses(&batch, b"u2-u5"), "record uses")? == before + 1,
        "a batch of uses is one log entry, the next one",
    )?;
    ensure(ok(store.log_size(), "size")?.0 == before + 2, "one entry per write")?;
    let clash = [record("UR06", "d", None), record("UR01", "d", None)];
    ensure(
        matches!(store.record_uses(&clash, b"x"), Err(StoreError::Conflict)),
        "a use record is never overwritten",
    )?;
    ensure(
        ok(store.log_size(), "size")?.0 == before + 2,
        "a refused batch writes nothing",
    )?;
    let ids = |q: crate::UseQuery| -> Result<Vec<String>, String> {
        Ok(ok(store.use_records(&q), "list uses")?
            .into_iter()
            .map(|r| r.id)
            .collect())
    };
    let q = |holder_code: Option<&str>, dept: Option<&str>, after: Option<&str>, before: Option<&str>, limit| {
        crate::UseQuery {
            holder: holder_code.map(holder),
            department: dept.map(str::to_owned),
            after: after.map(str::to_owned),
            before: before.map(str::to_owned),
            limit,
        }
    };
    ensure(
        ids(q(Some(a), None, None, None, 10))? == ["UR01", "UR02", "UR05"],
        "by holder, only its own",
    )?;
    ensure(
        ids(q(None, Some("d"), None, None, 10))? == ["UR01", "UR03", "UR04"],
        "by department, exactly",
    )?;
    ensure(
        ids(q(None, Some("dx"), Some("UR02"), None, 10))? == ["UR05"],
        "a cursor is exclusive",
    )?;
    ensure(
        ids(q(None, None, Some("UR01"), Some("UR04"), 10))? == ["UR02", "UR03"],
        "a period is (after, before)",
    )?;
    ensure(
        ids(q(None, None, None, None, 2))? == ["UR01", "UR02"],
        "a limit is kept",
    )?;
    ensure(
        ids(q(None, None, Some("UR05"), None, 10))?.is_empty() && ok(store.log_size(), "size")?.0 == before + 2,
        "nothing of a refused batch is stored",
    )?;

    // Journaled: visible and counted at once, no log entry until recorded.
    let journaled = [record("UR06", "d", Some(a)), record("UR07", "dx", None)];
    ok(store.journal_uses(&journaled), "journal uses")?;
    ensure(
        ok(store.log_size(), "size")?.0 == before + 2,
        "journaling appends no log entry",
    )?;
    ensure(
        ids(q(Some(a), None, None, None, 10))? == ["UR01", "UR02", "UR05", "UR06"]
            && ids(q(None, Some("dx"), Some("UR02"), None, 10))? == ["UR05", "UR07"]
            && ids(q(None, None, Some("UR04"), Some("UR07"), 2))? == ["UR05", "UR06"],
        "journaled records are listed with the stored ones, under the same query",
    )?;
    ensure(
        ok(store.journaled_uses(), "journaled")? == journaled
            && ok(store.last_use_record(), "last")?.as_deref() == Some("UR07"),
        "journaled records are pending, and the last id counts them",
    )?;
    ensure(
        matches!(
            store.journal_uses(&[record("UR07", "d", None)]),
            Err(StoreError::Conflict)
        ) && matches!(
            store.journal_uses(&[record("UR09", "d", None), record("UR08", "d", None)]),
            Err(StoreError::Conflict)
        ),
        "journaled ids ascend and only grow",
    )?;
    ensure(
        logged(store.record_uses(&journaled, b"u6-u7"), "record journaled")? == before + 2,
        "recording the journaled appends their entry",
    )?;
    ok(store.release_journal("UR07"), "release")?;
    ensure(
        ok(store.journaled_uses(), "journaled")?.is_empty()
            && ids(q(None, None, Some("UR04"), None, 10))? == ["UR05", "UR06", "UR07"],
        "recorded, they are no longer pending and listed once",
    )
}

fn objections(store: &dyn Store) -> Outcome {
    use zhengyin_model::objection::{Action, Calendar, Channel, ObjectionKind, Workflow};
    let licence = sample_id("OBJ1", 1)?;
    let other = sample_id("OBJ2", 1)?;
    let objection = |id: &str, on: &LicenceId| Objection {
        id: id.to_owned(),
        licence: on.clone(),
        fields: vec!["address".to_owned()],
        kind: ObjectionKind::Inaccurate,
        statement: "住所有误".to_owned(),
        evidence: Vec::new(),
        objector: "department:11100000000013338W".to_owned(),
        channel: Channel::Platform,
        workflow: Workflow::new(datetime!(2024-01-02 0:00 UTC), 15),
    };
    let first = objection("O1", &licence);
    logged(store.put_objection(&first, b"filed"), "file")?;
    logged(store.put_objection(&objection("O2", &other), b"filed"), "file other")?;
    ensure(
        matches!(store.put_objection(&first, b"again"), Err(StoreError::Conflict)),
        "an objection id is never reused",
    )?;
    let mut accepted = first.clone();
    ok(
        accepted
            .workflow
            .apply(
                Action::Accept,
                "authority:x",
                "",
                datetime!(2024-01-02 1:00 UTC),
                &Calendar::default(),
            )
            .map(drop)
            .map_err(|e| StoreError::Backend(e.to_string())),
        "accept",
    )?;
    let notification = zhengyin_model::Notification {
        id: "NT1".to_owned(),
        recipient: first.objector.clone(),
        objection: "O1".to_owned(),
        licence: licence.clone(),
        action: "accept".to_owned(),
        state: "accepted".to_owned(),
        reason: None,
        new_version: None,
        time: datetime!(2024-01-02 1:00 UTC),
    };
    logged(
        store.update_objection(
            &first,
            &accepted,
            b"accepted",
            Some((&notification, Some("http://127.0.0.1:9/hook"))),
        ),
        "update",
    )?;
    ensure(
        matches!(
            store.update_objection(&first, &accepted, b"x", None),
            Err(StoreError::Conflict)
        ),
        "an objection change checks what it replaces",
    )?;
    ensure(
        ok(store.notifications_of(&first.objector), "notifications")? == vec![notification.clone()]
            && ok(store.notifications_of("department:other"), "notifications")?.is_empty(),
        "the notification is kept for its recipient, and only for it",
    )?;
    let due = ok(store.due_deliveries(datetime!(2024-01-02 0:59 UTC), 10), "due")?;
    ensure(due.is_empty(), "a delivery is not due before its time")?;
    let due = ok(store.due_deliveries(datetime!(2024-01-02 1:00 UTC), 10), "due")?;
    ensure(
        due.len() == 1 && due[0].notification == notification,
        "the delivery is queued with the change",
    )?;
    let retry = zhengyin_model::Delivery {
        attempts: 1,
        next_attempt: datetime!(2024-01-02 1:01 UTC),
        ..due[0].clone()
    };
    wait(store.settle_delivery("NT1", Some(&retry)), "retry")?;
    ensure(
        ok(store.due_deliveries(datetime!(2024-01-02 1:00 UTC), 10), "due")?.is_empty(),
        "a failed delivery waits for its next attempt",
    )?;
    wait(store.settle_delivery("NT1", None), "delivered")?;
    ensure(
        ok(store.due_deliveries(datetime!(2024-01-03 0:00 UTC), 10), "due")?.is_empty(),
        "a delivered notification leaves the outbox",
    )?;
    ensure(
        ok(store.objection("O1"), "read")? == Some(accepted.clone()),
        "the change reads back",
    )?;
    ensure(
        ok(store.objections_of_licence(&licence), "list")? == vec![accepted.clone()],
        "objections are listed by licence, and only theirs",
    )?;
    ensure(
        ok(store.objections(), "all")?
            .iter()
            .map(|o| o.id.as_str())
            .collect::<Vec<_>>()
            == ["O1", "O2"],
        "every objection is listed, in filing order",
    )?;
    ensure(
        ok(store.objection("none"), "read")?.is_none(),
        "an unknown objection is absent",
    )?;
    wait(store.put_crl(b"CA-1", b"crl one"), "crl")?;
    wait(store.put_crl(b"CA-1", b"crl two"), "crl replaced")?;
    wait(store.put_crl(b"CA-2", b"crl three"), "crl")?;
    ensure(
        ok(store.crls(), "crls")? == vec![b"crl two".to_vec(), b"crl three".to_vec()],
        "one CRL per CA, the latest",
    )?;
    let file = b"%PDF-1.7 evidence";
    // The store keys by whatever hash the engine computed; any 32 bytes of the content do here.
    let sha = zhengyin_tlog::leaf_hash(file);
    wait(store.put_evidence(&sha, file), "evidence")?;
    wait(store.put_evidence(&sha, file), "evidence again")?;
    ensure(
        ok(store.evidence(&sha), "read evidence")?.as_deref() == Some(&file[..]),
        "evidence reads back by its hash",
    )?;
    ensure(
        ok(store.evidence(&[0; 32]), "read")?.is_none(),
        "unknown evidence is absent",
    )
}

fn sample_seal(es_id: &str, origin: Option<&str>) -> StoredSeal {
    StoredSeal {
        record: SealRecord {
            es_id: es_id.to_owned(),
            name: "示例合同专用章".to_owned(),
            seal_type: 1,
            holder: Holder {
                name: "吉林示例科技有限公司".to_owned(),
                code: "91350100M000100Y43".to_owned(),
                code_type: HolderCodeType::Uscc,
            },
            valid_start: datetime!(2024-01-01 0:00 UTC),
            valid_end: datetime!(2026-01-01 0:00 UTC),
            signer_certificates: vec!["sha256:00".to_owned()],
            origin: origin.map(str::to_owned),
        },
        der: vec![0x30, 0x00],
        status: history(SealState::Active),
    }
}

fn seals(store: &dyn Store) -> Outcome {
    let seal = sample_seal("22010000000000001", None);
    let size = ok(store.log_size(), "log size")?;
    let index = logged(store.put_seal(&seal, b"seal made"), "put seal")?;
    ensure(index == size.0, "a seal's log entry is the next one")?;
    ensure(
        ok(store.seal(&seal.record.es_id), "read seal")? == Some(seal.clone()),
        "a seal reads back",
    )?;
    ensure(
        matches!(store.put_seal(&seal, b"again"), Err(StoreError::Conflict)),
        "an esID is never registered twice",
    )?;
    ensure(ok(store.seal("none"), "read")?.is_none(), "an unknown seal is absent")?;
    let revoked = history(SealState::Revoked {
        reason: "lost".to_owned(),
    });
    logged(
        store.update_seal_status(&seal.record.es_id, &seal.status, &revoked, b"revoke seal"),
        "revoke seal",
    )?;
    ensure(
        matches!(
            store.update_seal_status(&seal.record.es_id, &seal.status, &revoked, b"x"),
            Err(StoreError::Conflict)
        ),
        "a seal status change checks what it replaces",
    )?;
    ensure(
        matches!(
            store.update_seal_status("none", &seal.status, &revoked, b"x"),
            Err(StoreError::NotFound)
        ),
        "no status change for a seal that does not exist",
    )?;
    ensure(
        ok(store.seal(&seal.record.es_id), "read")?.map(|s| s.status) == Some(revoked),
        "the seal's new status reads back",
    )?;
    let applied = logged(store.append_log(b"seal applied"), "append")?;
    ensure(applied == size.0 + 2, "an event without a record is the next entry")?;
    ensure(
        ok(
            store.log_entries(crate::LeafIndex(applied), crate::LeafIndex(applied + 1)),
            "read entry",
        )? == vec![b"seal applied".to_vec()],
        "it reads back",
    )?;
    ensure(
        ok(store.log_size(), "log size")?.0 == size.0 + 3,
        "seal events are log entries",
    )
}

fn sample_authority(origin: Option<&str>) -> Result<Authority, String> {
    Ok(Authority {
        uscc: Uscc::parse("11220000013544541J").map_err(|e| e.to_string())?,
        name: "某市市场监督管理局".to_owned(),
        level: "city".to_owned(),
        region_code: "220100".to_owned(),
        certificates: vec!["PEM".to_owned()],
        registered: datetime!(2024-01-01 0:00 UTC),
        origin: origin.map(str::to_owned),
    })
}

fn catalogue(store: &dyn Store) -> Outcome {
    let mut a = sample_authority(None)?;
    logged(store.put_authority(&a, b"authority 1"), "put authority")?;
    a.name.push_str("（新）");
    logged(store.put_authority(&a, b"authority 2"), "replace authority")?;
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
    logged(store.commit_licence(&commit(&id, None), b"licence"), "commit")?;
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
    logged(store.commit_licence(&commit(&v1, None), b"licence"), "commit v1")?;
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
        ok(store.licence_state(&v1), "state of v1")?
            == Some(crate::LicenceState {
                document_sha256: stored.document_sha256,
                status: stored.status.clone(),
            })
            && ok(store.licence_state(&v2), "state of v2")?.is_none(),
        "a licence's state is its digest and status, and absent with it",
    )?;
    ensure(
        matches!(
            store.commit_licence(&commit(&v1, None), b"licence"),
            Err(StoreError::Conflict)
        ),
        "a licence is never overwritten",
    )?;
    let superseded = history(Status::Superseded { by: v2.clone() });
    let stale = history(Status::Suspended { reason: "x".to_owned() });
    let r = store.commit_licence(&commit(&v2, Some((v1.clone(), stale, superseded.clone()))), b"licence");
    ensure(
        matches!(r, Err(StoreError::Conflict)),
        "superseding checks the old status",
    )?;
    ensure(
        ok(store.licence(&v2), "read v2")?.is_none(),
        "a refused commit writes nothing",
    )?;
    let current = stored.status;
    logged(
        store.commit_licence(
            &commit(&v2, Some((v1.clone(), current, superseded.clone()))),
            b"licence",
        ),
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
    logged(store.commit_licence(&commit(&id, None), b"licence"), "commit")?;
    let valid = history(Status::Valid);
    let revoked = history(Status::Revoked {
        reason: RevocationReason::Cancelled,
        note: String::new(),
    });
    logged(store.update_status(&id, &valid, &revoked, b"revoke"), "revoke")?;
    ensure(
        matches!(
            store.update_status(&id, &valid, &revoked, b"x"),
            Err(StoreError::Conflict)
        ),
        "a status change checks what it replaces",
    )?;
    ensure(
        matches!(
            store.update_status(&sample_id("NONE", 1)?, &valid, &revoked, b"x"),
            Err(StoreError::NotFound)
        ),
        "no status change for a licence that does not exist",
    )?;
    ensure(
        ok(store.licence(&id), "read")?.map(|l| l.status) == Some(revoked),
        "the new status reads back",
    )
}

fn log(store: &dyn Store) -> Outcome {
    use zhengyin_tlog::{inclusion_proof, leaf_hash, root, verify_inclusion, LeafIndex, MemoryTree, TreeSize};
    // Every logged write so far appended exactly one entry, in order, with no gaps.
    let size = ok(store.log_size(), "log size")?;
    let entries = ok(store.log_entries(LeafIndex(0), LeafIndex(size.0)), "entries")?;
    ensure(
        entries.len() as u64 == size.0 && size.0 >= 6,
        "the log holds one entry per logged write",
    )?;
    ensure(
        entries[0] == b"authority 1" && entries[1] == b"authority 2",
        "entries keep their order",
    )?;
    // A refused write appends nothing.
    let before = ok(store.log_size(), "log size")?;
    let _ = store.update_status(
        &sample_id("NONE", 1)?,
        &StatusHistory::default(),
        &StatusHistory::default(),
        b"no",
    );
    ensure(
        ok(store.log_size(), "log size")? == before,
        "a refused write appends no entry",
    )?;
    // The stored hashes give the same root as recomputing from the entries.
    let mut mirror = MemoryTree::default();
    entries.iter().for_each(|e| mirror.push(leaf_hash(e)));
    let reader = crate::LogReader(store);
    let stored_root = ok(
        root(size, &reader).map_err(|e| StoreError::Backend(format!("{e:?}"))),
        "root",
    )?;
    let mirror_root = root(size, &mirror).map_err(|e| format!("{e:?}"))?;
    ensure(stored_root == mirror_root, "stored log hashes agree with the entries")?;
    for i in 0..size.0 {
        let proof = inclusion_proof(LeafIndex(i), size, &reader).map_err(|e| format!("{e:?}"))?;
        let leaf = leaf_hash(&entries[i as usize]);
        ensure(
            verify_inclusion(LeafIndex(i), size, &leaf, &proof, &stored_root).is_ok(),
            "inclusion proofs verify",
        )?;
        ensure(
            ok(store.log_index_of(&leaf), "index of")?.is_some(),
            "entries are found by leaf hash",
        )?;
    }
    ensure(
        ok(store.log_index_of(&[0; 32]), "index of")?.is_none(),
        "unknown leaf hashes are not found",
    )?;
    ensure(
        ok(
            store.log_entries(LeafIndex(size.0), LeafIndex(size.0 + 5)),
            "past the end",
        )?
        .is_empty(),
        "no entries past the end",
    )?;
    // Checkpoints.
    ensure(
        ok(store.latest_checkpoint(), "checkpoint")?.is_none(),
        "no checkpoint before one is stored",
    )?;
    wait(store.put_checkpoint(TreeSize(1), "note 1\n"), "checkpoint 1")?;
    wait(store.put_checkpoint(size, "note 2\n"), "checkpoint 2")?;
    ensure(
        ok(store.latest_checkpoint(), "checkpoint")? == Some((size, "note 2\n".to_owned())),
        "the latest checkpoint is the largest",
    )
}

fn sync(store: &dyn Store) -> Outcome {
    let origin = "zhengyin.example/city-test";
    let cursor = |applied: u64| SyncCursor {
        origin: origin.to_owned(),
        checkpoint: format!("{origin}\n{applied}\n…\n"),
        size: applied,
        root: [applied as u8; 32],
        frontier: vec![[1; 32]],
        applied,
        synced_at: Some(datetime!(2024-01-01 0:00 UTC)),
    };
    let v1 = sample_id("SYNC1", 1)?;
    let v2 = sample_id("SYNC1", 2)?;
    let replicated = |id: &LicenceId| ReplicatedLicence {
        id: id.clone(),
        signed: format!("{{\"id\":\"{id}\"}}").into_bytes(),
        document_sha256: [9; 32],
        holder: (HolderCodeType::Uscc, "91350100M000100Y43".to_owned()),
    };
    let mut authority = sample_authority(Some(origin))?;
    let size = ok(store.log_size(), "log size")?.0;
    let page = SyncApply {
        expected: None,
        cursor: cursor(3),
        authorities: vec![authority.clone()],
        licences: vec![replicated(&v2), replicated(&v1)],
        statuses: vec![
            (v1.clone(), history(Status::Valid)),
            (v2.clone(), history(Status::Valid)),
        ],
        seals: Vec::new(),
        seal_statuses: Vec::new(),
        entries: vec![b"sync 1".to_vec(), b"sync 2".to_vec()],
    };
    wait(store.apply_sync(&page), "apply a page")?;
    ensure(
        ok(store.sync_cursors(), "cursors")? == vec![cursor(3)],
        "the cursor advances with the page",
    )?;
    ensure(
        ok(store.licence(&v1), "licence")?.map(|l| l.signed) == Some(replicated(&v1).signed),
        "a replicated licence reads back",
    )?;
    ensure(
        ok(store.current_version(&v1.lineage()), "head")? == Some(v2.clone()),
        "the newest version is the head, whatever the order applied",
    )?;
    ensure(
        ok(store.log_size(), "log size")?.0 == size + 2,
        "the page's entries are appended to this node's log",
    )?;
    ensure(
        matches!(store.apply_sync(&page), Err(StoreError::Conflict)),
        "a page applied twice is refused by its cursor (nothing changes)",
    )?;
    ensure(
        ok(store.log_size(), "log size")?.0 == size + 2,
        "a refused page appends nothing",
    )?;
    let mut forged = replicated(&v1);
    forged.signed = b"{}".to_vec();
    let conflicting = SyncApply {
        expected: Some(cursor(3)),
        cursor: cursor(4),
        authorities: Vec::new(),
        licences: vec![forged],
        statuses: Vec::new(),
        seals: Vec::new(),
        seal_statuses: Vec::new(),
        entries: vec![b"sync 3".to_vec()],
    };
    ensure(
        matches!(store.apply_sync(&conflicting), Err(StoreError::Conflict)),
        "other bytes under a held identifier are refused",
    )?;
    ensure(
        ok(store.sync_cursors(), "cursors")? == vec![cursor(3)],
        "a refused page leaves the cursor",
    )?;
    authority.name.push('2');
    let seal = sample_seal("ZYSYNC0000000001", Some(origin));
    let next = SyncApply {
        expected: Some(cursor(3)),
        cursor: cursor(5),
        authorities: vec![authority.clone()],
        licences: vec![replicated(&v1)],
        statuses: vec![(v1.clone(), history(Status::Superseded { by: v2.clone() }))],
        seals: vec![seal.clone()],
        seal_statuses: vec![(seal.record.es_id.clone(), history(SealState::Active))],
        entries: Vec::new(),
    };
    wait(store.apply_sync(&next), "apply the next page")?;
    ensure(
        ok(store.licence(&v1), "licence")?.and_then(|l| l.status.latest().cloned())
            == Some(Status::Superseded { by: v2.clone() }),
        "a status history is replaced; an identical licence is accepted again",
    )?;
    ensure(
        ok(store.authorities(), "authorities")?.contains(&authority),
        "a replicated authority is replaced",
    )?;
    ensure(
        ok(store.seal("ZYSYNC0000000001"), "seal")? == Some(seal),
        "a replicated seal reads back with its status",
    )?;
    let incident = zhengyin_model::SyncIncident {
        id: "IN0000000000000001".to_owned(),
        origin: origin.to_owned(),
        kind: zhengyin_model::IncidentKind::Fork,
        detail: "two roots at size 3".to_owned(),
        evidence: vec!["a".to_owned(), "b".to_owned()],
        detected: datetime!(2024-01-01 0:00 UTC),
        resolved: None,
    };
    wait(store.put_incident(&incident), "incident")?;
    ensure(
        ok(store.incidents(), "incidents")? == vec![incident],
        "an incident reads back",
    )
}

/// Opens the same store again, as a restarted process would (the previous one is dropped first).
pub type Reopen<'a> = &'a dyn Fn() -> Result<std::sync::Arc<dyn Store>, StoreError>;

/// The rules that need the store closed and opened again, or many writers at once. `open` must
/// open the same, initially empty, store each time.
pub fn run_durability(open: Reopen<'_>) -> Outcome {
    acknowledged_writes_survive_reopening(open)?;
    concurrent_writers_all_become_durable(open)?;
    journaled_uses_survive_reopening(open)?;
    Ok(())
}

fn numbered_authority(n: usize) -> Result<Authority, String> {
    Ok(Authority {
        name: format!("authority {n}"),
        ..sample_authority(None)?
    })
}

fn acknowledged_writes_survive_reopening(open: Reopen<'_>) -> Outcome {
    {
        let store = ok(open(), "open")?;
        logged(
            store.put_authority(&numbered_authority(7)?, b"registered 7"),
            "authority",
        )?;
    }
    let store = ok(open(), "reopen")?;
    ensure(
        ok(store.authorities(), "authorities")? == vec![numbered_authority(7)?],
        "an acknowledged write is read back after reopening",
    )?;
    ensure(
        ok(store.log_entries(LeafIndex(0), LeafIndex(1)), "entries")? == vec![b"registered 7".to_vec()],
        "its log entry too",
    )
}

/// 8 threads × 50 logged writes: every one acknowledged, 400 more contiguous entries, each once.
fn concurrent_writers_all_become_durable(open: Reopen<'_>) -> Outcome {
    let store = ok(open(), "open")?;
    let before = ok(store.log_size(), "size")?.0;
    let results: Vec<Outcome> = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..8)
            .map(|t| {
                let store = &store;
                scope.spawn(move || -> Outcome {
                    for i in 0..50 {
                        let entry = format!("{t}/{i}");
                        logged(
                            store.put_authority(&numbered_authority(t * 100 + i)?, entry.as_bytes()),
                            "write",
                        )?;
                    }
                    Ok(())
                })
            })
            .collect();
        writers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| Err("a writer panicked".to_owned())))
            .collect()
    });
    results.into_iter().collect::<Outcome>()?;
    drop(store);
    let store = ok(open(), "reopen")?;
    ensure(
        ok(store.log_size(), "size")?.0 == before + 400,
        "400 writes, 400 entries",
    )?;
    let entries = ok(store.log_entries(LeafIndex(before), LeafIndex(before + 400)), "entries")?;
    let distinct: std::collections::BTreeSet<_> = entries.iter().collect();
    ensure(distinct.len() == 400, "each entry exactly once")?;
    ensure(
        ok(store.authorities(), "authorities")?.len() == 1,
        "the same key replaced",
    )?;
    // The stored tree is the tree of the entries.
    let mut tree = zhengyin_tlog::MemoryTree::default();
    for entry in ok(store.log_entries(LeafIndex(0), LeafIndex(before + 400)), "all entries")? {
        tree.push(zhengyin_tlog::leaf_hash(&entry));
    }
    let size = zhengyin_tlog::TreeSize(before + 400);
    let expected = zhengyin_tlog::root(size, &tree).map_err(|e| format!("{e:?}"))?;
    let stored = zhengyin_tlog::root(size, &crate::LogReader(store.as_ref())).map_err(|e| format!("{e:?}"))?;
    ensure(stored == expected, "the stored tree hashes match the entries")
}

fn numbered_use(n: u64) -> Result<zhengyin_model::UseRecord, String> {
    use zhengyin_model::{UseOperation, UseOutcome, UseRecord};
    Ok(UseRecord {
        id: format!("UR{n:016x}"),
        time: datetime!(2026-12-01 0:00 UTC),
        department: "11220100013544541A".to_owned(),
        operation: UseOperation::Verify,
        type_code: sample_id("USE2", 1)?.type_code().clone(),
        licences: Vec::new(),
        holder: Some(holder("91110000600037341L")),
        service_item: "S-001".to_owned(),
        use_cause: "审批".to_owned(),
        authorisation: None,
        grant: None,
        outcome: UseOutcome::Answered,
    })
}

/// Acknowledged use records stay listed until recorded: a crash before recording (the store
/// dropped without it) loses none; once recorded and released, none is pending.
fn journaled_uses_survive_reopening(open: Reopen<'_>) -> Outcome {
    let u = |n| numbered_use(n);
    let all = UseQuery {
        limit: 100,
        ..UseQuery::default()
    };
    let size = {
        let store = ok(open(), "open")?;
        logged(store.record_uses(&[u(1)?], b"u1"), "record")?;
        ok(store.journal_uses(&[u(2)?, u(3)?]), "journal")?;
        ok(store.journal_uses(&[u(4)?]), "journal")?;
        ok(store.log_size(), "size")?.0
    };
    {
        let store = ok(open(), "reopen")?;
        ensure(
            ok(store.journaled_uses(), "journaled")? == vec![u(2)?, u(3)?, u(4)?],
            "journaled kept",
        )?;
        ensure(ok(store.use_records(&all), "list")?.len() == 4, "all four listed")?;
        ensure(ok(store.last_use_record(), "last")? == Some(u(4)?.id), "last id")?;
        let pending = ok(store.journaled_uses(), "journaled")?;
        logged(store.record_uses(&pending, b"u2-u4"), "record")?;
        ok(store.release_journal(&u(4)?.id), "release")?;
        ok(store.journal_uses(&[u(5)?]), "journal")?;
    }
    let store = ok(open(), "reopen")?;
    ensure(
        ok(store.journaled_uses(), "journaled")? == vec![u(5)?],
        "only the unrecorded one",
    )?;
    let ids: Vec<String> = ok(store.use_records(&all), "list")?.into_iter().map(|r| r.id).collect();
    let expected = (1..=5).map(|n| u(n).map(|r| r.id)).collect::<Result<Vec<_>, _>>()?;
    ensure(ids == expected, "each once")?;
    ensure(
        ok(store.log_size(), "size")?.0 == size + 1,
        "one entry for the recorded batch",
    )
}
