//! Sync between nodes: what an aggregating node (归集) records when a source misbehaves.
//!
//! An incident keeps the evidence (the checkpoint notes involved) for auditors. Most stop the
//! sync of their source until an operator resolves them; a [`IncidentKind::Conflict`] stops only
//! the entries of the one authority in dispute, and its resolution decides who owns it.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What a source did wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    /// Two signed checkpoints of the same size with different roots: a fork.
    Fork,
    /// A signed checkpoint smaller than one already verified: the log was rolled back.
    Rollback,
    /// The consistency proof between two signed checkpoints does not verify: history rewritten.
    Inconsistent,
    /// The entries served do not hash to the signed checkpoint's root: an entry was rewritten.
    EntriesMismatch,
    /// An object an entry refers to is missing, does not match the entry's hash, or its
    /// signature or certificate does not verify.
    ObjectInvalid,
    /// The source claims an authority another node owns (or a licence this node holds with
    /// other bytes). For an authority, only the entries concerning it are skipped.
    Conflict,
}

impl IncidentKind {
    /// The stable name, as serialised.
    pub fn name(self) -> &'static str {
        match self {
            Self::Fork => "fork",
            Self::Rollback => "rollback",
            Self::Inconsistent => "inconsistent",
            Self::EntriesMismatch => "entries_mismatch",
            Self::ObjectInvalid => "object_invalid",
            Self::Conflict => "conflict",
        }
    }
}

/// A detected divergence of one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncIncident {
    /// `IN` + 16 hex digits.
    pub id: String,
    /// The source's log origin.
    pub origin: String,
    /// What happened.
    pub kind: IncidentKind,
    /// In words: which sizes, which entry, which check.
    pub detail: String,
    /// The signed checkpoint notes involved, exactly as received (the last verified one first).
    pub evidence: Vec<String>,
    /// When it was detected.
    #[serde(with = "time::serde::rfc3339")]
    pub detected: OffsetDateTime,
    /// For a conflict over an authority: which, who owns it, what was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict: Option<Conflict>,
    /// When an operator resolved it (the source then syncs again), and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<Resolution>,
}

impl SyncIncident {
    /// Whether it still needs the sync of its source to act: unresolved, or a conflict resolved
    /// for the claimant whose skipped entries are not yet applied. Stores index these.
    pub fn pending(&self) -> bool {
        match &self.resolved {
            None => true,
            Some(r) => {
                r.decision == Some(Decision::AcceptClaimant) && self.conflict.as_ref().is_some_and(|c| !c.replayed)
            }
        }
    }

    /// Whether it stops its source now: unresolved, and not a conflict over one authority
    /// (which skips only that authority's entries).
    pub fn halting(&self) -> bool {
        self.resolved.is_none() && self.conflict.is_none()
    }
}

/// Most skipped entries a conflict lists; beyond them it only counts.
pub const MAX_SKIPPED_LISTED: usize = 10_000;

/// A source's claim on an authority another node owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// The authority's USCC.
    pub authority: String,
    /// Its owner when the conflict was found: the origin it is replicated from, or absent when
    /// it is registered at this node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The source's entry registering it, if the source did (without one there is nothing to
    /// accept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration: Option<u64>,
    /// The source's entries skipped for it (its registration, licences, status changes), in
    /// log order; at most [`MAX_SKIPPED_LISTED`].
    pub skipped: Vec<u64>,
    /// Entries skipped beyond the list.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unlisted: u64,
    /// Set once the skipped entries were applied after the claimant was accepted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replayed: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// How an operator settled a conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The authority stays with its owner; the claimant's entries for it stay skipped.
    KeepOwner,
    /// The claimant owns the authority from now on: its skipped entries are applied, and
    /// entries of the former owner for it are conflicts from then on.
    AcceptClaimant,
}

impl Decision {
    /// The stable name, as serialised.
    pub fn name(self) -> &'static str {
        match self {
            Self::KeepOwner => "keep_owner",
            Self::AcceptClaimant => "accept_claimant",
        }
    }
}

/// An operator's resolution of an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Why sync may resume (what was checked, with whom).
    pub note: String,
    /// For a conflict: who owns the authority now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
}
