//! The seal registry (ARCHITECTURE §4.2): making seals with the node's seal-maker key, changing
//! their status, applying them with a signer key the node holds, and verifying seals and sealed
//! signatures against the registry. Every making, status change and application is a signing
//! event in the log:
//!
//! ```json
//! {"event":"seal.made","es_id":"ZY…","seal_sha256":"…","maker":"sha256:…","time":"…"}
//! {"event":"seal.revoked","es_id":"ZY…","status":{"state":"revoked","reason_sha256":"…"},"effective":"…","time":"…"}
//! {"event":"seal.applied","es_id":"ZY…","signature_sha256":"…","data_hash":"…","signer":"sha256:…","time":"…"}
//! ```
//!
//! Holders and reasons appear only inside the hashed seal or as hashes.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use zhengyin_crypto::{hash, Algorithm, Certificate, ChainError, CryptoError, PublicKey, SignatureScheme, Signer};
use zhengyin_model::licence::{format_time, Holder};
use zhengyin_model::{SealChange, SealHistory, SealRecord, SealState, VerificationReport};
use zhengyin_ses::format::{CertList, SealPicture};
use zhengyin_ses::verify::{Protected, SealStatus};
use zhengyin_ses::write::{apply_seal, make_seal, NewSeal};
use zhengyin_store::{StoreError, StoredSeal};

use crate::registry::{parse_chain, CertEntry};
use crate::{log, Engine, EngineError, Stamps};

/// Largest seal picture accepted, in bytes.
pub const MAX_PICTURE_BYTES: usize = 256 * 1024;

/// The node's seal maker (制章者): an SM2 key and its certificate chain.
pub struct SealMaker {
    entry: CertEntry,
    signer: Arc<dyn Signer>,
}

impl SealMaker {
    /// The maker from its PEM chain (leaf first) and key; the chain must validate now.
    pub fn new(
        chain_pem: &str,
        signer: Arc<dyn Signer>,
        anchors: &zhengyin_crypto::TrustAnchors,
        now: OffsetDateTime,
    ) -> Result<Self, EngineError> {
        let entry = parse_chain(chain_pem, None, anchors, now, false)?;
        entry
            .validate_at(anchors, now)
            .map_err(|e| EngineError::Certificate(format!("seal maker: {e}")))?;
        let key = entry
            .certificate
            .public_key()
            .map_err(|e| EngineError::Certificate(e.to_string()))?;
        if key.algorithm() != Algorithm::Sm2 || key.id() != signer.public_key().id() {
            return Err(EngineError::Certificate(
                "the seal maker needs an SM2 key matching its certificate".to_owned(),
            ));
        }
        Ok(Self { entry, signer })
    }
}

/// A request to make a seal.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MakeSealRequest {
    /// The seal's name, e.g. `吉林示例科技有限公司合同专用章`.
    pub name: String,
    /// 1 legal-entity seal, 2 personal seal, 3 other.
    pub seal_type: i64,
    /// Whose seal it is.
    pub holder: Holder,
    /// Start of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub valid_start: OffsetDateTime,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub valid_end: OffsetDateTime,
    /// PEM chains (leaf first) of the SM2 signer certificates allowed to apply it.
    pub signer_certificates: Vec<String>,
    /// The image.
    pub picture: PictureRequest,
}

/// A seal picture.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PictureRequest {
    /// `PNG` or `SVG`.
    pub kind: String,
    /// The image, base64.
    pub data_base64: String,
    /// Width in millimetres.
    pub width: i64,
    /// Height in millimetres.
    pub height: i64,
}

