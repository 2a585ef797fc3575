//! Authorised use of licences (一证一接口): service items, access grants, holder authorisations
//! and use records.
//!
//! - A **service item** (事项) is a registered government service, by its code (事项编码); every
//!   use of a licence names one.
//! - A **grant** lets one using department use licences of one type, for listed service items,
//!   seeing listed fields, until a time. It is applied for by the department and decided by the
//!   type's defining authority (or an operator):
//!
//!   ```text
//!   applied ──approve──▶ approved ──withdraw──▶ withdrawn
//!      └─────reject───▶ rejected        (an approved grant past `until` is expired)
//!   ```
//! - An **authorisation** (授权用证) is a holder's consent that one department uses one of its
//!   licences (every version of it) for one service item until a time; the holder may withdraw it.
//! - A **use record** is written, durably, for every lookup, data check, fetch, verification and
//!   QR scan by a department, before the answer leaves.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::id::{HolderCodeType, LicenceId, TypeCode};

/// Longest use cause (用证事由), in characters.
pub const MAX_USE_CAUSE: usize = 200;

/// Metadata a grant may list beside face fields; the rest of a licence's metadata (identifier,
/// type, issuer, validity, status) is always returned.
pub const GRANTABLE_METADATA: [&str; 3] = ["number", "holder.name", "holder.code"];

/// Why an access request was refused by the rules here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// A text field is empty, too long or malformed.
    #[error("{0}")]
    Invalid(String),
    /// The transition is not allowed from the current state.
    #[error("cannot {action} a grant that is {state}")]
    Illegal {
        /// What was asked.
        action: &'static str,
        /// The current state.
        state: &'static str,
    },
}

/// Checks a use cause: 1 to 200 characters, not only blanks, no control or bidirectional
/// formatting characters.
pub fn check_use_cause(cause: &str) -> Result<(), AccessError> {
    let chars = cause.chars().count();
    if cause.trim().is_empty() {
        return Err(AccessError::Invalid("use_cause is required".into()));
    }
    if chars > MAX_USE_CAUSE {
        return Err(AccessError::Invalid(format!(
            "use_cause is {chars} characters; at most {MAX_USE_CAUSE}"
        )));
    }
    crate::text::check_plain(cause, "use_cause", false).map_err(AccessError::Invalid)?;
    Ok(())
}

/// A registered service item (政务服务事项).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceItem {
    /// The item code (事项编码): 1 to 64 of `A-Z a-z 0-9 - _ .`.
    pub code: String,
    /// Its name, e.g. 食品经营许可.
    pub name: String,
}

impl ServiceItem {
    /// Checks the code and name.
    pub fn check(&self) -> Result<(), AccessError> {
        check_code("service item code", &self.code)?;
        check_text("service item name", &self.name, 200)
    }
}

/// Checks an identifier-like code: 1 to 64 of `A-Z a-z 0-9 - _ .`.
pub fn check_code(what: &str, code: &str) -> Result<(), AccessError> {
    let ok = !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(AccessError::Invalid(format!(
            "{what} must be 1 to 64 of A-Z, a-z, 0-9, '-', '_' and '.'"
        )))
    }
}

fn check_text(what: &str, text: &str, max: usize) -> Result<(), AccessError> {
    crate::text::check_line(text, what, max).map_err(AccessError::Invalid)
}

/// Where a grant is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantState {
    /// Waiting for the defining authority's decision.
    Applied,
    /// In force until `until`.
    Approved,
    /// Refused, with a reason.
    Rejected,
    /// Ended early by the department, the defining authority or an operator.
    Withdrawn,
}

impl GrantState {
    /// The state's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Withdrawn => "withdrawn",
        }
    }
}

