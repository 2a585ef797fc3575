//! Rules for objections, their evidence and notifications.

use super::*;

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
