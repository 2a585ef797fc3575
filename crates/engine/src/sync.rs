//! Sync between nodes (ARCHITECTURE §8): an aggregating node (归集, e.g. a province) pulls the
//! signature log of each source (a city) and keeps a verified copy of its licences and their
//! status.
//!
//! # One round, per source
//!
//! 1. Fetch the source's latest checkpoint and check its signature with the source's log key.
//! 2. Compare it with the last verified checkpoint (the durable cursor): a smaller size is a
//!    rollback, the same size with another root a fork; otherwise fetch and check the consistency
//!    proof between them (a failure means history was rewritten).
//! 3. Fetch the new entries page by page. Each page extends the cursor's compact range
//!    ([`Frontier`]); a consistency proof from the extended range to the checkpoint (or, for the
//!    last page, the root itself) shows the page is exactly what the checkpoint commits to.
//! 4. Fetch the objects the page's entries name (signed licences, authority certificates,
//!    revocation notes, seals and their status reasons); check each against the entry's hash,
//!    each licence's signature and certificate chain and each seal's maker signature and chain
//!    against the source's trust anchors.
//! 5. Apply the page — licences, status changes, authorities, entries for this node's own log
//!    (`sync.applied`, so a node upstream of this one sees them too) and the new cursor — in one
//!    atomic write. A page applied twice is refused by the cursor, so a crash or a retry neither
//!    loses nor repeats anything.
//!
//! A failed check of steps 2–5 is an *incident*: kept with its evidence (the checkpoints), it
//! stops that source until an operator resolves it. Network errors only delay (the caller backs
//! off and retries). One source's trouble never touches another's.
//!
//! # What a source serves
//!
//! Its checkpoint, entries and consistency proofs (the auditor's endpoints) and, for a range of
//! entries, the objects they name ([`Engine::sync_objects`]).
//!
//! # Freshness
//!
//! A replicated licence's status is "as of the source's checkpoint N, confirmed at T". When T
//! is older than the maximum staleness (default 5 minutes), verification warns, or answers
//! INDETERMINATE if the caller required fresh status.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, RwLock};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::{Duration, OffsetDateTime};
use zhengyin_crypto::{hash, TrustAnchors};
use zhengyin_model::licence::format_time;
use zhengyin_model::{
    Authority, IncidentKind, LicenceId, LicenceType, Resolution, RevocationReason, SealChange, SealHistory, SealRecord,
    SealState, Status, StatusChange, StatusHistory, SyncIncident, TypeCode, Uscc,
};
use zhengyin_store::{LicenceState, ReplicatedLicence, Store, StoreError, StoredSeal, SyncApply, SyncCursor};
use zhengyin_tlog::{
    empty_root, leaf_hash, open_checkpoint, verify_consistency, Frontier, Hash, NoteVerifier, TreeSize,
};

use crate::registry::{self, CertEntry};
use crate::verify::{self, StatusSource};
use crate::{Engine, EngineError};

/// Default maximum age of a source's data before its licences' status is stale.
pub const DEFAULT_MAX_STALENESS: Duration = Duration::minutes(5);
/// Open incidents read per page when the sync state is loaded.
const OPEN_INCIDENT_PAGE: usize = 200;

/// A node this one aggregates.
#[derive(Debug, Clone)]
pub struct SyncSource {
    /// The origin line of its checkpoints.
    pub origin: String,
    /// The key its checkpoints are signed with.
    pub verifier: NoteVerifier,
    /// The trust anchors of its authorities' certificates.
    pub anchors: TrustAnchors,
}

/// Why a source could not be read (the round is retried later).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct FeedError(pub String);

/// How this node reads a source: HTTP in the server, another engine in tests.
pub trait Feed: Send + Sync {
    /// The latest checkpoint note.
    fn checkpoint(&self) -> impl Future<Output = Result<String, FeedError>> + Send;
    /// The consistency proof between two tree sizes.
    fn consistency(&self, first: u64, second: u64) -> impl Future<Output = Result<Vec<Hash>, FeedError>> + Send;
    /// Entries `[start, end)` (possibly fewer, never none).
    fn entries(&self, start: u64, end: u64) -> impl Future<Output = Result<Vec<Vec<u8>>, FeedError>> + Send;
    /// The objects named by entries `[start, end)`.
    fn objects(&self, start: u64, end: u64) -> impl Future<Output = Result<Vec<SyncObject>, FeedError>> + Send;
    /// A licence type of the source's catalogue.
    fn licence_type(&self, code: &TypeCode) -> impl Future<Output = Result<LicenceType, FeedError>> + Send;
}

/// The object one log entry names, as a source serves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncObject {
    /// The entry's index in the source's log.
    pub index: u64,
    /// For `licence.issued` / `licence.updated`: the signed licence, exactly as issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub licence: Option<String>,
    /// For `authority.registered`: the authority with its certificate chains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<Authority>,
    /// For `licence.revoked`: the note; for `licence.suspended`, `seal.suspended` and
    /// `seal.revoked`: the reason (the entry holds their SHA-256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// For `seal.made`: the seal's record and its signed `SESeal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<SealObject>,
}

/// A seal as a source serves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealObject {
    /// What the registry holds about it.
    pub record: SealRecord,
    /// The `SESeal` (DER), standard base64.
    pub der: String,
}

/// How a round ended without an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoundOutcome {
    /// Entries applied in this round.
    pub applied: u64,
    /// The source's checkpoint size.
    pub size: u64,
}

