//! Zhengyin's storage: traits in domain terms, and their two backends.
//!
//! What it holds: [`Store`], the sum of one trait per concern — [`RegistryStore`] (authorities,
//! licence types, CRLs), [`LicenceStore`] (serials, intents, licences with their status histories,
//! versions, the holder index), [`SealStore`], [`ObjectionStore`] (objections, evidence,
//! notifications, the webhook outbox), [`AccessStore`] (service items, grants, authorisations, API
//! tokens, presentations), [`UseStore`] (use records), [`SyncStore`] (sync cursors and incidents),
//! [`LogStore`] (the signature log), [`LeaseStore`], [`SessionStore`] (the pages' sign-in
//! sessions) and [`HealthStore`] (the readiness probe);
//! group commit ([`Durable`]); the embedded sled backend
//! ([`SledStore`], one process) and the PostgreSQL backend ([`PgStore`], any number of frontends
//! over one database); the embedded store's online backups ([`Backup`], restored with
//! [`SledStore::restore`]; a checked archive format); and the contract suite both must pass
//! ([`contract`]).
//!
//! What it is not: it knows no rule of the service (the engine does) and nothing sled- or
//! SQL-shaped leaves it.
//!
//! The rules every backend keeps:
//! - **Nothing is acknowledged before it is durable.** Every write returns a [`Durable`]; the caller
//!   awaits it before answering. Concurrent writes share one flush (group commit).
//! - **Intent before signature.** The unsigned record is stored (and durable) before the key is
//!   used; the signed licence replaces it in one atomic write. A crash in between leaves an intent
//!   that recovery marks abandoned; its serial is never reused.
//! - **Atomic multi-record writes.** A licence, its status, the status of the version it supersedes
//!   and the indexes change together or not at all.
//! - **The log entry is part of the write.** Every signing event appends its entry to the
//!   signature log (RFC 9162 tree, computed with `zhengyin-tlog`) in the same atomic write as the
//!   record it describes; indices are contiguous and never reused.
//! - **Use records go through a journal.** They are the one write on the verification hot path:
//!   durable first in an append-only journal (one data sync per group), then recorded with their
//!   log entry in rare large commits; the journal keeps them until that commit is durable and
//!   completes an interrupted one at the next opening. (On PostgreSQL the journal is the table
//!   itself: rows not yet recorded.)

mod archive;
pub mod contract;
pub mod copy;
mod durable;
mod journal;
pub mod packed;
pub mod pg;
mod sled;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use zhengyin_model::{
    ApiToken, Authorisation, Authority, Delivery, Grant, HolderCodeType, HolderRef, LicenceId, LicenceType,
    Notification, Objection, Presentation, SealHistory, SealRecord, ServiceItem, StatusHistory, SyncIncident, TypeCode,
    Uscc, UseRecord,
};
pub use zhengyin_tlog::{Hash, LeafIndex, NodeId, TreeSize};

pub use durable::{Durable, Ticket};
pub use pg::PgStore;
pub use sled::{SledStore, DEFAULT_CACHE_BYTES};

/// Storage errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend failed (I/O, flush); the detail is for the log, not the client.
    #[error("storage backend: {0}")]
    Backend(String),
    /// A stored record could not be decoded.
    #[error("corrupt record {0}")]
    Corrupt(String),
    /// A compare-and-swap found another value: someone changed the record first.
    #[error("conflicting concurrent change")]
    Conflict,
    /// The record to change does not exist.
    #[error("not found")]
    NotFound,
    /// A backup archive is damaged, truncated, or not one.
    #[error("backup archive: {0}")]
    Archive(String),
    /// A value that must be unique (a licence number) is held by another record.
    #[error("{0} is already taken")]
    Taken(String),
    /// The database cannot be used by this build: unreachable at start, another application's,
    /// or a schema it does not know. Said once, at start; nothing was written.
    #[error("database: {0}")]
    Schema(String),
}

/// What a backup wrote or a restore read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    /// Records in it.
    pub records: u64,
    /// The size of the signature log in it.
    pub log_size: u64,
    /// The archive's SHA-256 (its end frame).
    pub sha256: [u8; 32],
}

