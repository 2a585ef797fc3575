//! The embedded default backend: sled, one tree per record kind, JSON values. One file per
//! concern's trait; this one holds the database, its helpers and the log append they share.

mod access;
mod backup;
mod export;
mod health;
mod leases;
mod licences;
mod log;
mod objections;
mod sessions;
mod sync;
mod uses;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use serde::de::DeserializeOwned;
use serde::Serialize;
use sled::transaction::{
    ConflictableTransactionError, ConflictableTransactionResult, TransactionError, Transactional as _,
    TransactionalTree,
};
use zhengyin_model::{
    ApiToken, Authorisation, Authority, Delivery, Grant, HolderCodeType, HolderRef, LicenceId, LicenceType,
    Notification, Objection, Presentation, SealHistory, ServiceItem, StatusHistory, SyncIncident, TypeCode, UseRecord,
};

use crate::durable::{Durable, GroupCommit};
use crate::journal::Journal;
use crate::packed;
use crate::{
    AccessStore, Hash, Intent, LeafIndex, LicenceCommit, LicenceFileStore, LicenceState, LicenceStore, LogStore,
    Logged, NodeId, ObjectionPage, ObjectionScope, ObjectionStore, RegistryStore, SealStore, StoreError, StoredLicence,
    StoredSeal, SyncApply, SyncCursor, SyncStore, TreeSize, UseQuery, UseStore,
};

/// The embedded store's page cache unless configured: sled's own default (1 GiB) would let a
/// node's memory grow with its data to that much.
pub const DEFAULT_CACHE_BYTES: u64 = 128 << 20;

/// A sled database with group commit.
pub struct SledStore {
    db: sled::Db,
    gc: Arc<GroupCommit>,
    authorities: sled::Tree,
    types: sled::Tree,
    /// Every version of every licence type: type code, then the version (4 bytes, big-endian).
    type_versions: sled::Tree,
    /// Reserved licence numbers ([`crate::number_key`]) → the lineage holding each.
    numbers: sled::Tree,
    licences: sled::Tree,
    status: sled::Tree,
    heads: sled::Tree,
    intents: sled::Tree,
    abandoned: sled::Tree,
    holders: sled::Tree,
    digests: sled::Tree,
    /// Log entries (`e` + index), leaf-hash index (`h` + hash) and the size (`size`).
    log: sled::Tree,
    /// Complete-subtree hashes of the log: level byte + index (big-endian).
    log_nodes: sled::Tree,
    checkpoints: sled::Tree,
    /// Seals: record (JSON), the signed `SESeal` (DER) and status history (JSON), by esID.
    seals: sled::Tree,
    seal_der: sled::Tree,
    seal_status: sled::Tree,
    /// Objections (JSON) by id; `licence id \0 objection id` → () for the per-licence list;
    /// objector key + id and issuer key + id → () for their listings; open ones' ids → ().
    objections: sled::Tree,
    objections_by_licence: sled::Tree,
    objections_by_objector: sled::Tree,
    objections_by_issuer: sled::Tree,
    objections_open: sled::Tree,
    service_items: sled::Tree,
    grants: sled::Tree,
    /// Authorisations (JSON) by id, and `holder key` + id → () for the holder's list.
    authorisations: sled::Tree,
    authorisations_by_holder: sled::Tree,
    /// Use records in chunks of up to [`USE_CHUNK`] (a JSON array, ids ascending) keyed by the
    /// first id; holder key + chunk key and department key + chunk key → () for each holder and
    /// department in the chunk; and `last` → the highest id stored (ids only grow).
    uses: sled::Tree,
    uses_by_holder: sled::Tree,
    uses_by_department: sled::Tree,
    uses_meta: sled::Tree,
    /// The write-ahead journal of use records (none for a temporary store).
    uses_journal: Mutex<UseJournal>,
    /// Use records journaled but not yet recorded in the trees, ids ascending.
    uses_pending: RwLock<Vec<UseRecord>>,
    /// One recording of use records at a time (its checks and writes are not one transaction).
    uses_writer: Mutex<()>,
    /// Presentations (亮证 tokens) by id.
    presentations: sled::Tree,
    /// API tokens issued by operators (hashes only) by id.
    api_tokens: sled::Tree,
    /// Objection notifications by id, recipient key + id → (), and the deliveries still due.
    notifications: sled::Tree,
    notifications_by_recipient: sled::Tree,
    outbox: sled::Tree,
    /// Evidence files by SHA-256.
    evidence: sled::Tree,
    /// Licence files (sealed OFD) by licence id.
    licence_files: sled::Tree,
    /// CRLs (DER) by issuing CA name.
    crls: sled::Tree,
    /// Sync cursors (JSON) by source origin, sync incidents (JSON) by id, and the unresolved
    /// incidents' ids → ().
    sync_cursors: sled::Tree,
    sync_incidents: sled::Tree,
    sync_incidents_open: sled::Tree,
    /// Serialises log appends so that concurrent transactions do not retry on the size key.
    log_writer: std::sync::Mutex<()>,
    /// Sign-in sessions by key: their end (Unix seconds, big-endian) and record.
    sessions: sled::Tree,
    /// Leases by name: holder and end. In memory: sled admits one process, so every holder is in it.
    leases: Mutex<std::collections::HashMap<String, (String, std::time::Instant)>>,
    /// Every write holds it shared; a backup holds it alone, so that what it reads is one
    /// consistent state (reads go on meanwhile).
    writes: RwLock<()>,
    /// Added to sled's id generator: a restored store starts past the serials of its archive.
    serial_floor: u64,
}

