//! Signing a licence: intent first, then the signature, then the atomic commit.

use std::sync::Arc;

use time::OffsetDateTime;
use zhengyin_crypto::suite::encode_proof_value;
use zhengyin_crypto::{Cryptosuite, Signer};
use zhengyin_model::licence::{format_time, PROOF_PURPOSE, PROOF_TYPE};
use zhengyin_model::{canonical, LicenceBody, LicenceId, Proof, SigningInput, Status, StatusChange, StatusHistory};
use zhengyin_store::{Intent, LicenceCommit, StoreError};

use crate::{Engine, EngineError, SignedLicence};

fn corrupt(e: impl std::fmt::Display) -> EngineError {
    EngineError::Store(StoreError::Corrupt(e.to_string()))
}

/// A licence about to be signed: everything but the signature.
pub(crate) struct Prepared {
    body: LicenceBody,
    proof: Proof,
    input: SigningInput,
    suite: Cryptosuite,
    signer: Arc<dyn Signer>,
    created: OffsetDateTime,
    supersedes: Option<(LicenceId, StatusHistory, StatusHistory)>,
}

impl Prepared {
    fn intent(&self) -> Intent {
        Intent {
            id: self.body.id.clone(),
            authority: self.body.issuer.code.clone(),
            document: self.input.document.clone(),
            recorded: self.created,
        }
    }

    /// The signature, checked against the public key before it leaves: a faulty signer must
    /// not publish garbage.
    fn sign(&self) -> Result<Vec<u8>, EngineError> {
        let hash_data = self.suite.hash_data(&self.input.proof_config, &self.input.document);
        self.signer
            .sign(&hash_data)
            .and_then(|sig| {
                self.suite
                    .verify(self.signer.public_key(), &hash_data, &sig)
                    .map(|()| sig)
            })
            .map_err(EngineError::signing)
    }

    /// The signed licence, its store commit and its log entry.
    fn into_commit(self, signature: &[u8]) -> Result<(LicenceCommit, Vec<u8>), EngineError> {
        let Self {
            body,
            mut proof,
            input,
            suite,
            created,
            supersedes,
            ..
        } = self;
        proof.proof_value = Some(encode_proof_value(signature));
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
        let supersedes_id = supersedes.as_ref().map(|(id, _, _)| id.to_string());
        let document_sha256 = zhengyin_crypto::hash::sha256(&input.document);
        let mut event = serde_json::json!({
            "event": if supersedes_id.is_some() { "licence.updated" } else { "licence.issued" },
            "licence": body.id.as_str(),
            "licence_sha256": zhengyin_crypto::hash::sha256_hex(&bytes),
            "document_sha256": hex::encode(document_sha256),
            "authority": body.issuer.code.as_str(),
            "verification_method": proof.verification_method,
            "cryptosuite": suite.name(),
            "time": proof.created,
        });
        if let Some(old) = supersedes_id {
            event["supersedes"] = serde_json::Value::String(old);
        }
        let commit = LicenceCommit {
            id: body.id,
            signed: bytes,
            document_sha256,
            status,
            holder: (body.holder.code_type, body.holder.code),
            number: body.number,
            supersedes,
        };
        Ok((commit, crate::log::entry(event)))
    }
}

/// A committed licence, as the caller sees it.
fn signed(commit: LicenceCommit, log_index: u64) -> SignedLicence {
    SignedLicence {
        id: commit.id,
        bytes: commit.signed,
        status: commit.status,
        log_index: Some(log_index),
    }
}

impl Engine {
    /// Checks that `body`'s issuer may sign now (its key, its certificate valid and not
    /// revoked, the seal it names) and builds the proof to sign.
    fn prepare_signing(
        &self,
        body: LicenceBody,
        seal: Option<String>,
        supersedes: Option<(LicenceId, StatusHistory, StatusHistory)>,
    ) -> Result<Prepared, EngineError> {
        let issuer = body.issuer.code.clone();
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
        let proof = Proof {
            proof_type: PROOF_TYPE.to_owned(),
            cryptosuite: suite.name().to_owned(),
            verification_method: cert_id,
            created: format_time(created),
            proof_purpose: PROOF_PURPOSE.to_owned(),
            seal,
            proof_value: None,
        };
        let input = SigningInput::new(&body, &proof).map_err(corrupt)?;
        Ok(Prepared {
            body,
            proof,
            input,
            suite,
            signer,
            created,
            supersedes,
        })
    }

    /// Signs `body` with its issuer's current key and stores it, superseding a version if given.
    pub(crate) async fn sign_and_commit(
        &self,
        body: LicenceBody,
        seal: Option<String>,
        supersedes: Option<(LicenceId, StatusHistory, StatusHistory)>,
    ) -> Result<SignedLicence, EngineError> {
        let prepared = self.prepare_signing(body, seal, supersedes)?;
        let (id, number) = (prepared.body.id.clone(), prepared.body.number.clone());
        // Intent before signature: no signed object may exist unrecorded.
        self.ensure_signing()?;
        self.store.record_intent(&prepared.intent())?.await?;
        let signature = match prepared.sign() {
            Ok(signature) => signature,
            Err(e) => {
                self.store.abandon_intent(&id)?.await?;
                return Err(e);
            }
        };
        let (commit, entry) = prepared.into_commit(&signature)?;
        let started = std::time::Instant::now();
        let logged = match self.store.commit_licence(&commit, &entry) {
            Ok(logged) => logged,
            Err(StoreError::Taken(_)) => {
                // Another request took the number between the check and the commit.
                self.store.abandon_intent(&id)?.await?;
                return Err(EngineError::NumberTaken { number });
            }
            Err(e) => return Err(e.into()),
        };
        logged.durable.await?;
        self.metrics.wrote("licence", started);
        tracing::info!(licence = %id, "licence issued");
        let licence = signed(commit, logged.index.0);
        self.file_with(&licence).await;
        Ok(licence)
    }

