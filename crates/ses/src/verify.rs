//! The GB/T 38540 §7.3 verification steps, each reported with a stable code.
//!
//! | code | step | on failure |
//! |---|---|---|
//! | `structure` | the DER is a seal / signature we read (quirks follow as `quirk` warnings) | INVALID |
//! | `signer_signature` | SM2 signature over DER(`TBS_Sign`) under the signer certificate | INVALID |
//! | `signing_time` | `timeInfo` is not in the future | INVALID |
//! | `signer_certificate` | the signer certificate chains to a trust anchor at the signing time | INDETERMINATE if no path, else INVALID |
//! | `signer_in_seal` | the signer certificate is in the seal's list (by value or digest) | INVALID; INDETERMINATE when the list is unreadable (unknown digests, text) |
//! | `seal_signature` | the maker's SM2 signature over the bytes of [`crate::format`] | INVALID |
//! | `maker_certificate` | the maker certificate chains to a trust anchor when the seal was made | INDETERMINATE if no path, or if it was not yet valid at the make date (the maker's claim) but is when used; else INVALID |
//! | `seal_validity` | the signing time (or, for a seal alone, the evaluation time) is within the seal's validity | INVALID |
//! | `seal_status` | the seal is active in the registry now (or at the time asked) | INDETERMINATE if unknown, INVALID if suspended or revoked |
//! | `extensions` | (only when a seal has one) a critical extension we do not understand | INDETERMINATE |
//! | `timestamp` | (only when a v5 seal or signature has one) the RFC 3161 token over the signature value holds, its TSA chains to a trust anchor at `genTime`, and the claimed time is not after it | INDETERMINATE if unreadable, unsupported or the TSA unknown, else INVALID |
//! | `data_hash` | SM3 of the protected data equals `dataHash` | INVALID; INDETERMINATE when no data was given |
//!
//! A signature is VALID only when every required step passed (and `timestamp`, when present,
//! did not fail or stay in doubt); a seal alone when
//! `structure`, `seal_signature`, `maker_certificate`, `seal_validity` and `seal_status` passed.

use std::sync::Arc;

use time::{Duration, OffsetDateTime};
use zhengyin_crypto::{
    hash, validate_chain, Certificate, ChainError, CryptoError, PublicKey, SignatureScheme, TrustAnchors,
};
use zhengyin_model::licence::format_time;
use zhengyin_model::{ReportBuilder, VerificationReport};

use crate::format::{CertList, Seal, SM2_WITH_SM3};
use crate::{parse_seal, parse_signature};

/// A seal's state in the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealStatus {
    /// It may be applied.
    Active,
    /// Temporarily not.
    Suspended(String),
    /// Never again (lost, legal representative changed, …).
    Revoked(String),
    /// Not known here (offline, or a seal made elsewhere).
    Unknown,
}

/// What verification needs from outside: trust anchors and the seal registry.
pub trait Context {
    /// Roots that certificates must chain to.
    fn anchors(&self) -> &TrustAnchors;
    /// Intermediate CA certificates that may complete a path (seals carry only the leaf).
    fn intermediates(&self) -> &[Certificate];
    /// The seal's status at `at`.
    fn seal_status(&self, es_id: &str, at: OffsetDateTime) -> SealStatus;
    /// Parses a certificate. A context may keep parsed certificates (parsing an SM2 key
    /// precomputes its Z value); the default parses every time.
    fn certificate(&self, der: &[u8]) -> Result<Arc<Certificate>, CryptoError> {
        Certificate::from_der(der).map(Arc::new)
    }
    /// Validates a certificate's chain at `at`. A context may cache the result per certificate
    /// and validity window; the default validates every time.
    fn check_chain(&self, cert: &Certificate, at: OffsetDateTime) -> Result<(), ChainError> {
        validate_chain(cert, self.intermediates(), self.anchors(), at).map(drop)
    }
    /// Checks one SM2-with-SM3 signature. A context may remember successes (the same seal is
    /// applied to many documents); the default checks every time.
    fn check_sm2(&self, key: &PublicKey, scheme: SignatureScheme, covered: &[u8], signature: &[u8]) -> bool {
        key.verify(scheme, covered, signature).is_ok()
    }
}

/// Verification without a registry: seal status is unknown, so the verdict is at best INDETERMINATE.
pub struct Offline<'a> {
    /// Trust anchors.
    pub anchors: &'a TrustAnchors,
    /// Intermediate CA certificates.
    pub intermediates: &'a [Certificate],
    /// CRLs to consult (a revocation before the time checked, or for key compromise, fails).
    pub crls: &'a [zhengyin_crypto::crl::RevocationList],
}