/// The journal's segments and the highest use record id journaled or stored.
struct UseJournal {
    segments: Option<Journal>,
    last: Option<String>,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(backend)
}

fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn objection_key(licence: &LicenceId, id: &str) -> Vec<u8> {
    format!("{licence}\0{id}").into_bytes()
}

fn holder_key(code_type: HolderCodeType, code: &str) -> Vec<u8> {
    format!("{}:{}\0", code_type.as_str(), code).into_bytes()
}

/// A department's index prefix: its length first, so no name is a prefix of another's key.
fn department_key(department: &str) -> Vec<u8> {
    let mut key = (department.len() as u64).to_be_bytes().to_vec();
    key.extend_from_slice(department.as_bytes());
    key
}

fn concat(prefix: &[u8], id: &str) -> Vec<u8> {
    [prefix, id.as_bytes()].concat()
}

impl SledStore {
    /// Replaces `tree[key]` if it still equals `expected` (compare-and-swap) and appends `entry`
    /// to the log, atomically.
    fn swap_with_entry(
        &self,
        tree: &sled::Tree,
        key: &str,
        expected: &[u8],
        new: &[u8],
        entry: &[u8],
    ) -> Result<Logged, StoreError> {
        let _log = self.lock_log();
        let index = (tree, &self.log, &self.log_nodes)
            .transaction(|(values, log, nodes)| {
                match values.get(key)? {
                    None => return Err(abort(StoreError::NotFound)),
                    Some(current) if current.as_ref() != expected => return Err(abort(StoreError::Conflict)),
                    Some(_) => {}
                }
                values.insert(key, new)?;
                append(log, nodes, entry)
            })
            .map_err(tx_error)?;
        Ok(self.logged(index))
    }

    /// Inserts `tree[key] = value` (refusing a taken key), sets every `(index, key)` to empty, and
    /// appends `entry` to the log, atomically.
    fn insert_new_with_entry(
        &self,
        tree: &sled::Tree,
        key: &str,
        value: &[u8],
        indexes: &[(&sled::Tree, Vec<u8>)],
        entry: &[u8],
    ) -> Result<Logged, StoreError> {
        let mut trees = vec![tree.clone(), self.log.clone(), self.log_nodes.clone()];
        trees.extend(indexes.iter().map(|(t, _)| (*t).clone()));
        let _log = self.lock_log();
        let index = trees
            .as_slice()
            .transaction(|views| {
                let [values, log, nodes, index_views @ ..] = views.as_slice() else {
                    return Err(abort(StoreError::Backend("transaction views".to_owned())));
                };
                if values.get(key)?.is_some() {
                    return Err(abort(StoreError::Conflict));
                }
                values.insert(key, value)?;
                for (view, (_, index_key)) in index_views.iter().zip(indexes) {
                    view.insert(index_key.as_slice(), &[][..])?;
                }
                append(log, nodes, entry)
            })
            .map_err(tx_error)?;
        Ok(self.logged(index))
    }

