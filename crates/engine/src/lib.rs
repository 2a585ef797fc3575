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
mod clock;
mod error;
pub mod federation;
mod follow;
mod health;
pub mod identity;
mod lease;
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
mod sign;
pub mod sync;
pub mod trust_list;
mod verify;

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use time::OffsetDateTime;
use tokio::sync::Mutex;
use zhengyin_crypto::TrustAnchors;
use zhengyin_model::licence::parse_date;
use zhengyin_model::{
    authority, Authority, LicenceBody, LicenceId, LicenceType, Status, StatusChange, StatusHistory, TypeCode, Uscc,
    VerificationReport,
};
use zhengyin_store::{Store, StoreError};

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

    /// Registers an authority, or adds certificates to a registered one. Every certificate
    /// chain must validate now to a trust anchor and have a key a cryptosuite signs with.
    pub async fn register_authority(&self, req: RegisterAuthority) -> Result<Authority, EngineError> {
        let uscc = Uscc::parse(&req.uscc)?;
        self.local_authority(&uscc, || format!("authority {uscc}"))?;
        if req.name.trim().is_empty() || req.name.chars().count() > 200 {
            return Err(EngineError::invalid("name must be 1 to 200 characters"));
        }
        if !authority::LEVELS.contains(&req.level.as_str()) {
            return Err(EngineError::invalid(
                "level must be national, provincial, city or county",
            ));
        }
        authority::check_region_code(&req.region_code).map_err(EngineError::invalid)?;
        if req.certificates.is_empty() || req.certificates.len() > 16 {
            return Err(EngineError::invalid("give 1 to 16 certificate chains"));
        }
        let now = self.clock.now();
        let mut entries = Vec::new();
        for pem in &req.certificates {
            entries.push(registry::parse_chain(pem, Some(&uscc), &self.anchors, now, true)?);
        }
        let (mut certificates, retired): (Vec<String>, Vec<zhengyin_model::RetiredKey>) = {
            let reg = self.read_registry();
            for e in &entries {
                if let Some(other) = reg.certificates.get(&e.certificate.id()) {
                    if other.authority.as_ref() != Some(&uscc) {
                        return Err(EngineError::Certificate(
                            "certificate already registered to another authority".into(),
                        ));
                    }
                }
            }
            reg.authorities
                .get(&uscc)
                .map(|a| (a.authority.certificates.clone(), a.authority.retired.clone()))
                .unwrap_or_default()
        };
        for pem in &req.certificates {
            if !certificates.contains(pem) {
                certificates.push(pem.clone());
            }
        }
        let authority = Authority {
            uscc: uscc.clone(),
            name: req.name,
            level: req.level,
            region_code: req.region_code,
            certificates,
            registered: now,
            origin: None,
            retired,
        };
        let entry = log::entry(serde_json::json!({
            "event": "authority.registered",
            "authority": uscc.as_str(),
            "certificates": entries.iter().map(|e| e.certificate.id()).collect::<Vec<_>>(),
            "time": zhengyin_model::licence::format_time(now),
        }));
        self.ensure_signing()?;
        self.store.put_authority(&authority, &entry)?.durable.await?;
        // Rebuild the entries of every certificate, old and new, so the newest signer wins.
        let all = self.authority_certificates(&authority, now);
        self.write_registry()
            .insert_authority(authority.clone(), all, &self.keyring);
        Ok(authority)
    }

    /// An authority's certificates, parsed and validated to the anchors of the node it came from
    /// (this node's own for a local one or a source not yet known).
    pub(crate) fn authority_certificates(
        &self,
        authority: &Authority,
        now: OffsetDateTime,
    ) -> Vec<registry::CertEntry> {
        let foreign = authority.origin.as_deref().and_then(|origin| {
            self.source_anchors
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .get(origin)
                .cloned()
        });
        let anchors = foreign.as_deref().unwrap_or(&self.anchors);
        authority
            .certificates
            .iter()
            .filter_map(|pem| registry::parse_chain(pem, Some(&authority.uscc), anchors, now, false).ok())
            .map(|mut entry| {
                entry.anchors = foreign.clone();
                entry
            })
            .collect()
    }

    /// Puts authorities into the registry (replacing what it held of them), their
    /// certificates validated as [`Self::authority_certificates`] says.
    pub(crate) fn hold_authorities(&self, authorities: impl IntoIterator<Item = Authority>) {
        let now = self.clock.now();
        let parsed: Vec<_> = authorities
            .into_iter()
            .map(|a| {
                let certs = self.authority_certificates(&a, now);
                (a, certs)
            })
            .collect();
        let mut reg = self.write_registry();
        for (a, certs) in parsed {
            reg.insert_authority(a, certs, &self.keyring);
        }
    }

    /// A registered authority.
    pub fn authority(&self, uscc: &Uscc) -> Option<Authority> {
        self.read_registry().authorities.get(uscc).map(|a| a.authority.clone())
    }

    /// Every registered authority.
    pub fn authorities(&self) -> Vec<Authority> {
        let mut all: Vec<_> = self
            .read_registry()
            .authorities
            .values()
            .map(|a| a.authority.clone())
            .collect();
        all.sort_by(|a, b| a.uscc.cmp(&b.uscc));
        all
    }

    /// Registers a licence type, or a new version of one when its definition changes (see
    /// [`LicenceType::same_definition`]); earlier versions are kept, and licences keep the version
    /// they were issued under. The version sent is ignored: the catalogue assigns it. Answers the
    /// type as now registered and whether anything changed (an identical definition changes
    /// nothing and writes nothing). Each change is a log entry (`licence_type.registered`)
    /// committing to the whole definition by its SHA-256.
    pub async fn register_licence_type(
        &self,
        mut licence_type: LicenceType,
    ) -> Result<(LicenceType, bool), EngineError> {
        licence_type.check()?;
        licence_type.version = match self.licence_type(&licence_type.code) {
            None => 1,
            Some(current) if current.same_definition(&licence_type) => {
                if current.issuers == licence_type.issuers {
                    return Ok((current, false));
                }
                current.version
            }
            Some(current) => current
                .version
                .checked_add(1)
                .ok_or_else(|| EngineError::invalid("the licence type has no versions left"))?,
        };
        self.commit_licence_type(licence_type).await.map(|t| (t, true))
    }

    /// Keeps a licence type replicated from a sync source as the source defines it (its version
    /// included), unless this node holds that version or a newer one already.
    pub(crate) async fn adopt_licence_type(&self, licence_type: LicenceType) -> Result<(), EngineError> {
        licence_type.check()?;
        if self
            .licence_type(&licence_type.code)
            .is_some_and(|held| held.version > licence_type.version || held == licence_type)
        {
            return Ok(());
        }
        self.commit_licence_type(licence_type).await.map(drop)
    }

    async fn commit_licence_type(&self, licence_type: LicenceType) -> Result<LicenceType, EngineError> {
        let definition = serde_json::to_value(&licence_type)
            .map_err(|e| EngineError::invalid(e.to_string()))
            .and_then(|v| {
                zhengyin_model::canonical::to_canonical(&v).map_err(|e| EngineError::invalid(e.to_string()))
            })?;
        let entry = log::entry(serde_json::json!({
            "event": "licence_type.registered",
            "type": licence_type.code.as_str(),
            "version": licence_type.version,
            "defining_authority": licence_type.defining_authority.as_str(),
            "issuers": licence_type.issuers.iter().map(Uscc::as_str).collect::<Vec<_>>(),
            "definition_sha256": zhengyin_crypto::hash::sha256_hex(&definition),
            "time": zhengyin_model::licence::format_time(self.clock.now()),
        }));
        self.ensure_signing()?;
        match self.store.put_licence_type(&licence_type, &entry) {
            Ok(logged) => logged.durable.await?,
            Err(StoreError::Conflict) => return Err(EngineError::TypeChanged(licence_type.code)),
            Err(e) => return Err(e.into()),
        }
        let mut registry = self.write_registry();
        let held = registry.types.get(&licence_type.code);
        if held.is_none_or(|held| held.version <= licence_type.version) {
            registry.types.insert(licence_type.code.clone(), licence_type.clone());
        }
        Ok(licence_type)
    }

    /// Sets which authorities besides the defining one may issue `code` (发证机构): by its
    /// defining authority (`by` = its USCC) or an operator (`by` = `None`). Logged as a catalogue
    /// change. Each listed authority must be registered.
    pub async fn set_type_issuers(
        &self,
        by: Option<&Uscc>,
        code: &TypeCode,
        issuers: Vec<Uscc>,
    ) -> Result<LicenceType, EngineError> {
        let mut licence_type = self
            .licence_type(code)
            .ok_or_else(|| EngineError::UnknownLicenceType(code.clone()))?;
        if by.is_some_and(|uscc| *uscc != licence_type.defining_authority) {
            return Err(EngineError::NotDefiner(code.clone()));
        }
        if let Some(unknown) = issuers.iter().find(|u| self.authority(u).is_none()) {
            return Err(EngineError::UnknownAuthority(unknown.clone()));
        }
        let mut issuers = issuers;
        issuers.sort();
        issuers.dedup();
        issuers.retain(|u| *u != licence_type.defining_authority);
        licence_type.issuers = issuers;
        self.commit_licence_type(licence_type).await
    }

    /// A licence type.
    pub fn licence_type(&self, code: &TypeCode) -> Option<LicenceType> {
        self.read_registry().types.get(code).cloned()
    }

    /// One version of a licence type: the current one from memory, an earlier one from the store.
    pub fn licence_type_version(&self, code: &TypeCode, version: u32) -> Result<LicenceType, EngineError> {
        let current = self
            .licence_type(code)
            .ok_or_else(|| EngineError::UnknownLicenceType(code.clone()))?;
        if current.version == version {
            return Ok(current);
        }
        self.licence_type_versions(code)?
            .into_iter()
            .find(|t| t.version == version)
            .ok_or_else(|| EngineError::UnknownTypeVersion {
                code: code.clone(),
                version,
            })
    }

    /// Every kept version of a licence type, oldest first.
    pub fn licence_type_versions(&self, code: &TypeCode) -> Result<Vec<LicenceType>, EngineError> {
        if self.licence_type(code).is_none() {
            return Err(EngineError::UnknownLicenceType(code.clone()));
        }
        Ok(self.store.licence_type_versions(code)?)
    }

    /// The whole catalogue.
    pub fn licence_types(&self) -> Vec<LicenceType> {
        let mut all: Vec<_> = self.read_registry().types.values().cloned().collect();
        all.sort_by(|a, b| a.code.cmp(&b.code));
        all
    }

    /// Issues a licence for `issuer`.
    pub async fn issue(&self, issuer: &Uscc, req: IssueRequest) -> Result<SignedLicence, EngineError> {
        let (body, seal) = self.prepare_issue(issuer, req)?;
        self.sign_and_commit(body, seal, None).await
    }

    /// Checks an issue request and builds the licence it asks for (unsigned), with the seal it
    /// names.
    fn prepare_issue(&self, issuer: &Uscc, req: IssueRequest) -> Result<(LicenceBody, Option<String>), EngineError> {
        self.local_authority(issuer, || format!("authority {issuer}"))?;
        let (licence_type, authority) = {
            let reg = self.read_registry();
            let t = reg
                .types
                .get(&req.type_code)
                .cloned()
                .ok_or_else(|| EngineError::UnknownLicenceType(req.type_code.clone()))?;
            let a = reg
                .authorities
                .get(issuer)
                .map(|a| a.authority.clone())
                .ok_or_else(|| EngineError::UnknownAuthority(issuer.clone()))?;
            (t, a)
        };
        if !licence_type.may_issue(issuer) {
            return Err(EngineError::NotBoundToType {
                authority: issuer.clone(),
                type_code: licence_type.code.clone(),
            });
        }
        if !licence_type.holder_code_types.contains(&req.holder.code_type) {
            return Err(EngineError::invalid(format!(
                "holder code type {} is not allowed for licence type {}",
                req.holder.code_type, licence_type.code
            )));
        }
        req.holder.code_type.check_code(&req.holder.code)?;
        let today = self.clock.now().date();
        let issue_date = optional_date(req.issue_date.as_deref(), "issue_date")?.unwrap_or(today);
        let serial = self.new_serial()?;
        let id = LicenceId::new(
            licence_type.code.clone(),
            issuer.clone(),
            &serial,
            zhengyin_model::Version::FIRST,
        )?;
        let body = LicenceBody {
            version: id.version().to_string(),
            id,
            name: req.name.unwrap_or_else(|| licence_type.name.clone()),
            number: req.number,
            licence_type: zhengyin_model::TypeRef {
                code: licence_type.code.clone(),
                name: licence_type.name.clone(),
                version: licence_type.version,
            },
            defining_authority: licence_type.defining_authority.clone(),
            issuer: zhengyin_model::IssuerRef {
                name: authority.name.clone(),
                code: authority.uscc.clone(),
                level: authority.level.clone(),
            },
            issue_date,
            valid_from: optional_date(req.valid_from.as_deref(), "valid_from")?.unwrap_or(issue_date),
            valid_until: optional_date(req.valid_until.as_deref(), "valid_until")?,
            region_code: req.region_code.unwrap_or_else(|| authority.region_code.clone()),
            holder: req.holder,
            service_item: req.service_item,
            face: req.face,
        };
        check_body(&body, &licence_type)?;
        Ok((body, req.seal))
    }

    /// Issues many licences for `issuer` at once (bulk conversion of existing licences): each
    /// checked as [`Engine::issue`] would, then signed and stored together — one intent write,
    /// signatures on every core, one commit (sled) or the fewest transactions (PostgreSQL). The
    /// results are in the requests' order; a refused request refuses only itself; of two
    /// requests with one number, the earlier keeps it.
    pub async fn issue_many(
        &self,
        issuer: &Uscc,
        requests: Vec<IssueRequest>,
    ) -> Vec<Result<SignedLicence, EngineError>> {
        let mut results: Vec<Option<Result<SignedLicence, EngineError>>> = (0..requests.len()).map(|_| None).collect();
        let mut numbers = std::collections::HashSet::new();
        let mut bodies = Vec::with_capacity(requests.len());
        for (i, request) in requests.into_iter().enumerate() {
            if !numbers.insert((request.type_code.clone(), request.number.clone())) {
                results[i] = Some(Err(EngineError::NumberTaken { number: request.number }));
                continue;
            }
            match self.prepare_issue(issuer, request) {
                Ok(body) => bodies.push((i, body)),
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        let (positions, bodies): (Vec<usize>, Vec<_>) = bodies.into_iter().unzip();
        for (i, result) in positions.into_iter().zip(self.sign_and_commit_many(bodies).await) {
            results[i] = Some(result);
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(EngineError::Signing("a licence of the bulk went unanswered".to_owned()))))
            .collect()
    }

    /// Issues the next version of a licence with changed data; the current version becomes
    /// `superseded`.
    pub async fn update(
        &self,
        issuer: &Uscc,
        id: &LicenceId,
        req: UpdateRequest,
    ) -> Result<SignedLicence, EngineError> {
        if req.reason.trim().is_empty() {
            return Err(EngineError::invalid("reason is required"));
        }
        let _guard = self.lineage_lock(id).lock().await;
        let current = self.changeable(issuer, id)?;
        match current.status.latest() {
            Some(Status::Valid | Status::Suspended { .. }) => {}
            Some(other) => {
                return Err(EngineError::StatusConflict {
                    action: "update",
                    state: other.name(),
                })
            }
            None => {
                return Err(EngineError::StatusConflict {
                    action: "update",
                    state: "not yet issued",
                })
            }
        }
        let received = zhengyin_model::ReceivedLicence::parse(&current.bytes)
            .map_err(|e| EngineError::Store(zhengyin_store::StoreError::Corrupt(e.to_string())))?;
        let mut body: LicenceBody = serde_json::from_value(received.document)
            .map_err(|e| EngineError::Store(zhengyin_store::StoreError::Corrupt(e.to_string())))?;
        // A licence keeps the type version it was issued under.
        let licence_type = self.licence_type_version(body.id.type_code(), body.licence_type.version)?;
        body.id = id.next_version()?;
        body.version = body.id.version().to_string();
        if let Some(n) = req.number {
            self.check_number_free(&body.id, &n)?;
            body.number = n;
        }
        if let Some(n) = req.holder_name {
            body.holder.name = n;
        }
        if let Some(d) = optional_date(req.valid_from.as_deref(), "valid_from")? {
            body.valid_from = d;
        }
        if req.long_term {
            body.valid_until = None;
        } else if let Some(d) = optional_date(req.valid_until.as_deref(), "valid_until")? {
            body.valid_until = Some(d);
        }
        if let Some(face) = req.face {
            body.face = face;
        }
        if let Some(a) = self.authority(issuer) {
            body.issuer.name = a.name;
        }
        check_body(&body, &licence_type)?;
        let now = self.clock.now();
        let mut superseded = current.status.clone();
        superseded.push(StatusChange {
            status: Status::Superseded { by: body.id.clone() },
            effective: now,
            recorded: now,
        });
        tracing::info!(licence = %id, reason = %req.reason, "updating licence");
        self.sign_and_commit(body, req.seal, Some((id.clone(), current.status, superseded)))
            .await
    }

    /// Refuses a licence number another lineage of the same type and issuer carries or carried.
    /// (Checked again, atomically, when the licence is stored: this only saves a signature.)
    fn check_number_free(&self, id: &LicenceId, number: &str) -> Result<(), EngineError> {
        match self.store.number_holder(id, number)? {
            Some(lineage) if lineage != id.lineage() => Err(EngineError::NumberTaken {
                number: number.to_owned(),
            }),
            _ => Ok(()),
        }
    }

    /// Revokes a licence. Revoking a revoked licence again changes nothing and answers with the
    /// recorded revocation.
    pub async fn revoke(
        &self,
        issuer: &Uscc,
        id: &LicenceId,
        req: RevokeRequest,
    ) -> Result<SignedLicence, EngineError> {
        let _guard = self.lineage_lock(id).lock().await;
        let current = self.changeable(issuer, id)?;
        if current
            .status
            .changes
            .iter()
            .any(|c| matches!(c.status, Status::Revoked { .. }))
        {
            return Ok(current);
        }
        if let Some(Status::Superseded { by }) = current.status.latest() {
            return Err(EngineError::Superseded {
                id: id.to_string(),
                by: by.to_string(),
            });
        }
        let now = self.clock.now();
        let effective = req.effective.unwrap_or(now);
        let issued = current.status.changes.first().map(|c| c.effective).unwrap_or(now);
        if effective < issued {
            return Err(EngineError::invalid(
                "a revocation cannot take effect before the licence was issued",
            ));
        }
        let status = Status::Revoked {
            reason: req.reason,
            note: req.note,
        };
        self.change_status(
            current,
            StatusChange {
                status,
                effective,
                recorded: now,
            },
        )
        .await
    }

    /// Suspends a valid licence.
    pub async fn suspend(
        &self,
        issuer: &Uscc,
        id: &LicenceId,
        req: SuspendRequest,
    ) -> Result<SignedLicence, EngineError> {
        if req.reason.trim().is_empty() {
            return Err(EngineError::invalid("reason is required"));
        }
        let _guard = self.lineage_lock(id).lock().await;
        let current = self.changeable(issuer, id)?;
        let now = self.clock.now();
        match current.status.at(now) {
            Some(Status::Valid) if !current.status.is_final() => {}
            other => {
                return Err(EngineError::StatusConflict {
                    action: "suspend",
                    state: other.map_or("not yet issued", Status::name),
                })
            }
        }
        let change = StatusChange {
            status: Status::Suspended { reason: req.reason },
            effective: now,
            recorded: now,
        };
        self.change_status(current, change).await
    }

    /// Reinstates a suspended licence.
    pub async fn reinstate(&self, issuer: &Uscc, id: &LicenceId) -> Result<SignedLicence, EngineError> {
        let _guard = self.lineage_lock(id).lock().await;
        let current = self.changeable(issuer, id)?;
        let now = self.clock.now();
        match current.status.at(now) {
            Some(Status::Suspended { .. }) if !current.status.is_final() => {}
            other => {
                return Err(EngineError::StatusConflict {
                    action: "reinstate",
                    state: other.map_or("not yet issued", Status::name),
                })
            }
        }
        self.change_status(
            current,
            StatusChange {
                status: Status::Valid,
                effective: now,
                recorded: now,
            },
        )
        .await
    }

    /// A licence with its status.
    pub fn licence(&self, id: &LicenceId) -> Result<SignedLicence, EngineError> {
        let stored = self
            .store
            .licence(id)?
            .ok_or_else(|| EngineError::LicenceNotFound(id.clone()))?;
        Ok(SignedLicence {
            id: id.clone(),
            bytes: stored.signed,
            status: stored.status,
            log_index: None,
        })
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

    /// The licence, checked to be the caller's.
    fn changeable(&self, issuer: &Uscc, id: &LicenceId) -> Result<SignedLicence, EngineError> {
        let current = self.licence(id)?;
        if id.issuer() != issuer {
            return Err(EngineError::NotIssuer(id.clone()));
        }
        self.local_authority(issuer, || format!("licence {id}"))?;
        Ok(current)
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

    async fn change_status(&self, current: SignedLicence, change: StatusChange) -> Result<SignedLicence, EngineError> {
        let entry = log::status_entry(current.id.as_str(), current.id.issuer().as_str(), &change);
        let mut status = current.status.clone();
        status.push(change);
        self.ensure_signing()?;
        let started = std::time::Instant::now();
        let logged = self
            .store
            .update_status(&current.id, &current.status, &status, &entry)?;
        logged.durable.await?;
        self.metrics.wrote("status", started);
        tracing::info!(licence = %current.id, state = status.latest().map_or("", Status::name), "status changed");
        Ok(SignedLicence {
            status,
            log_index: Some(logged.index.0),
            ..current
        })
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

fn optional_date(s: Option<&str>, field: &str) -> Result<Option<time::Date>, EngineError> {
    s.map(|s| parse_date(s).map_err(|_| EngineError::invalid(format!("{field} must be a date YYYY-MM-DD"))))
        .transpose()
}

fn check_text(value: &str, field: &str, max: usize) -> Result<(), EngineError> {
    zhengyin_model::text::check_line(value, field, max).map_err(EngineError::invalid)
}

fn check_body(body: &LicenceBody, licence_type: &LicenceType) -> Result<(), EngineError> {
    check_text(&body.number, "number", 64)?;
    check_text(&body.name, "name", 100)?;
    check_text(&body.holder.name, "holder.name", 200)?;
    if let Some(item) = &body.service_item {
        check_text(item, "service_item", 64)?;
    }
    authority::check_region_code(&body.region_code).map_err(EngineError::invalid)?;
    if let Some(until) = body.valid_until {
        if until < body.valid_from {
            return Err(EngineError::invalid("valid_until is before valid_from"));
        }
    }
    licence_type.check_face(&body.face)?;
    Ok(())
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
