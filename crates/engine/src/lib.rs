//! Zhengyin's use cases: register authorities and licence types; issue, update, revoke,
//! suspend and reinstate licences; read their status; verify them; make, apply and verify e-seals;
//! handle objections; serve licences to authorised departments and holders (grants, authorisations,
//! use records, holder sign-in).
//!
//! What it holds: [`Engine`], the only place where the rules of the service meet: it checks
//! requests against the catalogue, signs through [`zhengyin_crypto::Signer`] (intent stored
//! before the key is used), stores through [`zhengyin_store::Store`] (answers only once durable),
//! and verifies licences into a [`zhengyin_model::VerificationReport`]. It also measures what only
//! it sees ([`metrics`]) and says whether the node can work ([`Engine::readiness`]).
//!
//! What it is not: it speaks no HTTP and reads no configuration; time and randomness are injected
//! ([`Clock`], [`Random`]) so every rule can be tested deterministically.

pub mod access;
pub mod annotated;
mod api_tokens;
mod cache;
mod catalogue;
mod clock;
mod error;
pub mod federation;
mod files;
mod follow;
mod health;
pub mod identity;
mod lease;
mod licences;
mod log;
pub mod metrics;
mod objections;
pub mod presentation;
mod recorder;
mod registry;
mod requests;
mod retirement;
pub mod revocation;
mod seals;
mod sessions;
mod sign;
pub mod sync;
pub mod trust_list;
mod verify;

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use time::OffsetDateTime;
use tokio::sync::Mutex;
use zhengyin_crypto::TrustAnchors;
use zhengyin_model::{LicenceId, Status, StatusHistory, Uscc, VerificationReport};
use zhengyin_store::Store;

pub use access::{AuthoriseRequest, GrantActor, GrantApplication, LookupAnswer, UseContext, UseRefusal};
pub use api_tokens::NewApiToken;
pub use cache::{CacheStats, PreparedCache, SignatureCache};
pub use clock::{Clock, FixedClock, Random, SeededRandom, SystemClock, SystemRandom};
pub use error::EngineError;
pub use follow::{Followed, FOLLOW_INTERVAL};
pub use health::NotReady;
pub use lease::{Lease, LEASE_TIME};
pub use log::{LogConfig, MAX_ENTRIES_PER_PAGE};
pub use objections::{FileObjection, ObjectionActor, ObjectionSummary, DEFAULT_EVIDENCE_LIMIT, MAX_EVIDENCE, MAX_TEXT};
pub use registry::Keyring;
pub use requests::{IssueRequest, RegisterAuthority, RevokeRequest, SuspendRequest, UpdateRequest};
pub use seals::{MakeSealRequest, PictureRequest, SealMaker, MAX_PICTURE_BYTES};
pub use verify::{BatchStats, VerifyOptions};
pub use zhengyin_licence_file::{BoundLicence, DocumentVerification, Font, FontError};
pub use zhengyin_ses::stamps::{Placement, Stamps};
pub use zhengyin_ses::verify::Protected;
pub use zhengyin_store::ObjectionScope;

/// Verifies a licence without a registry: signature, format and the certificate chain (given as
/// PEM chains, leaf first) at signing time, checked against `crls` (CRLs of CAs on the path,
/// already verified by their issuers). Status is unknown offline, so the verdict is at best
/// INDETERMINATE; a failed check still makes it INVALID.
pub fn verify_offline(
    licence: &[u8],
    anchors: TrustAnchors,
    chains: &[String],
    crls: Vec<zhengyin_crypto::crl::RevocationList>,
    now: OffsetDateTime,
    at: Option<OffsetDateTime>,
) -> Result<VerificationReport, EngineError> {
    let certificates = chains
        .iter()
        .map(|pem| registry::parse_chain(pem, None, &anchors, now, false).map(Arc::new))
        .collect::<Result<_, _>>()?;
    let offline = verify::Offline {
        anchors,
        certificates,
        crls,
        signatures: SignatureCache::new(0),
        prepared: PreparedCache::new(0),
    };
    Ok(verify::verify(
        &offline,
        licence,
        now,
        &VerifyOptions { at, fresh: false },
    ))
}

