//! The embedded default backend: sled, one tree per record kind, JSON values.

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
use crate::{
    Hash, Intent, LeafIndex, LicenceCommit, LicenceState, Logged, NodeId, Store, StoreError, StoredLicence, StoredSeal,
    SyncApply, SyncCursor, TreeSize, UseQuery,
};

/// A sled database with group commit.
pub struct SledStore {
    db: sled::Db,
    gc: Arc<GroupCommit>,
    authorities: sled::Tree,
    types: sled::Tree,
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
    /// Objections (JSON) by id, and `licence id \0 objection id` → () for the per-licence list.
    objections: sled::Tree,
    objections_by_licence: sled::Tree,
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
    /// CRLs (DER) by issuing CA name.
    crls: sled::Tree,
    /// Sync cursors (JSON) by source origin, and sync incidents (JSON) by id.
    sync_cursors: sled::Tree,
    sync_incidents: sled::Tree,
    /// Serialises log appends so that concurrent transactions do not retry on the size key.
    log_writer: std::sync::Mutex<()>,
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
        (after, before, limit): (Option<&str>, Option<&str>, usize),
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
            out.push(record);
        }
        Ok(out)
    }

    /// Opens (or creates) a database in `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        // The group-commit thread flushes as often as writes need; sled's own timer would only
        // compete with it.
        let db = sled::Config::new()
            .path(path)
            .mode(sled::Mode::HighThroughput)
            .flush_every_ms(None)
            .open()
            .map_err(backend)?;
        let store = Self::from_db(db)?;
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
            let records: Vec<UseRecord> = decode("use records", &chunk)?;
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
        Ok(Self {
            authorities: tree("authorities")?,
            types: tree("licence_types")?,
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
            crls: tree("crls")?,
            sync_cursors: tree("sync_cursors")?,
            sync_incidents: tree("sync_incidents")?,
            log_writer: std::sync::Mutex::new(()),
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
    log.insert(&entry_key(size), entry)?;
    // The same entry appended twice keeps its first index in the hash index.
    if log.get(hash_key(&leaf))?.is_none() {
        log.insert(&hash_key(&leaf)[..], &size.to_be_bytes())?;
    }
    log.insert(LOG_SIZE, &(size + 1).to_be_bytes())?;
    Ok(LeafIndex(size))
}

impl Store for SledStore {
    fn put_authority(&self, authority: &Authority, entry: &[u8]) -> Result<Logged, StoreError> {
        let value = encode(authority)?;
        let _log = self.lock_log();
        let index = (&self.authorities, &self.log, &self.log_nodes)
            .transaction(|(authorities, log, nodes)| {
                authorities.insert(authority.uscc.as_str(), value.as_slice())?;
                append(log, nodes, entry)
            })
            .map_err(tx_error)?;
        Ok(self.logged(index))
    }

    fn authorities(&self) -> Result<Vec<Authority>, StoreError> {
        Self::all(&self.authorities, "authority")
    }

    fn put_licence_type(&self, licence_type: &LicenceType) -> Result<Durable, StoreError> {
        self.types
            .insert(licence_type.code.as_str(), encode(licence_type)?)
            .map_err(backend)?;
        Ok(self.durable())
    }

    fn licence_types(&self) -> Result<Vec<LicenceType>, StoreError> {
        Self::all(&self.types, "licence type")
    }

    fn next_serial(&self) -> Result<u64, StoreError> {
        // sled persists the generator ahead of use, so an id is never handed out twice.
        self.db.generate_id().map_err(backend)
    }

    fn record_intent(&self, intent: &Intent) -> Result<Durable, StoreError> {
        self.intents
            .insert(intent.id.as_str(), encode(intent)?)
            .map_err(backend)?;
        Ok(self.durable())
    }

    fn pending_intents(&self) -> Result<Vec<Intent>, StoreError> {
        Self::all(&self.intents, "intent")
    }

    fn abandon_intent(&self, id: &LicenceId) -> Result<Durable, StoreError> {
        (&self.intents, &self.abandoned)
            .transaction(|(intents, abandoned)| {
                if let Some(v) = intents.remove(id.as_str())? {
                    abandoned.insert(id.as_str(), v)?;
                }
                Ok(())
            })
            .map_err(tx_error)?;
        Ok(self.durable())
    }

    fn commit_licence(&self, c: &LicenceCommit, entry: &[u8]) -> Result<Logged, StoreError> {
        let status = encode(&c.status)?;
        let supersedes = match &c.supersedes {
            Some((id, old, new)) => Some((id, encode(old)?, encode(new)?)),
            None => None,
        };
        let mut holder = holder_key(c.holder.0, &c.holder.1);
        holder.extend_from_slice(c.id.as_str().as_bytes());
        let _log = self.lock_log();
        let index = (
            &self.licences,
            &self.status,
            &self.intents,
            &self.heads,
            &self.holders,
            &self.digests,
            &self.log,
            &self.log_nodes,
        )
            .transaction(|(licences, statuses, intents, heads, holders, digests, log, nodes)| {
                if licences.get(c.id.as_str())?.is_some() {
                    return Err(abort(StoreError::Conflict));
                }
                if let Some((old_id, expected, new)) = &supersedes {
                    if statuses.get(old_id.as_str())?.as_deref() != Some(expected.as_slice()) {
                        return Err(abort(StoreError::Conflict));
                    }
                    statuses.insert(old_id.as_str(), new.as_slice())?;
                }
                licences.insert(c.id.as_str(), c.signed.as_slice())?;
                digests.insert(c.id.as_str(), &c.document_sha256[..])?;
                statuses.insert(c.id.as_str(), status.as_slice())?;
                intents.remove(c.id.as_str())?;
                heads.insert(c.id.lineage().as_bytes(), c.id.as_str().as_bytes())?;
                holders.insert(holder.as_slice(), &[])?;
                append(log, nodes, entry)
            })
            .map_err(tx_error)?;
        Ok(self.logged(index))
    }

    fn licence(&self, id: &LicenceId) -> Result<Option<StoredLicence>, StoreError> {
        let Some(state) = self.licence_state(id)? else {
            return Ok(None);
        };
        let signed = self
            .licences
            .get(id.as_str())
            .map_err(backend)?
            .ok_or_else(|| StoreError::Corrupt(format!("licence {id} has a status but no signed form")))?;
        Ok(Some(StoredLicence {
            signed: signed.to_vec(),
            document_sha256: state.document_sha256,
            status: state.status,
        }))
    }

    fn licence_state(&self, id: &LicenceId) -> Result<Option<LicenceState>, StoreError> {
        let Some(status) = self.status.get(id.as_str()).map_err(backend)? else {
            return Ok(None);
        };
        let corrupt = || StoreError::Corrupt(format!("licence {id} has no well-formed digest"));
        let digest = self.digests.get(id.as_str()).map_err(backend)?.ok_or_else(corrupt)?;
        Ok(Some(LicenceState {
            document_sha256: digest.as_ref().try_into().map_err(|_| corrupt())?,
            status: decode("status", &status)?,
        }))
    }

    fn update_status(
        &self,
        id: &LicenceId,
        expected: &StatusHistory,
        new: &StatusHistory,
        entry: &[u8],
    ) -> Result<Logged, StoreError> {
        self.swap_with_entry(&self.status, id.as_str(), &encode(expected)?, &encode(new)?, entry)
    }

    fn current_version(&self, lineage: &str) -> Result<Option<LicenceId>, StoreError> {
        self.heads
            .get(lineage)
            .map_err(backend)?
            .map(|v| {
                let text = std::str::from_utf8(&v).map_err(|_| StoreError::Corrupt("head".to_owned()))?;
                LicenceId::parse(text).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .transpose()
    }

    fn licences_of_holder(
        &self,
        code_type: HolderCodeType,
        code: &str,
        type_code: Option<&TypeCode>,
    ) -> Result<Vec<LicenceId>, StoreError> {
        let prefix = holder_key(code_type, code);
        let mut out = Vec::new();
        for key in self.holders.scan_prefix(&prefix).keys() {
            let key = key.map_err(backend)?;
            let text =
                std::str::from_utf8(&key[prefix.len()..]).map_err(|_| StoreError::Corrupt("holder".to_owned()))?;
            let id = LicenceId::parse(text).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if type_code.is_none_or(|t| t == id.type_code()) {
                out.push(id);
            }
        }
        Ok(out)
    }

    fn put_seal(&self, seal: &StoredSeal, entry: &[u8]) -> Result<Logged, StoreError> {
        let key = seal.record.es_id.as_str();
        let (record, status) = (encode(&seal.record)?, encode(&seal.status)?);
        let _log = self.lock_log();
        let index = (
            &self.seals,
            &self.seal_der,
            &self.seal_status,
            &self.log,
            &self.log_nodes,
        )
            .transaction(|(records, ders, statuses, log, nodes)| {
                if records.get(key)?.is_some() {
                    return Err(abort(StoreError::Conflict));
                }
                records.insert(key, record.as_slice())?;
                ders.insert(key, seal.der.as_slice())?;
                statuses.insert(key, status.as_slice())?;
                append(log, nodes, entry)
            })
            .map_err(tx_error)?;
        Ok(self.logged(index))
    }

    fn seal(&self, es_id: &str) -> Result<Option<StoredSeal>, StoreError> {
        let Some(record) = self.seals.get(es_id).map_err(backend)? else {
            return Ok(None);
        };
        let corrupt = |what: &str| StoreError::Corrupt(format!("seal {es_id} has no {what}"));
        let der = self
            .seal_der
            .get(es_id)
            .map_err(backend)?
            .ok_or_else(|| corrupt("DER"))?;
        let status = self
            .seal_status
            .get(es_id)
            .map_err(backend)?
            .ok_or_else(|| corrupt("status"))?;
        Ok(Some(StoredSeal {
            record: decode("seal", &record)?,
            der: der.to_vec(),
            status: decode("seal status", &status)?,
        }))
    }

    fn update_seal_status(
        &self,
        es_id: &str,
        expected: &SealHistory,
        new: &SealHistory,
        entry: &[u8],
    ) -> Result<Logged, StoreError> {
        self.swap_with_entry(&self.seal_status, es_id, &encode(expected)?, &encode(new)?, entry)
    }

    fn put_objection(&self, objection: &Objection, entry: &[u8]) -> Result<Logged, StoreError> {
        let index_key = objection_key(&objection.licence, &objection.id);
        self.insert_new_with_entry(
            &self.objections,
            &objection.id,
            &encode(objection)?,
            &[(&self.objections_by_licence, index_key)],
            entry,
        )
    }

    fn objection(&self, id: &str) -> Result<Option<Objection>, StoreError> {
        self.objections
            .get(id)
            .map_err(backend)?
            .map(|v| decode("objection", &v))
            .transpose()
    }

    fn update_objection(
        &self,
        expected: &Objection,
        new: &Objection,
        entry: &[u8],
        notify: Option<(&Notification, Option<&str>)>,
    ) -> Result<Logged, StoreError> {
        if expected.id != new.id || expected.licence != new.licence {
            return Err(StoreError::Conflict);
        }
        let Some((notification, url)) = notify else {
            return self.swap_with_entry(&self.objections, &new.id, &encode(expected)?, &encode(new)?, entry);
        };
        let (old_value, new_value) = (encode(expected)?, encode(new)?);
        let note = encode(notification)?;
        let delivery = url
            .map(|url| {
                encode(&Delivery {
                    notification: notification.clone(),
                    url: url.to_owned(),
                    attempts: 0,
                    next_attempt: notification.time,
                })
            })
            .transpose()?;
        let recipient_key = concat(&department_key(&notification.recipient), &notification.id);
        let trees = [
            self.objections.clone(),
            self.log.clone(),
            self.log_nodes.clone(),
            self.notifications.clone(),
            self.notifications_by_recipient.clone(),
            self.outbox.clone(),
        ];
        let _log = self.lock_log();
        let index = trees
            .as_slice()
            .transaction(|views| {
                let [objections, log, nodes, notifications, by_recipient, outbox] = views.as_slice() else {
                    return Err(abort(StoreError::Backend("transaction views".to_owned())));
                };
                match objections.get(&new.id)? {
                    None => return Err(abort(StoreError::NotFound)),
                    Some(current) if current.as_ref() != old_value.as_slice() => {
                        return Err(abort(StoreError::Conflict))
                    }
                    Some(_) => {}
                }
                objections.insert(new.id.as_bytes(), new_value.as_slice())?;
                notifications.insert(notification.id.as_bytes(), note.as_slice())?;
                by_recipient.insert(recipient_key.as_slice(), &[][..])?;
                if let Some(delivery) = &delivery {
                    outbox.insert(notification.id.as_bytes(), delivery.as_slice())?;
                }
                append(log, nodes, entry)
            })
            .map_err(tx_error)?;
        Ok(self.logged(index))
    }

    fn put_crl(&self, issuer: &[u8], der: &[u8]) -> Result<Durable, StoreError> {
        self.crls.insert(issuer, der).map_err(backend)?;
        Ok(self.durable())
    }

    fn crls(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.crls
            .iter()
            .values()
            .map(|v| v.map(|v| v.to_vec()).map_err(backend))
            .collect()
    }

    fn put_evidence(&self, sha256: &[u8; 32], bytes: &[u8]) -> Result<Durable, StoreError> {
        self.evidence.insert(sha256, bytes).map_err(backend)?;
        Ok(self.durable())
    }

    fn evidence(&self, sha256: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.evidence.get(sha256).map_err(backend)?.map(|v| v.to_vec()))
    }

    fn notifications_of(&self, recipient: &str) -> Result<Vec<Notification>, StoreError> {
        Self::listed(
            &self.notifications_by_recipient,
            &department_key(recipient),
            &self.notifications,
            "notification",
            (None, None, usize::MAX),
        )
    }

    fn due_deliveries(&self, now: time::OffsetDateTime, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        let mut due = Vec::new();
        for value in self.outbox.iter().values() {
            let delivery: Delivery = decode("delivery", &value.map_err(backend)?)?;
            if delivery.next_attempt <= now {
                due.push(delivery);
                if due.len() >= limit {
                    break;
                }
            }
        }
        Ok(due)
    }

    fn settle_delivery(&self, id: &str, next: Option<&Delivery>) -> Result<Durable, StoreError> {
        match next {
            Some(delivery) => self.outbox.insert(id.as_bytes(), encode(delivery)?).map_err(backend)?,
            None => self.outbox.remove(id.as_bytes()).map_err(backend)?,
        };
        Ok(self.durable())
    }

    fn open_objections(&self) -> Result<Vec<Objection>, StoreError> {
        let mut all = self.objections()?;
        all.retain(|o| o.workflow.state().is_open());
        Ok(all)
    }

    fn objections(&self) -> Result<Vec<Objection>, StoreError> {
        let mut all: Vec<Objection> = Self::all(&self.objections, "objection")?;
        all.sort_by_key(|o| o.workflow.filed_at);
        Ok(all)
    }

    fn objections_of_licence(&self, licence: &LicenceId) -> Result<Vec<Objection>, StoreError> {
        let prefix = objection_key(licence, "");
        let mut out = Vec::new();
        for key in self.objections_by_licence.scan_prefix(&prefix).keys() {
            let key = key.map_err(backend)?;
            let id = std::str::from_utf8(&key[prefix.len()..])
                .map_err(|_| StoreError::Corrupt("objection index".to_owned()))?;
            let objection = self
                .objection(id)?
                .ok_or_else(|| StoreError::Corrupt(format!("objection {id} indexed but absent")))?;
            out.push(objection);
        }
        out.sort_by_key(|o| o.workflow.filed_at);
        Ok(out)
    }

    fn put_service_item(&self, item: &ServiceItem) -> Result<Durable, StoreError> {
        self.service_items
            .insert(item.code.as_bytes(), encode(item)?)
            .map_err(backend)?;
        Ok(self.durable())
    }

    fn service_items(&self) -> Result<Vec<ServiceItem>, StoreError> {
        Self::all(&self.service_items, "service item")
    }

    fn put_grant(&self, grant: &Grant, entry: &[u8]) -> Result<Logged, StoreError> {
        self.insert_new_with_entry(&self.grants, &grant.id, &encode(grant)?, &[], entry)
    }

    fn update_grant(&self, expected: &Grant, new: &Grant, entry: &[u8]) -> Result<Logged, StoreError> {
        if expected.id != new.id {
            return Err(StoreError::Conflict);
        }
        self.swap_with_entry(&self.grants, &new.id, &encode(expected)?, &encode(new)?, entry)
    }

    fn grants(&self) -> Result<Vec<Grant>, StoreError> {
        Self::all(&self.grants, "grant")
    }

    fn put_authorisation(&self, a: &Authorisation, entry: &[u8]) -> Result<Logged, StoreError> {
        let index_key = concat(&holder_key(a.holder.code_type, &a.holder.code), &a.id);
        self.insert_new_with_entry(
            &self.authorisations,
            &a.id,
            &encode(a)?,
            &[(&self.authorisations_by_holder, index_key)],
            entry,
        )
    }

    fn authorisation(&self, id: &str) -> Result<Option<Authorisation>, StoreError> {
        Self::get(&self.authorisations, "authorisation", id)
    }

    fn update_authorisation(
        &self,
        expected: &Authorisation,
        new: &Authorisation,
        entry: &[u8],
    ) -> Result<Logged, StoreError> {
        if expected.id != new.id || expected.holder != new.holder {
            return Err(StoreError::Conflict);
        }
        self.swap_with_entry(&self.authorisations, &new.id, &encode(expected)?, &encode(new)?, entry)
    }

    fn authorisations_of_holder(&self, holder: &HolderRef) -> Result<Vec<Authorisation>, StoreError> {
        let prefix = holder_key(holder.code_type, &holder.code);
        let mut out: Vec<Authorisation> = Self::listed(
            &self.authorisations_by_holder,
            &prefix,
            &self.authorisations,
            "authorisation",
            (None, None, usize::MAX),
        )?;
        out.sort_by_key(|a| a.created);
        Ok(out)
    }

    fn record_uses(&self, records: &[UseRecord], entry: &[u8]) -> Result<Logged, StoreError> {
        let mut sorted: Vec<&UseRecord> = records.iter().collect();
        sorted.sort_by(|a, b| a.id.cmp(&b.id));
        if sorted.windows(2).any(|w| w[0].id == w[1].id) {
            return Err(StoreError::Conflict);
        }
        let (Some(first), Some(last)) = (sorted.first(), sorted.last()) else {
            return self.append_log(entry);
        };
        let (first_id, last_id) = (first.id.clone(), last.id.clone());
        // Stored in chunks, each keyed by its first id: sled copies a node on every change, so
        // its values must stay small.
        let mut chunks = Vec::new();
        let mut departments = std::collections::BTreeSet::new();
        let mut holders = std::collections::BTreeSet::new();
        for chunk in sorted.chunks(USE_CHUNK) {
            let Some(chunk_key) = chunk.first().map(|r| r.id.as_str()) else {
                continue;
            };
            for r in chunk {
                departments.insert(concat(&department_key(&r.department), chunk_key));
                if let Some(h) = &r.holder {
                    holders.insert(concat(&holder_key(h.code_type, &h.code), chunk_key));
                }
            }
            chunks.push((chunk_key.as_bytes(), encode(&chunk)?));
        }
        let _one_writer = self.uses_writer.lock().unwrap_or_else(|p| p.into_inner());
        // Ids only grow: a write at or below the last stored id would overwrite or interleave.
        let above_stored = |stored: Option<&[u8]>| stored.is_none_or(|s| s < first_id.as_bytes());
        if !above_stored(self.uses_meta.get(LAST_USE).map_err(backend)?.as_deref()) {
            return Err(StoreError::Conflict);
        }
        // The records and their indexes first, outside any transaction: a sled transaction stops
        // every reader of every tree while it commits, and these writes are large. Written again
        // they are the same (a chunk is keyed by its first id), so a commit cut short by a crash
        // is completed from the journal at the next start; readers skip records they also find
        // pending.
        for (key, value) in &chunks {
            self.uses.insert(*key, value.as_slice()).map_err(backend)?;
        }
        for (index, keys) in [
            (&self.uses_by_department, &departments),
            (&self.uses_by_holder, &holders),
        ] {
            for key in keys {
                index.insert(key.as_slice(), &[][..]).map_err(backend)?;
            }
        }
        // Then the log entry and the new last id, atomically.
        let _log = self.lock_log();
        let index = (&self.log, &self.log_nodes, &self.uses_meta)
            .transaction(|(log, nodes, meta)| {
                if !above_stored(meta.get(LAST_USE)?.as_deref()) {
                    return Err(abort(StoreError::Conflict));
                }
                meta.insert(LAST_USE, last_id.as_bytes())?;
                append(log, nodes, entry)
            })
            .map_err(tx_error)?;
        let mut journal = self.journal_state();
        if journal.last.as_ref().is_none_or(|l| *l < last_id) {
            journal.last = Some(last_id.clone());
        }
        // Readers look at the pending records before the trees: now they find these in the trees.
        self.uses_pending
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|r| r.id > last_id);
        drop(journal);
        Ok(self.logged(index))
    }

    fn journal_uses(&self, records: &[UseRecord]) -> Result<(), StoreError> {
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return Ok(());
        };
        let mut journal = self.journal_state();
        let ascending = records.windows(2).all(|w| w[0].id < w[1].id);
        if !ascending || journal.last.as_ref().is_some_and(|l| first.id <= *l) {
            return Err(StoreError::Conflict);
        }
        if let Some(segments) = journal.segments.as_mut() {
            segments.append(records)?;
        }
        journal.last = Some(last.id.clone());
        self.uses_pending
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(records);
        Ok(())
    }

    fn journaled_uses(&self) -> Result<Vec<UseRecord>, StoreError> {
        Ok(self.uses_pending.read().unwrap_or_else(|p| p.into_inner()).clone())
    }

    fn release_journal(&self, through: &str) -> Result<(), StoreError> {
        match self.journal_state().segments.as_mut() {
            Some(segments) => segments.release(through),
            None => Ok(()),
        }
    }

    fn last_use_record(&self) -> Result<Option<String>, StoreError> {
        Ok(self.journal_state().last.clone())
    }

    fn use_records(&self, q: &UseQuery) -> Result<Vec<UseRecord>, StoreError> {
        // Pending first: a record committed meanwhile is then found in the trees, never missed.
        let pending: Vec<UseRecord> = self
            .uses_pending
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|r| q.admits(r))
            .cloned()
            .collect();
        let mut out = self.stored_uses(q)?;
        let newest = out.last().map(|r| r.id.clone());
        out.extend(
            pending
                .into_iter()
                .filter(|r| newest.as_ref().is_none_or(|n| r.id > *n)),
        );
        out.truncate(q.limit);
        Ok(out)
    }

    fn put_api_token(&self, token: &ApiToken, entry: &[u8]) -> Result<Logged, StoreError> {
        self.insert_new_with_entry(&self.api_tokens, &token.id, &encode(token)?, &[], entry)
    }

    fn update_api_token(&self, expected: &ApiToken, new: &ApiToken, entry: &[u8]) -> Result<Logged, StoreError> {
        if expected.id != new.id || expected.sha256 != new.sha256 {
            return Err(StoreError::Conflict);
        }
        self.swap_with_entry(&self.api_tokens, &new.id, &encode(expected)?, &encode(new)?, entry)
    }

    fn api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        Self::all(&self.api_tokens, "API token")
    }

    fn put_presentation(&self, p: &Presentation) -> Result<Durable, StoreError> {
        self.presentations
            .compare_and_swap(p.id.as_bytes(), None::<&[u8]>, Some(encode(p)?))
            .map_err(backend)?
            .map_err(|_| StoreError::Conflict)?;
        Ok(self.durable())
    }

    fn presentation(&self, id: &str) -> Result<Option<Presentation>, StoreError> {
        Self::get(&self.presentations, "presentation", id)
    }

    fn update_presentation(&self, expected: &Presentation, new: &Presentation) -> Result<Durable, StoreError> {
        if expected.id != new.id {
            return Err(StoreError::Conflict);
        }
        self.presentations
            .compare_and_swap(new.id.as_bytes(), Some(encode(expected)?), Some(encode(new)?))
            .map_err(backend)?
            .map_err(|_| StoreError::Conflict)?;
        Ok(self.durable())
    }

    fn apply_sync(&self, apply: &SyncApply) -> Result<Durable, StoreError> {
        let expected = apply.expected.as_ref().map(encode).transpose()?;
        let cursor = encode(&apply.cursor)?;
        let authorities = apply
            .authorities
            .iter()
            .map(|a| Ok((a.uscc.as_str(), encode(a)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let statuses = apply
            .statuses
            .iter()
            .map(|(id, history)| Ok((id.as_str(), encode(history)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let seals = apply
            .seals
            .iter()
            .map(|seal| Ok((seal.record.es_id.as_str(), encode(&seal.record)?, seal.der.as_slice())))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let seal_statuses = apply
            .seal_statuses
            .iter()
            .map(|(es_id, history)| Ok((es_id.as_str(), encode(history)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let trees = [
            &self.sync_cursors,
            &self.authorities,
            &self.licences,
            &self.digests,
            &self.holders,
            &self.heads,
            &self.status,
            &self.seals,
            &self.seal_der,
            &self.seal_status,
            &self.log,
            &self.log_nodes,
        ]
        .map(sled::Tree::clone);
        let _log = self.lock_log();
        trees
            .as_slice()
            .transaction(|views| {
                let [cursors, authority_view, licences, digests, holders, heads, status, seal_records, seal_ders, seal_status, log, nodes] =
                    views.as_slice()
                else {
                    return Err(abort(StoreError::Backend("transaction views".to_owned())));
                };
                let origin = apply.cursor.origin.as_str();
                if cursors.get(origin)?.as_deref() != expected.as_deref() {
                    return Err(abort(StoreError::Conflict));
                }
                for (uscc, value) in &authorities {
                    authority_view.insert(*uscc, value.as_slice())?;
                }
                for l in &apply.licences {
                    let id = l.id.as_str();
                    match licences.get(id)? {
                        Some(held) if held.as_ref() != l.signed.as_slice() => return Err(abort(StoreError::Conflict)),
                        Some(_) => continue,
                        None => {}
                    }
                    licences.insert(id, l.signed.as_slice())?;
                    digests.insert(id, &l.document_sha256[..])?;
                    let mut holder = holder_key(l.holder.0, &l.holder.1);
                    holder.extend_from_slice(id.as_bytes());
                    holders.insert(holder, &[][..])?;
                    // Versions of a lineage differ only in their version digits: later sorts higher.
                    let lineage = l.id.lineage();
                    if heads
                        .get(lineage.as_bytes())?
                        .is_none_or(|head| head.as_ref() < id.as_bytes())
                    {
                        heads.insert(lineage.as_bytes(), id.as_bytes())?;
                    }
                }
                for (id, history) in &statuses {
                    status.insert(*id, history.as_slice())?;
                }
                for (es_id, record, der) in &seals {
                    match seal_ders.get(*es_id)? {
                        Some(held) if held.as_ref() != *der => return Err(abort(StoreError::Conflict)),
                        Some(_) => continue,
                        None => {}
                    }
                    seal_records.insert(*es_id, record.as_slice())?;
                    seal_ders.insert(*es_id, *der)?;
                }
                for (es_id, history) in &seal_statuses {
                    seal_status.insert(*es_id, history.as_slice())?;
                }
                for entry in &apply.entries {
                    append(log, nodes, entry)?;
                }
                cursors.insert(origin, cursor.as_slice())?;
                Ok(())
            })
            .map_err(tx_error)?;
        Ok(self.durable())
    }

    fn sync_cursors(&self) -> Result<Vec<SyncCursor>, StoreError> {
        Self::all(&self.sync_cursors, "sync cursor")
    }

    fn put_incident(&self, incident: &SyncIncident) -> Result<Durable, StoreError> {
        self.sync_incidents
            .insert(incident.id.as_bytes(), encode(incident)?)
            .map_err(backend)?;
        Ok(self.durable())
    }

    fn incidents(&self) -> Result<Vec<SyncIncident>, StoreError> {
        Self::all(&self.sync_incidents, "sync incident")
    }

    fn append_log(&self, entry: &[u8]) -> Result<Logged, StoreError> {
        let _log = self.lock_log();
        let index = (&self.log, &self.log_nodes)
            .transaction(|(log, nodes)| append(log, nodes, entry))
            .map_err(tx_error)?;
        Ok(self.logged(index))
    }

    fn log_size(&self) -> Result<TreeSize, StoreError> {
        match self.log.get(LOG_SIZE).map_err(backend)? {
            Some(v) => Ok(TreeSize(read_u64(&v)?)),
            None => Ok(TreeSize(0)),
        }
    }

    fn log_entries(&self, start: LeafIndex, end: LeafIndex) -> Result<Vec<Vec<u8>>, StoreError> {
        if start.0 >= end.0 {
            return Ok(Vec::new());
        }
        self.log
            .range(entry_key(start.0)..entry_key(end.0))
            .values()
            .map(|v| v.map(|v| v.to_vec()).map_err(backend))
            .collect()
    }

    fn log_index_of(&self, leaf_hash: &Hash) -> Result<Option<LeafIndex>, StoreError> {
        self.log
            .get(hash_key(leaf_hash))
            .map_err(backend)?
            .map(|v| read_u64(&v).map(LeafIndex))
            .transpose()
    }

    fn log_node(&self, node: NodeId) -> Result<Hash, StoreError> {
        let v = self
            .log_nodes
            .get(node_key(node))
            .map_err(backend)?
            .ok_or_else(|| StoreError::Corrupt(format!("log node {node:?}")))?;
        v.as_ref()
            .try_into()
            .map_err(|_| StoreError::Corrupt("log node".to_owned()))
    }

    fn put_checkpoint(&self, size: TreeSize, note: &str) -> Result<Durable, StoreError> {
        self.checkpoints
            .insert(size.0.to_be_bytes(), note.as_bytes())
            .map_err(backend)?;
        Ok(self.durable())
    }

    fn latest_checkpoint(&self) -> Result<Option<(TreeSize, String)>, StoreError> {
        let Some((k, v)) = self.checkpoints.last().map_err(backend)? else {
            return Ok(None);
        };
        let note = String::from_utf8(v.to_vec()).map_err(|_| StoreError::Corrupt("checkpoint".to_owned()))?;
        Ok(Some((TreeSize(read_u64(&k)?), note)))
    }
}
