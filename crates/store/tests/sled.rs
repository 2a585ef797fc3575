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

/// A data folder written before licence-type versions and licence numbers existed is indexed
/// when opened: its types become their version 1, and its licences' numbers are reserved for
/// their lineages (the first lineage, in identifier order, keeps a number two carried).
#[test]
fn an_older_data_folder_gets_its_type_versions_and_licence_numbers_indexed() {
    use zhengyin_model::{LicenceId, TypeCode, Version};
    let dir = tempfile::tempdir().unwrap();
    let code = TypeCode::parse("11100000000013338W032").unwrap();
    let id = |serial: &str| {
        LicenceId::new(
            code.clone(),
            Uscc::parse("11220000013544541J").unwrap(),
            serial,
            Version::FIRST,
        )
        .unwrap()
    };
    let (a, b, c) = (id("OLD1"), id("OLD2"), id("OLD3"));
    {
        let db = sled::open(dir.path()).unwrap();
        let old_type = r#"{"code":"11100000000013338W032","name":"营业执照","defining_authority":"11100000000013338W","holder_code_types":["001"],"face_schema":[]}"#;
        db.open_tree("licence_types")
            .unwrap()
            .insert(code.as_str(), old_type)
            .unwrap();
        let licences = db.open_tree("licences").unwrap();
        for (licence, number) in [(&a, "N-1"), (&b, "N-1"), (&c, "N-2")] {
            licences
                .insert(licence.as_str(), format!(r#"{{"number":"{number}"}}"#).as_bytes())
                .unwrap();
        }
        db.flush().unwrap();
    }
    let store = SledStore::open(dir.path()).unwrap();
    let versions = store.licence_type_versions(&code).unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!((versions[0].version, versions[0].name.as_str()), (1, "营业执照"));
    let first = [&a, &b].into_iter().min_by_key(|l| l.as_str()).unwrap();
    assert_eq!(store.number_holder(&a, "N-1").unwrap(), Some(first.lineage()));
    assert_eq!(store.number_holder(&c, "N-2").unwrap(), Some(c.lineage()));
    assert_eq!(store.number_holder(&c, "N-3").unwrap(), None);
}
