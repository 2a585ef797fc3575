//! The contract every [`Store`] backend must pass. Call [`run`] on a fresh, empty store, and
//! [`run_durability`] with a way to open one (empty at first) store again and again, from the
//! backend's tests; it returns the first broken rule.

use time::macros::datetime;
use zhengyin_model::licence::{Change, History, Holder};
use zhengyin_model::{
    Authority, HolderCodeType, LicenceId, LicenceType, Objection, RevocationReason, SealRecord, SealState, Status,
    StatusHistory, TypeCode, Uscc, Version,
};

mod access;
mod durability;
mod leases;
mod objections;
mod sessions;
mod upgrade;

use access::{access, api_tokens, presentations, use_records};
pub use durability::{numbered_use, run_durability, Reopen};
use leases::leases;
use objections::objections;
use sessions::sessions;
pub use upgrade::{earlier_data_indexed, EarlierData};

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
        number: format!("No.{}", id.serial()),
        supersedes,
    }
}

fn holder(code: &str) -> zhengyin_model::HolderRef {
    zhengyin_model::HolderRef {
        code_type: HolderCodeType::Uscc,
        code: code.to_owned(),
    }
}

/// Runs every rule against `store`, which must be empty.
pub fn run(store: &dyn Store) -> Outcome {
    catalogue(store)?;
    serials(store)?;
    intents(store)?;
    licences(store)?;
    numbers(store)?;
    bulk(store)?;
    status_changes(store)?;
    log(store)?;
    seals(store)?;
    licence_files(store)?;
    objections(store)?;
    access(store)?;
    use_records(store)?;
    presentations(store)?;
    api_tokens(store)?;
    sync(store)?;
    leases(store)?;
    sessions(store)?;
    Ok(())
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
    let other = sample_seal("22010000000000000", None);
    logged(store.put_seal(&other, b"another seal made"), "put seal")?;
    ensure(
        ok(store.seals(), "list seals")? == vec![other, seal.clone()],
        "every seal is listed, in esID order",
    )?;
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
    ensure(applied == size.0 + 3, "an event without a record is the next entry")?;
    ensure(
        ok(
            store.log_entries(crate::LeafIndex(applied), crate::LeafIndex(applied + 1)),
            "read entry",
        )? == vec![b"seal applied".to_vec()],
        "it reads back",
    )?;
    ensure(
        ok(store.log_size(), "log size")?.0 == size.0 + 4,
        "seal events are log entries",
    )
}

fn licence_files(store: &dyn Store) -> Outcome {
    let id = sample_id("FILE0001", 1)?;
    ensure(
        ok(store.licence_file(&id), "read file")?.is_none(),
        "a licence has no file at first",
    )?;
    wait(store.put_licence_file(&id, b"PK first"), "keep file")?;
    wait(store.put_licence_file(&id, b"PK second"), "keep another")?;
    ensure(
        ok(store.licence_file(&id), "read file")?.as_deref() == Some(&b"PK first"[..]),
        "the first file kept stays",
    )?;
    ensure(
        ok(store.licence_file(&sample_id("FILE0001", 2)?), "read file")?.is_none(),
        "each version has its own file",
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
        retired: Vec::new(),
    })
}

