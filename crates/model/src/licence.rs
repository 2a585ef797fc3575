//! Licences: the signed document, its proof, and its status.
//!
//! # Wire format
//!
//! A licence is a JSON object whose members are the metadata of GB/T 36903 as used in practice,
//! plus a `proof` member shaped as a W3C Data Integrity proof:
//!
//! ```json
//! {
//!   "id": "1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.F",
//!   "name": "营业执照", "number": "JL2024000001",
//!   "type": {"code": "11100000000013338W032", "name": "营业执照", "version": 1},
//!   "defining_authority": "11100000000013338W",
//!   "issuer": {"name": "…", "code": "11220000013544541J", "level": "city"},
//!   "issue_date": "2024-05-01", "valid_from": "2024-05-01", "valid_until": null,
//!   "region_code": "220100",
//!   "holder": {"name": "…", "code": "…", "code_type": "001"},
//!   "service_item": null, "face": {…}, "version": "001",
//!   "proof": {
//!     "type": "DataIntegrityProof", "cryptosuite": "eddsa-jcs-2022",
//!     "verificationMethod": "urn:zhengyin:cert:sha256:…", "created": "2024-05-01T08:00:00Z",
//!     "proofPurpose": "assertionMethod", "seal": null, "proofValue": "z…"
//!   }
//! }
//! ```
//!
//! The signing input follows the W3C `jcs` cryptosuites (see [`SigningInput`]); `valid_until: null`
//! means 长期 (no end date). Status is not part of the signed document: it changes after issue.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::{Date, OffsetDateTime};

use crate::canonical::{self, CanonicalError};
use crate::id::{HolderCodeType, LicenceId, TypeCode, Uscc};

time::serde::format_description!(date_format, Date, "[year]-[month]-[day]");

mod option_date_format {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::Date;

    pub fn serialize<S: Serializer>(d: &Option<Date>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::date_format::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Date>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| super::parse_date(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// A date that is not a real `YYYY-MM-DD` calendar date of the years 0001–9999.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a calendar date YYYY-MM-DD of the years 0001 to 9999")]
pub struct InvalidDate(pub String);

/// Parses a `YYYY-MM-DD` date: four-digit years 0001–9999 only (no sign, no year 0), and a day
/// that exists in its month.
pub fn parse_date(s: &str) -> Result<Date, InvalidDate> {
    let invalid = || InvalidDate(s.chars().take(40).collect());
    let shape = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !shape || s.starts_with("0000") {
        return Err(invalid());
    }
    Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).map_err(|_| invalid())
}

/// Formats a timestamp as RFC 3339 UTC with whole seconds, as every signed time is written.
pub fn format_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.format(fmt).unwrap_or_default()
}

/// The licence type as named on the licence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypeRef {
    /// Type code.
    pub code: TypeCode,
    /// Type name.
    pub name: String,
    /// The version of the type's definition the licence was issued under (licences issued
    /// before types had versions name none: version 1).
    #[serde(default = "first_type_version")]
    pub version: u32,
}

fn first_type_version() -> u32 {
    1
}

/// The issuing authority as named on the licence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerRef {
    /// Authority name.
    pub name: String,
    /// Authority USCC.
    pub code: Uscc,
    /// Administrative level (national, provincial, city, county).
    pub level: String,
}

/// The holder (持证主体).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Holder {
    /// Holder name.
    pub name: String,
    /// Holder code, checked against `code_type`.
    pub code: String,
    /// Which kind of code `code` is.
    pub code_type: HolderCodeType,
}

/// The signed content of a licence: everything but the proof.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LicenceBody {
    /// GB/T 36904 identifier (includes the version).
    pub id: LicenceId,
    /// Licence name.
    pub name: String,
    /// The printed licence number (证照编号).
    pub number: String,
    /// The licence type.
    #[serde(rename = "type")]
    pub licence_type: TypeRef,
    /// The authority that defines the type.
    pub defining_authority: Uscc,
    /// The issuing authority.
    pub issuer: IssuerRef,
    /// Date of issue.
    #[serde(with = "date_format")]
    pub issue_date: Date,
    /// First day of validity.
    #[serde(with = "date_format")]
    pub valid_from: Date,
    /// Last day of validity; `None` is 长期 (no end).
    #[serde(with = "option_date_format")]
    pub valid_until: Option<Date>,
    /// Administrative region code (6 digits).
    pub region_code: String,
    /// The holder.
    pub holder: Holder,
    /// The related service item code (事项编码), if any.
    pub service_item: Option<String>,
    /// Face data, checked against the type's schema.
    pub face: Map<String, Value>,
    /// Version, equal to the identifier's.
    pub version: String,
}

