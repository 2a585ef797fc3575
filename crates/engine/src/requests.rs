//! What callers send to the use cases (the HTTP layer deserialises these directly).

use serde::Deserialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use zhengyin_model::{Holder, RevocationReason, TypeCode};

/// Registers (or extends) an issuing authority.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterAuthority {
    /// Unified social credit code.
    pub uscc: String,
    /// Name.
    pub name: String,
    /// `national`, `provincial`, `city` or `county`.
    pub level: String,
    /// 6-digit region code.
    pub region_code: String,
    /// PEM chains, each the authority's certificate followed by intermediates.
    pub certificates: Vec<String>,
}

/// Issues a licence.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    /// Licence type code.
    pub type_code: TypeCode,
    /// The printed licence number (证照编号).
    pub number: String,
    /// Licence name; defaults to the type's name.
    #[serde(default)]
    pub name: Option<String>,
    /// The holder.
    pub holder: Holder,
    /// Date of issue, `YYYY-MM-DD`; defaults to today.
    #[serde(default)]
    pub issue_date: Option<String>,
    /// First day of validity, `YYYY-MM-DD`; defaults to the issue date.
    #[serde(default)]
    pub valid_from: Option<String>,
    /// Last day of validity, `YYYY-MM-DD`; absent or null for 长期.
    #[serde(default)]
    pub valid_until: Option<String>,
    /// Region code; defaults to the authority's.
    #[serde(default)]
    pub region_code: Option<String>,
    /// Related service item code.
    #[serde(default)]
    pub service_item: Option<String>,
    /// Face data, checked against the type's schema.
    pub face: Map<String, Value>,
    /// esID of the authority's e-seal to name in the proof (SM2 authorities; the signing
    /// certificate must be one the seal lists).
    #[serde(default)]
    pub seal: Option<String>,
}

/// Issues a new version of a licence. Omitted fields keep their current values; `face` is
/// replaced whole.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateRequest {
    /// New licence number.
    #[serde(default)]
    pub number: Option<String>,
    /// New holder name (the holder code never changes).
    #[serde(default)]
    pub holder_name: Option<String>,
    /// New first day of validity.
    #[serde(default)]
    pub valid_from: Option<String>,
    /// New last day of validity (`null` keeps; use `long_term` for 长期).
    #[serde(default)]
    pub valid_until: Option<String>,
    /// Make the licence 长期 (no end date).
    #[serde(default)]
    pub long_term: bool,
    /// New face data.
    #[serde(default)]
    pub face: Option<Map<String, Value>>,
    /// Why the licence changes.
    pub reason: String,
    /// esID of the e-seal to name in the new version's proof, as for issuing.
    #[serde(default)]
    pub seal: Option<String>,
}

/// Revokes a licence.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// 注销 `cancelled`, 吊销 `withdrawn` or 撤销 `rescinded`.
    pub reason: RevocationReason,
    /// When the revocation takes effect; defaults to now.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub effective: Option<OffsetDateTime>,
    /// Free-text note.
    #[serde(default)]
    pub note: String,
}

/// Suspends a licence.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuspendRequest {
    /// Why.
    pub reason: String,
}