impl PictureRequest {
    fn decode(&self) -> Result<Vec<u8>, EngineError> {
        use base64::Engine as _;
        // base64 is 4/3 of the bytes: refuse before decoding anything too large.
        if self.data_base64.len() > MAX_PICTURE_BYTES / 3 * 4 + 4 {
            return Err(EngineError::invalid(format!(
                "the picture exceeds {MAX_PICTURE_BYTES} bytes"
            )));
        }
        let data = base64::engine::general_purpose::STANDARD
            .decode(&self.data_base64)
            .map_err(|_| EngineError::invalid("picture.data_base64 is not base64"))?;
        let looks_right = match self.kind.as_str() {
            "PNG" => data.starts_with(b"\x89PNG\r\n\x1a\n"),
            "SVG" => std::str::from_utf8(&data).is_ok_and(|t| t.contains("<svg")),
            _ => return Err(EngineError::invalid("picture.kind must be PNG or SVG")),
        };
        if !looks_right || data.len() > MAX_PICTURE_BYTES {
            return Err(EngineError::invalid(format!(
                "the picture is not a {} of at most {MAX_PICTURE_BYTES} bytes",
                self.kind
            )));
        }
        if !(1..=200).contains(&self.width) || !(1..=200).contains(&self.height) {
            return Err(EngineError::invalid("picture width and height are 1–200 mm"));
        }
        Ok(data)
    }
}

/// Why `seal` cannot vouch for a licence of `issuer` signed with `cert_id` at `at`, if it cannot.
pub(crate) fn licence_seal_problem(
    seal: &StoredSeal,
    issuer: &str,
    cert_id: &str,
    at: OffsetDateTime,
) -> Option<String> {
    let es_id = &seal.record.es_id;
    if seal.record.holder.code != issuer {
        return Some(format!(
            "seal {es_id} belongs to {}, not the issuer",
            seal.record.holder.code
        ));
    }
    if !seal.record.signer_certificates.iter().any(|c| c == cert_id) {
        return Some(format!("seal {es_id} does not list the signing certificate"));
    }
    if at < seal.record.valid_start || at > seal.record.valid_end {
        return Some(format!("seal {es_id} is outside its validity"));
    }
    match seal.status.at(at) {
        Some(SealState::Active) => None,
        Some(other) => Some(format!("seal {es_id} is {}", other.name())),
        None => Some(format!("seal {es_id} was not yet made")),
    }
}

/// Refuses a seal that may not be applied at `now`: not active, or outside its validity.
pub(crate) fn check_in_force(seal: &StoredSeal, now: OffsetDateTime) -> Result<(), EngineError> {
    match seal.status.at(now) {
        Some(SealState::Active) => {}
        Some(other) => {
            return Err(EngineError::SealStatusConflict {
                action: "apply",
                state: other.name(),
            })
        }
        None => return Err(EngineError::invalid("the seal is not yet in force")),
    }
    if now < seal.record.valid_start || now > seal.record.valid_end {
        return Err(EngineError::invalid("the seal is outside its validity period"));
    }
    Ok(())
}

fn seal_entry(fields: serde_json::Value) -> Vec<u8> {
    log::entry(fields)
}

fn status_entry(es_id: &str, change: &SealChange) -> Vec<u8> {
    let status = match &change.status {
        SealState::Active => json!({"state": "active"}),
        SealState::Suspended { reason } | SealState::Revoked { reason } => json!({
            "state": change.status.name(),
            "reason_sha256": hash::sha256_hex(reason.as_bytes()),
        }),
    };
    let event = match change.status {
        SealState::Active => "seal.reinstated",
        SealState::Suspended { .. } => "seal.suspended",
        SealState::Revoked { .. } => "seal.revoked",
    };
    seal_entry(json!({
        "event": event,
        "es_id": es_id,
        "status": status,
        "effective": format_time(change.effective),
        "time": format_time(change.recorded),
    }))
}