impl Context for Offline<'_> {
    fn anchors(&self) -> &TrustAnchors {
        self.anchors
    }
    fn intermediates(&self) -> &[Certificate] {
        self.intermediates
    }
    fn seal_status(&self, _: &str, _: OffsetDateTime) -> SealStatus {
        SealStatus::Unknown
    }
    fn check_chain(&self, cert: &Certificate, at: OffsetDateTime) -> Result<(), ChainError> {
        let chain = validate_chain(cert, self.intermediates, self.anchors, at)?;
        let path: Vec<&Certificate> = std::iter::once(cert)
            .chain(
                self.intermediates
                    .iter()
                    .filter(|ca| chain.path.contains(&ca.fingerprint())),
            )
            .collect();
        match zhengyin_crypto::crl::first_revoked(&path, self.crls) {
            Some((subject, r)) if r.date <= at || r.key_compromised() => Err(ChainError::Revoked(format!(
                "{subject} was revoked at {}",
                format_time(r.date)
            ))),
            _ => Ok(()),
        }
    }
}

/// The data a signature protects, as far as the caller has it.
#[derive(Debug, Clone, Copy)]
pub enum Protected<'a> {
    /// The protected bytes themselves (for OFD: the `Signature.xml`).
    Bytes(&'a [u8]),
    /// Their SM3 hash.
    Sm3([u8; 32]),
    /// Not given: the data-hash step stays indeterminate.
    Absent,
}

/// Steps a sealed signature must pass to be VALID.
pub const SIGNATURE_REQUIRED: &[&str] = &[
    "structure",
    "signer_signature",
    "signing_time",
    "signer_certificate",
    "signer_in_seal",
    "seal_signature",
    "maker_certificate",
    "seal_validity",
    "seal_status",
    "data_hash",
];

/// Steps a seal alone must pass to be VALID.
pub const SEAL_REQUIRED: &[&str] = &[
    "structure",
    "seal_signature",
    "maker_certificate",
    "seal_validity",
    "seal_status",
];

/// How far in the future a signing time may lie (clock skew).
const MAX_SKEW: Duration = Duration::minutes(5);

/// Verifies a seal file (`SESeal`) as of `at`.
pub fn verify_seal(ctx: &dyn Context, der: &[u8], at: OffsetDateTime) -> VerificationReport {
    let mut r = ReportBuilder::new(SEAL_REQUIRED);
    match parse_seal(der) {
        Ok(seal) => {
            structure(&mut r, &seal, "seal");
            seal_steps(ctx, &seal, at, at, &mut r);
            if let Some(token) = seal.timestamp {
                timestamp_step(
                    ctx,
                    &mut r,
                    token,
                    seal.signature,
                    Some(seal.info.property.created),
                    "seal",
                );
            }
        }
        Err(e) => {
            r.fail("structure", e.to_string());
        }
    }
    r.finish(at)
}