    fn get<T: DeserializeOwned>(tree: &sled::Tree, what: &str, key: &str) -> Result<Option<T>, StoreError> {
        tree.get(key).map_err(backend)?.map(|v| decode(what, &v)).transpose()
    }

    /// The records an index lists under `prefix`, with ids in `(after, before)`, at most `limit`.
    fn listed<T: DeserializeOwned>(
        index: &sled::Tree,
        prefix: &[u8],
        records: &sled::Tree,
        what: &str,
        bounds: (Option<&str>, Option<&str>, usize),
    ) -> Result<Vec<T>, StoreError> {
        Self::listed_where(index, prefix, records, what, bounds, |_| true)
    }

    /// [`Self::listed`], keeping only the records `keep` admits (the limit counts those kept).
    fn listed_where<T: DeserializeOwned>(
        index: &sled::Tree,
        prefix: &[u8],
        records: &sled::Tree,
        what: &str,
        (after, before, limit): (Option<&str>, Option<&str>, usize),
        keep: impl Fn(&T) -> bool,
    ) -> Result<Vec<T>, StoreError> {
        use std::ops::Bound;
        let start = match after {
            Some(id) => Bound::Excluded(concat(prefix, id)),
            None => Bound::Included(prefix.to_vec()),
        };
        let mut out = Vec::new();
        for key in index.range::<Vec<u8>, _>((start, Bound::Unbounded)).keys() {
            let key = key.map_err(backend)?;
            let Some(id) = key.strip_prefix(prefix) else { break };
            let id = std::str::from_utf8(id).map_err(|_| StoreError::Corrupt(format!("{what} index")))?;
            if out.len() >= limit || before.is_some_and(|b| id >= b) {
                break;
            }
            let record = Self::get(records, what, id)?
                .ok_or_else(|| StoreError::Corrupt(format!("{what} {id} indexed but absent")))?;
            if keep(&record) {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// Opens (or creates) a database in `path`, with a cache of [`DEFAULT_CACHE_BYTES`].
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// Opens (or creates) a database in `path` whose page cache holds at most `cache_bytes`:
    /// what bounds the process's memory as the data grows (the OS caches the file beyond it).
    pub fn open_with_cache(path: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        // The group-commit thread flushes as often as writes need; sled's own timer would only
        // compete with it.
        let config = sled::Config::new()
            .path(path)
            .mode(sled::Mode::HighThroughput)
            .cache_capacity(cache_bytes)
            .flush_every_ms(None);
        // sled releases its file lock only once its last background write of a store just
        // closed in this process is done: wait for that briefly rather than fail.
        let mut attempts = 0;
        let db = loop {
            match config.open() {
                // (sled says so only in the message: its error kind is `Other`.)
                Err(sled::Error::Io(e)) if e.to_string().starts_with("could not acquire lock") && attempts < 100 => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => break other.map_err(backend)?,
            }
        };
        let store = Self::from_db(db)?;
        store.index_earlier_data()?;
        store.index_earlier_objections()?;
        store.index_earlier_incidents()?;
        let (journal, journaled) = Journal::open(&path.join(USE_JOURNAL))?;
        store.recover_journal(journal, journaled)?;
        Ok(store)
    }

    /// A throw-away database in a temporary directory (tests): nothing in it is durable, and its
    /// use records are journaled in memory only.
    pub fn temporary() -> Result<Self, StoreError> {
        Self::from_db(sled::Config::new().temporary(true).open().map_err(backend)?)
    }

    /// Takes up the journal found at opening: what it holds beyond the last stored id is pending.
    fn recover_journal(&self, journal: Journal, journaled: Vec<UseRecord>) -> Result<(), StoreError> {
        let stored = self.stored_last_use()?;
        let pending: Vec<UseRecord> = journaled
            .into_iter()
            .filter(|r| stored.as_ref().is_none_or(|s| r.id > *s))
            .collect();
        let mut state = self.journal_state();
        state.last = pending.last().map(|r| r.id.clone()).or(stored);
        state.segments = Some(journal);
        *self.uses_pending.write().unwrap_or_else(|p| p.into_inner()) = pending;
        Ok(())
    }

    fn journal_state(&self) -> MutexGuard<'_, UseJournal> {
        self.uses_journal.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stored_last_use(&self) -> Result<Option<String>, StoreError> {
        self.uses_meta
            .get(LAST_USE)
            .map_err(backend)?
            .map(|v| String::from_utf8(v.to_vec()).map_err(|_| StoreError::Corrupt("last use record id".to_owned())))
            .transpose()
    }

    /// Use records in the trees matching `q`, in id order.
    fn stored_uses(&self, q: &UseQuery) -> Result<Vec<UseRecord>, StoreError> {
        let (index, prefix) = match (&q.holder, &q.department) {
            (Some(h), _) => (Some(&self.uses_by_holder), holder_key(h.code_type, &h.code)),
            (None, Some(d)) => (Some(&self.uses_by_department), department_key(d)),
            (None, None) => (None, Vec::new()),
        };
        // The chunks to read, in order: from the one that may hold `after` onwards.
        let tree = index.unwrap_or(&self.uses);
        let start = match &q.after {
            Some(after) => tree
                .range(prefix.clone()..=concat(&prefix, after))
                .next_back()
                .transpose()
                .map_err(backend)?
                .map_or_else(|| prefix.clone(), |(key, _)| key.to_vec()),
            None => prefix.clone(),
        };
        let mut out = Vec::new();
        for key in tree.range(start..).keys() {
            let key = key.map_err(backend)?;
            let Some(chunk_key) = key.strip_prefix(prefix.as_slice()) else {
                break;
            };
            let chunk = self
                .uses
                .get(chunk_key)
                .map_err(backend)?
                .ok_or_else(|| StoreError::Corrupt("use record chunk indexed but absent".to_owned()))?;
            let records: Vec<UseRecord> = decode("use records", &crate::packed::unpack(&chunk)?)?;
            for record in records {
                if out.len() >= q.limit || q.before.as_ref().is_some_and(|b| record.id >= *b) {
                    return Ok(out);
                }
                if q.admits(&record) {
                    out.push(record);
                }
            }
        }
        Ok(out)
    }

    fn from_db(db: sled::Db) -> Result<Self, StoreError> {
        let tree = |name: &str| db.open_tree(name).map_err(backend);
        let flusher = db.clone();
        let serial_floor = match tree(META)?.get(SERIAL_FLOOR).map_err(backend)? {
            Some(v) => read_u64(&v)?,
            None => 0,
        };
        Ok(Self {
            authorities: tree("authorities")?,
            types: tree("licence_types")?,
            type_versions: tree("licence_type_versions")?,
            numbers: tree("licence_numbers")?,
            licences: tree("licences")?,
            status: tree("status")?,
            heads: tree("heads")?,
            intents: tree("intents")?,
            abandoned: tree("abandoned_intents")?,
            holders: tree("holders")?,
            digests: tree("document_digests")?,
            log: tree("log")?,
            log_nodes: tree("log_nodes")?,
            checkpoints: tree("checkpoints")?,
            seals: tree("seals")?,
            seal_der: tree("seal_der")?,
            seal_status: tree("seal_status")?,
            objections: tree("objections")?,
            objections_by_licence: tree("objections_by_licence")?,
            objections_by_objector: tree("objections_by_objector")?,
            objections_by_issuer: tree("objections_by_issuer")?,
            objections_open: tree("objections_open")?,
            service_items: tree("service_items")?,
            grants: tree("grants")?,
            authorisations: tree("authorisations")?,
            authorisations_by_holder: tree("authorisations_by_holder")?,
            uses: tree("use_record_batches")?,
            uses_by_holder: tree("use_record_batches_by_holder")?,
            uses_by_department: tree("use_record_batches_by_department")?,
            uses_meta: tree("use_records_meta")?,
            uses_journal: Mutex::new(UseJournal {
                segments: None,
                last: None,
            }),
            uses_pending: RwLock::default(),
            uses_writer: Mutex::new(()),
            presentations: tree("presentations")?,
            api_tokens: tree("api_tokens")?,
            notifications: tree("notifications")?,
            notifications_by_recipient: tree("notifications_by_recipient")?,
            outbox: tree("outbox")?,
            evidence: tree("evidence")?,
            licence_files: tree("licence_files")?,
            crls: tree("crls")?,
            sync_cursors: tree("sync_cursors")?,
            sync_incidents: tree("sync_incidents")?,
            sync_incidents_open: tree("sync_incidents_open")?,
            log_writer: std::sync::Mutex::new(()),
            sessions: tree("sessions")?,
            leases: Mutex::default(),
            writes: RwLock::default(),
            serial_floor,
            gc: GroupCommit::start(move || flusher.flush().map(drop).map_err(|e| e.to_string())),
            db,
        })
    }

    fn durable(&self) -> Durable {
        Durable::new(Arc::clone(&self.gc), self.gc.ticket())
    }

    fn logged(&self, index: LeafIndex) -> Logged {
        Logged {
            durable: self.durable(),
            index,
        }
    }

    /// Held by every write for its duration (see `writes`).
    fn writing(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.writes.read().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_log(&self) -> std::sync::MutexGuard<'_, ()> {
        self.log_writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn all<T: DeserializeOwned>(tree: &sled::Tree, what: &str) -> Result<Vec<T>, StoreError> {
        tree.iter()
            .values()
            .map(|v| decode(what, &v.map_err(backend)?))
            .collect()
    }
}

impl Drop for SledStore {
    fn drop(&mut self) {
        self.gc.shutdown();
    }
}

fn tx_error(e: TransactionError<StoreError>) -> StoreError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => backend(e),
    }
}

fn abort(e: StoreError) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(e)
}

const LOG_SIZE: &[u8] = b"size";
/// The key of the highest use record id stored.
const LAST_USE: &[u8] = b"last";
/// Most use records in one stored value.
const USE_CHUNK: usize = 64;
/// Store-wide settings, and in it the serial floor (u64, big-endian).
const META: &str = "meta";
const SERIAL_FLOOR: &[u8] = b"serial_floor";
/// The use-record journal's directory, inside the database's.
const USE_JOURNAL: &str = "use-journal";

fn entry_key(index: u64) -> [u8; 9] {
    let mut k = [b'e'; 9];
    k[1..].copy_from_slice(&index.to_be_bytes());
    k
}

fn hash_key(hash: &Hash) -> [u8; 33] {
    let mut k = [b'h'; 33];
    k[1..].copy_from_slice(hash);
    k
}

fn node_key(node: NodeId) -> [u8; 9] {
    let mut k = [node.level; 9];
    k[1..].copy_from_slice(&node.index.to_be_bytes());
    k
}

fn read_u64(bytes: &[u8]) -> Result<u64, StoreError> {
    bytes
        .try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt("log size".to_owned()))
}