/// One transition of a grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantChange {
    /// The state entered.
    pub state: GrantState,
    /// Who moved it (`department:…`, `authority:…`, `operator:…`).
    pub actor: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// Why (required for rejection and withdrawal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A using department's access to one licence type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// Its identifier (`GR…`).
    pub id: String,
    /// The department it lets in.
    pub department: String,
    /// The licence type.
    pub type_code: TypeCode,
    /// What the department may see: face fields of the type and [`GRANTABLE_METADATA`].
    pub fields: Vec<String>,
    /// The service items it may use licences for.
    pub service_items: Vec<String>,
    /// Whether every use also needs the holder's authorisation.
    pub requires_authorisation: bool,
    /// Why the department needs it (its legal basis).
    pub purpose: String,
    /// End of the access.
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
    /// The current state.
    pub state: GrantState,
    /// Every transition, oldest first (the first is `applied`).
    pub history: Vec<GrantChange>,
}

impl Grant {
    /// Whether the grant lets its department in at `at`.
    pub fn is_live(&self, at: OffsetDateTime) -> bool {
        self.state == GrantState::Approved && at < self.until
    }

    /// When it was approved (the last change into `approved`), if it was.
    pub fn approved_at(&self) -> Option<OffsetDateTime> {
        self.history
            .iter()
            .rev()
            .find(|c| c.state == GrantState::Approved)
            .map(|c| c.time)
    }

    /// Whether `field` is among the fields it grants.
    pub fn allows_field(&self, field: &str) -> bool {
        self.fields.iter().any(|f| f == field)
    }

    /// Moves the grant: `approve` and `reject` from applied, `withdraw` from applied or approved.
    pub fn transition(
        &mut self,
        to: GrantState,
        actor: String,
        time: OffsetDateTime,
        reason: Option<String>,
    ) -> Result<(), AccessError> {
        let allowed = matches!(
            (self.state, to),
            (GrantState::Applied, GrantState::Approved | GrantState::Rejected)
                | (GrantState::Applied | GrantState::Approved, GrantState::Withdrawn)
        );
        if !allowed {
            return Err(AccessError::Illegal {
                action: match to {
                    GrantState::Approved => "approve",
                    GrantState::Rejected => "reject",
                    GrantState::Withdrawn => "withdraw",
                    GrantState::Applied => "apply for",
                },
                state: self.state.name(),
            });
        }
        if matches!(to, GrantState::Rejected | GrantState::Withdrawn) {
            match &reason {
                Some(r) => check_text("reason", r, 2000)?,
                None => return Err(AccessError::Invalid("a reason is required".into())),
            }
        }
        self.state = to;
        self.history.push(GrantChange {
            state: to,
            actor,
            time,
            reason,
        });
        Ok(())
    }
}

/// A holder, by code type and code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HolderRef {
    /// `111` citizen ID or `001` USCC.
    pub code_type: HolderCodeType,
    /// The code.
    pub code: String,
}

impl std::fmt::Display for HolderRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "holder:{}:{}", self.code_type.as_str(), self.code)
    }
}

/// A holder's consent (授权用证) that one department uses one of its licences for one service item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorisation {
    /// Its identifier (`AU…`).
    pub id: String,
    /// Who consents.
    pub holder: HolderRef,
    /// The licence lineage (identifier without version and check character): every version.
    pub lineage: String,
    /// The licence version named when it was given.
    pub licence: LicenceId,
    /// The department allowed.
    pub department: String,
    /// The service item allowed.
    pub service_item: String,
    /// When it was given.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// When it ends.
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
    /// When the holder withdrew it, if it did.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub withdrawn: Option<OffsetDateTime>,
}

impl Authorisation {
    /// Whether it lets `department` use licence `id` for `service_item` at `at`.
    pub fn covers(&self, department: &str, id: &LicenceId, service_item: &str, at: OffsetDateTime) -> bool {
        self.withdrawn.is_none()
            && at < self.until
            && self.department == department
            && self.service_item == service_item
            && id.lineage() == self.lineage
    }
}

/// A holder's short-lived presentation of one licence (亮证): what the QR token refers to.
/// Each token is accepted once (a scan consumes it) and not after `expires`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Presentation {
    /// The token's unique id (`jti`).
    pub id: String,
    /// The licence shown.
    pub licence: LicenceId,
    /// Who shows it.
    pub holder: HolderRef,
    /// When it was made.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// When it stops being accepted.
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
    /// When and by which department it was scanned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scanned: Option<(String, String)>,
}