fn catalogue(store: &dyn Store) -> Outcome {
    let mut a = sample_authority(None)?;
    logged(store.put_authority(&a, b"authority 1"), "put authority")?;
    a.name.push_str("（新）");
    logged(store.put_authority(&a, b"authority 2"), "replace authority")?;
    ensure(
        ok(store.authorities(), "authorities")? == vec![a.clone()],
        "an authority is replaced, not duplicated",
    )?;
    let t: LicenceType = serde_json::from_value(serde_json::json!({
        "code": "11100000000013338W032", "name": "营业执照", "defining_authority": "11100000000013338W",
        "holder_code_types": ["001"], "face_schema": []
    }))
    .map_err(|e| e.to_string())?;
    let first = logged(store.put_licence_type(&t, b"type 1"), "put type")?;
    let mut bound = t.clone();
    bound.issuers = vec![a.uscc.clone()];
    logged(store.put_licence_type(&bound, b"type 1 bound"), "bind an issuer")?;
    let mut changed = bound.clone();
    changed.name.push_str("（新）");
    ensure(
        store.put_licence_type(&changed, b"x").err() == Some(StoreError::Conflict),
        "a version is not given another definition",
    )?;
    changed.version = 2;
    let second = logged(store.put_licence_type(&changed, b"type 2"), "new version")?;
    ensure(
        ok(store.licence_types(), "types")? == vec![changed.clone()],
        "the current version of a licence type replaces the earlier, in the catalogue",
    )?;
    ensure(
        ok(store.licence_type_versions(&t.code), "versions")? == vec![bound.clone(), changed.clone()],
        "every version of a licence type is kept, oldest first",
    )?;
    ensure(
        store.put_licence_type(&bound, b"x").err() == Some(StoreError::Conflict),
        "an earlier version never becomes current again",
    )?;
    ensure(
        ok(store.log_entries(LeafIndex(first), LeafIndex(second + 1)), "log")?
            == vec![b"type 1".to_vec(), b"type 1 bound".to_vec(), b"type 2".to_vec()],
        "every catalogue change is in the log",
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

fn numbers(store: &dyn Store) -> Outcome {
    let numbered = |id: &LicenceId, number: &str, supersedes| LicenceCommit {
        number: number.to_owned(),
        ..commit(id, supersedes)
    };
    let (first, second) = (sample_id("NUM1", 1)?, sample_id("NUM2", 1)?);
    logged(
        store.commit_licence(&numbered(&first, "吉2024-7", None), b"n1"),
        "commit a number",
    )?;
    ensure(
        ok(store.number_holder(&first, "吉2024-7"), "number holder")? == Some(first.lineage())
            && ok(store.number_holder(&first, "吉2024-8"), "free number")?.is_none(),
        "a licence number is reserved for its lineage",
    )?;
    ensure(
        matches!(
            store.commit_licence(&numbered(&second, "吉2024-7", None), b"n2"),
            Err(StoreError::Taken(_))
        ) && ok(store.licence(&second), "refused")?.is_none(),
        "another lineage cannot take a reserved number, and nothing of it is written",
    )?;
    let elsewhere = LicenceId::new(
        first.type_code().clone(),
        Uscc::parse("91350100M000100Y43").map_err(|e| e.to_string())?,
        "NUM3",
        Version::FIRST,
    )
    .map_err(|e| e.to_string())?;
    logged(
        store.commit_licence(&numbered(&elsewhere, "吉2024-7", None), b"n3"),
        "the same number from another issuer",
    )?;
    let next = first.next_version().map_err(|e| e.to_string())?;
    let current = ok(store.licence(&first), "first")?.ok_or("first missing")?.status;
    let superseded = history(Status::Superseded { by: next.clone() });
    logged(
        store.commit_licence(
            &numbered(&next, "吉2024-7", Some((first.clone(), current, superseded))),
            b"n4",
        ),
        "the next version keeps its number",
    )?;
    Ok(())
}

/// Records the intents of new licences with these serials, as bulk issuance does; answers their
/// identifiers.
fn bulk_intents(store: &dyn Store, serials: &[&str]) -> Result<Vec<LicenceId>, String> {
    let ids = serials.iter().map(|s| sample_id(s, 1)).collect::<Result<Vec<_>, _>>()?;
    let intents: Vec<Intent> = ids
        .iter()
        .map(|id| Intent {
            id: id.clone(),
            authority: id.issuer().clone(),
            document: b"{}".to_vec(),
            recorded: datetime!(2024-01-01 0:00 UTC),
        })
        .collect();
    for durable in ok(store.record_intents(&intents), "record intents")? {
        wait(Ok(durable), "intents durable")?;
    }
    Ok(ids)
}

/// Many intents and commits at once, as bulk issuance writes them: each commit answered in
/// order, an earlier one keeping a number a later one carries too, a refused one writing nothing.
fn bulk(store: &dyn Store) -> Outcome {
    let pending_before = ok(store.pending_intents(), "pending")?.len();
    let ids = bulk_intents(store, &["BULK1", "BULK2", "BULK3", "BULK4"])?;
    ensure(
        ok(store.pending_intents(), "pending")?.len() == pending_before + 4,
        "every intent of a bulk is recorded",
    )?;
    let numbered = |id: &LicenceId, number: &str| LicenceCommit {
        number: number.to_owned(),
        ..commit(id, None)
    };
    // Written before the bulk: a licence, and with it a number.
    logged(store.commit_licence(&numbered(&ids[0], "吉2024-B0"), b"b0"), "commit")?;
    let size = ok(store.log_size(), "size")?.0;
    let batch = vec![
        (numbered(&ids[1], "吉2024-B1"), b"b1".to_vec()),
        (numbered(&ids[2], "吉2024-B0"), b"b2".to_vec()),
        (commit(&ids[0], None), b"b0 again".to_vec()),
        (numbered(&ids[3], "吉2024-B3"), b"b3".to_vec()),
    ];
    let results = store.commit_licences(&batch);
    ensure(
        matches!(results[1], Err(StoreError::Taken(_))) && matches!(results[2], Err(StoreError::Conflict)),
        "a number already taken, and a licence already written, are refused in a bulk",
    )?;
    let mut indexes: Vec<u64> = Vec::new();
    for (i, result) in results.into_iter().enumerate() {
        if let Ok(logged) = result {
            indexes.push(logged.index.0);
            wait(Ok(logged.durable), "bulk durable")?;
        } else {
            ensure(i == 1 || i == 2, "the other commits of the bulk are written")?;
        }
    }
    indexes.sort_unstable();
    ensure(
        indexes == [size, size + 1],
        "each written commit of a bulk appends its entry",
    )?;
    let mut entries = ok(store.log_entries(LeafIndex(size), LeafIndex(size + 2)), "entries")?;
    entries.sort();
    ensure(
        entries == [b"b1".to_vec(), b"b3".to_vec()],
        "the entries are the written commits'",
    )?;
    ensure(
        ok(store.licence(&ids[2]), "refused")?.is_none() && ok(store.licence(&ids[3]), "written")?.is_some(),
        "a refused commit writes nothing, the others are written",
    )?;
    ensure(
        ok(store.pending_intents(), "pending")?.len() == pending_before + 1,
        "a written commit clears its intent; a refused one leaves it for the engine to abandon",
    )?;

    // A bulk nothing refuses (the usual case, which a backend may write all at once): the
    // entries in the bulk's order, every licence, number and intent as if written one by one.
    let fresh = bulk_intents(store, &["BULK5", "BULK6", "BULK7"])?;
    let size = ok(store.log_size(), "size")?.0;
    let batch: Vec<_> = fresh
        .iter()
        .map(|id| (commit(id, None), format!("entry {id}").into_bytes()))
        .collect();
    let mut indexes = Vec::new();
    for result in store.commit_licences(&batch) {
        let logged = result.map_err(|e| format!("a bulk nothing refuses: {e}"))?;
        indexes.push(logged.index.0);
        wait(Ok(logged.durable), "bulk durable")?;
    }
    ensure(
        indexes == [size, size + 1, size + 2],
        "a bulk's entries are appended in its order",
    )?;
    ensure(
        ok(store.log_entries(LeafIndex(size), LeafIndex(size + 3)), "entries")?
            == batch.iter().map(|(_, entry)| entry.clone()).collect::<Vec<_>>(),
        "each index holds its commit's entry",
    )?;
    for (c, _) in &batch {
        ensure(
            ok(store.licence(&c.id), "bulk licence")?.map(|l| l.signed) == Some(c.signed.clone())
                && ok(store.number_holder(&c.id, &c.number), "bulk number")? == Some(c.id.lineage()),
            "every licence of the bulk is written with its number",
        )?;
    }
    ensure(
        ok(store.pending_intents(), "pending")?.len() == pending_before + 1,
        "the bulk's intents are cleared",
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
    let issuer_prefix = v1.lineage().trim_end_matches(v1.serial()).to_owned();
    let under = ok(store.current_versions_under(&issuer_prefix, None, 10), "by issuer")?;
    let lineages: std::collections::BTreeSet<String> = under.iter().map(LicenceId::lineage).collect();
    ensure(
        under.contains(&v2)
            && !under.contains(&v1)
            && lineages.len() == under.len()
            && under.iter().all(|id| id.lineage().starts_with(&issuer_prefix)),
        "an issuer's licences of a type list each lineage once, at its newest version",
    )?;
    ensure(
        ok(
            store.current_versions_under(&issuer_prefix, Some(&v1.lineage()), 10),
            "after",
        )?
        .is_empty()
            && ok(store.current_versions_under(&issuer_prefix, None, 0), "none")?.is_empty()
            && ok(store.current_versions_under("1.2.156.3005.2.0", None, 10), "other")?.is_empty(),
        "listing by issuer honours the cursor, the limit and the prefix",
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
    )?;
    ensure(
        ok(store.recent_checkpoints(5), "recent")?
            == vec![(size, "note 2\n".to_owned()), (TreeSize(1), "note 1\n".to_owned())]
            && ok(store.recent_checkpoints(1), "recent")?.len() == 1,
        "recent checkpoints come newest first, as many as asked",
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
        incidents: Vec::new(),
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
    // A conflict over one authority, written with the page that skipped its entries.
    let conflict = zhengyin_model::SyncIncident {
        id: "IN0000000000000009".to_owned(),
        origin: origin.to_owned(),
        kind: zhengyin_model::IncidentKind::Conflict,
        detail: "claims an authority another node owns".to_owned(),
        evidence: Vec::new(),
        detected: datetime!(2024-01-01 0:00 UTC),
        conflict: Some(zhengyin_model::Conflict {
            authority: "91350100M000100Y43".to_owned(),
            owner: Some("zhengyin.example/elsewhere".to_owned()),
            registration: Some(7),
            skipped: vec![7, 9],
            unlisted: 0,
            replayed: false,
        }),
        resolved: None,
    };
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
        incidents: vec![conflict.clone()],
    };
    ensure(
        matches!(store.apply_sync(&conflicting), Err(StoreError::Conflict)),
        "other bytes under a held identifier are refused",
    )?;
    ensure(
        ok(store.incident(&conflict.id), "incident")?.is_none(),
        "a refused page writes no incident",
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
        incidents: vec![conflict.clone()],
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
    ensure(
        ok(store.incident(&conflict.id), "incident")? == Some(conflict.clone())
            && ok(store.incidents_page(true, None, 10), "open incidents")? == vec![conflict.clone()],
        "a page's incident is written with it, and indexed while pending",
    )?;
    // Accepting the claimant keeps it pending until its skipped entries are replayed.
    let mut accepted = conflict.clone();
    accepted.resolved = Some(zhengyin_model::Resolution {
        at: datetime!(2024-01-02 0:00 UTC),
        note: "the authority moved".to_owned(),
        decision: Some(zhengyin_model::Decision::AcceptClaimant),
    });
    wait(store.put_incident(&accepted), "incident")?;
    ensure(
        ok(store.incidents_page(true, None, 10), "open incidents")?.len() == 1,
        "an accepted conflict stays pending until replayed",
    )?;
    if let Some(c) = accepted.conflict.as_mut() {
        c.replayed = true;
    }
    wait(store.put_incident(&accepted), "incident")?;
    ensure(
        ok(store.incidents_page(true, None, 10), "open incidents")?.is_empty(),
        "a replayed conflict is no longer pending",
    )?;
    let incident = zhengyin_model::SyncIncident {
        id: "IN0000000000000001".to_owned(),
        origin: origin.to_owned(),
        kind: zhengyin_model::IncidentKind::Fork,
        detail: "two roots at size 3".to_owned(),
        evidence: vec!["a".to_owned(), "b".to_owned()],
        detected: datetime!(2024-01-01 0:00 UTC),
        conflict: None,
        resolved: None,
    };
    wait(store.put_incident(&incident), "incident")?;
    ensure(
        ok(store.incident(&incident.id), "incident")? == Some(incident.clone()),
        "an incident reads back",
    )?;
    // A second incident; then the first is resolved (replaced): the open index follows.
    let later = zhengyin_model::SyncIncident {
        id: "IN0000000000000002".to_owned(),
        ..incident.clone()
    };
    wait(store.put_incident(&later), "incident")?;
    let open_ids = |after: Option<&str>| -> Result<Vec<String>, String> {
        Ok(ok(store.incidents_page(true, after, 10), "open incidents")?
            .into_iter()
            .map(|i| i.id)
            .collect())
    };
    ensure(
        open_ids(None)? == [incident.id.as_str(), later.id.as_str()],
        "both incidents are open",
    )?;
    ensure(
        open_ids(Some(&incident.id))? == [later.id.as_str()],
        "open incidents page after an id",
    )?;
    let resolved = zhengyin_model::SyncIncident {
        resolved: Some(zhengyin_model::Resolution {
            at: datetime!(2024-01-02 0:00 UTC),
            note: "checked".to_owned(),
            decision: None,
        }),
        ..incident.clone()
    };
    wait(store.put_incident(&resolved), "incident")?;
    ensure(
        open_ids(None)? == [later.id.as_str()],
        "a resolved incident leaves the open ones",
    )?;
    ensure(
        ok(store.incidents_page(false, None, 1), "incidents")? == vec![resolved.clone()]
            && ok(store.incidents(), "incidents")?.len() == 3,
        "a page holds at most the limit, the resolution included",
    )?;
    ensure(
        ok(store.incident(&later.id), "incident")? == Some(later)
            && ok(store.incident("IN-none"), "incident")?.is_none(),
        "an incident reads back by id",
    )
}
