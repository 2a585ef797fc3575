//! The signature log in the engine: the entry of every signing event, checkpoints, and what
//! auditors read.
//!
//! # Entries
//!
//! Each entry is the RFC 8785 form of a JSON object naming the event; signed objects appear only
//! as hashes and personal data not at all (the licence's hash commits to its holder):
//!
//! ```json
//! {"event":"licence.issued","licence":"1.2.156.3005.2.…","licence_sha256":"…","document_sha256":"…",
//!  "authority":"11220000013544541J","verification_method":"urn:zhengyin:cert:sha256:…",
//!  "cryptosuite":"eddsa-jcs-2022","time":"2026-11-22T08:00:00Z"}
//! ```
//!
//! Events: `authority.registered` (with the certificate ids), `licence_type.registered` (the
//! type, its defining authority and issuers, and the SHA-256 of its whole definition: every
//! catalogue change), `licence.issued`, `licence.updated`
//! (with `supersedes`), `licence.revoked`, `licence.suspended`, `licence.reinstated` (with the
//! status and its effective time; free-text notes only as SHA-256).
//!
//! # Checkpoints
//!
//! [`Engine::publish_checkpoint`] signs the current size and root as a C2SP checkpoint note with
//! the node's log key; the server calls it every second, so an acknowledged entry is in a
//! published checkpoint within about one second (the maximum merge delay).

use std::sync::Arc;

use serde_json::{json, Value};
use zhengyin_crypto::{hash, Signer};
use zhengyin_model::licence::format_time;
use zhengyin_model::{canonical, Status, StatusChange};
use zhengyin_store::{LogReader, Store, StoreError};
use zhengyin_tlog::{
    consistency_proof, inclusion_proof, open_checkpoint, root, sign_checkpoint, Checkpoint, Hash, LeafIndex,
    NoteVerifier, TreeError, TreeSize,
};

use crate::{Engine, EngineError};

/// Most entries returned by one read.
pub const MAX_ENTRIES_PER_PAGE: u64 = 1000;

/// The node's log: its origin (name), the Ed25519 key that signs its checkpoints, and the
/// largest checkpoint it is known to have published.
#[derive(Clone)]
pub struct LogConfig {
    /// The origin line of checkpoints, e.g. `zhengyin.example/city-220100`.
    pub origin: String,
    /// The checkpoint signing key (Ed25519).
    pub signer: Arc<dyn Signer>,
    /// The largest checkpoint note this node published, as remembered outside its store (the
    /// server's checkpoint mark). If the store's log does not reach it with the same root — the
    /// data was restored from an older copy, or changed — the engine signs nothing (see
    /// [`Engine::signing_halted`]): signing on would fork the log.
    pub published: Option<String>,
}

impl std::fmt::Debug for LogConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogConfig")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

pub(crate) fn entry(fields: Value) -> Vec<u8> {
    // The fields are built here from strings and hex: canonicalisation cannot fail.
    canonical::to_canonical(&fields).unwrap_or_default()
}

pub(crate) fn status_entry(licence: &str, authority: &str, change: &StatusChange) -> Vec<u8> {
    let (event, status) = match &change.status {
        Status::Revoked { reason, note } => (
            "licence.revoked",
            json!({"state": "revoked", "reason": reason, "note_sha256": hash::sha256_hex(note.as_bytes())}),
        ),
        Status::Suspended { reason } => (
            "licence.suspended",
            json!({"state": "suspended", "reason_sha256": hash::sha256_hex(reason.as_bytes())}),
        ),
        Status::Valid => ("licence.reinstated", json!({"state": "valid"})),
        Status::Superseded { by } => ("licence.superseded", json!({"state": "superseded", "by": by.as_str()})),
    };
    entry(json!({
        "event": event,
        "licence": licence,
        "authority": authority,
        "status": status,
        "effective": format_time(change.effective),
        "time": format_time(change.recorded),
    }))
}

/// Why this node signs nothing, if it does not: its log is behind, or beside, a checkpoint it
/// published.
#[derive(Debug, Default)]
pub(crate) struct SigningHalt(std::sync::RwLock<Option<String>>);

impl SigningHalt {
    pub(crate) fn why(&self) -> Option<String> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn set(&self, why: Option<String>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = why;
    }
}

/// Checks that the store's log reaches `note` — a checkpoint this node published — and agrees
/// with it; says why not.
pub(crate) fn check_reaches(store: &dyn Store, log: &LogConfig, note: &str) -> Result<(), String> {
    let verifier = NoteVerifier::new(&log.origin, log.signer.public_key().clone()).map_err(|e| e.to_string())?;
    let published = open_checkpoint(note, &verifier).map_err(|e| {
        format!(
            "the remembered published checkpoint does not verify with this node's log key ({e}): \
             it is another log's, or damaged"
        )
    })?;
    let size = store.log_size().map_err(|e| e.to_string())?;
    let recovery = "It signs nothing (verification and lookups go on) until its log reaches that checkpoint \
                    again: restore a backup taken after it";
    if size < published.size {
        return Err(format!(
            "this node's log has {} entries, but it published a checkpoint of {} entries: its data was rolled \
             back (restored from an older copy?). {recovery}.",
            size.0, published.size.0
        ));
    }
    let ours = root(published.size, &LogReader(store)).map_err(|e| format!("{e:?}"))?;
    if ours != published.root {
        return Err(format!(
            "the first {} entries of this node's log do not hash to the root of the checkpoint it published: \
             its data differs from what it published. {recovery}.",
            published.size.0
        ));
    }
    Ok(())
}

