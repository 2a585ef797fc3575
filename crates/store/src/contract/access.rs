//! Rules for grants, authorisations, API tokens, presentations and use records.

use super::*;

pub(super) fn access(store: &dyn Store) -> Outcome {
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

pub(super) fn api_tokens(store: &dyn Store) -> Outcome {
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

pub(super) fn presentations(store: &dyn Store) -> Outcome {
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

pub(super) fn use_records(store: &dyn Store) -> Outcome {
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
