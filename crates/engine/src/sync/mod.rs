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

mod conflict;
mod events;
mod page;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::RwLock;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::{Duration, OffsetDateTime};
use zhengyin_crypto::TrustAnchors;
use zhengyin_model::licence::format_time;
use zhengyin_model::{Authority, IncidentKind, LicenceType, SealRecord, SealState, Status, SyncIncident, TypeCode};
use zhengyin_store::{ReplicatedLicence, Store, StoreError, SyncApply, SyncCursor};
use zhengyin_tlog::{
    empty_root, leaf_hash, open_checkpoint, verify_consistency, Frontier, Hash, NoteVerifier, TreeSize,
};

use crate::verify::StatusSource;
use crate::{Engine, EngineError};
use events::{innermost, parse_event, Event};

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
    /// For another region's node followed through a trust list: what the list recognises of
    /// it. Only those authorities and licence types apply, its seals do not, and nothing of it
    /// is relayed into this node's log. `None` for a node this one aggregates.
    pub recognition: Option<crate::trust_list::Recognition>,
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
    /// The inclusion proof of entry `index` in the tree of `size` entries.
    fn inclusion(&self, index: u64, size: u64) -> impl Future<Output = Result<Vec<Hash>, FeedError>> + Send;
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
    /// Open incidents that stop the source.
    pub open_incidents: Vec<String>,
    /// Open conflicts over one authority each (only that authority's entries are skipped),
    /// and accepted ones whose skipped entries are still to be applied.
    pub conflicts: Vec<String>,
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
    /// Unresolved incidents that stop the source.
    open_incidents: Vec<String>,
    /// Unresolved conflicts: authority (USCC) → incident id.
    conflicts: BTreeMap<String, String>,
    /// Conflicts resolved for the claimant, whose skipped entries are still to be applied.
    replays: Vec<String>,
}

impl SourceState {
    /// Files a pending incident under what it stops or awaits.
    fn hold(&mut self, incident: &SyncIncident) {
        match &incident.conflict {
            None => self.open_incidents.push(incident.id.clone()),
            Some(c) if incident.resolved.is_none() => {
                self.conflicts.insert(c.authority.clone(), incident.id.clone());
            }
            Some(_) => self.replays.push(incident.id.clone()),
        }
    }
}

impl SyncStates {
    /// The state the store holds: every cursor, and the pending incidents (few: each one halts
    /// its source or concerns one authority), read a page at a time through the store's index.
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
        for i in incidents.iter().filter(|i| i.pending()) {
            sources.entry(i.origin.clone()).or_default().hold(i);
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
            state.conflicts.clear();
            state.replays.clear();
        }
        for (origin, s) in stored {
            let held = sources.entry(origin).or_default();
            held.checkpoint_size = held.checkpoint_size.max(s.checkpoint_size);
            held.applied = held.applied.max(s.applied);
            held.source_size = held.source_size.max(s.source_size);
            held.synced_at = held.synced_at.max(s.synced_at);
            held.open_incidents = s.open_incidents;
            held.conflicts = s.conflicts;
            held.replays = s.replays;
        }
    }

    /// The open conflict of `origin` over authority `uscc`, if any.
    pub(crate) fn open_conflict(&self, origin: &str, uscc: &str) -> Option<String> {
        self.read().get(origin).and_then(|s| s.conflicts.get(uscc).cloned())
    }

    fn update<R>(&self, origin: &str, f: impl FnOnce(&mut SourceState) -> R) -> R {
        let mut sources = self.sources.write().unwrap_or_else(|p| p.into_inner());
        f(sources.entry(origin.to_owned()).or_default())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, SourceState>> {
        self.sources.read().unwrap_or_else(|p| p.into_inner())
    }
}

impl Engine {
    /// Sets how old a source's data may be before its licences' status is stale.
    pub fn with_max_staleness(mut self, max: Duration) -> Self {
        self.max_staleness = max;
        self
    }