/// The `proof` member: a W3C Data Integrity proof plus our `seal` member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proof {
    /// Always `DataIntegrityProof`.
    #[serde(rename = "type")]
    pub proof_type: String,
    /// The cryptosuite name, e.g. `eddsa-jcs-2022`.
    pub cryptosuite: String,
    /// The signing certificate's id, `urn:zhengyin:cert:sha256:<hex>`.
    #[serde(rename = "verificationMethod")]
    pub verification_method: String,
    /// Signing time, RFC 3339 UTC.
    pub created: String,
    /// Always `assertionMethod`.
    #[serde(rename = "proofPurpose")]
    pub proof_purpose: String,
    /// esID of the e-seal applied, if any.
    pub seal: Option<String>,
    /// Multibase base58-btc signature; absent in the proof configuration.
    #[serde(rename = "proofValue", skip_serializing_if = "Option::is_none")]
    pub proof_value: Option<String>,
}

/// The proof type every licence proof carries.
pub const PROOF_TYPE: &str = "DataIntegrityProof";
/// The proof purpose every licence proof carries.
pub const PROOF_PURPOSE: &str = "assertionMethod";

/// The two canonical byte strings a licence signature is computed over.
///
/// Following the W3C `jcs` cryptosuites:
///
/// ```text
/// proofConfig = JCS(proof without proofValue)           (with the licence's @context if any)
/// document    = JCS(licence without proof)
/// hashData    = H(proofConfig) || H(document)
/// signature   = Sign(hashData);  proofValue = "z" + base58btc(signature)
/// ```
///
/// `H` is SHA-256, or SM3 for `sm2-jcs-2026`; the hashing happens in the crypto layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningInput {
    /// JCS of the proof configuration.
    pub proof_config: Vec<u8>,
    /// JCS of the licence without its proof.
    pub document: Vec<u8>,
}

impl SigningInput {
    /// The signing input of an unsigned body and a proof configuration.
    pub fn new(body: &LicenceBody, proof: &Proof) -> Result<Self, CanonicalError> {
        let body = serde_json::to_value(body).map_err(|e| CanonicalError::Malformed(e.to_string()))?;
        let mut proof = serde_json::to_value(proof).map_err(|e| CanonicalError::Malformed(e.to_string()))?;
        if let Value::Object(p) = &mut proof {
            p.remove("proofValue");
        }
        Self::from_values(&body, &proof)
    }

    /// The signing input of a licence as received: `document` is the licence with `proof`
    /// removed, `proof` the received proof (its `proofValue` is left out here).
    pub fn from_values(document: &Value, proof: &Value) -> Result<Self, CanonicalError> {
        let mut config = proof.clone();
        if let Value::Object(c) = &mut config {
            c.remove("proofValue");
            if let Some(ctx) = document.get("@context") {
                c.insert("@context".to_owned(), ctx.clone());
            }
        }
        Ok(Self {
            proof_config: canonical::to_canonical(&config)?,
            document: canonical::to_canonical(document)?,
        })
    }
}

/// A licence as received for verification, taken apart in one pass over its bytes (see
/// [`canonical::Members`]): the signing input, and the proof in canonical form. The same
/// strictness and the same bytes as [`ReceivedLicence::parse`] then [`SigningInput::from_values`],
/// without a [`Value`] in between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalLicence {
    /// What the signature is over.
    pub input: SigningInput,
    /// JCS of the `proof` member, `proofValue` included.
    pub proof: Vec<u8>,
}

impl CanonicalLicence {
    /// Parses licence bytes strictly and writes their canonical parts.
    pub fn parse(bytes: &[u8]) -> Result<Self, CanonicalError> {
        let members = canonical::Members::parse(bytes)?;
        let proof = members
            .get("proof")
            .ok_or_else(|| CanonicalError::Malformed("the licence has no `proof` member".to_owned()))?
            .to_vec();
        let mut document = Vec::with_capacity(bytes.len());
        members.write_without(&mut document, &["proof"], None);
        let proof_config = if proof.first() == Some(&b'{') {
            let mut config = Vec::with_capacity(proof.len());
            // The document's @context, if it has one, replaces any the proof has.
            let context = members.get("@context").map(|c| ("@context", c));
            let leave_out: &[&str] = if context.is_some() {
                &["proofValue", "@context"]
            } else {
                &["proofValue"]
            };
            canonical::Members::parse(&proof)?.write_without(&mut config, leave_out, context);
            config
        } else {
            proof.clone()
        };
        Ok(Self {
            input: SigningInput { proof_config, document },
            proof,
        })
    }
}