/// Why a round stopped.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The source could not be read; try again later.
    #[error("source unreachable or malformed: {0}")]
    Feed(#[from] FeedError),
    /// The source diverged: sync of it is stopped until an operator resolves the incident.
    #[error("incident {}: {} ({})", .0.id, .0.detail, .0.kind.name())]
    Incident(Box<SyncIncident>),
    /// An open incident stops this source.
    #[error("stopped by incident {0}")]
    Halted(String),
    /// This node failed (storage).
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl From<StoreError> for SyncError {
    fn from(e: StoreError) -> Self {
        Self::Engine(EngineError::Store(e))
    }
}

/// What an operator sees of one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceView {
    /// The source's origin.
    pub origin: String,
    /// `syncing`, `failing` (errors, retrying) or `halted` (an open incident).
    pub state: &'static str,
    /// The last verified checkpoint's size.
    pub checkpoint_size: u64,
    /// Entries applied.
    pub applied: u64,
    /// The largest size the source has shown (verified or not yet).
    pub source_size: u64,
    /// Entries behind the source.
    pub lag_entries: u64,
    /// Seconds since the copy was last confirmed current (absent: never).
    pub lag_seconds: Option<i64>,
    /// When the copy was last confirmed current.
    #[serde(with = "time::serde::rfc3339::option")]
    pub synced_at: Option<OffsetDateTime>,
    /// Errors since the last successful round.
    pub consecutive_errors: u64,
    /// The last error.
    pub last_error: Option<String>,
    /// Open incidents.
    pub open_incidents: Vec<String>,
}

/// The in-memory state of every source, in step with the store's cursors and incidents.
#[derive(Debug, Default)]
pub(crate) struct SyncStates {
    sources: RwLock<BTreeMap<String, SourceState>>,
}

#[derive(Debug, Default, Clone)]
struct SourceState {
    checkpoint_size: u64,
    applied: u64,
    source_size: u64,
    synced_at: Option<OffsetDateTime>,
    consecutive_errors: u64,
    last_error: Option<String>,
    open_incidents: Vec<String>,
}

impl SyncStates {
    /// The state the store holds: every cursor, and the unresolved incidents (few, since each
    /// one halts its source), read a page at a time through the store's index of open ones.
    pub(crate) fn read_from(store: &dyn Store) -> Result<Self, StoreError> {
        let mut open: Vec<SyncIncident> = Vec::new();
        loop {
            let page = store.incidents_page(true, open.last().map(|i| i.id.as_str()), OPEN_INCIDENT_PAGE)?;
            let full = page.len() == OPEN_INCIDENT_PAGE;
            open.extend(page);
            if !full {
                return Ok(Self::load(store.sync_cursors()?, open));
            }
        }
    }

    fn load(cursors: Vec<SyncCursor>, incidents: Vec<SyncIncident>) -> Self {
        let mut sources: BTreeMap<String, SourceState> = BTreeMap::new();
        for c in cursors {
            let s = sources.entry(c.origin).or_default();
            s.checkpoint_size = c.size;
            s.applied = c.applied;
            s.source_size = c.size;
            s.synced_at = c.synced_at;
        }
        for i in incidents.into_iter().filter(|i| i.resolved.is_none()) {
            sources.entry(i.origin).or_default().open_incidents.push(i.id);
        }
        Self {
            sources: RwLock::new(sources),
        }
    }

    /// Takes in what the store says of every source, as another frontend of a shared store left
    /// it: progress only moves forward, and the open incidents are the store's.
    pub(crate) fn refresh(&self, stored: Self) {
        let stored = stored.sources.into_inner().unwrap_or_else(|p| p.into_inner());
        let mut sources = self.sources.write().unwrap_or_else(|p| p.into_inner());
        for state in sources.values_mut() {
            state.open_incidents.clear();
        }
        for (origin, s) in stored {
            let held = sources.entry(origin).or_default();
            held.checkpoint_size = held.checkpoint_size.max(s.checkpoint_size);
            held.applied = held.applied.max(s.applied);
            held.source_size = held.source_size.max(s.source_size);
            held.synced_at = held.synced_at.max(s.synced_at);
            held.open_incidents = s.open_incidents;
        }
    }

    fn update<R>(&self, origin: &str, f: impl FnOnce(&mut SourceState) -> R) -> R {
        let mut sources = self.sources.write().unwrap_or_else(|p| p.into_inner());
        f(sources.entry(origin.to_owned()).or_default())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, SourceState>> {
        self.sources.read().unwrap_or_else(|p| p.into_inner())
    }
}

/// The events a node aggregates; the others (use records, grants, objections…) stay local.
enum Event {
    Authority {
        uscc: Uscc,
        certificates: Vec<String>,
    },
    Licence {
        id: LicenceId,
        sha256: String,
        supersedes: Option<LicenceId>,
        time: OffsetDateTime,
    },
    Status {
        id: LicenceId,
        change: StatusPattern,
    },
    Seal {
        es_id: String,
        sha256: String,
        time: OffsetDateTime,
    },
    SealStatus {
        es_id: String,
        change: StatusPattern,
    },
}

/// A status change as the entry states it; the free text only as its SHA-256.
struct StatusPattern {
    state: String,
    reason: Option<RevocationReason>,
    text_sha256: Option<String>,
    by: Option<LicenceId>,
    effective: OffsetDateTime,
    recorded: OffsetDateTime,
}

/// The innermost event of an entry (`sync.applied` entries wrap the event they replicate).
fn innermost(entry: &Value) -> &Value {
    let mut e = entry;
    while e["event"] == "sync.applied" {
        e = &e["entry"];
    }
    e
}

fn field<'a>(e: &'a Value, name: &str) -> Result<&'a str, String> {
    e[name].as_str().ok_or_else(|| format!("no `{name}`"))
}

fn time_field(e: &Value, name: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(field(e, name)?, &time::format_description::well_known::Rfc3339)
        .map_err(|_| format!("`{name}` is not a time"))
}

fn licence_field(e: &Value) -> Result<LicenceId, String> {
    LicenceId::parse(field(e, "licence")?).map_err(|e| e.to_string())
}

