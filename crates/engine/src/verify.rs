//! Licence verification (ARCHITECTURE §4.1, §4.3).
//!
//! Checks, in order, each reported with a stable code:
//!
//! | code | what | on failure |
//! |---|---|---|
//! | `format` | strict JSON, the licence and proof shapes, the identifier's check character | INVALID |
//! | `signing_time` | `created` is a time and not in the future | INVALID |
//! | `cryptosuite` | the suite is one we implement | INDETERMINATE |
//! | `certificate` | `verificationMethod` names a registered certificate whose chain validates at `created` | INDETERMINATE if unknown, INVALID if the chain fails |
//! | `signature` | the proof verifies over the canonical signing input | INVALID |
//! | `authority` | the certificate belongs to the authority named as issuer | INVALID |
//! | `seal` | (only when the proof names an e-seal) it is the issuer's, active at the evaluation time, and lists the signing certificate | INDETERMINATE if unknown, else INVALID |
//! | `registry` | the licence is the one on record here | INDETERMINATE if absent, INVALID if different |
//! | `status` | status at the evaluation time is valid | INVALID |
//! | `objection` | (a warning, only when there is one) an objection to the licence's data is open, naming its fields | — |
//! | `validity_period` | the evaluation date lies in the validity period | INVALID |
//!
//! A report is VALID only when all of `signature`, `certificate`, `authority`, `registry`,
//! `status` and `validity_period` passed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use time::{Duration, OffsetDateTime};
use zhengyin_crypto::batch::{ed25519_verify_batch, BatchItem};
use zhengyin_crypto::suite::decode_proof_value;
use zhengyin_crypto::{Cryptosuite, PublicKey, TrustAnchors};
use zhengyin_model::licence::{PROOF_PURPOSE, PROOF_TYPE};
use zhengyin_model::{CanonicalLicence, LicenceBody, Proof, ReportBuilder, Status, Uscc, VerificationReport};
use zhengyin_store::{LicenceState, StoreError, StoredSeal};

use crate::cache::{PreparedCache, SignatureCache};
use crate::registry::CertEntry;
use crate::Engine;

/// Where verification finds certificates and the record of a licence.
pub(crate) trait Context {
    fn anchors(&self) -> &TrustAnchors;
    fn certificate(&self, id: &str) -> Option<Arc<CertEntry>>;
    /// `Ok(None)` when there is no record; `Err` when the record could not be read.
    fn record(&self, id: &zhengyin_model::LicenceId) -> Result<Option<LicenceState>, StoreError>;
    /// Where the status of the issuer's licences comes from, and whether it is too old.
    fn status_source(&self, issuer: &Uscc, now: OffsetDateTime) -> StatusSource;
    fn signatures(&self) -> &SignatureCache;
    /// Licences already parsed and canonicalised, by their bytes.
    fn prepared(&self) -> &PreparedCache<Prepared>;
    /// The registered seal; `Ok(None)` when unknown here.
    fn seal(&self, es_id: &str) -> Result<Option<StoredSeal>, StoreError>;
    /// Open objections to this licence version: `(objection id, disputed fields)`.
    fn open_objections(&self, id: &zhengyin_model::LicenceId) -> Result<Vec<(String, Vec<String>)>, StoreError>;
    /// A revoked certificate on the signing certificate's chain, by the CRLs held.
    fn revoked(&self, _entry: &CertEntry) -> Option<crate::revocation::Revoked> {
        None
    }
    /// Whether there is no registry behind this context at all (offline verification).
    fn offline(&self) -> bool {
        false
    }
}

impl Context for Engine {
    fn anchors(&self) -> &TrustAnchors {
        &self.anchors
    }
    fn certificate(&self, id: &str) -> Option<Arc<CertEntry>> {
        self.read_registry().certificates.get(id).cloned()
    }
    fn record(&self, id: &zhengyin_model::LicenceId) -> Result<Option<LicenceState>, StoreError> {
        self.store.licence_state(id)
    }
    fn status_source(&self, issuer: &Uscc, now: OffsetDateTime) -> StatusSource {
        let origin = self
            .read_registry()
            .authorities
            .get(issuer)
            .and_then(|a| a.authority.origin.clone());
        match origin {
            None => StatusSource::local(now),
            Some(origin) => self.sync_freshness(&origin, now),
        }
    }
    fn signatures(&self) -> &SignatureCache {
        &self.signature_cache
    }
    fn prepared(&self) -> &PreparedCache<Prepared> {
        &self.prepared_cache
    }
    fn seal(&self, es_id: &str) -> Result<Option<StoredSeal>, StoreError> {
        self.store.seal(es_id)
    }
    fn open_objections(&self, id: &zhengyin_model::LicenceId) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        if !self.disputed.read().unwrap_or_else(|p| p.into_inner()).contains(id) {
            return Ok(Vec::new());
        }
        Ok(crate::objections::open_objections(
            &self.store.objections_of_licence(id)?,
        ))
    }
    fn revoked(&self, entry: &CertEntry) -> Option<crate::revocation::Revoked> {
        Engine::revoked(self, entry)
    }
}

