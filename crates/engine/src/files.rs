//! Licence files (电子证照文件, 同步签发): each licence version's OFD file, laid out by
//! `zhengyin-licence-file` and sealed with its issuer's e-seal — logged as `seal.applied` like
//! any sealing — then kept in the store. Issuing and updating make the file with the licence;
//! a licence whose issuer has no e-seal this node can apply gets its file when asked for once
//! it has one.
//!
//! Verifying an OFD document here also verifies the licence a licence file carries: the attached
//! signed licence must be the one the metadata names, protected by a seal of its issuer, and
//! valid itself (proof, registry, status, validity). The status is never read from the file.

use time::OffsetDateTime;
use zhengyin_crypto::hash;
use zhengyin_licence_file::{binding, lay_out, Licence, ATTACHMENT};
use zhengyin_model::{LicenceBody, LicenceId, Outcome, Proof, ReportBuilder, Verdict, VerificationReport};
use zhengyin_ses::ofd::{Limits, SignatureOutcome};
use zhengyin_store::StoredSeal;

use crate::seals::check_in_force;
use crate::{Engine, EngineError, SignedLicence};

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

fn corrupt(e: impl std::fmt::Display) -> EngineError {
    EngineError::Store(zhengyin_store::StoreError::Corrupt(e.to_string()))
}

/// The content of a signed licence and the e-seal its proof names.
fn licence_parts(signed: &[u8]) -> Result<(LicenceBody, Option<String>), EngineError> {
    let received = zhengyin_model::ReceivedLicence::parse(signed).map_err(corrupt)?;
    let body: LicenceBody = serde_json::from_value(received.document).map_err(corrupt)?;
    let proof: Proof = serde_json::from_value(received.proof).map_err(corrupt)?;
    Ok((body, proof.seal))
}

impl Engine {
    /// Whether licence `id` is `holder`'s (refused as not found when it is not, so that a
    /// holder learns nothing of others' licences).
    pub fn check_holds(&self, holder: &zhengyin_model::HolderRef, id: &LicenceId) -> Result<(), EngineError> {
        let licence = self.licence(id)?;
        let (body, _) = licence_parts(&licence.bytes)?;
        if body.holder.code_type == holder.code_type && body.holder.code == holder.code {
            Ok(())
        } else {
            Err(EngineError::LicenceNotFound(id.clone()))
        }
    }

    /// The file of licence `id`: the one kept, or made now for a licence issued here.
    pub async fn licence_file(&self, id: &LicenceId) -> Result<Vec<u8>, EngineError> {
        if let Some(file) = self.store.licence_file(id)? {
            return Ok(file);
        }
        let licence = self.licence(id)?;
        self.local_authority(id.issuer(), || format!("the file of licence {id}"))?;
        self.make_licence_file(&licence).await
    }

    /// Makes the file of a licence just stored; when it cannot be made now, it is made when
    /// first asked for.
    pub(crate) async fn file_with(&self, licence: &SignedLicence) {
        match self.make_licence_file(licence).await {
            Ok(_) => {}
            Err(EngineError::NoLicenceFile(reason)) => tracing::debug!(%reason, "licence file not made"),
            Err(e) => tracing::warn!(licence = %licence.id, error = %e, "licence file not made"),
        }
    }

    /// Lays out, seals and keeps the file of `licence`; returns the file kept.
    async fn make_licence_file(&self, licence: &SignedLicence) -> Result<Vec<u8>, EngineError> {
        let now = self.clock.now();
        let (body, named) = licence_parts(&licence.bytes)?;
        let seal = self.file_seal(&body, named.as_deref(), now)?;
        let licence_type = self.licence_type_version(body.id.type_code(), body.licence_type.version)?;
        let laid = lay_out(&Licence {
            body: &body,
            licence_type: &licence_type,
            signed: &licence.bytes,
            code_text: body.id.as_str(),
        })
        .map_err(|e| EngineError::Signing(format!("laying out the licence file: {e}")))?;
        let prepared =
            zhengyin_ses::seal_ofd::prepare(&laid.package, &seal.der, now, &laid.seal_at.into(), Limits::default())
                .map_err(|e| EngineError::Signing(format!("sealing the licence file: {e}")))?;
        let signature = self
            .apply_loaded_seal(&seal, hash::sm3(&prepared.signature_xml), &prepared.property_info, now)
            .await?;
        let file = prepared
            .finish(signature)
            .map_err(|e| EngineError::Signing(format!("sealing the licence file: {e}")))?;
        self.store.put_licence_file(&licence.id, &file)?.await?;
        Ok(self.store.licence_file(&licence.id)?.unwrap_or(file))
    }

