//! E-seals in the registry (ARCHITECTURE §4.2): what a seal is registered as, and its status.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::licence::{Change, History, Holder};

/// A seal's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SealState {
    /// It may be applied.
    Active,
    /// Temporarily not (e.g. under investigation).
    Suspended {
        /// Why.
        reason: String,
    },
    /// Never again (lost, legal representative changed, holder dissolved, …).
    Revoked {
        /// Why.
        reason: String,
    },
}

impl SealState {
    /// The state's name as used in the API.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended { .. } => "suspended",
            Self::Revoked { .. } => "revoked",
        }
    }
}

/// One change of a seal's status.
pub type SealChange = Change<SealState>;

/// A seal's status history.
pub type SealHistory = History<SealState>;

impl History<SealState> {
    /// Whether the seal has been revoked (no further change is allowed).
    pub fn is_revoked(&self) -> bool {
        self.changes
            .iter()
            .any(|c| matches!(c.status, SealState::Revoked { .. }))
    }
}

/// A seal as registered: the facts the signed `SESeal` states, for lookups without parsing it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealRecord {
    /// The seal's identifier (esID).
    pub es_id: String,
    /// Its name, e.g. `吉林示例科技有限公司合同专用章`.
    pub name: String,
    /// 1 legal-entity seal, 2 personal seal, 3 other.
    pub seal_type: i64,
    /// Whose seal it is.
    pub holder: Holder,
    /// Start of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub valid_start: OffsetDateTime,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub valid_end: OffsetDateTime,
    /// Ids (`sha256:…` of the DER) of the signer certificates allowed to apply it.
    pub signer_certificates: Vec<String>,
    /// The log origin of the node it was replicated from; `None` when made here. A replicated
    /// seal changes only at that node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}
