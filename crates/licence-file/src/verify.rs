//! Verifying a licence file as one report: its seals and every file they protect (verified by
//! the caller, online or offline), that the attached licence is the one the metadata names and is
//! protected with the metadata by a good seal of the licence's issuer (`licence_bound`), and the
//! licence's own verification (`licence`), status included — never read from the file.

use time::OffsetDateTime;
use zhengyin_crypto::hash;
use zhengyin_model::{Outcome, ReceivedLicence, ReportBuilder, Verdict, VerificationReport};
use zhengyin_ses::ofd::{Limits, OfdVerification, SignatureOutcome};

use crate::{binding, ATTACHMENT};

/// An OFD document's verification: its seals, and the licence it carries if it is a licence file.
#[derive(Debug, Clone)]
pub struct DocumentVerification {
    /// The whole document: its seals and files, and for a licence file the binding and the
    /// licence's own verdict.
    pub report: VerificationReport,
    /// Each signature of the document.
    pub signatures: Vec<SignatureOutcome>,
    /// The licence a licence file carries, with its own report.
    pub licence: Option<BoundLicence>,
}

/// The licence a licence file carries.
#[derive(Debug, Clone)]
pub struct BoundLicence {
    /// The identifier its metadata names.
    pub id: String,
    /// The attached licence's verification (absent when the file does not carry it).
    pub report: Option<VerificationReport>,
}

/// What verifying a licence file needs beyond the package and its seals' report.
pub struct Verifier<'a> {
    /// Verifies a signed licence (online against the registry, or offline).
    pub licence: &'a dyn Fn(&[u8]) -> VerificationReport,
    /// Whether the seal `es_id` is held by the authority `uscc`; `None` when that cannot be
    /// known (offline, without the registry).
    pub seal_held_by: &'a dyn Fn(&str, &str) -> Option<bool>,
    /// The time of the report.
    pub now: OffsetDateTime,
}

/// Adds a licence file's checks to the seals' verification `seals` of `package`; a document that
/// is not a licence file keeps the seals' report as it is.
pub fn verify_document(package: &[u8], seals: OfdVerification, verifier: &Verifier<'_>) -> DocumentVerification {
    let bound = match binding(package, Limits::default()) {
        Ok(Some(bound)) => bound,
        // Not a licence file (or not readable: the seals' report already says why).
        Ok(None) | Err(_) => {
            return DocumentVerification {
                report: seals.report,
                signatures: seals.signatures,
                licence: None,
            }
        }
    };
    let mut r = ReportBuilder::new(&["licence_bound", "licence"]);
    for c in seals.report.checks {
        r.check(c.code, c.outcome, c.message);
    }
    let report = match &bound.licence {
        None => {
            r.fail(
                "licence_bound",
                format!("the file names licence {} but does not carry it", bound.identifier),
            );
            None
        }
        Some(signed) => {
            check_binding(
                &mut r,
                &bound.identifier,
                &bound.licence_sha256,
                signed,
                &seals.signatures,
                verifier,
            );
            let report = (verifier.licence)(signed);
            let outcome = match report.verdict {
                Verdict::Valid => Outcome::Passed,
                Verdict::Invalid => Outcome::Failed,
                Verdict::Indeterminate => Outcome::Indeterminate,
            };
            r.check(
                "licence",
                outcome,
                format!("licence {}: {:?}", bound.identifier, report.verdict),
            );
            Some(report)
        }
    };
    DocumentVerification {
        report: r.finish(verifier.now),
        signatures: seals.signatures,
        licence: Some(BoundLicence {
            id: bound.identifier,
            report,
        }),
    }
}

/// The issuer and identifier of a signed licence.
fn issuer_and_id(signed: &[u8]) -> Option<(String, String)> {
    let (body, _) = ReceivedLicence::typed(signed).ok()?;
    Some((body.issuer.code.as_str().to_owned(), body.id.as_str().to_owned()))
}

/// That the attached licence is the one named, and that a good seal of its issuer protects it
/// with the metadata.
fn check_binding(
    r: &mut ReportBuilder,
    identifier: &str,
    sha256: &str,
    signed: &[u8],
    signatures: &[SignatureOutcome],
    verifier: &Verifier<'_>,
) {
    if hash::sha256_hex(signed) != sha256.to_ascii_lowercase() {
        r.fail(
            "licence_bound",
            "the attached licence is not the one the metadata's SHA-256 names",
        );
        return;
    }
    let issuer = match issuer_and_id(signed) {
        Some((issuer, id)) if id == identifier => issuer,
        Some((_, id)) => {
            r.fail(
                "licence_bound",
                format!("the metadata names licence {identifier}; the attached one is {id}"),
            );
            return;
        }
        // The licence's own report says what is wrong with it.
        None => {
            r.fail("licence_bound", "the attached licence cannot be read");
            return;
        }
    };
    let protecting: Vec<(&SignatureOutcome, Option<bool>)> = signatures
        .iter()
        .filter(|s| {
            s.report.verdict != Verdict::Invalid
                && [ATTACHMENT, "OFD.xml"]
                    .iter()
                    .all(|f| s.unchanged.iter().any(|u| u == f))
        })
        .map(|s| {
            (
                s,
                s.es_id
                    .as_deref()
                    .and_then(|es_id| (verifier.seal_held_by)(es_id, &issuer)),
            )
        })
        .collect();
    if let Some((s, _)) = protecting.iter().find(|(_, held)| *held == Some(true)) {
        r.pass(
            "licence_bound",
            format!(
                "licence {identifier} and the file's metadata are sealed by its issuer ({})",
                s.path
            ),
        );
    } else if let Some((s, _)) = protecting.iter().find(|(_, held)| held.is_none()) {
        r.indeterminate(
            "licence_bound",
            format!(
                "licence {identifier} and the metadata are protected by {}, but whether its seal is the issuer {issuer}'s is not known here (ask a node: the seal registry says)",
                s.path
            ),
        );
    } else {
        r.fail(
            "licence_bound",
            format!("no good seal of the issuer {issuer} protects the attached licence and the metadata"),
        );
    }
}
