//! The sled backend: the contract suite, durability across reopening, and group commit under
//! concurrent writers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future as _;
use std::sync::Arc;

use time::macros::datetime;
use zhengyin_model::{Authority, Uscc};
use zhengyin_store::prelude::*;
use zhengyin_store::{contract, SledStore};

#[test]
fn sled_passes_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    contract::run(&store).unwrap();
}

fn authority(n: usize) -> Authority {
    Authority {
        uscc: Uscc::parse("11220000013544541J").unwrap(),
        name: format!("authority {n}"),
        level: "city".to_owned(),
        region_code: "220100".to_owned(),
        certificates: vec![],
        registered: datetime!(2024-01-01 0:00 UTC),
        origin: None,
    }
}

#[test]
fn acknowledged_writes_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        store
            .put_authority(&authority(7), b"registered 7")
            .unwrap()
            .durable
            .wait()
            .unwrap();
    }
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.authorities().unwrap(), vec![authority(7)]);
    assert_eq!(
        store
            .log_entries(zhengyin_store::LeafIndex(0), zhengyin_store::LeafIndex(1))
            .unwrap(),
        vec![b"registered 7".to_vec()]
    );
}

#[test]
fn concurrent_writers_share_flushes_and_all_become_durable() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path()).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for i in 0..50 {
                    store
                        .put_authority(&authority(t * 100 + i), format!("{t}/{i}").as_bytes())
                        .unwrap()
                        .durable
                        .wait()
                        .unwrap();
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let s = store.authorities().unwrap();
    assert_eq!(s.len(), 1, "same key replaced");
    // 400 logged writes, 400 contiguous log entries.
    assert_eq!(store.log_size().unwrap(), zhengyin_store::TreeSize(400));
    let entries = store
        .log_entries(zhengyin_store::LeafIndex(0), zhengyin_store::LeafIndex(400))
        .unwrap();
    let distinct: std::collections::BTreeSet<_> = entries.iter().collect();
    assert_eq!(distinct.len(), 400);
}

#[test]
fn durable_is_a_future_too() {
    let store = SledStore::temporary().unwrap();
    let durable = store.put_authority(&authority(1), b"entry").unwrap().durable;
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

fn use_record(n: u64) -> zhengyin_model::UseRecord {
    use zhengyin_model::{HolderCodeType, HolderRef, TypeCode, UseOperation, UseOutcome};
    zhengyin_model::UseRecord {
        id: format!("UR{n:016x}"),
        time: datetime!(2026-12-01 0:00 UTC),
        department: "11220100013544541A".to_owned(),
        operation: UseOperation::Verify,
        type_code: TypeCode::parse("11100000000013338W032").unwrap(),
        licences: Vec::new(),
        holder: Some(HolderRef {
            code_type: HolderCodeType::Uscc,
            code: "91110000600037341L".to_owned(),
        }),
        service_item: "S-001".to_owned(),
        use_cause: "审批".to_owned(),
        authorisation: None,
        grant: None,
        outcome: UseOutcome::Answered,
    }
}

/// Acknowledged use records live in the journal until recorded: a crash before recording (the
/// store dropped without it) loses none of them; once recorded and released, none is pending.
#[test]
fn journaled_use_records_survive_a_crash_before_they_are_recorded() {
    use zhengyin_store::UseQuery;
    let dir = tempfile::tempdir().unwrap();
    let all = UseQuery {
        limit: 100,
        ..UseQuery::default()
    };
    {
        let store = SledStore::open(dir.path()).unwrap();
        store
            .record_uses(&[use_record(1)], b"u1")
            .unwrap()
            .durable
            .wait()
            .unwrap();
        store.journal_uses(&[use_record(2), use_record(3)]).unwrap();
        store.journal_uses(&[use_record(4)]).unwrap();
    }
    {
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(
            store.journaled_uses().unwrap(),
            vec![use_record(2), use_record(3), use_record(4)]
        );
        assert_eq!(store.use_records(&all).unwrap().len(), 4);
        assert_eq!(store.last_use_record().unwrap(), Some(use_record(4).id));
        assert_eq!(store.log_size().unwrap(), zhengyin_store::TreeSize(1));
        // Recording them (as the engine does at start), durably, then releasing the journal.
        let pending = store.journaled_uses().unwrap();
        store.record_uses(&pending, b"u2-u4").unwrap().durable.wait().unwrap();
        store.release_journal(&use_record(4).id).unwrap();
        store.journal_uses(&[use_record(5)]).unwrap();
    }
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(
        store.journaled_uses().unwrap(),
        vec![use_record(5)],
        "only the unrecorded one"
    );
    let ids: Vec<String> = store.use_records(&all).unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(ids, (1..=5).map(|n| use_record(n).id).collect::<Vec<_>>(), "each once");
    assert_eq!(store.log_size().unwrap(), zhengyin_store::TreeSize(2));
}
