//! The sled backend: the contract suite, durability across reopening, concurrent writers, and
//! its group commit as a future.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future as _;
use std::sync::Arc;

use time::macros::datetime;
use zhengyin_model::{Authority, Uscc};
use zhengyin_store::prelude::*;
use zhengyin_store::{contract, SledStore, Store};

#[test]
fn sled_passes_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    contract::run(&store).unwrap();
}

#[test]
fn sled_keeps_what_it_acknowledged_across_reopening_and_concurrent_writers() {
    let dir = tempfile::tempdir().unwrap();
    let open = || SledStore::open(dir.path()).map(|s| Arc::new(s) as Arc<dyn Store>);
    contract::run_durability(&open).unwrap();
}

#[test]
fn durable_is_a_future_too() {
    let store = SledStore::temporary().unwrap();
    let authority = Authority {
        uscc: Uscc::parse("11220000013544541J").unwrap(),
        name: "authority".to_owned(),
        level: "city".to_owned(),
        region_code: "220100".to_owned(),
        certificates: vec![],
        registered: datetime!(2024-01-01 0:00 UTC),
        origin: None,
        retired: Vec::new(),
    };
    let durable = store.put_authority(&authority, b"entry").unwrap().durable;
    // A minimal executor: poll until ready, parking between polls.
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut fut = std::pin::pin!(durable);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let std::task::Poll::Ready(r) = fut.as_mut().poll(&mut cx) {
            r.unwrap();
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never became durable");
        std::thread::yield_now();
    }
}

/// A data folder written before licence-type versions, licence numbers and objection and incident listings
/// existed is indexed when opened (the contract's `earlier_data_indexed`).
#[test]
fn an_older_data_folder_gets_its_type_versions_licence_numbers_objections_and_incidents_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let data = contract::EarlierData::sample().unwrap();
    {
        let db = sled::open(dir.path()).unwrap();
        db.open_tree("licence_types")
            .unwrap()
            .insert(data.type_code.as_str(), data.type_record)
            .unwrap();
        let (objections, by_licence) = (
            db.open_tree("objections").unwrap(),
            db.open_tree("objections_by_licence").unwrap(),
        );
        for o in &data.objections {
            objections
                .insert(o.id.as_str(), serde_json::to_vec(o).unwrap())
                .unwrap();
            by_licence.insert(format!("{}\0{}", o.licence, o.id), &[][..]).unwrap();
        }
        let incidents = db.open_tree("sync_incidents").unwrap();
        for i in &data.incidents {
            incidents.insert(i.id.as_str(), serde_json::to_vec(i).unwrap()).unwrap();
        }
        let licences = db.open_tree("licences").unwrap();
        for (licence, number) in &data.licences {
            licences
                .insert(licence.as_str(), contract::EarlierData::signed(number).as_bytes())
                .unwrap();
        }
        db.flush().unwrap();
    }
    let store = SledStore::open(dir.path()).unwrap();
    contract::earlier_data_indexed(&store, &data).unwrap();
}