fn status_pattern(e: &Value) -> Result<StatusPattern, String> {
    let status = &e["status"];
    Ok(StatusPattern {
        state: field(status, "state")?.to_owned(),
        reason: status
            .get("reason")
            .map(|r| serde_json::from_value(r.clone()).map_err(|e| e.to_string()))
            .transpose()?,
        text_sha256: status["note_sha256"]
            .as_str()
            .or(status["reason_sha256"].as_str())
            .map(str::to_owned),
        by: status["by"]
            .as_str()
            .map(|s| LicenceId::parse(s).map_err(|e| e.to_string()))
            .transpose()?,
        effective: time_field(e, "effective")?,
        recorded: time_field(e, "time")?,
    })
}

fn parse_event(e: &Value) -> Result<Option<Event>, String> {
    let event = match e["event"].as_str() {
        Some("authority.registered") => Event::Authority {
            uscc: Uscc::parse(field(e, "authority")?).map_err(|e| e.to_string())?,
            certificates: e["certificates"]
                .as_array()
                .ok_or("no `certificates`")?
                .iter()
                .map(|c| c.as_str().map(str::to_owned).ok_or("a certificate id is not a string"))
                .collect::<Result<_, _>>()?,
        },
        Some("licence.issued" | "licence.updated") => Event::Licence {
            id: licence_field(e)?,
            sha256: field(e, "licence_sha256")?.to_owned(),
            supersedes: e["supersedes"]
                .as_str()
                .map(|s| LicenceId::parse(s).map_err(|e| e.to_string()))
                .transpose()?,
            time: time_field(e, "time")?,
        },
        Some("licence.revoked" | "licence.suspended" | "licence.reinstated" | "licence.superseded") => Event::Status {
            id: licence_field(e)?,
            change: status_pattern(e)?,
        },
        Some("seal.made") => Event::Seal {
            es_id: field(e, "es_id")?.to_owned(),
            sha256: field(e, "seal_sha256")?.to_owned(),
            time: time_field(e, "time")?,
        },
        Some("seal.suspended" | "seal.revoked" | "seal.reinstated") => Event::SealStatus {
            es_id: field(e, "es_id")?.to_owned(),
            change: status_pattern(e)?,
        },
        _ => return Ok(None),
    };
    Ok(Some(event))
}

impl StatusPattern {
    /// Whether a stored change is the one the entry states (entries give times in whole seconds).
    fn same_times<S>(&self, c: &zhengyin_model::licence::Change<S>) -> bool {
        format_time(c.effective) == format_time(self.effective) && format_time(c.recorded) == format_time(self.recorded)
    }

    /// The free text, checked against the entry's hash (empty when the entry has none).
    fn text(&self, text: Option<&str>) -> Result<String, String> {
        match (&self.text_sha256, text) {
            (Some(sha), Some(t)) if hash::sha256_hex(t.as_bytes()) == *sha => Ok(t.to_owned()),
            (Some(_), _) => Err("the status text does not match the entry's hash".to_owned()),
            (None, _) => Ok(String::new()),
        }
    }

    /// The seal status change, with its reason checked against the entry.
    fn seal_change(self, text: Option<&str>) -> Result<SealChange, String> {
        let reason = self.text(text)?;
        let status = match self.state.as_str() {
            "active" => SealState::Active,
            "suspended" => SealState::Suspended { reason },
            "revoked" => SealState::Revoked { reason },
            other => return Err(format!("seal status `{other}` is not understood")),
        };
        Ok(SealChange {
            status,
            effective: self.effective,
            recorded: self.recorded,
        })
    }

    /// The status change, with its free text checked against the entry.
    fn change(self, text: Option<&str>) -> Result<StatusChange, String> {
        let text = self.text(text)?;
        let status = match (self.state.as_str(), self.reason, self.by) {
            ("revoked", Some(reason), _) => Status::Revoked { reason, note: text },
            ("suspended", _, _) => Status::Suspended { reason: text },
            ("valid", _, _) => Status::Valid,
            ("superseded", _, Some(by)) => Status::Superseded { by },
            _ => return Err(format!("status `{}` is not understood", self.state)),
        };
        Ok(StatusChange {
            status,
            effective: self.effective,
            recorded: self.recorded,
        })
    }
}

/// Where the checks of a source's licences find certificates: the page's authorities first,
/// then those already replicated; chains always to the source's anchors.
struct SourceContext<'a> {
    engine: &'a Engine,
    anchors: &'a TrustAnchors,
    page: &'a HashMap<String, Arc<CertEntry>>,
}

impl verify::Context for SourceContext<'_> {
    fn anchors(&self) -> &TrustAnchors {
        self.anchors
    }
    fn certificate(&self, id: &str) -> Option<Arc<CertEntry>> {
        self.page
            .get(id)
            .cloned()
            .or_else(|| self.engine.read_registry().certificates.get(id).cloned())
    }
    fn record(&self, _: &LicenceId) -> Result<Option<LicenceState>, StoreError> {
        Ok(None)
    }
    fn status_source(&self, _: &Uscc, now: OffsetDateTime) -> StatusSource {
        StatusSource::local(now)
    }
    fn signatures(&self) -> &crate::SignatureCache {
        verify::Context::signatures(self.engine)
    }
    fn prepared(&self) -> &crate::PreparedCache<verify::Prepared> {
        verify::Context::prepared(self.engine)
    }
    fn seal(&self, _: &str) -> Result<Option<StoredSeal>, StoreError> {
        Ok(None)
    }
    fn open_objections(&self, _: &LicenceId) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        Ok(Vec::new())
    }
}