/// A store that writes a consistent backup of itself while it serves: the embedded store. (A
/// PostgreSQL database is backed up with the database's own tools.)
pub trait Backup: Send + Sync {
    /// Writes every record to `out`, as one consistent state.
    fn backup(&self, out: &mut dyn std::io::Write) -> Result<BackupSummary, StoreError>;
}

/// An unsigned licence about to be signed (intent before signature).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    /// The identifier the licence will have.
    pub id: LicenceId,
    /// The authority whose key will sign it.
    pub authority: Uscc,
    /// The canonical bytes of the unsigned document.
    pub document: Vec<u8>,
    /// When the intent was recorded.
    #[serde(with = "time::serde::rfc3339")]
    pub recorded: OffsetDateTime,
}

/// A signed licence with its status history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLicence {
    /// The signed licence exactly as issued.
    pub signed: Vec<u8>,
    /// SHA-256 of the JCS form of the licence without its proof: what verification compares a
    /// presented licence against.
    pub document_sha256: [u8; 32],
    /// Its status history.
    pub status: StatusHistory,
}

/// What verification needs of a stored licence: the digest it is compared against, and its
/// status history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenceState {
    /// SHA-256 of the JCS form of the licence without its proof.
    pub document_sha256: [u8; 32],
    /// Its status history.
    pub status: StatusHistory,
}

/// A registered seal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSeal {
    /// What it is.
    pub record: SealRecord,
    /// The signed `SESeal` (DER) exactly as made.
    pub der: Vec<u8>,
    /// Its status history.
    pub status: SealHistory,
}

/// Everything that changes when a licence is issued or a new version replaces an old one.
#[derive(Debug, Clone)]
pub struct LicenceCommit {
    /// The new licence's identifier.
    pub id: LicenceId,
    /// The signed licence bytes.
    pub signed: Vec<u8>,
    /// SHA-256 of the JCS form of the licence without its proof.
    pub document_sha256: [u8; 32],
    /// Its initial status history.
    pub status: StatusHistory,
    /// The holder, for the holder index.
    pub holder: (HolderCodeType, String),
    /// The licence number (证照编号): unique per (type, issuing authority), reserved for the
    /// lineage by its first version that carries it.
    pub number: String,
    /// The version it supersedes: its id, its status history as read, and its new history.
    pub supersedes: Option<(LicenceId, StatusHistory, StatusHistory)>,
}

/// The key under which a licence number is reserved: type code (21 characters), issuer (18)
/// and the number, so that numbers are unique per (type, issuer).
pub fn number_key(id: &LicenceId, number: &str) -> String {
    format!("{}{}{number}", id.type_code(), id.issuer())
}

/// The `number` member of a signed licence, for indexing licences stored before numbers were.
pub(crate) fn number_of(signed: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Numbered {
        number: String,
    }
    serde_json::from_slice::<Numbered>(signed).ok().map(|n| n.number)
}

/// Which use records to list: by holder or by department or all, ids in `(after, before)`.
#[derive(Debug, Clone, Default)]
pub struct UseQuery {
    /// Only this holder's (takes precedence over `department`).
    pub holder: Option<HolderRef>,
    /// Only this department's.
    pub department: Option<String>,
    /// Only ids greater than this (a cursor, or the lower bound of a period).
    pub after: Option<String>,
    /// Only ids less than this (the upper bound of a period).
    pub before: Option<String>,
    /// At most this many.
    pub limit: usize,
}

impl UseQuery {
    /// Whether `record` is one of those asked for (the limit aside).
    pub fn admits(&self, record: &UseRecord) -> bool {
        let whose = match (&self.holder, &self.department) {
            (Some(h), _) => record.holder.as_ref() == Some(h),
            (None, Some(d)) => record.department == *d,
            (None, None) => true,
        };
        whose
            && self.after.as_ref().is_none_or(|a| record.id > *a)
            && self.before.as_ref().is_none_or(|b| record.id < *b)
    }
}