/// A signed licence as stored and served.
#[derive(Debug, Clone)]
pub struct SignedLicence {
    /// Its identifier.
    pub id: LicenceId,
    /// The signed JSON, exactly as issued (RFC 8785 canonical form).
    pub bytes: Vec<u8>,
    /// Its status history.
    pub status: StatusHistory,
    /// The signature-log index of the event that produced this answer (none when nothing changed).
    pub log_index: Option<u64>,
}

impl SignedLicence {
    /// The licence without its proof, as typed fields.
    pub fn body(&self) -> Result<zhengyin_model::licence::LicenceBody, EngineError> {
        access::body_of(self)
    }

    /// The status in force now, by effective time.
    pub fn status_at(&self, at: OffsetDateTime) -> Option<&Status> {
        self.status.at(at)
    }
}

const LOCK_STRIPES: usize = 64;

/// Entries of the verified-signature cache (about 100 bytes each).
pub const DEFAULT_SIGNATURE_CACHE: usize = 100_000;

/// Entries of the prepared-licence cache (a parsed licence, a few KB each).
pub const DEFAULT_PREPARED_CACHE: usize = 4096;

/// The service's use cases over one store, one keyring and one set of trust anchors.
pub struct Engine {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    anchors: TrustAnchors,
    keyring: Keyring,
    registry: RwLock<registry::Registry>,
    log: LogConfig,
    checkpoint_lock: Mutex<()>,
    signature_cache: SignatureCache,
    prepared_cache: PreparedCache<verify::Prepared>,
    batch_counters: verify::BatchCounters,
    seal_maker: Option<seals::SealMaker>,
    /// The font licence files embed (a subset of), if any.
    licence_font: Option<Arc<Font>>,
    seal_caches: seals::SealCaches,
    calendar: zhengyin_model::Calendar,
    /// Service items and grants, in step with the store.
    access: RwLock<access::AccessIndex>,
    /// Serialises grant changes, so the index follows the store in order.
    access_lock: Mutex<()>,
    /// CRLs of trusted CAs.
    crls: RwLock<revocation::Crls>,
    /// Largest evidence file, bytes.
    evidence_limit: usize,
    /// Webhook URLs of departments, for objection notifications.
    webhooks: std::collections::HashMap<String, String>,
    /// Signs presentation tokens (亮证).
    token_key: Option<Arc<dyn zhengyin_crypto::Signer>>,
    /// Group commit for use records.
    use_recorder: recorder::UseRecorder,
    /// Which holder tokens are accepted.
    identity: identity::Identity,
    /// Serialises changes to one licence lineage (striped by hash).
    lineage_locks: Vec<Mutex<()>>,
    /// The sources this node aggregates, in step with their cursors and incidents.
    sync: sync::SyncStates,
    /// The ownership map of the federation, as last published by the upstream node.
    ownership: RwLock<Option<federation::OwnershipMap>>,
    /// The trust list this node holds (互通互认), if it is configured with one.
    trust_list: RwLock<trust_list::HeldTrustList>,
    /// The trust anchors of each source whose anchors are not this node's own, by origin.
    source_anchors: RwLock<std::collections::HashMap<String, Arc<TrustAnchors>>>,
    /// How old a source's data may be before its licences' status is stale.
    max_staleness: time::Duration,
    /// The licences with an open objection at start or one filed since: verification looks
    /// objections up for these only (added before the objection is stored, never removed; a
    /// closed objection only costs a lookup that finds nothing open).
    disputed: RwLock<std::collections::HashSet<LicenceId>>,
    /// The log size up to which this frontend's state follows the store (see `follow.rs`).
    followed: std::sync::atomic::AtomicU64,
    /// Set while the log does not reach a checkpoint this node published: nothing is signed.
    halt: Arc<log::SigningHalt>,
    /// What the engine measures as it works (see [`metrics`]).
    metrics: Arc<metrics::EngineMetrics>,
    /// When this engine started (a source not yet heard from is as old as this).
    started: OffsetDateTime,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("keyring", &self.keyring)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Builds an engine and loads the registry from the store. Intents left by a crash (never
    /// acknowledged) are marked abandoned.
    pub async fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
        anchors: TrustAnchors,
        keyring: Keyring,
        log: LogConfig,
    ) -> Result<Self, EngineError> {
        // Checked before anything is written: a log behind what it published gets no entry.
        let halt = Arc::new(log::SigningHalt::default());
        if let Some(note) = &log.published {
            if let Err(why) = log::check_reaches(store.as_ref(), &log, note) {
                tracing::error!(%why, "signing halted");
                halt.set(Some(why));
            }
        }
        let metrics = Arc::new(metrics::EngineMetrics::default());
        let started = clock.now();
        let use_recorder = recorder::UseRecorder::start(Arc::clone(&store), Arc::clone(&halt), Arc::clone(&metrics))?;
        // Read before the state is loaded: what another frontend writes meanwhile is followed.
        let followed = store.log_size()?.0;
        let engine = Self {
            followed: std::sync::atomic::AtomicU64::new(followed),
            log,
            checkpoint_lock: Mutex::new(()),
            signature_cache: SignatureCache::new(DEFAULT_SIGNATURE_CACHE),
            prepared_cache: PreparedCache::new(DEFAULT_PREPARED_CACHE),
            batch_counters: verify::BatchCounters::default(),
            seal_maker: None,
            licence_font: None,
            seal_caches: seals::SealCaches::default(),
            calendar: zhengyin_model::Calendar::default(),
            store,
            clock,
            random,
            anchors,
            keyring,
            registry: RwLock::default(),
            access: RwLock::default(),
            access_lock: Mutex::new(()),
            identity: identity::Identity::default(),
            use_recorder,
            token_key: None,
            webhooks: std::collections::HashMap::new(),
            evidence_limit: objections::DEFAULT_EVIDENCE_LIMIT,
            crls: RwLock::default(),
            lineage_locks: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            sync: sync::SyncStates::default(),
            ownership: RwLock::default(),
            trust_list: RwLock::default(),
            source_anchors: RwLock::default(),
            max_staleness: sync::DEFAULT_MAX_STALENESS,
            disputed: RwLock::default(),
            halt,
            metrics,
            started,
        };
        {
            let mut reg = engine.write_registry();
            for t in engine.store.licence_types()? {
                reg.types.insert(t.code.clone(), t);
            }
        }
        engine.hold_authorities(engine.store.authorities()?);
        *engine.write_access() = access::AccessIndex::load(engine.store.as_ref())?;
        *engine.disputed.write().unwrap_or_else(|p| p.into_inner()) = engine.disputed_licences()?;
        let engine = Self {
            sync: sync::SyncStates::read_from(engine.store.as_ref())?,
            ..engine
        };
        engine.load_crls()?;
        for intent in engine.store.pending_intents()? {
            // (Abandoning an intent appends nothing to the log: allowed while signing is halted.)
            tracing::warn!(licence = %intent.id, "abandoning an intent left by an interrupted issue");
            engine.store.abandon_intent(&intent.id)?.await?;
        }
        Ok(engine)
    }

