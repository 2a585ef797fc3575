//! Rules for objections, their evidence and notifications.

use super::*;

/// Listings by objector, by issuer and open ones, a page at a time, as objections close.
fn listings(store: &dyn Store, objection: &dyn Fn(&str, &LicenceId) -> Objection) -> Outcome {
    use crate::{ObjectionPage, ObjectionScope};
    use zhengyin_model::objection::{Action, Calendar};
    // O1 (accepted) and O2 are the first objector's, to the sample issuer; add a holder's
    // objection to another issuer's licence, and one the first objector then withdraws.
    let elsewhere = LicenceId::new(
        ok(
            zhengyin_model::TypeCode::parse("11100000000013338W032").map_err(|e| StoreError::Backend(e.to_string())),
            "type",
        )?,
        ok(
            Uscc::parse("91350100M000100Y43").map_err(|e| StoreError::Backend(e.to_string())),
            "uscc",
        )?,
        "OBJ3",
        zhengyin_model::Version::FIRST,
    )
    .map_err(|e| e.to_string())?;
    let holder = "USCC:91350100M000100Y43".to_owned();
    let by_holder = Objection {
        objector: holder.clone(),
        ..objection("O3", &elsewhere)
    };
    logged(store.put_objection(&by_holder, b"filed"), "file by holder")?;
    let withdrawn = objection("O4", &sample_id("OBJ4", 1)?);
    logged(store.put_objection(&withdrawn, b"filed"), "file O4")?;
    let mut closed = withdrawn.clone();
    ok(
        closed
            .workflow
            .apply(
                Action::Withdraw,
                &closed.objector.clone(),
                "",
                datetime!(2024-01-02 2:00 UTC),
                &Calendar::default(),
            )
            .map(drop)
            .map_err(|e| StoreError::Backend(e.to_string())),
        "withdraw",
    )?;
    logged(
        store.update_objection(&withdrawn, &closed, b"withdrawn", None),
        "withdraw O4",
    )?;
    let ids = |scope: ObjectionScope, open_only: bool, after: Option<&str>, limit: usize| {
        let page = ObjectionPage {
            scope,
            open_only,
            after: after.map(str::to_owned),
            limit,
        };
        ok(store.objections_page(&page), "page").map(|list| list.into_iter().map(|o| o.id).collect::<Vec<_>>())
    };
    let department = ObjectionScope::Objector("department:11100000000013338W".to_owned());
    let sample_issuer = ObjectionScope::Issuer(withdrawn.licence.issuer().clone());
    ensure(
        ids(ObjectionScope::All, false, None, 10)? == ["O1", "O2", "O3", "O4"]
            && ids(ObjectionScope::All, true, None, 10)? == ["O1", "O2", "O3"],
        "all objections, or the open ones, in filing order",
    )?;
    ensure(
        ids(department.clone(), false, None, 10)? == ["O1", "O2", "O4"]
            && ids(department.clone(), true, None, 10)? == ["O1", "O2"]
            && ids(ObjectionScope::Objector(holder), false, None, 10)? == ["O3"]
            && ids(ObjectionScope::Objector("department:other".to_owned()), false, None, 10)?.is_empty(),
        "an objector's listing holds its objections only",
    )?;
    ensure(
        ids(sample_issuer.clone(), false, None, 10)? == ["O1", "O2", "O4"]
            && ids(ObjectionScope::Issuer(elsewhere.issuer().clone()), true, None, 10)? == ["O3"],
        "an issuer's listing holds the objections to its licences only",
    )?;
    ensure(
        ids(ObjectionScope::All, false, None, 2)? == ["O1", "O2"]
            && ids(ObjectionScope::All, false, Some("O2"), 2)? == ["O3", "O4"]
            && ids(ObjectionScope::All, true, Some("O1"), 1)? == ["O2"]
            && ids(department, true, Some("O1"), 5)? == ["O2"]
            && ids(sample_issuer, false, Some("O4"), 5)?.is_empty()
            && ids(ObjectionScope::All, false, None, 0)?.is_empty(),
        "listings are paged by id: after a cursor, at most the limit, counting only what they hold",
    )
}

pub(super) fn objections(store: &dyn Store) -> Outcome {
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
    let page = |recipient: &str, after: Option<&str>, limit: usize| {
        ok(store.notifications_of(recipient, after, limit), "notifications")
    };
    ensure(
        page(&first.objector, None, 10)? == vec![notification.clone()]
            && page("department:other", None, 10)?.is_empty(),
        "the notification is kept for its recipient, and only for it",
    )?;
    ensure(
        page(&first.objector, Some("NT0"), 10)? == vec![notification.clone()]
            && page(&first.objector, Some("NT1"), 10)?.is_empty()
            && page(&first.objector, None, 0)?.is_empty(),
        "notifications are paged by id: after a cursor, at most the limit",
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
    listings(store, &objection)?;
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