/// How far one source's log has been verified and applied: the sync cursor of an aggregating
/// node. It only moves forward, in the same atomic write as what it covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncCursor {
    /// The source's log origin.
    pub origin: String,
    /// The source's latest verified checkpoint note, exactly as received.
    pub checkpoint: String,
    /// That checkpoint's size and root.
    pub size: u64,
    /// That checkpoint's root hash.
    pub root: Hash,
    /// The compact range (RFC 9162 frontier) of the entries applied so far: `applied` leaves,
    /// never more than `size`. Extending it with the next entries and comparing with the
    /// checkpoint (through a consistency proof) is how new entries are checked.
    pub frontier: Vec<Hash>,
    /// The number of the source's entries applied.
    pub applied: u64,
    /// When every entry of `checkpoint` was applied and the source last confirmed it had
    /// nothing newer: the freshness of this node's copy.
    #[serde(with = "time::serde::rfc3339::option")]
    pub synced_at: Option<OffsetDateTime>,
}

/// A licence received from a source, checked, to be stored here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicatedLicence {
    /// Its identifier.
    pub id: LicenceId,
    /// The signed licence, exactly as issued.
    pub signed: Vec<u8>,
    /// SHA-256 of the JCS form of the licence without its proof.
    pub document_sha256: [u8; 32],
    /// The holder, for the holder index.
    pub holder: (HolderCodeType, String),
}

/// One page of a source's log, verified, applied in one atomic write with the cursor.
#[derive(Debug, Clone)]
pub struct SyncApply {
    /// The cursor as read before the page: [`StoreError::Conflict`] if it changed since.
    pub expected: Option<SyncCursor>,
    /// The cursor after the page.
    pub cursor: SyncCursor,
    /// Authorities registered or changed at the source (with `origin` set).
    pub authorities: Vec<Authority>,
    /// New licences, in log order; one already held must have the same bytes
    /// ([`StoreError::Conflict`] otherwise), and is then left as it is.
    pub licences: Vec<ReplicatedLicence>,
    /// Status histories replaced, in full.
    pub statuses: Vec<(LicenceId, StatusHistory)>,
    /// New seals (record and DER; their status is in `seal_statuses`); one already held must
    /// have the same DER ([`StoreError::Conflict`] otherwise).
    pub seals: Vec<StoredSeal>,
    /// Seal status histories replaced, in full, by esID.
    pub seal_statuses: Vec<(String, SealHistory)>,
    /// Entries for this node's own log (so that a node upstream of this one sees them too).
    pub entries: Vec<Vec<u8>>,
    /// Incidents created or replaced with the page (conflicts and the entries they skipped).
    pub incidents: Vec<SyncIncident>,
}

/// A write that appended a log entry: await `durable` before acknowledging.
#[must_use = "a write is not durable until awaited"]
pub struct Logged {
    /// Resolves when the write is durable.
    pub durable: Durable,
    /// The index of the log entry.
    pub index: LeafIndex,
}

/// Authorities, licence types and the CRLs of trusted CAs: the registry every node loads at start.
pub trait RegistryStore: Send + Sync {
    /// Creates or replaces an authority, appending `entry` to the log.
    fn put_authority(&self, authority: &Authority, entry: &[u8]) -> Result<Logged, StoreError>;

    /// Every authority.
    fn authorities(&self) -> Result<Vec<Authority>, StoreError>;

    /// Makes `licence_type` the current definition of its code and keeps it as that version,
    /// appending `entry` to the log, atomically. A version above the current one is added; the
    /// current version may be written again only with the same definition (its issuers may
    /// change, see [`LicenceType::same_definition`]). Anything else, or a version number already
    /// kept, fails with [`StoreError::Conflict`]: another writer changed the type first.
    fn put_licence_type(&self, licence_type: &LicenceType, entry: &[u8]) -> Result<Logged, StoreError>;

    /// Every licence type, each in its current version.
    fn licence_types(&self) -> Result<Vec<LicenceType>, StoreError>;