impl Engine {
    /// Makes a seal: checks the request, signs the v4 `SESeal` with the seal-maker key and
    /// registers it (durable, logged) as active.
    pub async fn make_seal(&self, req: MakeSealRequest) -> Result<StoredSeal, EngineError> {
        let maker = self
            .seal_maker
            .as_ref()
            .ok_or_else(|| EngineError::Signing("this node has no seal-maker key".to_owned()))?;
        let now = self.clock.now();
        if req.name.trim().is_empty() || req.name.chars().count() > 100 {
            return Err(EngineError::invalid("name must be 1–100 characters"));
        }
        if !(1..=3).contains(&req.seal_type) {
            return Err(EngineError::invalid(
                "seal_type is 1 (legal entity), 2 (personal) or 3 (other)",
            ));
        }
        req.holder.code_type.check_code(&req.holder.code)?;
        if req.valid_start >= req.valid_end || req.valid_end <= now {
            return Err(EngineError::invalid(
                "the validity must end after it starts, in the future",
            ));
        }
        if req.signer_certificates.is_empty() || req.signer_certificates.len() > 16 {
            return Err(EngineError::invalid("1–16 signer certificates"));
        }
        let signers = req
            .signer_certificates
            .iter()
            .map(|pem| {
                let entry = parse_chain(pem, None, &self.anchors, now, false)?;
                entry
                    .validate_at(&self.anchors, now)
                    .map_err(|e| EngineError::Certificate(e.to_string()))?;
                match entry.certificate.public_key() {
                    Ok(key) if key.algorithm() == Algorithm::Sm2 => Ok(entry.certificate),
                    _ => Err(EngineError::Certificate(
                        "seal signers need SM2 certificates".to_owned(),
                    )),
                }
            })
            .collect::<Result<Vec<Certificate>, _>>()?;
        let picture = req.picture.decode()?;
        let es_id = format!("ZY{:016}", self.store.next_serial()?);
        let der = make_seal(
            &NewSeal {
                vendor_id: "Zhengyin",
                es_id: &es_id,
                seal_type: req.seal_type,
                name: &req.name,
                signer_certificates: signers.iter().map(Certificate::der).collect(),
                created: now,
                valid_start: req.valid_start,
                valid_end: req.valid_end,
                picture: SealPicture {
                    kind: &req.picture.kind,
                    data: &picture,
                    width: req.picture.width,
                    height: req.picture.height,
                },
            },
            maker.entry.certificate.der(),
            &*maker.signer,
        )
        .map_err(|e| EngineError::Signing(e.to_string()))?;
        let mut status = SealHistory::default();
        status.push(SealChange {
            status: SealState::Active,
            effective: now,
            recorded: now,
        });
        let seal = StoredSeal {
            record: SealRecord {
                es_id: es_id.clone(),
                name: req.name,
                seal_type: req.seal_type,
                holder: req.holder,
                valid_start: req.valid_start,
                valid_end: req.valid_end,
                signer_certificates: signers.iter().map(Certificate::id).collect(),
                origin: None,
            },
            der,
            status,
        };
        let entry = seal_entry(json!({
            "event": "seal.made",
            "es_id": es_id,
            "seal_sha256": hash::sha256_hex(&seal.der),
            "maker": maker.entry.certificate.id(),
            "time": format_time(now),
        }));
        self.ensure_signing()?;
        self.store.put_seal(&seal, &entry)?.durable.await?;
        Ok(seal)
    }

    /// Checks that a licence signed by `issuer` with certificate `cert_id` may name this seal:
    /// SM2, the issuer's own seal, active now, listing the certificate.
    pub(crate) fn check_licence_seal(
        &self,
        es_id: &str,
        issuer: &zhengyin_model::Uscc,
        cert_id: &str,
        suite: zhengyin_crypto::Cryptosuite,
        now: OffsetDateTime,
    ) -> Result<(), EngineError> {
        if suite != zhengyin_crypto::Cryptosuite::Sm2Jcs2026 {
            return Err(EngineError::invalid("only SM2 (sm2-jcs-2026) licences name an e-seal"));
        }
        let seal = self.seal(es_id)?;
        match licence_seal_problem(&seal, issuer.as_str(), cert_id, now) {
            None => Ok(()),
            Some(problem) => Err(EngineError::invalid(problem)),
        }
    }

