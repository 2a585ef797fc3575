//! RFC 9457 problem details: the one place where errors become HTTP responses.
//!
//! | code | status | meaning |
//! |---|---|---|
//! | `request.malformed_json` | 400 | the body is not (strict) JSON |
//! | `request.invalid` | 422 | the JSON does not fit the operation (missing or wrong-typed members, bad values) |
//! | `request.too_large` | 413 | the body exceeds the configured limit |
//! | `request.unsupported_media_type` | 415 | the body is not `application/json` |
//! | `identifier.invalid` | 400 | a licence id, USCC, citizen ID or type code is malformed or has a wrong check character |
//! | `face.invalid` | 422 | face data breaks the licence type's schema |
//! | `licence_type.unknown` | 422 | the licence type is not in the catalogue |
//! | `authority.unknown` | 422 | the authority is not registered |
//! | `authority.no_signing_key` | 409 | no key of the authority is held by this node |
//! | `certificate.invalid` | 422 | a certificate or its chain was refused |
//! | `licence.not_found` | 404 | no such licence |
//! | `licence.status_conflict` | 409 | the change is not allowed from the current status (e.g. updating a revoked licence) |
//! | `licence.superseded` | 409 | a newer version exists |
//! | `objection.not_found` | 404 | no such objection |
//! | `objection.illegal_transition` | 409 | the objection workflow does not allow this step now (e.g. a second extension) |
//! | `evidence.too_large` | 413 | an evidence file is empty or over the configured size |
//! | `evidence.not_found` | 404 | the objection lists no stored evidence file with that SHA-256 |
//! | `seal.not_found` | 404 | no such seal |
//! | `seal.status_conflict` | 409 | the seal's status does not allow this (e.g. applying a suspended seal) |
//! | `use.cause_invalid` | 422 | `use_cause` is missing, blank, over 200 characters or has control or bidirectional formatting characters |
//! | `use.unknown_service_item` | 422 | the service item code is not registered |
//! | `grant.missing` | 403 | no live grant lets this department use licences of this type (same answer whether the licence exists or not) |
//! | `grant.service_item_not_granted` | 403 | the department's grant does not list this service item |
//! | `grant.field_not_granted` | 403 | a field asked about is not in the grant |
//! | `grant.fields_insufficient` | 403 | fetching the signed licence needs a grant covering every field |
//! | `grant.not_found` | 404 | no such grant (or not one the caller may see) |
//! | `grant.status_conflict` | 409 | the grant's state does not allow this (e.g. approving a withdrawn grant) |
//! | `authorisation.required` | 403 | the grant needs the holder's authorisation and none was named |
//! | `authorisation.invalid` | 403 | the named authorisation is unknown, withdrawn, expired or for another use |
//! | `authorisation.not_found` | 404 | no such authorisation of this holder |
//! | `presentation.invalid` | 422 | not a presentation token of this node, or altered |
//! | `presentation.expired` | 410 | the presentation token has expired |
//! | `presentation.used` | 409 | the presentation token was already scanned |
//! | `presentation.unavailable` | 409 | this node has no token key |
//! | `token.not_found` | 404 | no such API token |
//! | `auth.missing` | 401 | no bearer token |
//! | `auth.invalid` | 401 | the token is not known, or a holder token failed (issuer, signature, audience, expiry) |
//! | `auth.forbidden` | 403 | the caller's role does not allow this operation |
//! | `auth.scope` | 403 | the role allows the operation, but not on this object (another authority's licence, someone else's objection) |
//! | `licence.batch_too_large` | 422 | no licence, or more than 1,000, in one `POST /v1/licences/batch` |
//! | `verify.batch_too_large` | 422 | more licences in one batch than the configured limit |
//! | `log.entry_not_found` | 404 | no log entry has the leaf hash asked for |
//! | `request.timeout` | 408 | the request body did not arrive within the body-read timeout |
//! | `request.malformed` | 400 | a path segment or query that does not decode or parse |
//! | `request.uri_too_long` | 414 | the request target (path and query) is over 8 KiB |
//! | `request.headers_too_large` | 431 | over 100 request headers, or over 32 KiB of them |
//! | `request.refused` | 4xx | any other refusal answered below the handlers |
//! | `licence.number_taken` | 409 | another licence of the same type and issuer carries (or carried) this number |
//! | `licence_type.changed` | 409 | the type was changed concurrently (another frontend); read it again and retry |
//! | `licence_type.version_unknown` | 404 | the licence type has no such version |
//! | `licence_type.not_bound` | 403 | the catalogue does not let this authority issue this type (`issuers`) |
//! | `rate_limited` | 429 | the token's request rate is exceeded (with `Retry-After`) |
//! | `key.not_found` | 404 | the authority has no certificate of that id |
//! | `key.retired` | 409 | the key was retired already |
//! | `trust_list.not_published` | 404 | this node publishes no trust list |
//! | `not_found` | 404 | no such route |
//! | `method_not_allowed` | 405 | the route exists, the method does not |
//! | `signer.unavailable` | 503 | the device holding the signing key (an HSM) cannot sign now; nothing was signed or stored (retry later) |
//! | `unavailable` | 503 | storage cannot acknowledge writes, or be read for a verification, now (retry later) |
//! | `internal` | 500 | a bug; the detail is in the log under the request id |

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use zhengyin_engine::EngineError;
use zhengyin_store::StoreError;