fn tree_error(e: TreeError<StoreError>) -> EngineError {
    match e {
        TreeError::OutOfRange(m) => EngineError::InvalidRequest(m.to_owned()),
        TreeError::Storage(e) => EngineError::Store(e),
    }
}

impl Engine {
    /// The verifier key string auditors use to check this node's checkpoints.
    pub fn log_verifier(&self) -> Result<String, EngineError> {
        NoteVerifier::new(&self.log.origin, self.log.signer.public_key().clone())
            .map(|v| v.encode())
            .map_err(|e| EngineError::Signing(e.to_string()))
    }

    /// Why this node signs nothing (no licence, status change, registration, seal, objection
    /// step or checkpoint; use records stay journaled), if it does not: its log does not reach
    /// a checkpoint it published ([`LogConfig::published`], [`Engine::check_published`]).
    pub fn signing_halted(&self) -> Option<String> {
        self.halt.why()
    }

    /// Checks the store's log against `note`, a checkpoint this node published (remembered
    /// outside the store): signing halts if the log does not reach it, and resumes once it does
    /// (a database restored under a running frontend, then restored again from a newer copy).
    pub fn check_published(&self, note: &str) -> Result<(), String> {
        let result = check_reaches(self.store.as_ref(), &self.log, note);
        self.halt.set(result.clone().err());
        result
    }

    /// Refuses a write that would append to the log while signing is halted.
    pub(crate) fn ensure_signing(&self) -> Result<(), EngineError> {
        match self.halt.why() {
            Some(why) => Err(EngineError::SigningHalted(why)),
            None => Ok(()),
        }
    }

    /// Signs and stores a checkpoint if the log grew since the last one (or none exists yet).
    /// Returns the new checkpoint note. Signs nothing while signing is halted.
    pub async fn publish_checkpoint(&self) -> Result<Option<String>, EngineError> {
        let _guard = self.checkpoint_lock.lock().await;
        if self.halt.why().is_some() {
            return Ok(None);
        }
        let size = self.store.log_size()?;
        if let Some((published, _)) = self.store.latest_checkpoint()? {
            if published >= size {
                return Ok(None);
            }
        }
        let started = std::time::Instant::now();
        let root = root(size, &LogReader(&*self.store)).map_err(tree_error)?;
        let checkpoint = Checkpoint {
            origin: self.log.origin.clone(),
            size,
            root,
        };
        let note = sign_checkpoint(&checkpoint, &self.log.origin, &*self.log.signer).map_err(|e| match e {
            zhengyin_tlog::NoteError::Signing(e) => EngineError::signing(e),
            other => EngineError::Signing(other.to_string()),
        })?;
        self.store.put_checkpoint(size, &note)?.await?;
        self.metrics
            .checkpoint_publish_seconds
            .observe(started.elapsed().as_secs_f64());
        Ok(Some(note))
    }

    /// The latest published checkpoint note.
    pub fn latest_checkpoint(&self) -> Result<Option<(TreeSize, String)>, EngineError> {
        Ok(self.store.latest_checkpoint()?)
    }

    /// The latest published checkpoint notes, newest first: at most `limit`.
    pub fn recent_checkpoints(&self, limit: usize) -> Result<Vec<(TreeSize, String)>, EngineError> {
        Ok(self.store.recent_checkpoints(limit)?)
    }

    /// Entries `[start, end)`, cut at the log's end and at [`MAX_ENTRIES_PER_PAGE`].
    pub fn log_entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, EngineError> {
        let size = self.store.log_size()?.0;
        if start > end || start > size {
            return Err(EngineError::invalid(format!("need start ≤ end and start ≤ {size}")));
        }
        let end = end.min(size).min(start.saturating_add(MAX_ENTRIES_PER_PAGE));
        Ok(self.store.log_entries(LeafIndex(start), LeafIndex(end))?)
    }

    /// The index of the entry with this leaf hash.
    pub fn log_index_of(&self, leaf_hash: &Hash) -> Result<Option<LeafIndex>, EngineError> {
        Ok(self.store.log_index_of(leaf_hash)?)
    }

    /// The inclusion proof of entry `index` in the tree of `size` entries.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, EngineError> {
        self.check_size(size)?;
        inclusion_proof(LeafIndex(index), TreeSize(size), &LogReader(&*self.store)).map_err(tree_error)
    }

    /// The consistency proof between two tree sizes.
    pub fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<Hash>, EngineError> {
        self.check_size(second)?;
        consistency_proof(TreeSize(first), TreeSize(second), &LogReader(&*self.store)).map_err(tree_error)
    }

    fn check_size(&self, size: u64) -> Result<(), EngineError> {
        let current = self.store.log_size()?.0;
        if size > current {
            return Err(EngineError::invalid(format!("the log has only {current} entries")));
        }
        Ok(())
    }
}