    fn read_registry(&self) -> RwLockReadGuard<'_, registry::Registry> {
        self.registry.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_registry(&self) -> RwLockWriteGuard<'_, registry::Registry> {
        self.registry.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read_access(&self) -> RwLockReadGuard<'_, access::AccessIndex> {
        self.access.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_access(&self) -> RwLockWriteGuard<'_, access::AccessIndex> {
        self.access.write().unwrap_or_else(|p| p.into_inner())
    }

    fn lineage_lock(&self, id: &LicenceId) -> &Mutex<()> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        id.lineage().hash(&mut h);
        &self.lineage_locks[(h.finish() as usize) % LOCK_STRIPES]
    }

    /// Replaces the verified-signature cache by one of `capacity` entries (0 turns it off).
    pub fn with_signature_cache(mut self, capacity: usize) -> Self {
        self.signature_cache = SignatureCache::new(capacity);
        self
    }

    /// Replaces the prepared-licence cache by one of `capacity` entries (0 turns it off).
    pub fn with_prepared_cache(mut self, capacity: usize) -> Self {
        self.prepared_cache = PreparedCache::new(capacity);
        self
    }

    /// Lets this node make seals with `maker`'s key.
    pub fn with_seal_maker(mut self, maker: SealMaker) -> Self {
        self.seal_maker = Some(maker);
        self
    }

    /// Embeds (the subset needed of) `font` in the licence files this node makes.
    pub fn with_licence_font(mut self, font: Font) -> Self {
        self.licence_font = Some(Arc::new(font));
        self
    }

    /// The trust anchors (for building a [`SealMaker`]).
    pub fn anchors(&self) -> &TrustAnchors {
        &self.anchors
    }

    /// Counters of the Ed25519 batch equation.
    pub fn batch_stats(&self) -> BatchStats {
        self.batch_counters.stats()
    }

    /// The engine's instruments, for the metrics endpoint to register.
    pub fn metrics(&self) -> &metrics::EngineMetrics {
        &self.metrics
    }

    /// The log's size and the size of its latest signed checkpoint.
    pub fn log_sizes(&self) -> Result<(u64, u64), EngineError> {
        let size = self.store.log_size()?.0;
        let checkpoint = self.store.latest_checkpoint()?.map_or(0, |(size, _)| size.0);
        Ok((size, checkpoint))
    }

    /// Counters of the verified-signature cache.
    pub fn signature_cache_stats(&self) -> CacheStats {
        self.signature_cache.stats()
    }

    /// Counters of the prepared-licence cache.
    pub fn prepared_cache_stats(&self) -> CacheStats {
        self.prepared_cache.stats()
    }

    /// The current time of the injected clock.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Verifies a licence as received (ARCHITECTURE §4.3): status and validity evaluated at
    /// `at`, or now.
    pub fn verify(&self, licence: &[u8], at: Option<OffsetDateTime>) -> VerificationReport {
        self.verify_with(licence, &VerifyOptions { at, fresh: false })
    }

    /// Verifies a licence with explicit options (fresh status required, another evaluation time).
    pub fn verify_with(&self, licence: &[u8], options: &VerifyOptions) -> VerificationReport {
        verify::verify(self, licence, self.clock.now(), options)
    }

    /// Verifies many licences at once, each report as [`Self::verify`] would give it; Ed25519
    /// signatures are checked with one batch equation, the rest in parallel across cores.
    pub fn verify_batch(&self, licences: &[&[u8]], options: &VerifyOptions) -> Vec<VerificationReport> {
        verify::verify_batch(self, &self.batch_counters, licences, self.clock.now(), options)
    }

    /// Refuses changes to what a source node owns: its licences change only there.
    /// Refuses changes to what another node owns: an authority replicated from it, or one the
    /// federation's ownership map gives to it.
    pub(crate) fn local_authority(&self, uscc: &Uscc, what: impl FnOnce() -> String) -> Result<(), EngineError> {
        let replicated = self
            .read_registry()
            .authorities
            .get(uscc)
            .and_then(|a| a.authority.origin.clone());
        if let Some(origin) = replicated {
            return Err(EngineError::Replicated { what: what(), origin });
        }
        match self.owned_elsewhere(uscc) {
            Some((owner, version)) => Err(EngineError::OwnedElsewhere {
                what: what(),
                uscc: uscc.clone(),
                owner,
                version,
            }),
            None => Ok(()),
        }
    }

    fn new_serial(&self) -> Result<String, EngineError> {
        // A never-reused counter, then 4 random characters so identifiers cannot be enumerated.
        let counter = self.store.next_serial()?;
        let suffix = self.random.next_u64() % 36u64.pow(4);
        Ok(format!("{}{}", base36(counter, 1), base36(suffix, 4)))
    }

    fn signing_time(&self) -> OffsetDateTime {
        let now = self.clock.now();
        now.replace_nanosecond(0).unwrap_or(now)
    }
}

fn base36(mut n: u64, min_len: usize) -> String {
    let mut digits = Vec::new();
    while n > 0 || digits.len() < min_len {
        digits.push(
            char::from_digit((n % 36) as u32, 36)
                .unwrap_or('0')
                .to_ascii_uppercase(),
        );
        n /= 36;
    }
    digits.iter().rev().collect()
}

fn check_text(value: &str, field: &str, max: usize) -> Result<(), EngineError> {
    zhengyin_model::text::check_line(value, field, max).map_err(EngineError::invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base36_pads_and_counts() {
        assert_eq!(base36(0, 1), "0");
        assert_eq!(base36(35, 1), "Z");
        assert_eq!(base36(36, 1), "10");
        assert_eq!(base36(5, 4), "0005");
    }
}