/// An API token issued by an operator (departments, auditors, authorities). Only its SHA-256
/// is kept; the token itself is shown once, when it is made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiToken {
    /// Its identifier (`TK…`), for listing and revoking.
    pub id: String,
    /// A name for logs.
    pub name: String,
    /// `operator`, `authority`, `verifier` or `auditor`.
    pub role: String,
    /// With role `authority`: its USCC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uscc: Option<String>,
    /// With role `verifier`: the department.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// Requests per second allowed (unlimited when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_second: Option<f64>,
    /// Lowercase hex SHA-256 of the token.
    pub sha256: String,
    /// When it was made.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// When it was revoked, if it was.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub revoked: Option<OffsetDateTime>,
}

/// What a department did with a licence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UseOperation {
    /// Looked a licence up by identifier.
    LookupById,
    /// Looked licences up by holder code.
    LookupByHolder,
    /// Checked claimed face data against the stored licence.
    Check,
    /// Fetched the signed licence.
    Fetch,
    /// Verified a presented licence.
    Verify,
    /// Scanned a holder's QR presentation.
    Scan,
}

/// What came of a use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UseOutcome {
    /// Data was returned (or the check answered).
    Answered,
    /// Nothing matched.
    NotFound,
}

/// One use of a licence by a department: who, which licence, which service item, why, when, and
/// what came of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UseRecord {
    /// Its identifier (`UR…`), ordered by time.
    pub id: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// The department that used it.
    pub department: String,
    /// What it did.
    pub operation: UseOperation,
    /// The licence type.
    pub type_code: TypeCode,
    /// The licences concerned (none when nothing was found).
    pub licences: Vec<LicenceId>,
    /// Their holder, when known: what the holder's own list is indexed by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<HolderRef>,
    /// The service item (事项编码).
    pub service_item: String,
    /// The use cause (用证事由).
    pub use_cause: String,
    /// The holder's authorisation it relied on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorisation: Option<String>,
    /// The grant it relied on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
    /// What came of it.
    pub outcome: UseOutcome,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn grant() -> Grant {
        Grant {
            id: "GR1".into(),
            department: "d".into(),
            type_code: TypeCode::parse("11100000000013338W032").unwrap(),
            fields: vec!["number".into()],
            service_items: vec!["S1".into()],
            requires_authorisation: false,
            purpose: "p".into(),
            until: OffsetDateTime::UNIX_EPOCH + time::Duration::days(10),
            state: GrantState::Applied,
            history: vec![],
        }
    }

    #[test]
    fn use_cause_bounds() {
        assert!(check_use_cause("办理食品经营许可").is_ok());
        assert!(check_use_cause(&"事".repeat(200)).is_ok());
        assert!(check_use_cause(&"事".repeat(201)).is_err());
        assert!(check_use_cause("   ").is_err());
        assert!(check_use_cause("").is_err());
        assert!(check_use_cause("a\nb").is_err());
    }

    #[test]
    fn grant_life() {
        let t = OffsetDateTime::UNIX_EPOCH;
        let mut g = grant();
        assert!(!g.is_live(t));
        assert!(g.transition(GrantState::Rejected, "a".into(), t, None).is_err());
        g.transition(GrantState::Approved, "a".into(), t, None).unwrap();
        assert!(g.is_live(t));
        assert!(!g.is_live(g.until));
        assert!(matches!(
            g.transition(GrantState::Approved, "a".into(), t, None),
            Err(AccessError::Illegal { state: "approved", .. })
        ));
        g.transition(GrantState::Withdrawn, "d".into(), t, Some("done".into()))
            .unwrap();
        assert!(!g.is_live(t));
        assert_eq!(g.history.len(), 2);
        assert!(g
            .transition(GrantState::Withdrawn, "d".into(), t, Some("x".into()))
            .is_err());
    }

    #[test]
    fn codes() {
        assert!(check_code("c", "11220100MB1234567X-001").is_ok());
        assert!(check_code("c", "").is_err());
        assert!(check_code("c", "a/b").is_err());
        assert!(check_code("c", &"a".repeat(65)).is_err());
    }
}