    /// Lists a source in the operator view before its first round, and binds the authorities
    /// replicated from it to its trust anchors.
    pub fn watch_source(&self, source: &SyncSource) {
        self.sync.update(&source.origin, |_| ());
        self.bind_anchors(&source.origin, source.anchors.clone());
    }

    /// Holds `anchors` as those of `origin`'s authorities; the ones already replicated from it
    /// are validated again to them.
    pub(crate) fn bind_anchors(&self, origin: &str, anchors: TrustAnchors) {
        {
            let mut held = self.source_anchors.write().unwrap_or_else(|p| p.into_inner());
            let same = held.get(origin).is_some_and(|a| {
                a.certificates()
                    .iter()
                    .map(|c| c.id())
                    .eq(anchors.certificates().iter().map(|c| c.id()))
            });
            if same {
                return;
            }
            held.insert(origin.to_owned(), std::sync::Arc::new(anchors));
        }
        let replicated: Vec<_> = self
            .read_registry()
            .authorities
            .values()
            .filter(|a| a.authority.origin.as_deref() == Some(origin))
            .map(|a| a.authority.clone())
            .collect();
        self.hold_authorities(replicated);
    }

    pub(crate) fn sync_freshness(&self, origin: &str, now: OffsetDateTime) -> StatusSource {
        let state = self.sync.read().get(origin).cloned().unwrap_or_default();
        let vouched = self.vouched(origin, now);
        let mut text = match state.synced_at {
            Some(at) => format!(
                "source {origin} as of its checkpoint {}, confirmed at {}",
                state.checkpoint_size,
                format_time(at)
            ),
            None => format!("source {origin}, not yet confirmed current since this node started"),
        };
        if let Some((by, _)) = &vouched {
            text = format!("{text}; {by}");
        }
        // An open incident halts the source: whatever changed there since is not known here, so
        // its status is in doubt at once, not only once the staleness bound has passed.
        let halted = state.open_incidents.first().map(|id| {
            format!("source {origin} is halted by open incident {id}: status changes there since are not known here")
        });
        let doubt = vouched.and_then(|(_, doubt)| doubt);
        let stale = halted.or(doubt).or_else(|| match state.synced_at {
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
                conflicts: s.conflicts.values().chain(&s.replays).cloned().collect(),
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
        self.replay_accepted(source, feed, page).await?;
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
            let indexed: Vec<(u64, Vec<u8>)> = (start..).zip(entries).collect();
            let round_evidence = evidence();
            let prepared = self
                .prepare_page(source, feed, &indexed, objects, now, (&[], &round_evidence))
                .await;
            let apply = match prepared {
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
            applied += indexed.len() as u64;
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
                        incidents: Vec::new(),
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

    /// Brings the in-memory registry and sync state in step with an applied page.
    fn applied(&self, apply: &SyncApply) {
        for incident in &apply.incidents {
            self.sync.update(&incident.origin, |s| {
                s.replays.retain(|id| *id != incident.id);
                s.conflicts.retain(|_, id| *id != incident.id);
                if incident.pending() {
                    s.hold(incident);
                }
            });
        }
        self.hold_authorities(apply.authorities.iter().cloned());
    }

    /// A new incident's id: `IN` and the time in hexadecimal nanoseconds, moved on past any id
    /// already stored or `taken` (a clock may repeat itself).
    pub(crate) fn new_incident_id(
        &self,
        now: OffsetDateTime,
        taken: impl Fn(&str) -> bool,
    ) -> Result<String, SyncError> {
        let mut n = now.unix_timestamp_nanos() as u64;
        loop {
            let id = format!("IN{n:016x}");
            if !taken(&id) && self.store.incident(&id)?.is_none() {
                return Ok(id);
            }
            n = n.wrapping_add(1);
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
        let id = match self.new_incident_id(now, |_| false) {
            Ok(id) => id,
            Err(e) => return e,
        };
        let incident = SyncIncident {
            id,
            origin: source.origin.clone(),
            kind,
            detail,
            evidence,
            detected: now,
            conflict: None,
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