    /// A seal made at this node: a replicated one changes and is applied only at its source.
    pub(crate) fn local_seal(&self, es_id: &str) -> Result<StoredSeal, EngineError> {
        let seal = self.seal(es_id)?;
        match &seal.record.origin {
            Some(origin) => Err(EngineError::Replicated {
                what: format!("seal {es_id}"),
                origin: origin.clone(),
            }),
            None => Ok(seal),
        }
    }

    /// A registered seal.
    pub fn seal(&self, es_id: &str) -> Result<StoredSeal, EngineError> {
        self.store
            .seal(es_id)?
            .ok_or_else(|| EngineError::SealNotFound(es_id.to_owned()))
    }

    /// Suspends, reinstates or revokes a seal (revoking twice changes nothing).
    pub async fn change_seal_status(&self, es_id: &str, new: SealState) -> Result<StoredSeal, EngineError> {
        let mut seal = self.local_seal(es_id)?;
        let now = self.clock.now();
        let current = seal.status.at(now).cloned().unwrap_or(SealState::Active);
        let action = match &new {
            SealState::Active => "reinstate",
            SealState::Suspended { .. } => "suspend",
            SealState::Revoked { .. } => "revoke",
        };
        match (&current, &new) {
            (SealState::Revoked { .. }, SealState::Revoked { .. }) => return Ok(seal),
            (SealState::Revoked { .. }, _)
            | (SealState::Active, SealState::Active)
            | (SealState::Suspended { .. }, SealState::Suspended { .. }) => {
                return Err(EngineError::SealStatusConflict {
                    action,
                    state: current.name(),
                })
            }
            _ => {}
        }
        let change = SealChange {
            status: new,
            effective: now,
            recorded: now,
        };
        let entry = status_entry(es_id, &change);
        let mut history = seal.status.clone();
        history.push(change);
        self.ensure_signing()?;
        self.store
            .update_seal_status(es_id, &seal.status, &history, &entry)?
            .durable
            .await?;
        seal.status = history;
        Ok(seal)
    }

    /// Applies a seal to data (given by its SM3 hash) with a signer key this node holds: a v4
    /// `SES_Signature`, durable and logged before it is returned.
    pub async fn apply_seal(
        &self,
        es_id: &str,
        data_sm3: [u8; 32],
        property_info: &str,
    ) -> Result<Vec<u8>, EngineError> {
        self.apply_loaded_seal(&self.local_seal(es_id)?, data_sm3, property_info, self.clock.now())
            .await
    }

    /// Seals an OFD document with the seal (as [`Self::apply_seal`] applies it, and logged the
    /// same way): a new signature appended to the document's list, its stamps where `stamps`
    /// says. A package that cannot be sealed is refused with the reason.
    pub async fn seal_ofd(&self, es_id: &str, package: Vec<u8>, stamps: Stamps) -> Result<Vec<u8>, EngineError> {
        let seal = self.local_seal(es_id)?;
        self.seal_package(&seal, package, stamps, EngineError::invalid).await
    }

    /// Seals `package` with `seal` (a local seal, as read from the registry) where `stamps`
    /// says; a package that cannot be sealed is `refused`. Reading, hashing and deflating a
    /// package (up to tens of MB) is done off the async workers.
    pub(crate) async fn seal_package(
        &self,
        seal: &StoredSeal,
        package: Vec<u8>,
        stamps: Stamps,
        refused: fn(String) -> EngineError,
    ) -> Result<Vec<u8>, EngineError> {
        let now = self.clock.now();
        let der = seal.der.clone();
        let prepared =
            off_workers(move || zhengyin_ses::seal_ofd::prepare(&package, &der, now, &stamps, Default::default()))
                .await?
                .map_err(|e| refused(e.to_string()))?;
        let signature = self
            .apply_loaded_seal(seal, hash::sm3(&prepared.signature_xml), &prepared.property_info, now)
            .await?;
        off_workers(move || prepared.finish(signature))
            .await?
            .map_err(|e| refused(e.to_string()))
    }

