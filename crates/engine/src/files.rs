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
use zhengyin_licence_file::{lay_out, verify_document, DocumentVerification, Licence, Verifier};
use zhengyin_model::{LicenceBody, LicenceId};
use zhengyin_store::StoredSeal;

use crate::seals::{check_in_force, off_workers};
use crate::{Engine, EngineError, SignedLicence};

fn corrupt(e: impl std::fmt::Display) -> EngineError {
    EngineError::Store(zhengyin_store::StoreError::Corrupt(e.to_string()))
}

/// The content of a signed licence and the e-seal its proof names.
fn licence_parts(signed: &[u8]) -> Result<(LicenceBody, Option<String>), EngineError> {
    let (body, proof) = zhengyin_model::ReceivedLicence::typed(signed).map_err(corrupt)?;
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
        let (signed, font) = (licence.bytes.clone(), self.licence_font.clone());
        let laid = off_workers(move || {
            lay_out(&Licence {
                body: &body,
                licence_type: &licence_type,
                signed: &signed,
                code_text: body.id.as_str(),
                font: font.as_deref(),
            })
        })
        .await?
        .map_err(|e| EngineError::Signing(format!("laying out the licence file: {e}")))?;
        if !laid.missing_glyphs.is_empty() {
            let missing: String = laid.missing_glyphs.iter().collect();
            tracing::warn!(licence = %licence.id, %missing, "the licence font has no glyph for some characters of the face");
        }
        let file = self
            .seal_package(&seal, laid.package, laid.seal_at.into(), |e| {
                EngineError::Signing(format!("sealing the licence file: {e}"))
            })
            .await?;
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
    /// file (the seal's holder read from the registry).
    pub fn verify_ofd(&self, package: &[u8]) -> DocumentVerification {
        let seals = self.verify_seals_of(package);
        let held_by = |es_id: &str, uscc: &str| {
            // A seal not in the registry is no seal of the issuer's.
            Some(
                self.store
                    .seal(es_id)
                    .ok()
                    .flatten()
                    .is_some_and(|s| s.record.holder.code == uscc),
            )
        };
        let verifier = Verifier {
            licence: &|signed| self.verify(signed, None),
            seal_held_by: &held_by,
            now: self.clock.now(),
        };
        verify_document(package, seals, &verifier)
    }
}
