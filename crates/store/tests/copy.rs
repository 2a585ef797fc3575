//! Moving a node from sled to PostgreSQL: every kind of record the contract suite leaves behind
//! is copied, and then every read method answers the same on both sides.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::fmt::Debug;

use zhengyin_model::HolderRef;
use zhengyin_store::copy::{copy, Item};
use zhengyin_store::prelude::*;
use zhengyin_store::{contract, LeafIndex, PgStore, SledStore, StoreError, UseQuery};
use zhengyin_testdb::Cluster;

/// The same items, whatever order each side lists them in.
fn same<T: Debug>(what: &str, ours: Result<Vec<T>, StoreError>, theirs: Result<Vec<T>, StoreError>) {
    let set = |v: Vec<T>| v.iter().map(|x| format!("{x:?}")).collect::<BTreeSet<_>>();
    assert_eq!(set(ours.unwrap()), set(theirs.unwrap()), "{what} differ");
}

fn filled_sled(dir: &std::path::Path) -> SledStore {
    let store = SledStore::open(&dir.join("source")).unwrap();
    contract::run(&store).unwrap();
    let mut unrecorded = contract::numbered_use(1).unwrap();
    unrecorded.id = "UZ1".to_owned();
    store.journal_uses(&[unrecorded]).unwrap();
    // A webhook delivery still due (the contract settles its own).
    let mut notification = None;
    store
        .export(&mut |item| {
            if let Item::Notification(n) = item {
                notification.get_or_insert(n);
            }
            Ok(())
        })
        .unwrap();
    let delivery = zhengyin_model::Delivery {
        notification: notification.expect("the contract leaves a notification"),
        url: "https://approval.example/notify".to_owned(),
        attempts: 1,
        next_attempt: time::macros::datetime!(2026-12-01 0:00 UTC),
    };
    store
        .settle_delivery(&delivery.notification.id, Some(&delivery))
        .unwrap()
        .wait()
        .unwrap();
    store
}

#[test]
fn every_record_is_copied_and_read_the_same_on_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let source = filled_sled(dir.path());
    let target = PgStore::open(&Cluster::shared().unwrap().database().unwrap()).unwrap();
    let handed_out = source.next_serial().unwrap();
    let summary = copy(&source, &target).unwrap();
    assert!(
        target.next_serial().unwrap() > handed_out,
        "a serial would be handed out twice"
    );
    assert_eq!(summary.log_size, source.log_size().unwrap().0);
    assert!(summary.records > summary.log_size);

    // Every record the source holds, to read back on both sides.
    let mut items = Vec::new();
    source
        .export(&mut |item| {
            items.push(item);
            Ok(())
        })
        .unwrap();
    let (s, t) = (&source, &target);
    same("authorities", s.authorities(), t.authorities());
    same("licence types", s.licence_types(), t.licence_types());
    same("CRLs", s.crls(), t.crls());
    same("pending intents", s.pending_intents(), t.pending_intents());
    same("service items", s.service_items(), t.service_items());
    same("grants", s.grants(), t.grants());
    same("API tokens", s.api_tokens(), t.api_tokens());
    same("objections", s.objections(), t.objections());
    same("sync cursors", s.sync_cursors(), t.sync_cursors());
    same("incidents", s.incidents(), t.incidents());
    let far = time::OffsetDateTime::now_utc() + time::Duration::days(3650);
    same(
        "due deliveries",
        s.due_deliveries(far, 1000),
        t.due_deliveries(far, 1000),
    );
    let all = UseQuery {
        limit: 10_000,
        ..UseQuery::default()
    };
    same("use records", s.use_records(&all), t.use_records(&all));
    same("journaled use records", s.journaled_uses(), t.journaled_uses());
    assert_eq!(s.last_use_record().unwrap(), t.last_use_record().unwrap());
    let size = s.log_size().unwrap();
    assert_eq!(
        s.log_entries(LeafIndex(0), LeafIndex(size.0)).unwrap(),
        t.log_entries(LeafIndex(0), LeafIndex(size.0)).unwrap()
    );
    assert_eq!(s.latest_checkpoint().unwrap(), t.latest_checkpoint().unwrap());

    let mut kinds = BTreeSet::new();
    for item in &items {
        let kind = format!("{item:?}");
        kinds.insert(kind.split(['(', ' ']).next().unwrap().to_owned());
        match item {
            Item::LicenceType(lt) => same(
                "type versions",
                s.licence_type_versions(&lt.code),
                t.licence_type_versions(&lt.code),
            ),
            Item::Licence { id, holder, .. } => {
                assert_eq!(s.licence(id).unwrap(), t.licence(id).unwrap(), "licence {id}");
                assert_eq!(s.licence_state(id).unwrap(), t.licence_state(id).unwrap());
                same(
                    "a holder's licences",
                    s.licences_of_holder(holder.0, &holder.1, None),
                    t.licences_of_holder(holder.0, &holder.1, None),
                );
                same(
                    "objections of a licence",
                    s.objections_of_licence(id),
                    t.objections_of_licence(id),
                );
            }
            Item::Head { lineage, .. } => {
                assert_eq!(s.current_version(lineage).unwrap(), t.current_version(lineage).unwrap())
            }
            Item::Seal(seal) => assert_eq!(s.seal(&seal.record.es_id).unwrap(), t.seal(&seal.record.es_id).unwrap()),
            Item::Objection(o) => assert_eq!(s.objection(&o.id).unwrap(), t.objection(&o.id).unwrap()),
            Item::Evidence { sha256, .. } => assert_eq!(s.evidence(sha256).unwrap(), t.evidence(sha256).unwrap()),
            Item::Notification(n) => same(
                "notifications",
                s.notifications_of(&n.recipient, None, usize::MAX),
                t.notifications_of(&n.recipient, None, usize::MAX),
            ),
            Item::Authorisation(a) => {
                assert_eq!(s.authorisation(&a.id).unwrap(), t.authorisation(&a.id).unwrap());
                let holder = HolderRef {
                    code_type: a.holder.code_type,
                    code: a.holder.code.clone(),
                };
                same(
                    "a holder's authorisations",
                    s.authorisations_of_holder(&holder),
                    t.authorisations_of_holder(&holder),
                );
            }
            Item::Presentation(p) => assert_eq!(s.presentation(&p.id).unwrap(), t.presentation(&p.id).unwrap()),
            _ => {}
        }
    }
    // The contract leaves every kind of record behind, so every kind was compared.
    for kind in [
        "Authority",
        "LicenceType",
        "LicenceTypeVersion",
        "Crl",
        "Intent",
        "Licence",
        "Head",
        "Number",
        "Seal",
        "Objection",
        "Evidence",
        "Notification",
        "Delivery",
        "ServiceItem",
        "Grant",
        "Authorisation",
        "ApiToken",
        "Presentation",
        "UseRecord",
        "SyncCursor",
        "Incident",
        "LogEntry",
        "Checkpoint",
    ] {
        assert!(kinds.contains(kind), "the source held no {kind}: {kinds:?}");
    }
}

#[test]
fn a_database_that_holds_data_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let source = filled_sled(dir.path());
    let target = PgStore::open(&Cluster::shared().unwrap().database().unwrap()).unwrap();
    target.append_log(b"already here").unwrap().durable.wait().unwrap();
    let refused = copy(&source, &target).unwrap_err();
    assert!(refused.to_string().contains("already holds"), "{refused}");
    assert_eq!(target.log_size().unwrap().0, 1);
}