    /// A certificate the seal lists whose key this node holds, and that key.
    pub(crate) fn seal_signer(&self, seal: &StoredSeal) -> Result<(Certificate, Arc<dyn Signer>), EngineError> {
        let parsed =
            zhengyin_ses::parse_seal(&seal.der).map_err(|e| EngineError::Store(StoreError::Corrupt(e.to_string())))?;
        let CertList::Certificates(certs) = &parsed.info.property.cert_list else {
            return Err(EngineError::invalid(
                "the seal lists certificate digests; no signer can be chosen",
            ));
        };
        certs
            .iter()
            .filter_map(|der| Certificate::from_der(der).ok())
            .find_map(|cert| {
                let signer = self.keyring.signer_for(cert.public_key().ok()?)?;
                Some((cert, signer))
            })
            .ok_or_else(|| EngineError::Signing("this node holds no key of the seal's signers".to_owned()))
    }

    /// Applies `seal` (a local seal, as read from the registry) at `now`.
    pub(crate) async fn apply_loaded_seal(
        &self,
        seal: &StoredSeal,
        data_sm3: [u8; 32],
        property_info: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<u8>, EngineError> {
        let es_id = seal.record.es_id.as_str();
        check_in_force(seal, now)?;
        if property_info.is_empty() || property_info.len() > 1024 || !property_info.is_ascii() {
            return Err(EngineError::invalid("property_info must be 1–1024 ASCII characters"));
        }
        let (cert, signer) = self.seal_signer(seal)?;
        let signature = apply_seal(&seal.der, now, &data_sm3, property_info, cert.der(), &*signer)
            .map_err(|e| EngineError::Signing(e.to_string()))?;
        let entry = seal_entry(json!({
            "event": "seal.applied",
            "es_id": es_id,
            "signature_sha256": hash::sha256_hex(&signature),
            "data_hash": hex::encode(data_sm3),
            "signer": cert.id(),
            "time": format_time(now),
        }));
        self.ensure_signing()?;
        self.store.append_log(&entry)?.durable.await?;
        Ok(signature)
    }

    /// Verifies a seal (`SESeal` DER) against the registry, at `at` or now.
    pub fn verify_seal(&self, der: &[u8], at: Option<OffsetDateTime>) -> VerificationReport {
        zhengyin_ses::verify::verify_seal(&SealContext::new(self), der, at.unwrap_or_else(|| self.clock.now()))
    }

    /// Verifies every seal of an OFD document and every file they protect, against the registry.
    pub(crate) fn verify_seals_of(&self, package: &[u8]) -> zhengyin_ses::ofd::OfdVerification {
        zhengyin_ses::ofd::verify_ofd(
            &SealContext::new(self),
            package,
            self.clock.now(),
            zhengyin_ses::ofd::Limits::default(),
        )
    }

    /// Verifies a sealed signature (`SES_Signature` DER) over `data` against the registry.
    pub fn verify_sealed(&self, der: &[u8], data: Protected<'_>) -> VerificationReport {
        zhengyin_ses::verify::verify_signature(&SealContext::new(self), der, data, self.clock.now())
    }
}

/// What seal verification remembers between requests: parsed certificates (an SM2 key's Z value
/// is computed once) and validated chains with their validity windows. Bounded: emptied when full.
#[derive(Default)]
pub(crate) struct SealCaches {
    certificates: std::sync::Mutex<HashMap<[u8; 32], Arc<Certificate>>>,
    chains: std::sync::Mutex<HashMap<[u8; 32], zhengyin_crypto::ValidatedChain>>,
}

const SEAL_CACHE_ENTRIES: usize = 4096;

fn bounded_insert<K: std::hash::Hash + Eq, V>(map: &std::sync::Mutex<HashMap<K, V>>, key: K, value: V) {
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    if map.len() >= SEAL_CACHE_ENTRIES {
        map.clear();
    }
    map.insert(key, value);
}

/// Verification of seals at this node: the registry's status, certificate chains through the
/// intermediates the node knows, and SM2 checks through the verified-signature cache.
struct SealContext<'a> {
    engine: &'a Engine,
    /// Built only when a chain is not cached.
    intermediates: std::sync::OnceLock<Vec<Certificate>>,
}