/// A page being turned into one atomic write.
struct Page<'a> {
    engine: &'a Engine,
    source: &'a SyncSource,
    now: OffsetDateTime,
    authorities: Vec<Authority>,
    certificates: HashMap<String, Arc<CertEntry>>,
    licences: Vec<ReplicatedLicence>,
    held: std::collections::HashSet<LicenceId>,
    statuses: BTreeMap<LicenceId, StatusHistory>,
    seals: Vec<StoredSeal>,
    seal_statuses: BTreeMap<String, SealHistory>,
    entries: Vec<Vec<u8>>,
    types: Vec<TypeCode>,
}

impl Page<'_> {
    /// The origin a held authority came from: `Ok(None)` for a local one.
    fn authority_origin(&self, uscc: &Uscc) -> Option<Option<String>> {
        if let Some(a) = self.authorities.iter().find(|a| a.uscc == *uscc) {
            return Some(a.origin.clone());
        }
        self.engine
            .read_registry()
            .authorities
            .get(uscc)
            .map(|a| a.authority.origin.clone())
    }

    fn history(&mut self, id: &LicenceId) -> Result<Option<&mut StatusHistory>, SyncError> {
        if !self.statuses.contains_key(id) {
            let Some(stored) = self.engine.store.licence(id)? else {
                return Ok(None);
            };
            self.statuses.insert(id.clone(), stored.status);
        }
        Ok(self.statuses.get_mut(id))
    }

    fn authority(&mut self, uscc: Uscc, certificates: &[String], object: Option<Authority>) -> Result<(), String> {
        let Some(mut authority) = object.filter(|a| a.uscc == uscc) else {
            return Err(format!("no record of authority {uscc}"));
        };
        match self.authority_origin(&uscc) {
            Some(Some(origin)) if origin != self.source.origin => {
                return Err(format!("authority {uscc} is already replicated from {origin}"))
            }
            Some(None) => return Err(format!("authority {uscc} is registered at this node")),
            _ => {}
        }
        let mut parsed = Vec::new();
        for pem in &authority.certificates {
            let entry = registry::parse_chain(pem, Some(&uscc), &self.source.anchors, self.now, false)
                .map_err(|e| format!("authority {uscc}: {e}"))?;
            if entry.chain.is_none() {
                return Err(format!(
                    "authority {uscc}: a certificate does not chain to the source's anchors"
                ));
            }
            parsed.push(entry);
        }
        for id in certificates {
            if !parsed.iter().any(|e| e.certificate.id() == *id) {
                return Err(format!(
                    "authority {uscc}: certificate {id} named by the entry is missing"
                ));
            }
        }
        for entry in parsed {
            self.certificates.insert(entry.certificate.id(), Arc::new(entry));
        }
        authority.origin = Some(self.source.origin.clone());
        self.authorities.retain(|a| a.uscc != uscc);
        self.authorities.push(authority);
        Ok(())
    }

    fn licence(
        &mut self,
        id: LicenceId,
        supersedes: Option<LicenceId>,
        time: OffsetDateTime,
        checked: Result<Checked, String>,
    ) -> Result<(), SyncError> {
        let invalid = |detail: String| {
            Err(SyncError::Incident(Box::new(incident_draft(
                IncidentKind::ObjectInvalid,
                detail,
            ))))
        };
        let (signed, body, document_sha256) = match checked {
            Ok(checked) => checked,
            Err(why) => return invalid(why),
        };
        if self.authority_origin(&body.issuer.code) != Some(Some(self.source.origin.clone())) {
            return invalid(format!("licence {id}: its issuer is not an authority of this source"));
        }
        let held = self.engine.licence_type(&body.licence_type.code);
        if held.is_none_or(|t| t.version < body.licence_type.version) && !self.types.contains(&body.licence_type.code) {
            self.types.push(body.licence_type.code.clone());
        }
        if let Some(old) = supersedes {
            let Some(history) = self.history(&old)? else {
                return invalid(format!("licence {id}: supersedes {old}, which the source never issued"));
            };
            let change = StatusChange {
                status: Status::Superseded { by: id.clone() },
                effective: time,
                recorded: time,
            };
            history.push(change);
        }
        let mut status = StatusHistory::default();
        status.push(StatusChange {
            status: Status::Valid,
            effective: time,
            recorded: time,
        });
        if !self.held.contains(&id) && self.engine.store.licence(&id)?.is_none() {
            self.statuses.insert(id.clone(), status);
        }
        self.held.insert(id.clone());
        self.licences.push(ReplicatedLicence {
            id,
            signed: signed.into_bytes(),
            document_sha256,
            holder: (body.holder.code_type, body.holder.code),
        });
        Ok(())
    }

    /// A seal made at the source: its `SESeal` matches the entry, its maker signature and
    /// chain verify to the source's anchors, and the record says what the signed seal says.
    fn seal(
        &mut self,
        es_id: &str,
        sha256: &str,
        time: OffsetDateTime,
        object: Option<SealObject>,
    ) -> Result<(), String> {
        let object = object.ok_or("not served")?;
        let der = B64.decode(&object.der).map_err(|_| "the SESeal is not base64")?;
        if hash::sha256_hex(&der) != sha256 {
            return Err("does not match the entry's hash".to_owned());
        }
        let parsed = zhengyin_ses::format::parse_seal(&der).map_err(|e| e.to_string())?;
        let (info, record) = (&parsed.info, &object.record);
        let signers: Vec<String> = match &info.property.cert_list {
            zhengyin_ses::format::CertList::Certificates(certs) => certs
                .iter()
                .map(|der| zhengyin_crypto::Certificate::from_der(der).map(|c| c.id()))
                .collect::<Result<_, _>>()
                .map_err(|e| e.to_string())?,
            zhengyin_ses::format::CertList::Digests(_) => return Err("signers listed by digest only".to_owned()),
        };
        if info.es_id != es_id
            || record.es_id != es_id
            || record.name != info.property.name
            || record.seal_type != info.property.seal_type
            || record.valid_start != info.property.valid_start
            || record.valid_end != info.property.valid_end
            || record.signer_certificates != signers
            || record.origin.is_some()
        {
            return Err("the record differs from the signed seal".to_owned());
        }
        let intermediates: Vec<zhengyin_crypto::Certificate> = self
            .certificates
            .values()
            .chain(self.engine.read_registry().certificates.values())
            .flat_map(|c| c.intermediates.iter().cloned())
            .collect();
        let ctx = zhengyin_ses::verify::Offline {
            anchors: &self.source.anchors,
            intermediates: &intermediates,
            crls: &[],
        };
        let report = zhengyin_ses::verify::verify_seal(&ctx, &der, time);
        for step in ["structure", "seal_signature", "maker_certificate"] {
            if !report
                .checks
                .iter()
                .any(|c| c.code == step && c.outcome == zhengyin_model::Outcome::Passed)
            {
                return Err(format!("{step} did not pass"));
            }
        }
        let mut status = SealHistory::default();
        status.push(SealChange {
            status: SealState::Active,
            effective: time,
            recorded: time,
        });
        self.seal_statuses.insert(es_id.to_owned(), status);
        let mut record = object.record;
        record.origin = Some(self.source.origin.clone());
        self.seals.push(StoredSeal {
            record,
            der,
            status: SealHistory::default(),
        });
        Ok(())
    }

    fn seal_status(&mut self, es_id: &str, pattern: StatusPattern, text: Option<&str>) -> Result<(), String> {
        let change = pattern.seal_change(text)?;
        if !self.seal_statuses.contains_key(es_id) {
            let stored = self.engine.store.seal(es_id).map_err(|e| e.to_string())?;
            let stored = stored.ok_or("a status change for a seal never made")?;
            self.seal_statuses.insert(es_id.to_owned(), stored.status);
        }
        if let Some(history) = self.seal_statuses.get_mut(es_id) {
            history.push(change);
        }
        Ok(())
    }

    fn status(&mut self, id: LicenceId, pattern: StatusPattern, text: Option<&str>) -> Result<(), SyncError> {
        let change = pattern.change(text).map_err(|why| {
            SyncError::Incident(Box::new(incident_draft(
                IncidentKind::ObjectInvalid,
                format!("licence {id}: {why}"),
            )))
        })?;
        let Some(history) = self.history(&id)? else {
            return Err(SyncError::Incident(Box::new(incident_draft(
                IncidentKind::ObjectInvalid,
                format!("licence {id}: a status change for a licence never issued"),
            ))));
        };
        // Each entry is applied once (the cursor moves in the same write), so no change repeats.
        history.push(change);
        Ok(())
    }
}