    /// Every kept version of one licence type, oldest first.
    fn licence_type_versions(&self, code: &TypeCode) -> Result<Vec<LicenceType>, StoreError>;

    /// Stores (replaces) the CRL of one CA, by the CA's name.
    fn put_crl(&self, issuer: &[u8], der: &[u8]) -> Result<Durable, StoreError>;

    /// Every CRL held.
    fn crls(&self) -> Result<Vec<Vec<u8>>, StoreError>;
}

/// Licences: serials, intents before signature, signed licences with their status histories, versions and the holder index.
pub trait LicenceStore: Send + Sync {
    /// A serial never handed out before, not even before a crash.
    fn next_serial(&self) -> Result<u64, StoreError>;

    /// Records an intent to sign.
    fn record_intent(&self, intent: &Intent) -> Result<Durable, StoreError>;

    /// Intents with no signed licence (left by a crash).
    fn pending_intents(&self) -> Result<Vec<Intent>, StoreError>;

    /// Marks an intent abandoned: it was never acknowledged and never will be.
    fn abandon_intent(&self, id: &LicenceId) -> Result<Durable, StoreError>;

    /// Stores a signed licence, clears its intent, updates the superseded version and the
    /// indexes, and reserves its number for its lineage, atomically. Fails with
    /// [`StoreError::Conflict`] if the superseded version's status changed since it was read, or
    /// the licence already exists, and with [`StoreError::Taken`] if another lineage holds the
    /// number. Appends `entry` to the log.
    fn commit_licence(&self, commit: &LicenceCommit, entry: &[u8]) -> Result<Logged, StoreError>;

    /// Records many intents (bulk issuance): durable once every returned write is.
    fn record_intents(&self, intents: &[Intent]) -> Result<Vec<Durable>, StoreError> {
        intents.iter().map(|i| self.record_intent(i)).collect()
    }

    /// Commits many licences with their log entries, each as [`LicenceStore::commit_licence`]
    /// would and in order (an earlier one keeps a number a later one also carries); a refused
    /// one refuses only itself. Backends write them together: one transaction for all (sled),
    /// or the fewest transactions their group commit allows (PostgreSQL).
    fn commit_licences(&self, commits: &[(LicenceCommit, Vec<u8>)]) -> Vec<Result<Logged, StoreError>> {
        commits.iter().map(|(c, entry)| self.commit_licence(c, entry)).collect()
    }

    /// The lineage (see [`LicenceId::lineage`]) whose licences carry `number` among those of
    /// `id`'s type and issuer, if any.
    fn number_holder(&self, id: &LicenceId, number: &str) -> Result<Option<String>, StoreError>;

    /// A licence and its status.
    fn licence(&self, id: &LicenceId) -> Result<Option<StoredLicence>, StoreError>;

    /// A licence's digest and status, without its signed bytes: the verification hot path.
    fn licence_state(&self, id: &LicenceId) -> Result<Option<LicenceState>, StoreError>;

    /// Replaces a status history if it still equals `expected` (compare-and-swap), appending
    /// `entry` to the log.
    fn update_status(
        &self,
        id: &LicenceId,
        expected: &StatusHistory,
        new: &StatusHistory,
        entry: &[u8],
    ) -> Result<Logged, StoreError>;

    /// The newest version of a licence lineage (see [`LicenceId::lineage`]).
    fn current_version(&self, lineage: &str) -> Result<Option<LicenceId>, StoreError>;

    /// The newest versions of the lineages starting with `prefix` (one issuer's licences of one
    /// type: `<LICENCE_ID_PREFIX><type>.<issuer>.`), in lineage order, after lineage `after`:
    /// at most `limit`.
    fn current_versions_under(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<LicenceId>, StoreError>;

    /// Licences of a holder, optionally of one type.
    fn licences_of_holder(
        &self,
        code_type: HolderCodeType,
        code: &str,
        type_code: Option<&TypeCode>,
    ) -> Result<Vec<LicenceId>, StoreError>;
}

/// Registered e-seals and their status histories.
pub trait SealStore: Send + Sync {
    /// Registers a seal (record, signed DER, first status) and appends `entry` to the log,
    /// atomically. [`StoreError::Conflict`] if the esID is taken.
    fn put_seal(&self, seal: &StoredSeal, entry: &[u8]) -> Result<Logged, StoreError>;

