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
//! | `registry` | the licence is the one on record here | INDETERMINATE if absent, INVALID if different |
//! | `status` | status at the evaluation time is valid | INVALID |
//! | `validity_period` | the evaluation date lies in the validity period | INVALID |
//!
//! A report is VALID only when all of `signature`, `certificate`, `authority`, `registry`,
//! `status` and `validity_period` passed.

use std::sync::Arc;

use serde::Deserialize as _;

use time::{Duration, OffsetDateTime};
use zhengyin_crypto::suite::decode_proof_value;
use zhengyin_crypto::{Cryptosuite, TrustAnchors};
use zhengyin_model::licence::{PROOF_PURPOSE, PROOF_TYPE};
use zhengyin_model::{LicenceBody, Proof, ReceivedLicence, ReportBuilder, SigningInput, Status, VerificationReport};
use zhengyin_store::{StoreError, StoredLicence};

use crate::cache::SignatureCache;
use crate::registry::CertEntry;
use crate::Engine;

/// Where verification finds certificates and the record of a licence.
pub(crate) trait Context {
    fn anchors(&self) -> &TrustAnchors;
    fn certificate(&self, id: &str) -> Option<Arc<CertEntry>>;
    /// `Ok(None)` when there is no record; `Err` when the record could not be read.
    fn record(&self, id: &zhengyin_model::LicenceId) -> Result<Option<StoredLicence>, StoreError>;
    fn status_source(&self, now: OffsetDateTime) -> String;
    fn signatures(&self) -> &SignatureCache;
}

impl Context for Engine {
    fn anchors(&self) -> &TrustAnchors {
        &self.anchors
    }
    fn certificate(&self, id: &str) -> Option<Arc<CertEntry>> {
        self.read_registry().certificates.get(id).cloned()
    }
    fn record(&self, id: &zhengyin_model::LicenceId) -> Result<Option<StoredLicence>, StoreError> {
        self.store.licence(id)
    }
    fn status_source(&self, now: OffsetDateTime) -> String {
        format!(
            "registry of this node, read at {}",
            zhengyin_model::licence::format_time(now)
        )
    }
    fn signatures(&self) -> &SignatureCache {
        &self.signature_cache
    }
}

/// Offline verification: certificates given by the caller, no registry.
pub(crate) struct Offline {
    pub anchors: TrustAnchors,
    pub certificates: Vec<Arc<CertEntry>>,
    pub signatures: SignatureCache,
}

impl Context for Offline {
    fn anchors(&self) -> &TrustAnchors {
        &self.anchors
    }
    fn certificate(&self, id: &str) -> Option<Arc<CertEntry>> {
        self.certificates.iter().find(|c| c.certificate.id() == id).cloned()
    }
    fn record(&self, _: &zhengyin_model::LicenceId) -> Result<Option<StoredLicence>, StoreError> {
        Ok(None)
    }
    fn status_source(&self, _: OffsetDateTime) -> String {
        "none: offline verification consults no registry".to_owned()
    }
    fn signatures(&self) -> &SignatureCache {
        &self.signatures
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
    at: Option<OffsetDateTime>,
) -> VerificationReport {
    let at = at.unwrap_or(now);
    let mut r = ReportBuilder::new(REQUIRED_CHECKS);
    run(ctx, bytes, now, at, &mut r);
    r.finish(at)
}

fn run(ctx: &dyn Context, bytes: &[u8], now: OffsetDateTime, at: OffsetDateTime, r: &mut ReportBuilder) {
    // format
    let received = match ReceivedLicence::parse(bytes) {
        Ok(received) => received,
        Err(e) => {
            r.fail("format", e.to_string());
            return;
        }
    };
    let body: LicenceBody = match LicenceBody::deserialize(&received.document) {
        Ok(body) => body,
        Err(e) => {
            r.fail("format", format!("not a licence: {e}"));
            return;
        }
    };
    r.licence_id(body.id.as_str());
    let proof: Proof = match Proof::deserialize(&received.proof) {
        Ok(proof) => proof,
        Err(e) => {
            r.fail("format", format!("not a licence proof: {e}"));
            return;
        }
    };
    if body.version != body.id.version().to_string() || &body.issuer.code != body.id.issuer() {
        r.fail("format", "version or issuer disagrees with the identifier");
        return;
    }
    if proof.proof_type != PROOF_TYPE || proof.proof_purpose != PROOF_PURPOSE {
        r.fail("format", "proof must be a DataIntegrityProof for assertionMethod");
        return;
    }
    let Some(proof_value) = proof.proof_value.as_deref() else {
        r.fail("format", "proof has no proofValue");
        return;
    };
    r.pass("format", "well-formed licence");

    // signing_time
    let created = match OffsetDateTime::parse(&proof.created, &time::format_description::well_known::Rfc3339) {
        Ok(t) => t,
        Err(_) => {
            r.fail("signing_time", "created is not an RFC 3339 time");
            return;
        }
    };
    r.signing_time(created);
    if created > now + MAX_SKEW {
        r.fail("signing_time", "signed in the future");
        return;
    }
    r.pass("signing_time", format!("signed at {}", proof.created));

    // cryptosuite
    let Some(suite) = Cryptosuite::from_name(&proof.cryptosuite) else {
        r.indeterminate("cryptosuite", format!("unsupported cryptosuite {}", proof.cryptosuite));
        return;
    };
    r.pass("cryptosuite", suite.name());

    // certificate
    let Some(cert) = ctx.certificate(&proof.verification_method) else {
        r.indeterminate("certificate", "verificationMethod names no certificate known here");
        return;
    };
    let Ok(key) = cert.certificate.public_key() else {
        r.indeterminate("certificate", "the certificate's key algorithm is not supported");
        return;
    };
    match cert.validate_at(ctx.anchors(), created) {
        Ok(()) => r.pass(
            "certificate",
            format!("{} valid at signing time", cert.certificate.subject()),
        ),
        Err(e) => r.fail("certificate", format!("at signing time: {e}")),
    };

    // signature
    let input = match SigningInput::from_values(&received.document, &received.proof) {
        Ok(input) => input,
        Err(e) => {
            r.fail("signature", format!("cannot canonicalise: {e}"));
            return;
        }
    };
    let hash_data = suite.hash_data(&input.proof_config, &input.document);
    let good = decode_proof_value(proof_value).and_then(|sig| {
        ctx.signatures()
            .verify(&key.id(), &hash_data, &sig, || suite.verify(key, &hash_data, &sig))
    });
    if good.is_err() {
        r.fail("signature", "the signature does not verify");
        return;
    }
    r.pass("signature", format!("{} signature verifies", suite.name()));

    // authority
    match &cert.authority {
        Some(a) if *a == body.issuer.code => r.pass("authority", format!("issued by registered authority {a}")),
        Some(_) => r.fail("authority", "signed with a certificate of another authority"),
        None => r.indeterminate(
            "authority",
            "which authority holds the certificate is not known offline",
        ),
    };

    // registry
    r.status_source(ctx.status_source(now));
    let stored = match ctx.record(&body.id) {
        Ok(Some(stored)) => stored,
        Ok(None) => {
            r.indeterminate("registry", "this node has no record of the licence");
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "status lookup failed");
            r.indeterminate("registry", "the registry could not be read");
            return;
        }
    };
    // For the SHA-256 suites the second half of hashData is already SHA-256 of the document.
    let document_sha256: [u8; 32] = match suite {
        Cryptosuite::Sm2Jcs2026 => zhengyin_crypto::hash::sha256(&input.document),
        _ => hash_data[32..].try_into().unwrap_or_default(),
    };
    if document_sha256 == stored.document_sha256 {
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