/// A licence from a source, checked: its bytes, body and document hash.
type Checked = (String, zhengyin_model::LicenceBody, [u8; 32]);

/// Checks a licence an entry names: served, matching the entry's hash, the identifier the
/// entry names, and verifying (signature, chain to the source's anchors, the issuer's
/// certificate). CPU-bound and independent of the others: a page's run in parallel.
fn check_licence(
    ctx: &SourceContext<'_>,
    id: &LicenceId,
    sha256: &str,
    signed: Option<String>,
    now: OffsetDateTime,
) -> Result<Checked, String> {
    let signed = signed.ok_or_else(|| format!("licence {id}: not served"))?;
    if hash::sha256_hex(signed.as_bytes()) != sha256 {
        return Err(format!("licence {id}: does not match the entry's hash"));
    }
    let (body, document_sha256) =
        verify::check_replicated(ctx, signed.as_bytes(), now).map_err(|why| format!("licence {id}: {why}"))?;
    if body.id != *id {
        return Err(format!(
            "licence {id}: the entry names another identifier than the licence"
        ));
    }
    Ok((signed, body, document_sha256))
}

/// An incident without its id, origin and evidence (filled in where it is recorded).
fn incident_draft(kind: IncidentKind, detail: String) -> SyncIncident {
    SyncIncident {
        id: String::new(),
        origin: String::new(),
        kind,
        detail,
        evidence: Vec::new(),
        detected: OffsetDateTime::UNIX_EPOCH,
        resolved: None,
    }
}

impl Engine {
    /// Sets how old a source's data may be before its licences' status is stale.
    pub fn with_max_staleness(mut self, max: Duration) -> Self {
        self.max_staleness = max;
        self
    }

    /// Lists a configured source in the operator view before its first round.
    pub fn watch_source(&self, origin: &str) {
        self.sync.update(origin, |_| ());
    }

    pub(crate) fn sync_freshness(&self, origin: &str, now: OffsetDateTime) -> StatusSource {
        let state = self.sync.read().get(origin).cloned().unwrap_or_default();
        let text = match state.synced_at {
            Some(at) => format!(
                "source {origin} as of its checkpoint {}, confirmed at {}",
                state.checkpoint_size,
                format_time(at)
            ),
            None => format!("source {origin}, not yet confirmed current since this node started"),
        };
        // An open incident halts the source: whatever changed there since is not known here, so
        // its status is in doubt at once, not only once the staleness bound has passed.
        let halted = state.open_incidents.first().map(|id| {
            format!("source {origin} is halted by open incident {id}: status changes there since are not known here")
        });
        let stale = halted.or_else(|| match state.synced_at {
            Some(at) if now - at <= self.max_staleness => None,
            Some(at) => Some(format!(
                "status from {origin} is {} s old, more than the maximum of {} s",
                (now - at).whole_seconds(),
                self.max_staleness.whole_seconds()
            )),
            None => Some(format!("status from {origin} has not been confirmed current")),
        });
        StatusSource { text, stale }
    }

