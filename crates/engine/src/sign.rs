//! Signing a licence: intent first, then the signature, then the atomic commit.

use zhengyin_crypto::suite::encode_proof_value;
use zhengyin_crypto::Cryptosuite;
use zhengyin_model::licence::{format_time, PROOF_PURPOSE, PROOF_TYPE};
use zhengyin_model::{canonical, LicenceBody, LicenceId, Proof, SigningInput, Status, StatusChange, StatusHistory};
use zhengyin_store::{Intent, LicenceCommit, StoreError};

use crate::{Engine, EngineError, SignedLicence};

fn corrupt(e: impl std::fmt::Display) -> EngineError {
    EngineError::Store(StoreError::Corrupt(e.to_string()))
}

impl Engine {
    /// Signs `body` with its issuer's current key and stores it, superseding a version if given.
    pub(crate) async fn sign_and_commit(
        &self,
        body: LicenceBody,
        seal: Option<String>,
        supersedes: Option<(LicenceId, StatusHistory, StatusHistory)>,
    ) -> Result<SignedLicence, EngineError> {
        let issuer = body.issuer.code.clone();
        let supersedes_id = supersedes.as_ref().map(|(id, _, _)| id.to_string());
        let (cert_id, signer, cert) = {
            let reg = self.read_registry();
            let entry = reg
                .authorities
                .get(&issuer)
                .ok_or_else(|| EngineError::UnknownAuthority(issuer.clone()))?;
            let (cert_id, signer) = entry
                .signing
                .clone()
                .ok_or_else(|| EngineError::NoSigningKey(issuer.clone()))?;
            let cert = reg
                .certificates
                .get(&cert_id)
                .cloned()
                .ok_or_else(|| EngineError::NoSigningKey(issuer.clone()))?;
            (cert_id, signer, cert)
        };
        let suite =
            Cryptosuite::for_algorithm(signer.algorithm()).ok_or_else(|| EngineError::NoSigningKey(issuer.clone()))?;
        let created = self.signing_time();
        // Never sign with a certificate that is not valid now: verifiers would refuse it.
        cert.validate_at(&self.anchors, created)
            .map_err(|e| EngineError::Certificate(e.to_string()))?;
        if let Some(revoked) = self.revoked(&cert) {
            return Err(EngineError::Certificate(revoked.describe()));
        }
        if let Some(es_id) = &seal {
            self.check_licence_seal(es_id, &issuer, &cert_id, suite, created)?;
        }
        let mut proof = Proof {
            proof_type: PROOF_TYPE.to_owned(),
            cryptosuite: suite.name().to_owned(),
            verification_method: cert_id,
            created: format_time(created),
            proof_purpose: PROOF_PURPOSE.to_owned(),
            seal,
            proof_value: None,
        };
        let input = SigningInput::new(&body, &proof).map_err(corrupt)?;

        // Intent before signature: no signed object may exist unrecorded.
        let intent = Intent {
            id: body.id.clone(),
            authority: issuer,
            document: input.document.clone(),
            recorded: created,
        };
        self.ensure_signing()?;
        self.store.record_intent(&intent)?.await?;

        let hash_data = suite.hash_data(&input.proof_config, &input.document);
        let signed = signer.sign(&hash_data).and_then(|sig| {
            // Check our own signature before it leaves: a faulty signer must not publish garbage.
            suite.verify(signer.public_key(), &hash_data, &sig).map(|()| sig)
        });
        let signature = match signed {
            Ok(sig) => sig,
            Err(e) => {
                self.store.abandon_intent(&body.id)?.await?;
                return Err(EngineError::Signing(e.to_string()));
            }
        };
        proof.proof_value = Some(encode_proof_value(&signature));

        let mut value = serde_json::to_value(&body).map_err(corrupt)?;
        if let serde_json::Value::Object(members) = &mut value {
            members.insert("proof".to_owned(), serde_json::to_value(&proof).map_err(corrupt)?);
        }
        let bytes = canonical::to_canonical(&value).map_err(corrupt)?;
        let mut status = StatusHistory::default();
        status.push(StatusChange {
            status: Status::Valid,
            effective: created,
            recorded: created,
        });
        let commit = LicenceCommit {
            id: body.id.clone(),
            signed: bytes.clone(),
            document_sha256: zhengyin_crypto::hash::sha256(&input.document),
            status: status.clone(),
            holder: (body.holder.code_type, body.holder.code.clone()),
            number: body.number.clone(),
            supersedes,
        };
        let mut event = serde_json::json!({
            "event": if supersedes_id.is_some() { "licence.updated" } else { "licence.issued" },
            "licence": body.id.as_str(),
            "licence_sha256": zhengyin_crypto::hash::sha256_hex(&bytes),
            "document_sha256": hex::encode(commit.document_sha256),
            "authority": body.issuer.code.as_str(),
            "verification_method": proof.verification_method,
            "cryptosuite": suite.name(),
            "time": proof.created,
        });
        if let Some(old) = supersedes_id {
            event["supersedes"] = serde_json::Value::String(old);
        }
        let logged = match self.store.commit_licence(&commit, &crate::log::entry(event)) {
            Ok(logged) => logged,
            Err(StoreError::Taken(_)) => {
                // Another request took the number between the check and the commit.
                self.store.abandon_intent(&body.id)?.await?;
                return Err(EngineError::NumberTaken { number: body.number });
            }
            Err(e) => return Err(e.into()),
        };
        logged.durable.await?;
        tracing::info!(licence = %body.id, suite = suite.name(), "licence signed and stored");
        Ok(SignedLicence {
            id: body.id,
            bytes,
            status,
            log_index: Some(logged.index.0),
        })
    }
}
