//! Sync between nodes: what an aggregating node (归集) records when a source misbehaves.
//!
//! An incident stops the sync of its source until an operator resolves it, and keeps the
//! evidence (the checkpoint notes involved) for auditors.

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
    /// An object conflicts with what this node already holds under the same identifier.
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
    /// When an operator resolved it (the source then syncs again), and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<Resolution>,
}

/// An operator's resolution of an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Why sync may resume (what was checked, with whom).
    pub note: String,
}