/// Verifies an electronic signature (`SES_Signature`) over `data`, evaluated at `now`.
pub fn verify_signature(ctx: &dyn Context, der: &[u8], data: Protected<'_>, now: OffsetDateTime) -> VerificationReport {
    let mut r = ReportBuilder::new(SIGNATURE_REQUIRED);
    let signature = match parse_signature(der) {
        Ok(signature) => signature,
        Err(e) => {
            r.fail("structure", e.to_string());
            return r.finish(now);
        }
    };
    let tbs = &signature.to_sign;
    structure(&mut r, &tbs.seal, "signature");
    for quirk in &signature.quirks {
        r.warn("quirk", format!("signature: {quirk}"));
    }
    r.signing_time(tbs.time);

    let signer = ctx.certificate(signature.signer_certificate);
    match &signer {
        Ok(cert) => sm2_step(
            ctx,
            &mut r,
            "signer_signature",
            cert,
            &signature.algorithm,
            tbs.raw,
            signature.signature,
        ),
        Err(e) => {
            r.fail(
                "signer_signature",
                format!("the signer certificate cannot be read: {e}"),
            );
        }
    }

    if tbs.time > now + MAX_SKEW {
        r.fail("signing_time", "signed in the future");
    } else {
        r.pass("signing_time", format!("signed at {}", format_time(tbs.time)));
    }

    if let Ok(cert) = &signer {
        chain_step(&mut r, "signer_certificate", ctx, cert, tbs.time);
    }

    match &tbs.seal.info.property.cert_list {
        CertList::Certificates(certs) => {
            if certs.contains(&signature.signer_certificate) {
                r.pass("signer_in_seal", "the signer certificate is in the seal's list");
            } else {
                r.fail("signer_in_seal", "the signer certificate is not in the seal's list");
            }
        }
        CertList::Digests(digests) => {
            let mut known = false;
            let mut found = false;
            for d in digests {
                let digest = match d.algorithm.to_ascii_uppercase().replace('-', "").as_str() {
                    "SM3" => hash::sm3(signature.signer_certificate),
                    "SHA256" => hash::sha256(signature.signer_certificate),
                    _ => continue,
                };
                known = true;
                found |= d.value == digest;
            }
            if found {
                r.pass(
                    "signer_in_seal",
                    "the signer certificate's digest is in the seal's list",
                );
            } else if known {
                r.fail(
                    "signer_in_seal",
                    "no digest in the seal's list matches the signer certificate",
                );
            } else {
                r.indeterminate(
                    "signer_in_seal",
                    "the seal lists certificate digests of unknown algorithms",
                );
            }
        }
        CertList::Text(text) => {
            r.indeterminate(
                "signer_in_seal",
                format!("the seal lists no certificates (text {text:?} where its list goes): whether it allows this signer is unknown"),
            );
        }
    }

    // Validity against the signing time; status now: without a verified timestamp the signing
    // time is only the signer's claim, and a seal revoked as lost must not vouch for a
    // signature that says it was made earlier.
    seal_steps(ctx, &tbs.seal, tbs.time, now, &mut r);

    if let Some(token) = signature.timestamp {
        timestamp_step(ctx, &mut r, token, signature.signature, Some(tbs.time), "signature");
    }

    match data {
        Protected::Absent => {
            r.indeterminate("data_hash", "no data given to compare with dataHash");
        }
        Protected::Bytes(bytes) => data_hash_step(&mut r, hash::sm3(bytes), tbs.data_hash),
        Protected::Sm3(digest) => data_hash_step(&mut r, digest, tbs.data_hash),
    }
    r.finish(now)
}

fn structure(r: &mut ReportBuilder, seal: &Seal<'_>, what: &str) {
    r.pass(
        "structure",
        format!(
            "{what} readable; seal {} ({:?}, vendor {}, esID {})",
            seal.info.property.name, seal.version, seal.info.header.vendor_id, seal.info.es_id
        ),
    );
    for quirk in &seal.quirks {
        r.warn("quirk", format!("seal: {quirk}"));
    }
    // No seal extension is known here, so a critical one leaves the meaning of the seal in doubt.
    for extension in seal.info.extensions.iter().filter(|e| e.critical) {
        r.indeterminate(
            "extensions",
            format!("critical extension {} is not understood", extension.id),
        );
    }
}

/// Maker signature, maker certificate, validity at `at`, registry status at `status_at`.
fn seal_steps(
    ctx: &dyn Context,
    seal: &Seal<'_>,
    at: OffsetDateTime,
    status_at: OffsetDateTime,
    r: &mut ReportBuilder,
) {
    let property = &seal.info.property;
    match ctx.certificate(seal.maker_certificate) {
        Ok(maker) => {
            sm2_step(
                ctx,
                r,
                "seal_signature",
                &maker,
                &seal.algorithm,
                &seal.signed_bytes,
                seal.signature,
            );
            maker_step(r, ctx, &maker, property.created, at);
        }
        Err(e) => {
            r.fail("seal_signature", format!("the maker certificate cannot be read: {e}"));
        }
    }
    if at < property.valid_start {
        r.fail(
            "seal_validity",
            format!("the seal is not valid before {}", format_time(property.valid_start)),
        );
    } else if at > property.valid_end {
        r.fail(
            "seal_validity",
            format!("the seal expired at {}", format_time(property.valid_end)),
        );
    } else {
        r.pass(
            "seal_validity",
            format!(
                "{} is within {} – {}",
                format_time(at),
                format_time(property.valid_start),
                format_time(property.valid_end)
            ),
        );
    }
    match ctx.seal_status(seal.info.es_id, status_at) {
        SealStatus::Active => r.pass("seal_status", "active in the seal registry"),
        SealStatus::Suspended(reason) => r.fail("seal_status", format!("suspended: {reason}")),
        SealStatus::Revoked(reason) => r.fail("seal_status", format!("revoked: {reason}")),
        SealStatus::Unknown => r.indeterminate("seal_status", "the seal is not in this registry"),
    };
}