/// Offline verification: certificates given by the caller, no registry.
pub(crate) struct Offline {
    pub anchors: TrustAnchors,
    pub certificates: Vec<Arc<CertEntry>>,
    pub crls: Vec<zhengyin_crypto::crl::RevocationList>,
    pub signatures: SignatureCache,
    pub prepared: PreparedCache<Prepared>,
}

impl Context for Offline {
    fn anchors(&self) -> &TrustAnchors {
        &self.anchors
    }
    fn revoked(&self, entry: &CertEntry) -> Option<crate::revocation::Revoked> {
        let chain: Vec<&zhengyin_crypto::Certificate> = std::iter::once(&entry.certificate)
            .chain(entry.intermediates.iter())
            .collect();
        zhengyin_crypto::crl::first_revoked(&chain, &self.crls)
            .map(|(subject, revocation)| crate::revocation::Revoked { subject, revocation })
    }
    fn offline(&self) -> bool {
        true
    }
    fn certificate(&self, id: &str) -> Option<Arc<CertEntry>> {
        self.certificates.iter().find(|c| c.certificate.id() == id).cloned()
    }
    fn record(&self, _: &zhengyin_model::LicenceId) -> Result<Option<LicenceState>, StoreError> {
        Ok(None)
    }
    fn status_source(&self, _: &Uscc, _: OffsetDateTime) -> StatusSource {
        StatusSource {
            text: "none: offline verification consults no registry".to_owned(),
            stale: None,
        }
    }
    fn signatures(&self) -> &SignatureCache {
        &self.signatures
    }
    fn prepared(&self) -> &PreparedCache<Prepared> {
        &self.prepared
    }
    fn seal(&self, _: &str) -> Result<Option<StoredSeal>, StoreError> {
        Ok(None)
    }
    fn open_objections(&self, _: &zhengyin_model::LicenceId) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        Ok(Vec::new())
    }
}

/// Which status data a report used, and why it is too old to rely on (if it is).
pub(crate) struct StatusSource {
    pub text: String,
    /// Set when the data is older than the maximum staleness: a caller who asked for fresh
    /// status gets INDETERMINATE, anyone else a warning.
    pub stale: Option<String>,
}

impl StatusSource {
    /// This node's own registry, always current.
    pub fn local(now: OffsetDateTime) -> Self {
        Self {
            text: format!(
                "registry of this node, read at {}",
                zhengyin_model::licence::format_time(now)
            ),
            stale: None,
        }
    }
}

/// The checks a VALID report must have passed.
pub const REQUIRED_CHECKS: &[&str] = &[
    "signature",
    "certificate",
    "authority",
    "registry",
    "status",
    "validity_period",
];

/// How far in the future a signing time may lie (clock skew between nodes).
const MAX_SKEW: Duration = Duration::minutes(5);

pub(crate) fn verify(
    ctx: &dyn Context,
    bytes: &[u8],
    now: OffsetDateTime,
    options: &VerifyOptions,
) -> VerificationReport {
    let at = options.at.unwrap_or(now);
    let mut pending = prepare(ctx, bytes, now);
    let good = pending
        .signed
        .as_ref()
        .is_some_and(|s| s.check_signature(ctx.signatures(), Lookup::CacheFirst));
    conclude(ctx, &mut pending, good, now, at, options.fresh);
    pending.report.finish(at)
}

