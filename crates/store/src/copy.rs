//! Moving a node from the embedded store to PostgreSQL: every record, in domain terms.
//!
//! [`SledStore::export`] reads every record of a store as [`Item`]s — in an order where each
//! item's references come before it, the log entries in log order — and [`PgStore::import`]
//! writes them into an empty, migrated database in one transaction, recomputing the log's tree
//! nodes from the entries. [`copy`] runs both and then checks the two sides agree: the log's
//! size and root, and the records a caller reads.

use zhengyin_model::{
    ApiToken, Authorisation, Authority, Delivery, Grant, HolderCodeType, LicenceId, LicenceType, Notification,
    Objection, Presentation, ServiceItem, StatusHistory, SyncIncident, UseRecord,
};

use crate::{Intent, PgStore, SledStore, StoreError, StoredSeal, SyncCursor};

/// One record of a store, as both backends understand it.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum Item {
    /// The next serial the source would hand out.
    Serial(u64),
    /// An authority.
    Authority(Authority),
    /// A licence type's current definition.
    LicenceType(LicenceType),
    /// One kept version of a licence type.
    LicenceTypeVersion(LicenceType),
    /// A CRL, by its issuer's name.
    Crl {
        /// The issuing CA's name (DER).
        issuer: Vec<u8>,
        /// The CRL (DER).
        der: Vec<u8>,
    },
    /// An intent to sign, and whether it was abandoned.
    Intent(Intent, bool),
    /// A licence.
    Licence {
        /// Its identifier.
        id: LicenceId,
        /// The signed licence.
        signed: Vec<u8>,
        /// SHA-256 of the JCS form of the licence without its proof.
        document_sha256: [u8; 32],
        /// Its status history (none yet for a replicated licence whose status has not arrived).
        status: Option<StatusHistory>,
        /// Its holder.
        holder: (HolderCodeType, String),
    },
    /// The newest version of a lineage.
    Head {
        /// The lineage.
        lineage: String,
        /// Its newest version.
        id: LicenceId,
    },
    /// A reserved licence number.
    Number {
        /// Type, issuer and number ([`crate::number_key`]).
        key: String,
        /// The lineage holding it.
        lineage: String,
    },
    /// A seal.
    Seal(StoredSeal),
    /// A licence's file.
    LicenceFile {
        /// The licence.
        id: LicenceId,
        /// The sealed OFD file.
        file: Vec<u8>,
    },
    /// An objection.
    Objection(Objection),
    /// An evidence file.
    Evidence {
        /// Its SHA-256.
        sha256: [u8; 32],
        /// Its bytes.
        bytes: Vec<u8>,
    },
    /// A notification.
    Notification(Notification),
    /// A webhook delivery still due.
    Delivery(Delivery),
    /// A service item.
    ServiceItem(ServiceItem),
    /// A grant.
    Grant(Grant),
    /// A holder's authorisation.
    Authorisation(Authorisation),
    /// An API token (its hash).
    ApiToken(ApiToken),
    /// A presentation.
    Presentation(Presentation),
    /// A use record, and whether its log entry is written (false: still journaled).
    UseRecord(UseRecord, bool),
    /// A sync cursor.
    SyncCursor(SyncCursor),
    /// A sync incident.
    Incident(SyncIncident),
    /// The next log entry.
    LogEntry(Vec<u8>),
    /// A published checkpoint.
    Checkpoint {
        /// Its tree size.
        size: u64,
        /// The signed note.
        note: String,
    },
}

/// What a copy moved, and what it checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySummary {
    /// Records copied.
    pub records: u64,
    /// Log entries copied.
    pub log_size: u64,
    /// The log's root on both sides.
    pub root: crate::Hash,
}

/// Copies everything in `from` into the empty database of `to`, then checks that both sides
/// hold the same log (size and root) and answer the same for the records read back.
pub fn copy(from: &SledStore, to: &PgStore) -> Result<CopySummary, StoreError> {
    let (items, received) = tokio::sync::mpsc::channel::<Item>(1024);
    let imported = std::thread::scope(|scope| {
        let exporter = scope.spawn(move || {
            from.export(&mut |item| {
                items
                    .blocking_send(item)
                    .map_err(|_| StoreError::Backend("the import stopped".to_owned()))
            })
        });
        let imported = to.import(received);
        let exported = exporter
            .join()
            .unwrap_or_else(|_| Err(StoreError::Backend("the export failed".to_owned())));
        // An import that failed stops the export too: its error is the one to tell.
        imported.and_then(|n| exported.map(|()| n))
    })?;
    check_same(from, to, imported)
}

/// The log's size and root, and the records read back, are the same on both sides.
fn check_same(from: &SledStore, to: &PgStore, records: u64) -> Result<CopySummary, StoreError> {
    use crate::{LogReader, LogStore, ObjectionStore, RegistryStore, SyncStore};
    let differ = |what: &str| StoreError::Corrupt(format!("after the copy, the two sides differ: {what}"));
    let size = from.log_size()?;
    if to.log_size()? != size {
        return Err(differ("log size"));
    }
    let root = |store: &dyn crate::Store| {
        zhengyin_tlog::root(size, &LogReader(store)).map_err(|e| StoreError::Corrupt(format!("{e:?}")))
    };
    let (ours, theirs) = (root(from)?, root(to)?);
    if ours != theirs {
        return Err(differ("log root"));
    }
    if from.latest_checkpoint()? != to.latest_checkpoint()? {
        return Err(differ("latest checkpoint"));
    }
    if from.authorities()? != to.authorities()? || from.licence_types()? != to.licence_types()? {
        return Err(differ("registry"));
    }
    if from.objections()? != to.objections()? || from.sync_cursors()? != to.sync_cursors()? {
        return Err(differ("objections or sync cursors"));
    }
    Ok(CopySummary {
        records,
        log_size: size.0,
        root: ours,
    })
}

/// One tree (or table) of a store: its records and their bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSize {
    /// The tree's (or table's) name.
    pub name: String,
    /// Records in it.
    pub records: u64,
    /// Bytes of its keys and values (sled), or on disk with its indexes (PostgreSQL).
    pub bytes: u64,
}
