//! Rules that need the store closed and opened again, or many writers at once.

use super::*;

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

/// A use record numbered `n` (ids ascend with `n`), for tests that need some.
pub fn numbered_use(n: u64) -> Result<zhengyin_model::UseRecord, String> {
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