/// The media type of problem responses.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem to report to the client.
#[derive(Debug, Clone)]
pub struct Problem {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code (see the module table).
    pub code: &'static str,
    /// What went wrong, for the client; never internal detail.
    pub detail: String,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    problem_type: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    code: &'a str,
}

impl Problem {
    /// The problem details object (a batch answers one per refused item).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.body()).unwrap_or_default()
    }

    fn body(&self) -> Body<'_> {
        Body {
            problem_type: format!("urn:zhengyin:problem:{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            detail: &self.detail,
            code: self.code,
        }
    }

    /// A problem with a status, code and detail.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
        }
    }

    /// 422 `request.invalid`.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "request.invalid", detail)
    }

    /// 403 `auth.scope`: the role may do this, but not to this object.
    pub fn out_of_scope(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "auth.scope", detail)
    }

    /// 403 `auth.forbidden`: the role may not do this at all.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "auth.forbidden", detail)
    }

    /// 503 `unavailable` for a read: the node's store cannot be read now, so it cannot say what
    /// the licence's status is. Another frontend, or a retry, may answer.
    pub(crate) fn store_unreadable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the registry cannot be read now; retry later",
        )
    }

    /// The problem standing for an error response some layer below the handlers answered in
    /// plain text (a path segment that does not decode, a query that does not parse): the same
    /// status, a code for it, and the text as the detail.
    pub(crate) fn for_plain_error(status: StatusCode, text: &str) -> Self {
        let code = match status.as_u16() {
            400 => "request.malformed",
            404 => "not_found",
            405 => "method_not_allowed",
            408 => "request.timeout",
            413 => "request.too_large",
            415 => "request.unsupported_media_type",
            422 => "request.invalid",
            500..=599 => return Self::internal(),
            _ => "request.refused",
        };
        let detail: String = text.chars().filter(|c| !c.is_control()).take(500).collect();
        let detail = if detail.trim().is_empty() {
            status.canonical_reason().unwrap_or("refused").to_owned()
        } else {
            detail
        };
        Self::new(status, code, detail)
    }

    pub(crate) fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; quote the request id",
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let bytes = serde_json::to_vec(&self.body()).unwrap_or_default();
        let mut response = (self.status, bytes).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if self.status == StatusCode::SERVICE_UNAVAILABLE || self.status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<EngineError> for Problem {
    fn from(e: EngineError) -> Self {
        use StatusCode as S;
        let detail = e.to_string();
        match e {
            EngineError::Identifier(_) => Self::new(S::BAD_REQUEST, "identifier.invalid", detail),
            EngineError::Schema(_) => Self::new(S::UNPROCESSABLE_ENTITY, "face.invalid", detail),
            EngineError::InvalidRequest(_) => Self::invalid(detail),
            EngineError::UnknownLicenceType(_) => Self::new(S::UNPROCESSABLE_ENTITY, "licence_type.unknown", detail),
            EngineError::UnknownAuthority(_) => Self::new(S::UNPROCESSABLE_ENTITY, "authority.unknown", detail),
            EngineError::NoSigningKey(_) => Self::new(S::CONFLICT, "authority.no_signing_key", detail),
            EngineError::Certificate(_) => Self::new(S::UNPROCESSABLE_ENTITY, "certificate.invalid", detail),
            EngineError::LicenceNotFound(_) => Self::new(S::NOT_FOUND, "licence.not_found", detail),
            EngineError::NotIssuer(_) => Self::out_of_scope(detail),
            EngineError::NotDefiner(_) => Self::out_of_scope(detail),
            EngineError::NotBoundToType { .. } => Self::new(S::FORBIDDEN, "licence_type.not_bound", detail),
            EngineError::StatusConflict { .. } => Self::new(S::CONFLICT, "licence.status_conflict", detail),
            EngineError::ObjectionNotFound(_) => Self::new(S::NOT_FOUND, "objection.not_found", detail),
            EngineError::Objection(_) => Self::new(S::CONFLICT, "objection.illegal_transition", detail),
            EngineError::Forbidden(_) => Self::out_of_scope(detail),
            EngineError::Replicated { .. } => Self::new(S::CONFLICT, "sync.replicated", detail),
            EngineError::OwnedElsewhere { .. } => Self::new(S::CONFLICT, "authority.owned_elsewhere", detail),
            EngineError::KeyNotFound { .. } => Self::new(S::NOT_FOUND, "key.not_found", detail),
            EngineError::KeyRetired { .. } => Self::new(S::CONFLICT, "key.retired", detail),
            EngineError::IncidentNotFound(_) => Self::new(S::NOT_FOUND, "sync.incident_not_found", detail),
            EngineError::UseRefused(r) => {
                use zhengyin_engine::UseRefusal as R;
                let (status, code) = match r {
                    R::UseCause(_) => (S::UNPROCESSABLE_ENTITY, "use.cause_invalid"),
                    R::UnknownServiceItem(_) => (S::UNPROCESSABLE_ENTITY, "use.unknown_service_item"),
                    R::NoGrant => (S::FORBIDDEN, "grant.missing"),
                    R::ServiceItemNotGranted(_) => (S::FORBIDDEN, "grant.service_item_not_granted"),
                    R::FieldNotGranted(_) => (S::FORBIDDEN, "grant.field_not_granted"),
                    R::FieldsInsufficient => (S::FORBIDDEN, "grant.fields_insufficient"),
                    R::AuthorisationRequired => (S::FORBIDDEN, "authorisation.required"),
                    R::AuthorisationInvalid => (S::FORBIDDEN, "authorisation.invalid"),
                };
                Self::new(status, code, detail)
            }
            EngineError::Presentation(r) => {
                use zhengyin_engine::presentation::PresentationRefusal as R;
                let (status, code) = match r {
                    R::Invalid => (S::UNPROCESSABLE_ENTITY, "presentation.invalid"),
                    R::Expired => (S::GONE, "presentation.expired"),
                    R::Used => (S::CONFLICT, "presentation.used"),
                    R::Unavailable => (S::CONFLICT, "presentation.unavailable"),
                };
                Self::new(status, code, detail)
            }
            EngineError::EvidenceTooLarge { .. } => Self::new(S::PAYLOAD_TOO_LARGE, "evidence.too_large", detail),
            EngineError::EvidenceNotFound(_) => Self::new(S::NOT_FOUND, "evidence.not_found", detail),
            EngineError::ApiTokenNotFound(_) => Self::new(S::NOT_FOUND, "token.not_found", detail),
            EngineError::GrantNotFound(_) => Self::new(S::NOT_FOUND, "grant.not_found", detail),
            EngineError::GrantConflict { .. } => Self::new(S::CONFLICT, "grant.status_conflict", detail),
            EngineError::AuthorisationNotFound(_) => Self::new(S::NOT_FOUND, "authorisation.not_found", detail),
            EngineError::SealNotFound(_) => Self::new(S::NOT_FOUND, "seal.not_found", detail),
            EngineError::NoLicenceFile(_) => Self::new(S::CONFLICT, "licence.no_file", detail),
            EngineError::SealStatusConflict { .. } => Self::new(S::CONFLICT, "seal.status_conflict", detail),
            EngineError::Superseded { .. } => Self::new(S::CONFLICT, "licence.superseded", detail),
            EngineError::NumberTaken { .. } => Self::new(S::CONFLICT, "licence.number_taken", detail),
            EngineError::TypeChanged(_) => Self::new(S::CONFLICT, "licence_type.changed", detail),
            EngineError::UnknownTypeVersion { .. } => Self::new(S::NOT_FOUND, "licence_type.version_unknown", detail),
            EngineError::SigningHalted(_) => Self::new(S::SERVICE_UNAVAILABLE, "log.behind", detail),
            EngineError::SignerUnavailable(ref why) => {
                // The device's own words go to the log; the caller learns only to retry.
                tracing::error!(error = %why, "a signing key is unavailable");
                Self::new(
                    S::SERVICE_UNAVAILABLE,
                    "signer.unavailable",
                    "the signing key's device cannot sign now; nothing was signed or stored, retry later",
                )
            }
            EngineError::Store(StoreError::Conflict) => Self::new(
                S::CONFLICT,
                "licence.status_conflict",
                "changed concurrently; read it again and retry",
            ),
            EngineError::Store(StoreError::Backend(ref d)) => {
                tracing::error!(error = %d, "storage failure");
                Self::new(
                    S::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "storage cannot acknowledge writes now",
                )
            }
            other => {
                tracing::error!(error = %other, "internal error");
                Self::internal()
            }
        }
    }
}