/// A licence as received for verification: parsed strictly, split into document and proof.
#[derive(Debug, Clone)]
pub struct ReceivedLicence {
    /// The licence without `proof`, exactly as received.
    pub document: Value,
    /// The `proof` member, exactly as received.
    pub proof: Value,
}

impl ReceivedLicence {
    /// Parses licence bytes strictly (see [`canonical::parse_strict`]) and splits off the proof.
    pub fn parse(bytes: &[u8]) -> Result<Self, CanonicalError> {
        Self::from_value(canonical::parse_strict(bytes)?)
    }

    /// Parses a signed licence's bytes into its typed content and proof (a licence this node
    /// keeps, or one a licence file carries).
    pub fn typed(bytes: &[u8]) -> Result<(LicenceBody, Proof), CanonicalError> {
        let received = Self::parse(bytes)?;
        let malformed = |e: serde_json::Error| CanonicalError::Malformed(e.to_string());
        Ok((
            serde_json::from_value(received.document).map_err(malformed)?,
            serde_json::from_value(received.proof).map_err(malformed)?,
        ))
    }

    /// Splits an already strictly-parsed value.
    pub fn from_value(value: Value) -> Result<Self, CanonicalError> {
        let Value::Object(mut members) = value else {
            return Err(CanonicalError::Malformed("a licence must be a JSON object".to_owned()));
        };
        let proof = members
            .remove("proof")
            .ok_or_else(|| CanonicalError::Malformed("the licence has no `proof` member".to_owned()))?;
        Ok(Self {
            document: Value::Object(members),
            proof,
        })
    }
}

/// Why a licence was revoked (注销 / 吊销 / 撤销).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationReason {
    /// 注销: the holder or the authority cancelled it (e.g. the business closed).
    #[serde(alias = "注销")]
    Cancelled,
    /// 吊销: withdrawn as a penalty.
    #[serde(alias = "吊销")]
    Withdrawn,
    /// 撤销: rescinded because it should never have been issued.
    #[serde(alias = "撤销")]
    Rescinded,
}

impl RevocationReason {
    /// The reason as the API writes it, with the Chinese term.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Cancelled => "cancelled (注销)",
            Self::Withdrawn => "withdrawn (吊销)",
            Self::Rescinded => "rescinded (撤销)",
        }
    }
}

/// A licence's registry status at some moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case", deny_unknown_fields)]
pub enum Status {
    /// In force.
    Valid,
    /// Temporarily not in force.
    Suspended {
        /// Why.
        reason: String,
    },
    /// Permanently not in force.
    Revoked {
        /// Why.
        reason: RevocationReason,
        /// Free-text note.
        #[serde(default)]
        note: String,
    },
    /// Replaced by a newer version.
    Superseded {
        /// The version that replaced it.
        by: LicenceId,
    },
}

impl Status {
    /// The state's name as used in the API.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Suspended { .. } => "suspended",
            Self::Revoked { .. } => "revoked",
            Self::Superseded { .. } => "superseded",
        }
    }
}

/// One change of status: from `effective` on, the record has `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change<S> {
    /// The new status.
    pub status: S,
    /// When it takes effect.
    #[serde(with = "time::serde::rfc3339")]
    pub effective: OffsetDateTime,
    /// When it was recorded.
    #[serde(with = "time::serde::rfc3339")]
    pub recorded: OffsetDateTime,
}

/// A status history, oldest first: time-aware, so a verifier can ask "as of when?".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "S: Deserialize<'de>"))]
pub struct History<S> {
    /// The changes, ordered by `effective`.
    pub changes: Vec<Change<S>>,
}

impl<S> Default for History<S> {
    fn default() -> Self {
        Self { changes: Vec::new() }
    }
}

impl<S> History<S> {
    /// The status in force at `at`, or `None` before the first change.
    pub fn at(&self, at: OffsetDateTime) -> Option<&S> {
        self.changes.iter().rev().find(|c| c.effective <= at).map(|c| &c.status)
    }

    /// The latest status recorded, whatever its effective time.
    pub fn latest(&self) -> Option<&S> {
        self.changes.iter().max_by_key(|c| c.effective).map(|c| &c.status)
    }

    /// Adds a change, keeping the list ordered by effective time.
    pub fn push(&mut self, change: Change<S>) {
        let pos = self.changes.partition_point(|c| c.effective <= change.effective);
        self.changes.insert(pos, change);
    }
}

/// One change of a licence's status.
pub type StatusChange = Change<Status>;

/// A licence's status history.
pub type StatusHistory = History<Status>;