    /// The seal a licence's file is sealed with: the one its proof names, or else the issuer's
    /// newest seal made here that is in force and whose key this node holds.
    fn file_seal(
        &self,
        body: &LicenceBody,
        named: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<StoredSeal, EngineError> {
        let no_file = |reason: String| EngineError::NoLicenceFile(format!("licence {} has no file: {reason}", body.id));
        if let Some(es_id) = named {
            let seal = self.local_seal(es_id)?;
            check_in_force(&seal, now).map_err(|e| no_file(format!("its seal {es_id}: {e}")))?;
            return Ok(seal);
        }
        let issuer = body.issuer.code.as_str();
        self.store
            .seals()?
            .into_iter()
            .filter(|s| s.record.holder.code == issuer && s.record.origin.is_none())
            .filter(|s| check_in_force(s, now).is_ok() && self.seal_signer(s).is_ok())
            .max_by_key(|s| (s.record.valid_start, s.record.es_id.clone()))
            .ok_or_else(|| {
                no_file(format!(
                    "its issuer {issuer} has no e-seal in force whose key this node holds (make one: POST /v1/seals)"
                ))
            })
    }

    /// Verifies every seal of an OFD document and every file they protect, against the
    /// registry; for a licence file, also the licence it carries and that it is bound to the
    /// file.
    pub fn verify_ofd(&self, package: &[u8]) -> DocumentVerification {
        let seals = self.verify_seals_of(package);
        let now = self.clock.now();
        let bound = match binding(package, Limits::default()) {
            Ok(Some(bound)) => bound,
            // Not a licence file (or not readable: the seal report already says why).
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
                self.check_binding(
                    &mut r,
                    &bound.identifier,
                    &bound.licence_sha256,
                    signed,
                    &seals.signatures,
                );
                let report = self.verify(signed, None);
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
            report: r.finish(now),
            signatures: seals.signatures,
            licence: Some(BoundLicence {
                id: bound.identifier,
                report,
            }),
        }
    }

    /// That the attached licence is the one named, and that a good seal of its issuer protects
    /// it with the metadata.
    fn check_binding(
        &self,
        r: &mut ReportBuilder,
        identifier: &str,
        sha256: &str,
        signed: &[u8],
        signatures: &[SignatureOutcome],
    ) {
        if hash::sha256_hex(signed) != sha256.to_ascii_lowercase() {
            r.fail(
                "licence_bound",
                "the attached licence is not the one the metadata's SHA-256 names",
            );
            return;
        }
        let issuer = match licence_parts(signed) {
            Ok((body, _)) if body.id.as_str() == identifier => body.issuer.code,
            Ok((body, _)) => {
                r.fail(
                    "licence_bound",
                    format!(
                        "the metadata names licence {identifier}; the attached one is {}",
                        body.id
                    ),
                );
                return;
            }
            // The licence's own report says what is wrong with it.
            Err(_) => {
                r.fail("licence_bound", "the attached licence cannot be read");
                return;
            }
        };
        let protects = |s: &&SignatureOutcome| {
            s.report.verdict != Verdict::Invalid
                && [ATTACHMENT, "OFD.xml"]
                    .iter()
                    .all(|f| s.unchanged.iter().any(|u| u == f))
        };
        let by_issuer = signatures.iter().filter(protects).find(|s| {
            s.es_id
                .as_deref()
                .and_then(|es_id| self.store.seal(es_id).ok().flatten())
                .is_some_and(|seal| seal.record.holder.code == issuer.as_str())
        });
        match by_issuer {
            Some(s) => r.pass(
                "licence_bound",
                format!(
                    "licence {identifier} and the file's metadata are sealed by its issuer ({})",
                    s.path
                ),
            ),
            None => r.fail(
                "licence_bound",
                format!("no good seal of the issuer {issuer} protects the attached licence and the metadata"),
            ),
        };
    }
}