impl<'a> SealContext<'a> {
    fn new(engine: &'a Engine) -> Self {
        Self {
            engine,
            intermediates: std::sync::OnceLock::new(),
        }
    }
}

impl zhengyin_ses::verify::Context for SealContext<'_> {
    fn anchors(&self) -> &zhengyin_crypto::TrustAnchors {
        &self.engine.anchors
    }
    fn intermediates(&self) -> &[Certificate] {
        self.intermediates.get_or_init(|| {
            let mut all: Vec<Certificate> = self
                .engine
                .seal_maker
                .as_ref()
                .map(|m| m.entry.intermediates.clone())
                .unwrap_or_default();
            for entry in self.engine.read_registry().certificates.values() {
                all.extend(entry.intermediates.iter().cloned());
            }
            all
        })
    }
    fn seal_status(&self, es_id: &str, at: OffsetDateTime) -> SealStatus {
        match self.engine.store.seal(es_id) {
            Ok(Some(seal)) => match seal.status.at(at) {
                Some(SealState::Active) => SealStatus::Active,
                Some(SealState::Suspended { reason }) => SealStatus::Suspended(reason.clone()),
                Some(SealState::Revoked { reason }) => SealStatus::Revoked(reason.clone()),
                None => SealStatus::Unknown,
            },
            Ok(None) => SealStatus::Unknown,
            Err(e) => {
                tracing::error!(error = %e, "seal status lookup failed");
                SealStatus::Unknown
            }
        }
    }
    fn certificate(&self, der: &[u8]) -> Result<Arc<Certificate>, CryptoError> {
        let caches = &self.engine.seal_caches;
        let key = hash::sha256(der);
        if let Some(cert) = caches.certificates.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(Arc::clone(cert));
        }
        let cert = Arc::new(Certificate::from_der(der)?);
        bounded_insert(&caches.certificates, key, Arc::clone(&cert));
        Ok(cert)
    }
    fn check_chain(&self, cert: &Certificate, at: OffsetDateTime) -> Result<(), ChainError> {
        let caches = &self.engine.seal_caches;
        let cached = caches
            .chains
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&cert.fingerprint())
            .filter(|chain| chain.covers(at))
            .cloned();
        let chain = match cached {
            Some(chain) => chain,
            None => {
                let chain = zhengyin_crypto::validate_chain(cert, self.intermediates(), &self.engine.anchors, at)?;
                bounded_insert(&caches.chains, cert.fingerprint(), chain.clone());
                chain
            }
        };
        // The CRLs held, for the certificate and the CAs on its path.
        let path: Vec<&Certificate> = std::iter::once(cert)
            .chain(
                self.intermediates()
                    .iter()
                    .filter(|ca| chain.path.contains(&ca.fingerprint())),
            )
            .collect();
        match self.engine.revoked_on(&path) {
            Some(revoked) if revoked.invalidates(at) => Err(ChainError::Revoked(revoked.describe())),
            _ => Ok(()),
        }
    }
    fn check_sm2(&self, key: &PublicKey, scheme: SignatureScheme, covered: &[u8], signature: &[u8]) -> bool {
        let digest = hash::sha256(covered);
        self.engine
            .signature_cache
            .verify(&key.id(), &digest, signature, || key.verify(scheme, covered, signature))
            .is_ok()
    }
}

/// `work`'s answer, run on the blocking pool rather than an async worker: CPU work of a
/// millisecond or more (laying out, hashing and deflating documents).
pub(crate) async fn off_workers<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, EngineError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| EngineError::Signing(format!("a document task failed: {e}")))
}