impl History<Status> {
    /// Whether the licence has been revoked or superseded (at any effective time): no further
    /// change is allowed.
    pub fn is_final(&self) -> bool {
        self.changes
            .iter()
            .any(|c| matches!(c.status, Status::Revoked { .. } | Status::Superseded { .. }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn dates_are_real_calendar_dates_of_years_0001_to_9999() {
        for good in ["0001-01-01", "2024-02-29", "2046-11-21", "9999-12-31"] {
            assert!(parse_date(good).is_ok(), "{good}");
        }
        for bad in [
            "0000-01-01",
            "-0001-01-01",
            "+2024-01-01",
            "10000-01-01",
            "2023-02-29",
            "2024-13-01",
            "2024-04-31",
            "2024-1-01",
            "2024-01-01T00:00:00Z",
            " 2024-01-01",
            "２０２４-01-01",
            "",
        ] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn proof_config_takes_the_context_and_drops_the_value() {
        let doc = serde_json::json!({"@context": ["x"], "id": 1});
        let proof = serde_json::json!({"type": "DataIntegrityProof", "proofValue": "zabc"});
        let input = SigningInput::from_values(&doc, &proof).unwrap();
        assert_eq!(input.proof_config, br#"{"@context":["x"],"type":"DataIntegrityProof"}"#);
        assert_eq!(input.document, br#"{"@context":["x"],"id":1}"#);
    }

    #[test]
    fn one_pass_gives_the_signing_input_the_values_give() {
        for text in [
            r#"{"@context":["x"],"id":1,"proof":{"type":"DataIntegrityProof","proofValue":"zabc"}}"#,
            r#"{"id":"x","proof":{"@context":"mine","b":[2.50,{"d":1,"c":null}],"proofValue":"z1","a":true}}"#,
            r#"{"id":"x","proof":"not an object"}"#,
            r#"{"id":"x","proof":{}}"#,
            r#"{"z":{"é":1,"e":2},"proof":{"proofValue":null}, "a" : [ ] }"#,
        ] {
            let one = CanonicalLicence::parse(text.as_bytes()).unwrap();
            let received = ReceivedLicence::parse(text.as_bytes()).unwrap();
            assert_eq!(
                one.input,
                SigningInput::from_values(&received.document, &received.proof).unwrap(),
                "{text}"
            );
            assert_eq!(one.proof, canonical::to_canonical(&received.proof).unwrap(), "{text}");
        }
        for bad in [
            &b"[]"[..],
            br#"{"id":"x"}"#,
            br#"{"id":"x","proof":{},"proof":{}}"#,
            br#"{"proof":{"a":1,"a":2}}"#,
        ] {
            assert!(
                CanonicalLicence::parse(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn received_licences_need_an_object_with_a_proof() {
        assert!(ReceivedLicence::parse(b"[]").is_err());
        assert!(ReceivedLicence::parse(br#"{"id":"x"}"#).is_err());
        assert!(ReceivedLicence::parse(br#"{"id":"x","proof":{},"proof":{}}"#).is_err());
        let r = ReceivedLicence::parse(br#"{"id":"x","proof":{"a":1}}"#).unwrap();
        assert_eq!(r.document, serde_json::json!({"id": "x"}));
    }

    #[test]
    fn status_history_answers_by_effective_time() {
        let mut h = StatusHistory::default();
        let t0 = datetime!(2024-01-01 0:00 UTC);
        let t1 = datetime!(2024-06-01 0:00 UTC);
        h.push(StatusChange {
            status: Status::Valid,
            effective: t0,
            recorded: t0,
        });
        h.push(StatusChange {
            status: Status::Revoked {
                reason: RevocationReason::Withdrawn,
                note: String::new(),
            },
            effective: t1,
            recorded: t0,
        });
        assert_eq!(h.at(datetime!(2023-12-31 0:00 UTC)), None);
        assert_eq!(h.at(datetime!(2024-03-01 0:00 UTC)), Some(&Status::Valid));
        assert_eq!(h.at(t1).map(Status::name), Some("revoked"));
        assert!(h.is_final());
    }

    #[test]
    fn revocation_reasons_accept_the_chinese_terms() {
        let r: RevocationReason = serde_json::from_str("\"吊销\"").unwrap();
        assert_eq!(r, RevocationReason::Withdrawn);
        assert_eq!(serde_json::to_string(&r).unwrap(), "\"withdrawn\"");
    }

    #[test]
    fn times_are_written_in_whole_utc_seconds() {
        assert_eq!(
            format_time(datetime!(2024-05-01 16:00:00.5 +08:00)),
            "2024-05-01T08:00:00Z"
        );
    }
}