/// One SM2-with-SM3 signature check, reported under `code`.
fn sm2_step(
    ctx: &dyn Context,
    r: &mut ReportBuilder,
    code: &'static str,
    cert: &Certificate,
    algorithm: &der::asn1::ObjectIdentifier,
    covered: &[u8],
    signature: &[u8],
) {
    if *algorithm != SM2_WITH_SM3 {
        r.indeterminate(code, format!("unsupported signature algorithm {algorithm}"));
        return;
    }
    let Ok(key) = cert.public_key() else {
        r.indeterminate(code, "the certificate's key algorithm is not supported");
        return;
    };
    let scheme = if signature.len() == 64 {
        SignatureScheme::Sm2Sm3Raw
    } else {
        SignatureScheme::Sm2Sm3Der
    };
    if ctx.check_sm2(key, scheme, covered, signature) {
        r.pass(code, format!("SM2 signature by {} verifies", cert.subject()));
    } else {
        r.fail(code, format!("the SM2 signature by {} does not verify", cert.subject()));
    }
}

fn chain_step(r: &mut ReportBuilder, code: &'static str, ctx: &dyn Context, cert: &Certificate, at: OffsetDateTime) {
    chain_outcome(r, code, cert, at, ctx.check_chain(cert, at));
}

fn chain_outcome(
    r: &mut ReportBuilder,
    code: &'static str,
    cert: &Certificate,
    at: OffsetDateTime,
    checked: Result<(), ChainError>,
) {
    match checked {
        Ok(()) => r.pass(code, format!("{} valid at {}", cert.subject(), format_time(at))),
        Err(e) if e.is_indeterminate() => r.indeterminate(code, format!("at {}: {e}", format_time(at))),
        Err(e) => r.fail(code, format!("at {}: {e}", format_time(at))),
    };
}

/// The maker certificate when the seal was made. The make date is the maker's own claim: a
/// certificate not yet valid then but valid at `used` (the signing time, or the evaluation time
/// for a seal alone) leaves the step in doubt, naming both dates, rather than failing it.
fn maker_step(
    r: &mut ReportBuilder,
    ctx: &dyn Context,
    maker: &Certificate,
    made: OffsetDateTime,
    used: OffsetDateTime,
) {
    match ctx.check_chain(maker, made) {
        Err(e @ ChainError::NotYetValid(_)) if used > made && ctx.check_chain(maker, used).is_ok() => {
            r.indeterminate(
                "maker_certificate",
                format!(
                    "at the seal's make date {} (the maker's own claim): {e}; valid at {}",
                    format_time(made),
                    format_time(used)
                ),
            );
        }
        checked => chain_outcome(r, "maker_certificate", maker, made, checked),
    }
}

/// A v5 timestamp over `stamped` (the signature value): the token holds (RFC 3161, see
/// [`crate::timestamp`]), the TSA's chain is valid at the stamped time, and the time `claimed`
/// by the signer is not after it. An unreadable or unsupported token leaves the step in doubt;
/// a token that does not hold fails it.
fn timestamp_step(
    ctx: &dyn Context,
    r: &mut ReportBuilder,
    token: &[u8],
    stamped: &[u8],
    claimed: Option<OffsetDateTime>,
    what: &str,
) {
    use crate::timestamp::{parse_token, TimestampError};
    let token = match parse_token(token) {
        Ok(token) => token,
        Err(e) => {
            r.indeterminate("timestamp", format!("the {what}'s timestamp cannot be read: {e}"));
            return;
        }
    };
    let at = format_time(token.gen_time);
    let tsa = match token.verify(stamped, ctx.intermediates()) {
        Ok(tsa) => tsa,
        Err(e @ TimestampError::Format(_)) => {
            r.indeterminate("timestamp", format!("the {what}'s timestamp: {e}"));
            return;
        }
        Err(e) => {
            r.fail("timestamp", format!("the {what}'s timestamp does not hold: {e}"));
            return;
        }
    };
    if claimed.is_some_and(|t| t > token.gen_time + MAX_SKEW) {
        r.fail(
            "timestamp",
            format!("the {what} claims a time after its timestamp ({at})"),
        );
        return;
    }
    match ctx.check_chain(&tsa, token.gen_time) {
        Ok(()) => r.pass(
            "timestamp",
            format!("the {what} existed at {at} (time stamp by {})", tsa.subject()),
        ),
        Err(e) if e.is_indeterminate() => r.indeterminate(
            "timestamp",
            format!("the {what}'s time-stamping authority at {at}: {e}"),
        ),
        Err(e) => r.fail(
            "timestamp",
            format!("the {what}'s time-stamping authority at {at}: {e}"),
        ),
    };
}

fn data_hash_step(r: &mut ReportBuilder, digest: [u8; 32], data_hash: &[u8]) {
    if digest.as_slice() == data_hash {
        r.pass("data_hash", "SM3 of the protected data equals dataHash");
    } else {
        r.fail("data_hash", "the protected data changed: its SM3 differs from dataHash");
    }
}