    /// Signs and stores many new licences at once (bulk issuance): their intents in one write,
    /// their signatures on every core, their commits together (see
    /// [`zhengyin_store::LicenceStore::commit_licences`]). Answers in the bodies' order; a refused
    /// one refuses only itself.
    pub(crate) async fn sign_and_commit_many(
        &self,
        bodies: Vec<(LicenceBody, Option<String>)>,
    ) -> Vec<Result<SignedLicence, EngineError>> {
        let mut results: Vec<Option<Result<SignedLicence, EngineError>>> = (0..bodies.len()).map(|_| None).collect();
        let mut prepared = Vec::with_capacity(bodies.len());
        for (i, (body, seal)) in bodies.into_iter().enumerate() {
            match self.prepare_signing(body, seal, None) {
                Ok(p) => prepared.push((i, p)),
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        if let Err(e) = self.record_intents(&prepared).await {
            for (i, _) in &prepared {
                results[*i] = Some(Err(same_for_each(&e)));
            }
            prepared.clear();
        }
        let mut commits = Vec::with_capacity(prepared.len());
        for (i, p, signature) in sign_all(prepared).await {
            let id = p.body.id.clone();
            let outcome = signature.and_then(|sig| p.into_commit(&sig));
            match outcome {
                Ok((commit, entry)) => commits.push((i, (commit, entry))),
                Err(e) => {
                    results[i] = Some(self.abandoned(&id, e).await);
                }
            }
        }
        let (positions, commits): (Vec<usize>, Vec<(LicenceCommit, Vec<u8>)>) = commits.into_iter().unzip();
        let started = std::time::Instant::now();
        let outcomes = self.store.commit_licences(&commits);
        let mut durable = Vec::new();
        for ((i, (commit, _)), outcome) in positions.into_iter().zip(commits).zip(outcomes) {
            results[i] = Some(match outcome {
                Ok(logged) => {
                    durable.push(logged.durable);
                    Ok(signed(commit, logged.index.0))
                }
                Err(StoreError::Taken(_)) => {
                    let number = commit.number.clone();
                    self.abandoned(&commit.id, EngineError::NumberTaken { number }).await
                }
                Err(e) => Err(e.into()),
            });
        }
        // Every commit shares the flushes (or transactions) the last one waits for.
        for d in durable {
            if let Err(e) = d.await {
                return results
                    .into_iter()
                    .map(|_| Err(EngineError::Store(e.clone())))
                    .collect();
            }
        }
        self.metrics.wrote("licence_batch", started);
        tracing::info!(licences = results.len(), "bulk issuance stored");
        for licence in results.iter().flatten().flatten() {
            self.file_with(licence).await;
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(EngineError::Signing("a licence of the bulk went unanswered".to_owned()))))
            .collect()
    }

    async fn record_intents(&self, prepared: &[(usize, Prepared)]) -> Result<(), EngineError> {
        self.ensure_signing()?;
        let intents: Vec<Intent> = prepared.iter().map(|(_, p)| p.intent()).collect();
        for durable in self.store.record_intents(&intents)? {
            durable.await?;
        }
        Ok(())
    }

    /// Abandons the intent of a licence that will not be stored, and answers `error`.
    async fn abandoned(&self, id: &LicenceId, error: EngineError) -> Result<SignedLicence, EngineError> {
        match self.store.abandon_intent(id) {
            Ok(durable) => durable.await.map_err(EngineError::from).and(Err(error)),
            Err(e) => Err(e.into()),
        }
    }
}

/// A failure of a whole bulk, answered for each of its licences.
fn same_for_each(e: &EngineError) -> EngineError {
    match e {
        EngineError::SigningHalted(why) => EngineError::SigningHalted(why.clone()),
        EngineError::Store(e) => EngineError::Store(e.clone()),
        EngineError::SignerUnavailable(why) => EngineError::SignerUnavailable(why.clone()),
        other => EngineError::Signing(other.to_string()),
    }
}

/// Signs every prepared licence, split over the cores; answers each with its signature.
async fn sign_all(prepared: Vec<(usize, Prepared)>) -> Vec<(usize, Prepared, Result<Vec<u8>, EngineError>)> {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    let per_task = prepared.len().div_ceil(cores).max(1);
    let mut chunks = Vec::new();
    let mut rest = prepared;
    while !rest.is_empty() {
        let tail = rest.split_off(per_task.min(rest.len()));
        chunks.push(std::mem::replace(&mut rest, tail));
    }
    let tasks: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            tokio::task::spawn_blocking(move || {
                chunk
                    .into_iter()
                    .map(|(i, p)| {
                        let signature = p.sign();
                        (i, p, signature)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut signed = Vec::new();
    for task in tasks {
        match task.await {
            Ok(chunk) => signed.extend(chunk),
            Err(e) => tracing::error!(error = %e, "a signing task failed"),
        }
    }
    signed
}