    /// Every source's state, for operators.
    pub fn sync_sources(&self) -> Vec<SourceView> {
        let now = self.clock.now();
        self.sync
            .read()
            .iter()
            .map(|(origin, s)| SourceView {
                origin: origin.clone(),
                state: if !s.open_incidents.is_empty() {
                    "halted"
                } else if s.consecutive_errors > 0 {
                    "failing"
                } else {
                    "syncing"
                },
                checkpoint_size: s.checkpoint_size,
                applied: s.applied,
                source_size: s.source_size,
                lag_entries: s.source_size.saturating_sub(s.applied),
                lag_seconds: s.synced_at.map(|at| (now - at).whole_seconds()),
                synced_at: s.synced_at,
                consecutive_errors: s.consecutive_errors,
                last_error: s.last_error.clone(),
                open_incidents: s.open_incidents.clone(),
            })
            .collect()
    }

    /// Incidents, oldest first, a page at a time: ids after `after`, at most `limit`, only the
    /// unresolved ones if `open_only`.
    pub fn sync_incidents(
        &self,
        open_only: bool,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SyncIncident>, EngineError> {
        Ok(self.store.incidents_page(open_only, after, limit)?)
    }

    /// Resolves an incident (an operator checked the source): its source syncs again from the
    /// last verified checkpoint.
    pub async fn resolve_incident(&self, id: &str, note: &str) -> Result<SyncIncident, EngineError> {
        let note = note.trim();
        if note.is_empty() || note.chars().count() > 2000 {
            return Err(EngineError::invalid(
                "a resolution note of 1 to 2000 characters is needed",
            ));
        }
        let mut incident = self
            .store
            .incident(id)?
            .ok_or_else(|| EngineError::IncidentNotFound(id.to_owned()))?;
        if incident.resolved.is_some() {
            return Ok(incident);
        }
        incident.resolved = Some(Resolution {
            at: self.clock.now(),
            note: note.to_owned(),
        });
        self.store.put_incident(&incident)?.await?;
        self.sync
            .update(&incident.origin, |s| s.open_incidents.retain(|i| i != id));
        tracing::warn!(incident = id, origin = %incident.origin, "sync incident resolved by an operator");
        Ok(incident)
    }

    /// The objects entries `[start, end)` of this node's log name, for a node aggregating this
    /// one.
    pub fn sync_objects(&self, start: u64, end: u64) -> Result<Vec<SyncObject>, EngineError> {
        let entries = self.log_entries(start, end)?;
        let mut objects = Vec::new();
        for (index, bytes) in (start..).zip(entries) {
            let Ok(value) = serde_json::from_slice::<Value>(&bytes) else {
                continue;
            };
            let Ok(Some(event)) = parse_event(innermost(&value)) else {
                continue;
            };
            let mut object = SyncObject {
                index,
                licence: None,
                authority: None,
                text: None,
                seal: None,
            };
            match event {
                Event::Authority { uscc, .. } => object.authority = self.authority(&uscc),
                Event::Licence { id, .. } => {
                    object.licence = self.store.licence(&id)?.and_then(|l| String::from_utf8(l.signed).ok());
                }
                Event::Status { id, change } => {
                    let Some(stored) = self.store.licence(&id)? else {
                        continue;
                    };
                    object.text = stored
                        .status
                        .changes
                        .iter()
                        .filter(|c| change.same_times(c))
                        .find_map(|c| match &c.status {
                            Status::Revoked { note, .. } => Some(note.clone()),
                            Status::Suspended { reason } => Some(reason.clone()),
                            _ => None,
                        });
                }
                Event::Seal { es_id, .. } => {
                    object.seal = self.store.seal(&es_id)?.map(|seal| SealObject {
                        record: seal.record,
                        der: B64.encode(&seal.der),
                    });
                }
                Event::SealStatus { es_id, change } => {
                    let Some(seal) = self.store.seal(&es_id)? else {
                        continue;
                    };
                    object.text = seal
                        .status
                        .changes
                        .iter()
                        .filter(|c| change.same_times(c))
                        .find_map(|c| match &c.status {
                            SealState::Suspended { reason } | SealState::Revoked { reason } => Some(reason.clone()),
                            SealState::Active => None,
                        });
                }
            }
            objects.push(object);
        }
        Ok(objects)
    }

    /// One round of sync with `source` through `feed`: verify its newest checkpoint, then
    /// fetch, check and apply every new entry, `page` at a time. See the module docs.
    pub async fn sync_round<F: Feed>(
        &self,
        source: &SyncSource,
        feed: &F,
        page: u64,
    ) -> Result<RoundOutcome, SyncError> {
        let result = self
            .sync_round_inner(source, feed, page.clamp(1, crate::MAX_ENTRIES_PER_PAGE))
            .await;
        let now = self.clock.now();
        self.sync.update(&source.origin, |s| match &result {
            Ok(_) => {
                s.consecutive_errors = 0;
                s.last_error = None;
            }
            Err(e) => {
                s.consecutive_errors += 1;
                s.last_error = Some(format!("{} at {}", e, format_time(now)));
            }
        });
        result
    }

    async fn sync_round_inner<F: Feed>(
        &self,
        source: &SyncSource,
        feed: &F,
        page: u64,
    ) -> Result<RoundOutcome, SyncError> {
        if let Some(open) = self
            .sync
            .read()
            .get(&source.origin)
            .and_then(|s| s.open_incidents.first().cloned())
        {
            return Err(SyncError::Halted(open));
        }
        let note = feed.checkpoint().await?;
        let checkpoint =
            open_checkpoint(&note, &source.verifier).map_err(|e| FeedError(format!("checkpoint refused: {e}")))?;
        if checkpoint.origin != source.origin {
            return Err(FeedError(format!("checkpoint of {}, not {}", checkpoint.origin, source.origin)).into());
        }
        let stored = self
            .store
            .sync_cursors()?
            .into_iter()
            .find(|c| c.origin == source.origin);
        let mut cursor = stored.clone().unwrap_or_else(|| SyncCursor {
            origin: source.origin.clone(),
            checkpoint: String::new(),
            size: 0,
            root: empty_root(),
            frontier: Vec::new(),
            applied: 0,
            synced_at: None,
        });
        let size = checkpoint.size.0;
        self.sync
            .update(&source.origin, |s| s.source_size = s.source_size.max(size));
        // The checkpoint verified before this round (none before the first) and the one just
        // received.
        let previous = cursor.checkpoint.clone();
        let evidence = || {
            [&previous, &note]
                .into_iter()
                .filter(|n| !n.is_empty())
                .cloned()
                .collect::<Vec<_>>()
        };
        if size < cursor.size {
            let detail = format!("checkpoint of size {size} after a verified one of size {}", cursor.size);
            return Err(self.incident(source, IncidentKind::Rollback, detail, evidence()).await);
        }
        if size == cursor.size && checkpoint.root != cursor.root {
            let detail = format!("two checkpoints of size {size} with different roots");
            return Err(self.incident(source, IncidentKind::Fork, detail, evidence()).await);
        }
        if size > cursor.size {
            if cursor.size > 0 {
                let proof = feed.consistency(cursor.size, size).await?;
                if let Err(e) = verify_consistency(
                    TreeSize(cursor.size),
                    checkpoint.size,
                    &proof,
                    &cursor.root,
                    &checkpoint.root,
                ) {
                    let detail = format!("no consistency between sizes {} and {size}: {e}", cursor.size);
                    return Err(self
                        .incident(source, IncidentKind::Inconsistent, detail, evidence())
                        .await);
                }
            }
            cursor.checkpoint = note.clone();
            cursor.size = size;
            cursor.root = checkpoint.root;
        }
        let mut frontier = Frontier::from_parts(TreeSize(cursor.applied), cursor.frontier.clone())
            .ok_or_else(|| StoreError::Corrupt(format!("sync cursor of {}", source.origin)))?;
        let mut expected = stored;
        let mut applied = 0;
        while frontier.size().0 < size {
            let start = frontier.size().0;
            let entries = feed.entries(start, size.min(start + page)).await?;
            if entries.is_empty() || entries.len() as u64 > size - start {
                return Err(FeedError(format!("asked for entries from {start}, got {}", entries.len())).into());
            }
            let end = start + entries.len() as u64;
            let mut next = frontier.clone();
            for e in &entries {
                next.push(leaf_hash(e));
            }
            let proven = if end == size {
                next.root() == checkpoint.root
            } else {
                let proof = feed.consistency(end, size).await?;
                verify_consistency(TreeSize(end), checkpoint.size, &proof, &next.root(), &checkpoint.root).is_ok()
            };
            if !proven {
                let detail = format!("entries {start}..{end} do not hash to the checkpoint of size {size}");
                return Err(self
                    .incident(source, IncidentKind::EntriesMismatch, detail, evidence())
                    .await);
            }
            let objects = feed.objects(start, end).await?;
            let now = self.clock.now();
            cursor.frontier = next.hashes().to_vec();
            cursor.applied = end;
            cursor.synced_at = if end == size { Some(now) } else { cursor.synced_at };
            let apply = match self.prepare_page(source, feed, start, &entries, objects, now).await {
                Ok(mut apply) => {
                    apply.expected = expected.clone();
                    apply.cursor = cursor.clone();
                    apply
                }
                Err(SyncError::Incident(draft)) => {
                    return Err(self.incident(source, draft.kind, draft.detail, evidence()).await)
                }
                Err(e) => return Err(e),
            };
            self.ensure_signing()?;
            match self.store.apply_sync(&apply) {
                Ok(durable) => durable.await?,
                Err(StoreError::Conflict) if apply.licences.iter().any(|l| self.holds_other(l)) => {
                    let detail = format!("entries {start}..{end} name a licence this node holds with other bytes");
                    return Err(self.incident(source, IncidentKind::Conflict, detail, evidence()).await);
                }
                Err(e) => return Err(e.into()),
            }
            self.applied(&apply);
            self.sync.update(&source.origin, |s| {
                s.checkpoint_size = size;
                s.applied = end;
            });
            expected = Some(cursor.clone());
            frontier = next;
            applied += entries.len() as u64;
            tracing::debug!(origin = %source.origin, start, end, "sync page applied");
        }
        let now = self.clock.now();
        if applied == 0 {
            if let Some(stored) = expected {
                // Nothing new: the source confirmed this node's copy is current. Stored, so that
                // the other frontends of a shared store know how fresh it is.
                let cursor = SyncCursor {
                    synced_at: Some(now),
                    ..stored.clone()
                };
                self.store
                    .apply_sync(&SyncApply {
                        expected: Some(stored),
                        cursor,
                        authorities: Vec::new(),
                        licences: Vec::new(),
                        statuses: Vec::new(),
                        seals: Vec::new(),
                        seal_statuses: Vec::new(),
                        entries: Vec::new(),
                    })?
                    .await?;
            }
        }
        self.sync.update(&source.origin, |s| {
            s.checkpoint_size = size;
            s.applied = frontier.size().0;
            s.synced_at = Some(now);
        });
        Ok(RoundOutcome { applied, size })
    }

    fn holds_other(&self, l: &ReplicatedLicence) -> bool {
        matches!(self.store.licence(&l.id), Ok(Some(held)) if held.signed != l.signed)
    }

    /// Checks a page's entries and objects; the write it becomes (cursor still to be set).
    async fn prepare_page<F: Feed>(
        &self,
        source: &SyncSource,
        feed: &F,
        start: u64,
        entries: &[Vec<u8>],
        objects: Vec<SyncObject>,
        now: OffsetDateTime,
    ) -> Result<SyncApply, SyncError> {
        let invalid =
            |detail: String| SyncError::Incident(Box::new(incident_draft(IncidentKind::ObjectInvalid, detail)));
        let mut objects: HashMap<u64, SyncObject> = objects.into_iter().map(|o| (o.index, o)).collect();
        let mut page = Page {
            engine: self,
            source,
            now,
            authorities: Vec::new(),
            certificates: HashMap::new(),
            licences: Vec::new(),
            held: std::collections::HashSet::new(),
            statuses: BTreeMap::new(),
            seals: Vec::new(),
            seal_statuses: BTreeMap::new(),
            entries: Vec::new(),
            types: Vec::new(),
        };
        // Pass 1, in log order: parse every entry; authorities first (their certificates are
        // what the page's licences are checked against).
        let mut events = Vec::new();
        for (index, bytes) in (start..).zip(entries) {
            let value: Value =
                serde_json::from_slice(bytes).map_err(|e| invalid(format!("entry {index} is not JSON: {e}")))?;
            let event = parse_event(innermost(&value)).map_err(|why| invalid(format!("entry {index}: {why}")))?;
            let Some(event) = event else { continue };
            let object = objects.remove(&index);
            if let Event::Authority { uscc, certificates } = &event {
                page.authority(uscc.clone(), certificates, object.clone().and_then(|o| o.authority))
                    .map_err(|why| invalid(format!("entry {index}: {why}")))?;
            }
            events.push((index, value, event, object));
        }
        // Pass 2, in parallel: every licence's signature and chain.
        let checked: HashMap<u64, Result<Checked, String>> = {
            use rayon::prelude::*;
            let ctx = SourceContext {
                engine: self,
                anchors: &source.anchors,
                page: &page.certificates,
            };
            events
                .par_iter_mut()
                .filter_map(|(index, _, event, object)| match event {
                    Event::Licence { id, sha256, .. } => {
                        let signed = object.as_mut().and_then(|o| o.licence.take());
                        Some((*index, check_licence(&ctx, id, sha256, signed, now)))
                    }
                    _ => None,
                })
                .collect()
        };
        let mut checked = checked;
        // Pass 3, in log order: licences and status changes, and this node's own entries.
        for (index, value, event, object) in events {
            match event {
                Event::Authority { .. } => {}
                Event::Licence {
                    id, supersedes, time, ..
                } => {
                    let result = checked
                        .remove(&index)
                        .unwrap_or_else(|| Err(format!("licence {id}: not checked")));
                    page.licence(id, supersedes, time, result)?
                }
                Event::Status { id, change } => {
                    page.status(id, change, object.as_ref().and_then(|o| o.text.as_deref()))?
                }
                Event::Seal { es_id, sha256, time } => page
                    .seal(&es_id, &sha256, time, object.and_then(|o| o.seal))
                    .map_err(|why| invalid(format!("entry {index}: seal {es_id}: {why}")))?,
                Event::SealStatus { es_id, change } => page
                    .seal_status(&es_id, change, object.as_ref().and_then(|o| o.text.as_deref()))
                    .map_err(|why| invalid(format!("entry {index}: seal {es_id}: {why}")))?,
            }
            page.entries.push(crate::log::entry(serde_json::json!({
                "event": "sync.applied",
                "origin": source.origin,
                "index": index,
                "entry": value,
            })));
        }
        // Licence types (or type versions) the source uses and this node lacks come from the
        // source's catalogue, in their current version there.
        for code in std::mem::take(&mut page.types) {
            let licence_type = feed.licence_type(&code).await?;
            if licence_type.code != code {
                return Err(invalid(format!(
                    "the source served type {} for {code}",
                    licence_type.code
                )));
            }
            self.adopt_licence_type(licence_type)
                .await
                .map_err(|e| invalid(format!("licence type {code}: {e}")))?;
        }
        Ok(SyncApply {
            expected: None,
            cursor: SyncCursor {
                origin: source.origin.clone(),
                checkpoint: String::new(),
                size: 0,
                root: [0; 32],
                frontier: Vec::new(),
                applied: 0,
                synced_at: None,
            },
            authorities: page.authorities,
            licences: page.licences,
            statuses: page.statuses.into_iter().collect(),
            seals: page.seals,
            seal_statuses: page.seal_statuses.into_iter().collect(),
            entries: page.entries,
        })
    }

    /// Brings the in-memory registry in step with an applied page.
    fn applied(&self, apply: &SyncApply) {
        if apply.authorities.is_empty() {
            return;
        }
        let mut reg = self.write_registry();
        for a in &apply.authorities {
            let certs = a
                .certificates
                .iter()
                .filter_map(|pem| {
                    registry::parse_chain(pem, Some(&a.uscc), &self.anchors, self.clock.now(), false).ok()
                })
                .collect();
            reg.insert_authority(a.clone(), certs, &self.keyring);
        }
    }

    /// Records an incident (stopping the source) and returns it as the round's error.
    async fn incident(
        &self,
        source: &SyncSource,
        kind: IncidentKind,
        detail: String,
        evidence: Vec<String>,
    ) -> SyncError {
        let now = self.clock.now();
        let incident = SyncIncident {
            id: format!("IN{:016x}", now.unix_timestamp_nanos() as u64),
            origin: source.origin.clone(),
            kind,
            detail,
            evidence,
            detected: now,
            resolved: None,
        };
        tracing::error!(origin = %source.origin, kind = kind.name(), detail = %incident.detail, "sync incident: source stopped");
        match self.store.put_incident(&incident) {
            Ok(durable) => {
                if let Err(e) = durable.await {
                    return SyncError::from(e);
                }
            }
            Err(e) => return SyncError::from(e),
        }
        self.sync
            .update(&source.origin, |s| s.open_incidents.push(incident.id.clone()));
        SyncError::Incident(Box::new(incident))
    }
}