    /// A seal by esID.
    fn seal(&self, es_id: &str) -> Result<Option<StoredSeal>, StoreError>;

    /// Replaces a seal's status history if it still equals `expected`, appending `entry`.
    fn update_seal_status(
        &self,
        es_id: &str,
        expected: &SealHistory,
        new: &SealHistory,
        entry: &[u8],
    ) -> Result<Logged, StoreError>;

    /// Every registered seal, in esID order.
    fn seals(&self) -> Result<Vec<StoredSeal>, StoreError>;
}

/// Licence files: the sealed OFD file of each licence version, kept as made.
pub trait LicenceFileStore: Send + Sync {
    /// Keeps `file` as the file of licence `id`, unless it has one already (the first kept
    /// stays: read it back with [`LicenceFileStore::licence_file`]).
    fn put_licence_file(&self, id: &LicenceId, file: &[u8]) -> Result<Durable, StoreError>;

    /// The file of licence `id`, if one was kept.
    fn licence_file(&self, id: &LicenceId) -> Result<Option<Vec<u8>>, StoreError>;
}

/// Whose objections a listing covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ObjectionScope {
    /// Every objection (operators, auditors).
    #[default]
    All,
    /// Those one objector filed (`department:…` or the holder's key).
    Objector(String),
    /// Those to the licences one authority issued.
    Issuer(Uscc),
}

/// One page of an objection listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectionPage {
    /// Whose objections.
    pub scope: ObjectionScope,
    /// Open ones only (those whose workflow has not reached a final state).
    pub open_only: bool,
    /// Only ids after this one (the last id of the previous page).
    pub after: Option<String>,
    /// At most this many.
    pub limit: usize,
}

impl Default for ObjectionPage {
    fn default() -> Self {
        Self {
            scope: ObjectionScope::All,
            open_only: false,
            after: None,
            limit: usize::MAX,
        }
    }
}

impl ObjectionPage {
    /// Whether `objection` belongs in this listing (its cursor aside).
    pub fn admits(&self, objection: &Objection) -> bool {
        let mine = match &self.scope {
            ObjectionScope::All => true,
            ObjectionScope::Objector(who) => objection.objector == *who,
            ObjectionScope::Issuer(uscc) => objection.licence.issuer() == uscc,
        };
        mine && (!self.open_only || objection.workflow.state().is_open())
    }
}

/// Objections (异议), their evidence files, notifications and the webhook outbox.
pub trait ObjectionStore: Send + Sync {
    /// Files an objection (and indexes it by licence), appending `entry`, atomically.
    /// [`StoreError::Conflict`] if the id is taken.
    fn put_objection(&self, objection: &Objection, entry: &[u8]) -> Result<Logged, StoreError>;

    /// An objection by id.
    fn objection(&self, id: &str) -> Result<Option<Objection>, StoreError>;

    /// Replaces an objection if it still equals `expected` (compare-and-swap), appending `entry`;
    /// in the same atomic write, keeps `notify` for its recipient and, with a webhook URL, queues
    /// its delivery (the outbox).
    fn update_objection(
        &self,
        expected: &Objection,
        new: &Objection,
        entry: &[u8],
        notify: Option<(&Notification, Option<&str>)>,
    ) -> Result<Logged, StoreError>;

    /// Stores an evidence file by its SHA-256 (content-addressed: storing it twice is harmless).
    fn put_evidence(&self, sha256: &[u8; 32], bytes: &[u8]) -> Result<Durable, StoreError>;