/// Verifies many licences at once (ARCHITECTURE §9): each gets the report [`verify`] would give.
///
/// Parsing and the checks after the signature run in parallel across cores. Signatures the cache
/// holds are not checked again; the other Ed25519 signatures are checked together with one batch
/// equation and, if the batch fails, one by one so that each report names its own outcome; the
/// other algorithms are checked one by one in parallel. Only single checks fill the cache, so it
/// holds nothing `verify_strict` would refuse (see `zhengyin_crypto::batch`).
pub(crate) fn verify_batch(
    ctx: &(dyn Context + Sync),
    counters: &BatchCounters,
    licences: &[&[u8]],
    now: OffsetDateTime,
    options: &VerifyOptions,
) -> Vec<VerificationReport> {
    use rayon::prelude::*;
    let at = options.at.unwrap_or(now);
    let mut pending: Vec<Pending> = licences.par_iter().map(|bytes| prepare(ctx, bytes, now)).collect();
    // Per licence: Some(true) when the signature is known good, None when it must be checked.
    let mut known: Vec<Option<bool>> = pending
        .iter()
        .map(|p| match &p.signed {
            Some(s) => s.check_signature(ctx.signatures(), Lookup::CacheOnly).then_some(true),
            None => Some(false),
        })
        .collect();
    let ed25519: Vec<(usize, &Signed, Vec<u8>)> = pending
        .iter()
        .enumerate()
        .filter(|(i, _)| known[*i].is_none())
        .filter_map(|(i, p)| {
            let s = p
                .signed
                .as_ref()
                .filter(|s| s.signing().is_some_and(|g| g.suite == Cryptosuite::EddsaJcs2022))?;
            Some((i, s, decode_proof_value(s.proof_value()).ok()?))
        })
        .collect();
    if ed25519.len() > 1 {
        let items: Vec<BatchItem<'_>> = ed25519
            .iter()
            .filter_map(|(_, s, signature)| {
                Some(BatchItem {
                    key: s.key()?,
                    message: &s.signing()?.hash_data,
                    signature,
                })
            })
            .collect();
        if items.len() == ed25519.len() && ed25519_verify_batch(&items) {
            for (i, _, _) in &ed25519 {
                known[*i] = Some(true);
            }
            counters.passed.fetch_add(1, Ordering::Relaxed);
            counters.signatures.fetch_add(items.len() as u64, Ordering::Relaxed);
        } else {
            counters.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
    pending
        .par_iter_mut()
        .zip(known)
        .map(|(p, known)| {
            let good = known.unwrap_or_else(|| {
                p.signed
                    .as_ref()
                    .is_some_and(|s| s.check_signature(ctx.signatures(), Lookup::CheckOnly))
            });
            conclude(ctx, p, good, now, at, options.fresh);
            std::mem::replace(&mut p.report, ReportBuilder::new(REQUIRED_CHECKS)).finish(at)
        })
        .collect()
}

/// How to verify.
#[derive(Debug, Clone, Copy, Default)]
pub struct VerifyOptions {
    /// Evaluate status and validity at this time instead of now.
    pub at: Option<OffsetDateTime>,
    /// Require status no older than the node's maximum staleness: a licence replicated from a
    /// source not heard from for longer is INDETERMINATE (otherwise it gets a warning).
    pub fresh: bool,
}

/// A licence received from a source node, checked as verification would up to the signature:
/// format, signing time, certificate chain (to `ctx`'s anchors, the source's), signature, and
/// that the certificate is the issuer's. Registry and status are the source's to say.
/// Returns the body and the SHA-256 of its document, or what failed.
pub(crate) fn check_replicated(
    ctx: &dyn Context,
    bytes: &[u8],
    now: OffsetDateTime,
) -> Result<(LicenceBody, [u8; 32]), String> {
    let Pending { report, signed } = prepare(ctx, bytes, now);
    let problem = |report: ReportBuilder| {
        let report = report.finish(now);
        report
            .checks
            .iter()
            .find(|c| {
                !matches!(
                    c.outcome,
                    zhengyin_model::Outcome::Passed | zhengyin_model::Outcome::Warning
                )
            })
            .map_or_else(|| "not verifiable".to_owned(), |c| format!("{}: {}", c.code, c.message))
    };
    let Some(signed) = signed else {
        return Err(problem(report));
    };
    if report.has_failed() {
        return Err(problem(report));
    }
    if !signed.check_signature(ctx.signatures(), Lookup::CacheFirst) {
        return Err("signature: does not verify".to_owned());
    }
    let (body, Some(signing)) = (&signed.prepared.body, signed.signing()) else {
        return Err("cryptosuite: not one implemented here".to_owned());
    };
    if signed.cert.authority.as_ref() != Some(&body.issuer.code) {
        return Err("authority: the certificate is not the issuer's".to_owned());
    }
    Ok((body.clone(), signing.document_sha256))
}

/// Counts of Ed25519 batch equations, for metrics.
#[derive(Debug, Default)]
pub(crate) struct BatchCounters {
    passed: AtomicU64,
    failed: AtomicU64,
    signatures: AtomicU64,
}

/// What the Ed25519 batch equation did so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchStats {
    /// Batch equations that held.
    pub passed: u64,
    /// Batch equations that failed (their signatures were then checked one by one).
    pub failed: u64,
    /// Signatures accepted by batch equations.
    pub signatures: u64,
}

impl BatchCounters {
    pub(crate) fn stats(&self) -> BatchStats {
        BatchStats {
            passed: self.passed.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            signatures: self.signatures.load(Ordering::Relaxed),
        }
    }
}

/// A licence checked up to its signature.
struct Pending {
    report: ReportBuilder,
    /// Present when every check before the signature let verification go on.
    signed: Option<Signed>,
}

/// What a licence's bytes alone determine: parsed strictly into its typed body and proof, with
/// the signing time and cryptosuite read and the canonical form hashed. A pure function of the
/// bytes, so it is kept in the prepared-licence cache and a licence presented again skips all of
/// it; every check that depends on anything else runs on every verification.
pub(crate) struct Prepared {
    body: LicenceBody,
    proof: Proof,
    /// `proof.created`, or `None` when it is not an RFC 3339 time.
    created: Option<OffsetDateTime>,
    /// The suite and the hashes of the canonical form; `None` for a suite we do not implement.
    signing: Option<Signing>,
}

/// What the signature is checked over, by the proof's suite.
struct Signing {
    suite: Cryptosuite,
    hash_data: [u8; 64],
    document_sha256: [u8; 32],
}

/// A licence whose format check failed: the report's `format` message, and its identifier when
/// the body could be read.
pub(crate) struct Malformed {
    licence_id: Option<String>,
    message: String,
}

/// Parses, checks the format and canonicalises (see [`Prepared`]), in one pass over the bytes;
/// the typed body and proof are then read from their canonical forms.
pub(crate) fn prepare_licence(bytes: &[u8]) -> Result<Prepared, Malformed> {
    let malformed = |licence_id: Option<&LicenceBody>, message: String| Malformed {
        licence_id: licence_id.map(|b| b.id.as_str().to_owned()),
        message,
    };
    let licence = CanonicalLicence::parse(bytes).map_err(|e| malformed(None, e.to_string()))?;
    let body: LicenceBody = serde_json::from_slice(&licence.input.document)
        .map_err(|e| malformed(None, format!("not a licence: {}", without_position(&e))))?;
    let proof: Proof = match serde_json::from_slice(&licence.proof) {
        Ok(proof) => proof,
        Err(e) => {
            return Err(malformed(
                Some(&body),
                format!("not a licence proof: {}", without_position(&e)),
            ))
        }
    };
    let problem = if body.version != body.id.version().to_string() || &body.issuer.code != body.id.issuer() {
        Some("version or issuer disagrees with the identifier")
    } else if proof.proof_type != PROOF_TYPE || proof.proof_purpose != PROOF_PURPOSE {
        Some("proof must be a DataIntegrityProof for assertionMethod")
    } else if proof.proof_value.is_none() {
        Some("proof has no proofValue")
    } else {
        None
    };
    if let Some(problem) = problem {
        return Err(malformed(Some(&body), problem.to_owned()));
    }
    let created = OffsetDateTime::parse(&proof.created, &time::format_description::well_known::Rfc3339).ok();
    let signing = Cryptosuite::from_name(&proof.cryptosuite).map(|suite| {
        let input = &licence.input;
        let hash_data = suite.hash_data(&input.proof_config, &input.document);
        // For the SHA-256 suites the second half of hashData is already SHA-256 of the document.
        let document_sha256: [u8; 32] = match suite {
            Cryptosuite::Sm2Jcs2026 => zhengyin_crypto::hash::sha256(&input.document),
            _ => hash_data[32..].try_into().unwrap_or_default(),
        };
        Signing {
            suite,
            hash_data,
            document_sha256,
        }
    });
    Ok(Prepared {
        body,
        proof,
        created,
        signing,
    })
}

/// A typed read's error without its line and column: they are positions in the canonical
/// form, not in what the caller sent.
fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// What the signature check and the checks after it need.
/// Made only for a licence whose suite we implement (its [`Prepared::signing`] is present).
struct Signed {
    prepared: Arc<Prepared>,
    cert: Arc<CertEntry>,
}

/// How a signature check uses the cache.
#[derive(Clone, Copy)]
enum Lookup {
    /// Answer from the cache, else check and remember.
    CacheFirst,
    /// Answer from the cache only: false means "not known", not "bad".
    CacheOnly,
    /// The cache was already asked: check and remember.
    CheckOnly,
}

impl Signed {
    /// Always present (a `Signed` is made only for a suite we implement); were it not, the
    /// signature would count as not verifying.
    fn signing(&self) -> Option<&Signing> {
        self.prepared.signing.as_ref()
    }

    fn key(&self) -> Option<&PublicKey> {
        self.cert.certificate.public_key().ok()
    }

    /// As received; decoded only when the signature is checked (base58-btc is a bijection, so
    /// the text identifies the signature for the cache).
    fn proof_value(&self) -> &str {
        self.prepared.proof.proof_value.as_deref().unwrap_or_default()
    }

    fn check_signature(&self, cache: &SignatureCache, lookup: Lookup) -> bool {
        let (Some(key), Some(signing)) = (self.key(), self.signing()) else {
            return false;
        };
        let Signing { suite, hash_data, .. } = signing;
        let id = key.id();
        let text = self.proof_value().as_bytes();
        let check = || {
            let signature = decode_proof_value(self.proof_value())?;
            suite.verify(key, hash_data, &signature)
        };
        match lookup {
            Lookup::CacheFirst => cache.verify(&id, hash_data, text, check).is_ok(),
            Lookup::CacheOnly => cache.contains(&id, hash_data, text),
            Lookup::CheckOnly => cache.check_and_remember(&id, hash_data, text, check).is_ok(),
        }
    }
}

/// Format, signing time, cryptosuite and certificate; the signing input hashed.
fn prepare(ctx: &dyn Context, bytes: &[u8], now: OffsetDateTime) -> Pending {
    let mut report = ReportBuilder::new(REQUIRED_CHECKS);
    let signed = checks_before_signature(ctx, bytes, now, &mut report);
    Pending { report, signed }
}

fn checks_before_signature(
    ctx: &dyn Context,
    bytes: &[u8],
    now: OffsetDateTime,
    r: &mut ReportBuilder,
) -> Option<Signed> {
    // format
    let prepared = match ctx.prepared().get_or_make(bytes, prepare_licence) {
        Ok(prepared) => prepared,
        Err(Malformed { licence_id, message }) => {
            if let Some(id) = licence_id {
                r.licence_id(id);
            }
            r.fail("format", message);
            return None;
        }
    };
    let Prepared {
        body,
        proof,
        created,
        signing,
    } = prepared.as_ref();
    r.licence(&body.id);
    r.pass("format", "well-formed licence");

    // signing_time
    let Some(created) = *created else {
        r.fail("signing_time", "created is not an RFC 3339 time");
        return None;
    };
    r.signing_time(created);
    if created > now + MAX_SKEW {
        r.fail("signing_time", "signed in the future");
        return None;
    }
    r.pass("signing_time", format!("signed at {}", proof.created));

    // cryptosuite
    let Some(Signing { suite, .. }) = signing else {
        r.indeterminate("cryptosuite", format!("unsupported cryptosuite {}", proof.cryptosuite));
        return None;
    };
    r.pass("cryptosuite", suite.name());
    r.cryptosuite(suite.name());

    // certificate
    let Some(cert) = ctx.certificate(&proof.verification_method) else {
        r.indeterminate("certificate", "verificationMethod names no certificate known here");
        return None;
    };
    if cert.certificate.public_key().is_err() {
        r.indeterminate("certificate", "the certificate's key algorithm is not supported");
        return None;
    }
    match (cert.validate_at(ctx.anchors(), created), ctx.revoked(&cert)) {
        (Err(e), _) => r.fail("certificate", format!("at signing time: {e}")),
        (Ok(()), _) if cert.retired.is_some_and(|at| created >= at) => r.fail(
            "certificate",
            format!(
                "signed at {}, after its authority retired this key at {}",
                proof.created,
                cert.retired
                    .map(zhengyin_model::licence::format_time)
                    .unwrap_or_default()
            ),
        ),
        (Ok(()), Some(revoked)) if revoked.invalidates(created) => r.fail(
            "certificate",
            format!(
                "{}: signatures made from then on, or with a compromised key, are not trusted",
                revoked.describe()
            ),
        ),
        (Ok(()), revoked) => {
            if let Some(revoked) = revoked {
                r.warn(
                    "revocation",
                    format!(
                        "{}, after this licence was signed; the signature stands",
                        revoked.describe()
                    ),
                );
            }
            r.pass(
                "certificate",
                format!("{} valid at signing time", cert.certificate.subject()),
            )
        }
    };

    Some(Signed {
        prepared: Arc::clone(&prepared),
        cert,
    })
}

/// The signature's outcome, then authority, registry, status and validity period.
fn conclude(
    ctx: &dyn Context,
    pending: &mut Pending,
    signature_good: bool,
    now: OffsetDateTime,
    at: OffsetDateTime,
    fresh: bool,
) {
    let r = &mut pending.report;
    let Some(signed) = &pending.signed else {
        return;
    };
    let Signed { prepared, cert } = signed;
    let Some(Signing {
        suite, document_sha256, ..
    }) = signed.signing()
    else {
        return;
    };
    let body = &prepared.body;
    let seal = &prepared.proof.seal;

    // signature
    if !signature_good {
        r.fail("signature", "the signature does not verify");
        return;
    }
    r.pass("signature", format!("{} signature verifies", suite.name()));
    r.signed_holder(zhengyin_model::HolderRef {
        code_type: body.holder.code_type,
        code: body.holder.code.clone(),
    });

    // authority
    match &cert.authority {
        Some(a) if *a == body.issuer.code => r.pass("authority", format!("issued by registered authority {a}")),
        Some(_) => r.fail("authority", "signed with a certificate of another authority"),
        None => r.indeterminate(
            "authority",
            "which authority holds the certificate is not known offline",
        ),
    };

    // seal (only when the proof names one)
    if let Some(es_id) = seal {
        match ctx.seal(es_id) {
            Ok(Some(stored)) => {
                match crate::seals::licence_seal_problem(
                    &stored,
                    body.issuer.code.as_str(),
                    cert.certificate.id().as_str(),
                    at,
                ) {
                    None => r.pass(
                        "seal",
                        format!("e-seal {es_id} active and lists the signing certificate"),
                    ),
                    Some(problem) => r.fail("seal", problem),
                };
            }
            Ok(None) => {
                r.indeterminate("seal", format!("e-seal {es_id} is not registered here"));
            }
            Err(e) => {
                tracing::error!(error = %e, "seal lookup failed");
                r.unreadable("seal", "the seal registry could not be read");
            }
        }
    }

    // registry, and how fresh its status is (for licences replicated from another node)
    let source = ctx.status_source(&body.issuer.code, now);
    r.status_source(source.text);
    if let Some(stale) = source.stale {
        if fresh {
            r.indeterminate("status_freshness", stale);
        } else {
            r.warn("status_freshness", stale);
        }
    }
    let stored = match ctx.record(&body.id) {
        Ok(Some(stored)) => stored,
        Ok(None) => {
            let why = if ctx.offline() {
                "status is not known offline: no registry was consulted"
            } else {
                "this node has no record of the licence"
            };
            r.indeterminate("registry", why);
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "status lookup failed");
            r.unreadable("registry", "the registry could not be read");
            return;
        }
    };
    if *document_sha256 == stored.document_sha256 {
        r.pass("registry", "identical to the licence on record")
    } else {
        r.fail("registry", "differs from the licence on record under this identifier")
    };

    // status
    match stored.status.at(at) {
        Some(Status::Valid) => r.pass("status", "valid"),
        Some(Status::Suspended { reason }) => r.fail("status", format!("suspended: {reason}")),
        Some(Status::Revoked { reason, note }) => r.fail("status", format!("revoked, {}: {note}", reason.describe())),
        Some(Status::Superseded { by }) => r.fail("status", format!("superseded by {by}")),
        None => r.fail("status", "not yet issued at the time evaluated"),
    };

    // objections: the licence stays valid, but the caller should know its data is disputed
    match ctx.open_objections(&body.id) {
        Ok(open) => {
            for (id, fields) in open {
                let what = if fields.is_empty() {
                    "the whole licence".to_owned()
                } else {
                    fields.join(", ")
                };
                r.warn("objection", format!("objection {id} is open on {what}"));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "objection lookup failed");
            r.warn("objection", "whether its data is disputed could not be read");
        }
    }

    // validity_period
    let day = at.date();
    if day < body.valid_from {
        r.fail("validity_period", format!("not valid before {}", body.valid_from));
    } else if body.valid_until.is_some_and(|end| day > end) {
        r.fail("validity_period", "expired");
    } else {
        r.pass("validity_period", "within the validity period");
    }
}