/// Reads log hashes inside a transaction.
struct TxNodes<'a>(&'a TransactionalTree);

impl zhengyin_tlog::HashReader for TxNodes<'_> {
    type Error = ConflictableTransactionError<StoreError>;

    fn read_hash(&self, node: NodeId) -> Result<Hash, Self::Error> {
        let v = self
            .0
            .get(node_key(node))?
            .ok_or_else(|| abort(StoreError::Corrupt(format!("log node {node:?}"))))?;
        v.as_ref()
            .try_into()
            .map_err(|_| abort(StoreError::Corrupt("log node".to_owned())))
    }
}

/// Appends `entry` to the log inside a transaction; returns its index.
fn append(
    log: &TransactionalTree,
    nodes: &TransactionalTree,
    entry: &[u8],
) -> ConflictableTransactionResult<LeafIndex, StoreError> {
    let size = match log.get(LOG_SIZE)? {
        Some(v) => read_u64(&v).map_err(abort)?,
        None => 0,
    };
    let leaf = zhengyin_tlog::leaf_hash(entry);
    let new_nodes =
        zhengyin_tlog::tree::nodes_for_append(TreeSize(size), leaf, &TxNodes(nodes)).map_err(|e| match e {
            zhengyin_tlog::TreeError::Storage(e) => e,
            zhengyin_tlog::TreeError::OutOfRange(m) => abort(StoreError::Corrupt(m.to_owned())),
        })?;
    for (node, hash) in new_nodes {
        nodes.insert(&node_key(node), &hash[..])?;
    }
    log.insert(&entry_key(size), packed::pack_log_entry(entry))?;
    // The same entry appended twice keeps its first index in the hash index.
    if log.get(hash_key(&leaf))?.is_none() {
        log.insert(&hash_key(&leaf)[..], &size.to_be_bytes())?;
    }
    log.insert(LOG_SIZE, &(size + 1).to_be_bytes())?;
    Ok(LeafIndex(size))
}