    /// An evidence file by its SHA-256.
    fn evidence(&self, sha256: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError>;

    /// A recipient's notifications, oldest first: at most `limit`, those with an id after `after`.
    fn notifications_of(
        &self,
        recipient: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError>;

    /// Deliveries due at `now` (at most `limit`), oldest first.
    fn due_deliveries(&self, now: time::OffsetDateTime, limit: usize) -> Result<Vec<Delivery>, StoreError>;

    /// Replaces a queued delivery (after a failed attempt) or, with `None`, removes it (delivered).
    fn settle_delivery(&self, id: &str, next: Option<&Delivery>) -> Result<Durable, StoreError>;

    /// A page of the objections `page` covers, in filing (id) order: at most `page.limit`, with
    /// ids after `page.after`. Read through an index, so its cost follows the page, not the table.
    fn objections_page(&self, page: &ObjectionPage) -> Result<Vec<Objection>, StoreError>;

    /// Every objection, in filing order, read a page at a time: for copies and their checks,
    /// never for a request.
    fn objections(&self) -> Result<Vec<Objection>, StoreError> {
        let mut all = Vec::new();
        loop {
            let page = self.objections_page(&ObjectionPage {
                after: all.last().map(|o: &Objection| o.id.clone()),
                limit: 1000,
                ..ObjectionPage::default()
            })?;
            if page.is_empty() {
                return Ok(all);
            }
            all.extend(page);
        }
    }

    /// The objections to one licence version, in filing order.
    fn objections_of_licence(&self, licence: &LicenceId) -> Result<Vec<Objection>, StoreError>;
}

/// Who may use what: service items, grants, holders' authorisations, API tokens and presentations (亮证).
pub trait AccessStore: Send + Sync {
    /// Creates or replaces a service item.
    fn put_service_item(&self, item: &ServiceItem) -> Result<Durable, StoreError>;

    /// Every service item.
    fn service_items(&self) -> Result<Vec<ServiceItem>, StoreError>;

    /// Stores a new grant application, appending `entry`. [`StoreError::Conflict`] if the id is taken.
    fn put_grant(&self, grant: &Grant, entry: &[u8]) -> Result<Logged, StoreError>;

    /// Replaces a grant if it still equals `expected`, appending `entry`.
    fn update_grant(&self, expected: &Grant, new: &Grant, entry: &[u8]) -> Result<Logged, StoreError>;

    /// Every grant, in any state.
    fn grants(&self) -> Result<Vec<Grant>, StoreError>;

    /// Stores a holder's new authorisation (indexed by holder), appending `entry`.
    /// [`StoreError::Conflict`] if the id is taken.
    fn put_authorisation(&self, authorisation: &Authorisation, entry: &[u8]) -> Result<Logged, StoreError>;

    /// An authorisation by id.
    fn authorisation(&self, id: &str) -> Result<Option<Authorisation>, StoreError>;

    /// Replaces an authorisation if it still equals `expected`, appending `entry`.
    fn update_authorisation(
        &self,
        expected: &Authorisation,
        new: &Authorisation,
        entry: &[u8],
    ) -> Result<Logged, StoreError>;

    /// A holder's authorisations, oldest first.
    fn authorisations_of_holder(&self, holder: &HolderRef) -> Result<Vec<Authorisation>, StoreError>;

    /// Stores a new API token (its hash), appending `entry`. [`StoreError::Conflict`] if the id
    /// is taken.
    fn put_api_token(&self, token: &ApiToken, entry: &[u8]) -> Result<Logged, StoreError>;

    /// Replaces an API token if it still equals `expected` (revocation), appending `entry`.
    fn update_api_token(&self, expected: &ApiToken, new: &ApiToken, entry: &[u8]) -> Result<Logged, StoreError>;

    /// Every API token issued, revoked ones included.
    fn api_tokens(&self) -> Result<Vec<ApiToken>, StoreError>;

    /// Stores a new presentation. [`StoreError::Conflict`] if the id is taken.
    fn put_presentation(&self, presentation: &Presentation) -> Result<Durable, StoreError>;

    /// A presentation by id.
    fn presentation(&self, id: &str) -> Result<Option<Presentation>, StoreError>;

    /// Replaces a presentation if it still equals `expected` (compare-and-swap): how a scan
    /// consumes it exactly once.
    fn update_presentation(&self, expected: &Presentation, new: &Presentation) -> Result<Durable, StoreError>;
}

/// Use records (用证记录): journaled on the hot path, recorded later with their log entry.
pub trait UseStore: Send + Sync {
    /// Makes use records durable and visible (in [`UseStore::use_records`]) at once, in a
    /// write-ahead journal: one append and one data sync for all of them, no index, no log entry.
    /// They join the store with their log entry later, at [`UseStore::record_uses`]. Ids ascend and
    /// only grow: [`StoreError::Conflict`] otherwise (then nothing is written).
    fn journal_uses(&self, records: &[UseRecord]) -> Result<(), StoreError>;

    /// The journaled use records not yet recorded, in id order: what a restart must record.
    fn journaled_uses(&self) -> Result<Vec<UseRecord>, StoreError>;

    /// Drops from the journal what is recorded durably up to `through` (its id included).
    fn release_journal(&self, through: &str) -> Result<(), StoreError>;

    /// Records uses (indexed by holder and by department) and appends `entry` — one log entry
    /// committing to all of them — in one atomic write. Ids are ordered by time and only grow:
    /// [`StoreError::Conflict`] if an id is not above every id stored, or repeats (then nothing
    /// is written).
    fn record_uses(&self, records: &[UseRecord], entry: &[u8]) -> Result<Logged, StoreError>;

    /// The highest use record id stored or journaled (new ids must be greater).
    fn last_use_record(&self) -> Result<Option<String>, StoreError>;

    /// Use records matching `query` (journaled ones included), in id (time) order.
    fn use_records(&self, query: &UseQuery) -> Result<Vec<UseRecord>, StoreError>;
}

/// What an aggregating node keeps of its sources: verified pages, cursors and incidents.
pub trait SyncStore: Send + Sync {
    /// Applies one verified page of a source's log and advances its cursor, atomically.
    fn apply_sync(&self, apply: &SyncApply) -> Result<Durable, StoreError>;

    /// Every source's cursor.
    fn sync_cursors(&self) -> Result<Vec<SyncCursor>, StoreError>;

    /// Stores (creates or replaces) a sync incident.
    fn put_incident(&self, incident: &SyncIncident) -> Result<Durable, StoreError>;

    /// A sync incident by id.
    fn incident(&self, id: &str) -> Result<Option<SyncIncident>, StoreError>;

    /// A page of sync incidents, oldest (lowest id) first: pending ones only if `open_only`
    /// ([`SyncIncident::pending`]: unresolved, or accepted and not yet replayed),
    /// ids after `after`, at most `limit`. Read through an index of the open ones.
    fn incidents_page(
        &self,
        open_only: bool,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SyncIncident>, StoreError>;

    /// Every sync incident, oldest first, read a page at a time: for copies and their checks.
    fn incidents(&self) -> Result<Vec<SyncIncident>, StoreError> {
        let mut all: Vec<SyncIncident> = Vec::new();
        loop {
            let page = self.incidents_page(false, all.last().map(|i| i.id.as_str()), 100)?;
            if page.is_empty() {
                return Ok(all);
            }
            all.extend(page);
        }
    }
}

/// The signature log: entries, tree hashes and signed checkpoints.
pub trait LogStore: Send + Sync {
    /// Appends an entry for an event that changes no record (e.g. a seal applied).
    fn append_log(&self, entry: &[u8]) -> Result<Logged, StoreError>;

    /// The number of log entries.
    fn log_size(&self) -> Result<TreeSize, StoreError>;

    /// Log entries `[start, end)`; fewer if the log is shorter.
    fn log_entries(&self, start: LeafIndex, end: LeafIndex) -> Result<Vec<Vec<u8>>, StoreError>;

    /// The index of the entry with this RFC 9162 leaf hash.
    fn log_index_of(&self, leaf_hash: &Hash) -> Result<Option<LeafIndex>, StoreError>;

    /// A stored complete-subtree hash of the log.
    fn log_node(&self, node: NodeId) -> Result<Hash, StoreError>;

    /// Stores a signed checkpoint note for `size`.
    fn put_checkpoint(&self, size: TreeSize, note: &str) -> Result<Durable, StoreError>;

    /// The newest stored checkpoint note.
    fn latest_checkpoint(&self) -> Result<Option<(TreeSize, String)>, StoreError> {
        Ok(self.recent_checkpoints(1)?.into_iter().next())
    }

    /// The newest stored checkpoint notes, newest first: at most `limit`.
    fn recent_checkpoints(&self, limit: usize) -> Result<Vec<(TreeSize, String)>, StoreError>;
}
/// Leases: one holder at a time, across every frontend of a shared store, does a job that must
/// not run twice at once (seeding the demo). A lease ends when released or when its time is up,
/// so a holder that crashes holds nothing for long.
pub trait LeaseStore: Send + Sync {
    /// Takes the lease `name` for `holder` for `ttl` (or renews it, if `holder` has it). False
    /// when another holder's lease has not expired.
    fn take_lease(&self, name: &str, holder: &str, ttl: std::time::Duration) -> Result<bool, StoreError>;

    /// Gives the lease up; nothing happens when `holder` does not hold it.
    fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError>;
}

/// Sign-in sessions of the pages, kept where every frontend of a cluster finds them. A session
/// is an opaque record (the pages own its format) found by a 32-byte key — the SHA-256 of the
/// cookie's secret, so that reading the store does not hand out sessions — until it expires.
/// Sessions are not records of the service: they are not logged, and losing one only means
/// signing in again, so their writes need not wait for a flush.
pub trait SessionStore: Send + Sync {
    /// Creates or replaces the session `key`, ending at `expires`.
    fn put_session(&self, key: &[u8; 32], record: &[u8], expires: OffsetDateTime) -> Result<(), StoreError>;

    /// The record of session `key`, unless it has ended by `now` or was never made.
    fn session(&self, key: &[u8; 32], now: OffsetDateTime) -> Result<Option<Vec<u8>>, StoreError>;

    /// Ends the session `key` (signing out); nothing happens when there is none.
    fn delete_session(&self, key: &[u8; 32]) -> Result<(), StoreError>;

    /// Removes the sessions ended by `now`; returns how many.
    fn purge_sessions(&self, now: OffsetDateTime) -> Result<u64, StoreError>;
}

/// Whether the store can be written now (for readiness checks).
pub trait HealthStore: Send + Sync {
    /// Makes one small durable write that holds no data of the node's (a probe record, replaced
    /// each time) and returns once it is durable, or the reason it is not.
    fn check_writable(&self) -> Result<(), StoreError>;
}

/// The storage of one node: every concern above, as one object the engine holds. A backend
/// implements each concern's trait; `Store` comes with them.
pub trait Store:
    RegistryStore
    + LicenceStore
    + SealStore
    + LicenceFileStore
    + ObjectionStore
    + AccessStore
    + UseStore
    + SyncStore
    + LogStore
    + LeaseStore
    + SessionStore
    + HealthStore
{
}

impl<
        T: RegistryStore
            + LicenceStore
            + SealStore
            + LicenceFileStore
            + ObjectionStore
            + AccessStore
            + UseStore
            + SyncStore
            + LogStore
            + LeaseStore
            + SessionStore
            + HealthStore
            + ?Sized,
    > Store for T
{
}

/// The concerns' traits, for calling their methods on a `dyn Store`.
pub mod prelude {
    pub use crate::{
        AccessStore, LeaseStore, LicenceFileStore, LicenceStore, LogStore, ObjectionStore, RegistryStore, SealStore,
        SessionStore, SyncStore, UseStore,
    };
}

/// Reads a store's log hashes for the tree math.
pub struct LogReader<'a>(pub &'a dyn Store);

impl zhengyin_tlog::HashReader for LogReader<'_> {
    type Error = StoreError;

    fn read_hash(&self, node: NodeId) -> Result<Hash, StoreError> {
        self.0.log_node(node)
    }
}
