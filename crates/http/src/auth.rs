//! Callers: bearer tokens bound to a role and a scope.
//!
//! Tokens are configured by their SHA-256 (the service never stores a token itself). Each maps
//! to a [`Role`]: an operator; an issuing authority (acts only for its own USCC); a verifier (a
//! using department: verifies licences, uses them through the per-type interface under a
//! grant); an auditor. Holders sign in with a JWT from the unified identity platform instead
//! (see `zhengyin_engine::identity`): a bearer token that is not a configured token and has
//! the shape of a JWT is checked as one.

use std::collections::HashMap;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::{Deserialize, Serialize};
use zhengyin_model::{HolderRef, Uscc};

use crate::problem::Problem;
use crate::AppState;

/// What a caller may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case", deny_unknown_fields)]
pub enum Role {
    /// Runs the service: registers authorities and licence types.
    Operator,
    /// An issuing authority: issues and changes its own licences.
    Authority {
        /// The authority's USCC.
        uscc: Uscc,
    },
    /// A using department's approval system: verifies and reads licences.
    Verifier {
        /// The department's name or code.
        department: String,
    },
    /// Reads the signature log and the use records.
    Auditor,
    /// An upstream node aggregating this one (归集): reads the log, its proofs and the objects
    /// its entries name.
    Node,
    /// A holder (持证主体), signed in through the identity platform: sees its own licences and
    /// their use records, authorises uses, files objections.
    Holder {
        /// Who.
        holder: HolderRef,
    },
}

impl Role {
    /// The role's name, as configured (`operator`, `authority`, …) and logged.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Authority { .. } => "authority",
            Role::Verifier { .. } => "verifier",
            Role::Auditor => "auditor",
            Role::Node => "node",
            Role::Holder { .. } => "holder",
        }
    }
}

/// Who made a request, for the access log: the `Caller` extractor fills it in when the request
/// is authenticated. The name is the token's configured name (never the token), or `holder`.
#[derive(Clone, Default)]
pub(crate) struct CallerSlot(std::sync::Arc<std::sync::OnceLock<(&'static str, String)>>);

impl CallerSlot {
    fn set(&self, caller: &Caller) {
        let _ = self.0.set((caller.role.kind(), caller.name.clone()));
    }

    /// The role and the name, or `-` for an anonymous request.
    pub(crate) fn get(&self) -> (&'static str, &str) {
        self.0.get().map_or(("-", "-"), |(role, name)| (*role, name.as_str()))
    }
}

/// One configured token, as written in the configuration file:
///
/// ```toml
/// [[tokens]]
/// name = "city-market-regulator"
/// sha256 = "<hex SHA-256 of the token>"
/// role = "authority"            # operator | authority | verifier | auditor | node
/// uscc = "11220000013544541J"   # with role = "authority"
/// # department = "…"            # with role = "verifier"
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Lowercase hex SHA-256 of the token.
    pub sha256: String,
    /// A name for logs.
    pub name: String,
    /// `operator`, `authority`, `verifier`, `auditor` or `node`.
    pub role: String,
    /// The authority's USCC (role `authority`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uscc: Option<String>,
    /// The department (role `verifier`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// Requests per second this caller may make on average (unlimited when absent); bursts of
    /// twice as many are allowed. Beyond it: 429 `rate_limited` with `Retry-After`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_second: Option<f64>,
}

impl TokenConfig {
    /// The configuration of a token for `role`.
    pub fn new(name: &str, sha256: String, role: &Role) -> Self {
        // Holders sign in with identity-platform JWTs; `to_role` refuses a configured one.
        let (uscc, department) = match role {
            Role::Authority { uscc } => (Some(uscc.to_string()), None),
            Role::Verifier { department } => (None, Some(department.clone())),
            _ => (None, None),
        };
        Self {
            sha256,
            name: name.to_owned(),
            role: role.kind().to_owned(),
            uscc,
            department,
            rate_per_second: None,
        }
    }

    fn to_role(&self) -> Result<Role, TokenConfigError> {
        let bad = |why: &str| TokenConfigError(format!("token `{}`: {why}", self.name));
        match (self.role.as_str(), &self.uscc, &self.department) {
            ("operator", None, None) => Ok(Role::Operator),
            ("auditor", None, None) => Ok(Role::Auditor),
            ("node", None, None) => Ok(Role::Node),
            ("authority", Some(uscc), None) => Ok(Role::Authority {
                uscc: Uscc::parse(uscc).map_err(|e| bad(&e.to_string()))?,
            }),
            ("verifier", None, Some(department)) if !department.trim().is_empty() => Ok(Role::Verifier {
                department: department.clone(),
            }),
            ("authority", ..) => Err(bad("role authority needs `uscc` (and nothing else)")),
            ("verifier", ..) => Err(bad("role verifier needs `department` (and nothing else)")),
            ("operator" | "auditor" | "node", ..) => Err(bad("this role takes no `uscc` or `department`")),
            _ => Err(bad("role must be operator, authority, verifier, auditor or node")),
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// A name for logs.
    pub name: String,
    /// The role and scope.
    pub role: Role,
    limit: Option<std::sync::Arc<RateLimit>>,
}

/// A token bucket: `rate` tokens a second, at most `2 × rate` saved up.
#[derive(Debug)]
struct RateLimit {
    rate: f64,
    state: std::sync::Mutex<(f64, std::time::Instant)>,
}

impl RateLimit {
    fn new(rate: f64) -> Self {
        Self {
            rate,
            state: std::sync::Mutex::new((2.0 * rate, std::time::Instant::now())),
        }
    }

    /// Takes one token; `false` when the bucket is empty.
    fn take(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::Instant::now();
        let refilled = (state.0 + now.duration_since(state.1).as_secs_f64() * self.rate).min(2.0 * self.rate);
        let (tokens, ok) = if refilled >= 1.0 {
            (refilled - 1.0, true)
        } else {
            (refilled, false)
        };
        *state = (tokens, now);
        ok
    }
}

/// The callers' tokens, by SHA-256: those in the configuration, and those issued by operators
/// through the API (kept in the store, loaded at start, changed as they are issued and revoked).
#[derive(Debug, Default)]
pub struct Tokens {
    configured: HashMap<[u8; 32], Caller>,
    issued: std::sync::RwLock<HashMap<[u8; 32], Caller>>,
}

/// Why the token configuration was refused.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TokenConfigError(String);

impl TokenConfig {
    /// The caller this configuration stands for, and the SHA-256 it is found by.
    pub fn caller(&self) -> Result<([u8; 32], Caller), TokenConfigError> {
        let hash: [u8; 32] = hex::decode(&self.sha256)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| TokenConfigError(format!("token `{}`: sha256 must be 64 hex digits", self.name)))?;
        let limit = match self.rate_per_second {
            None => None,
            Some(rate) if rate.is_finite() && rate > 0.0 => Some(std::sync::Arc::new(RateLimit::new(rate))),
            Some(_) => {
                return Err(TokenConfigError(format!(
                    "token `{}`: rate_per_second must be positive",
                    self.name
                )))
            }
        };
        let caller = Caller {
            name: self.name.clone(),
            role: self.to_role()?,
            limit,
        };
        Ok((hash, caller))
    }
}

impl From<&zhengyin_model::ApiToken> for TokenConfig {
    fn from(t: &zhengyin_model::ApiToken) -> Self {
        Self {
            sha256: t.sha256.clone(),
            name: t.name.clone(),
            role: t.role.clone(),
            uscc: t.uscc.clone(),
            department: t.department.clone(),
            rate_per_second: t.rate_per_second,
        }
    }
}

impl Tokens {
    /// Builds the table from configuration.
    pub fn from_config(configs: &[TokenConfig]) -> Result<Self, TokenConfigError> {
        let configured = configs.iter().map(TokenConfig::caller).collect::<Result<_, _>>()?;
        Ok(Self {
            configured,
            issued: std::sync::RwLock::default(),
        })
    }

    /// Adds (or, when revoked, removes) a token issued through the API.
    pub fn apply_issued(&self, token: &zhengyin_model::ApiToken) -> Result<(), TokenConfigError> {
        let (hash, caller) = TokenConfig::from(token).caller()?;
        let mut issued = self.issued.write().unwrap_or_else(|p| p.into_inner());
        if token.revoked.is_some() {
            issued.remove(&hash);
        } else {
            issued.insert(hash, caller);
        }
        Ok(())
    }

    fn find(&self, token: &str) -> Option<Caller> {
        self.find_hash(&zhengyin_crypto::hash::sha256(token.as_bytes()))
    }

    fn find_hash(&self, hash: &[u8; 32]) -> Option<Caller> {
        if let Some(caller) = self.configured.get(hash) {
            return Some(caller.clone());
        }
        self.issued.read().unwrap_or_else(|p| p.into_inner()).get(hash).cloned()
    }
}

/// The pages sign staff in with their API tokens: the same table, the same roles (a node's
/// token signs no one in).
impl zhengyin_pages::StaffDirectory for Tokens {
    fn staff(&self, token_sha256: &[u8; 32]) -> Option<(String, zhengyin_pages::Staff)> {
        use zhengyin_pages::Staff;
        let caller = self.find_hash(token_sha256)?;
        let staff = match caller.role {
            Role::Operator => Staff::Operator,
            Role::Auditor => Staff::Auditor,
            Role::Authority { uscc } => Staff::Authority(uscc),
            Role::Verifier { department } => Staff::Department(department),
            Role::Node | Role::Holder { .. } => return None,
        };
        Some((caller.name, staff))
    }
}

/// The token of an `Authorization: Bearer <token>` header; the scheme name is case-insensitive
/// (RFC 9110 §11.1), and any run of spaces may follow it.
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let header = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let Some(token) = header.and_then(bearer_token) else {
            return Err(Problem::new(
                StatusCode::UNAUTHORIZED,
                "auth.missing",
                "send Authorization: Bearer <token>",
            ));
        };
        let token = token.trim();
        let caller = match state.tokens.find(token) {
            Some(caller) => caller,
            None if token.bytes().filter(|b| *b == b'.').count() == 2 => {
                let holder = state
                    .engine
                    .authenticate_holder(token)
                    .map_err(|e| Problem::new(StatusCode::UNAUTHORIZED, "auth.invalid", e.to_string()))?;
                Caller {
                    name: "holder".to_owned(),
                    role: Role::Holder { holder },
                    limit: None,
                }
            }
            None => return Err(Problem::new(StatusCode::UNAUTHORIZED, "auth.invalid", "unknown token")),
        };
        if let Some(slot) = parts.extensions.get::<CallerSlot>() {
            slot.set(&caller);
        }
        if caller.limit.as_ref().is_some_and(|l| !l.take()) {
            return Err(Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests for this token",
            ));
        }
        Ok(caller)
    }
}

/// A caller with the operator role (checked before the body is read).
pub struct OperatorCaller(pub Caller);

/// A caller with an issuing authority's role: the authority it acts for.
pub struct AuthorityCaller(pub Uscc);

/// A caller that may verify: a verifier or an operator.
pub struct VerifierCaller(pub Caller);

impl FromRequestParts<AppState> for OperatorCaller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let caller = Caller::from_request_parts(parts, state).await?;
        match caller.role {
            Role::Operator => Ok(Self(caller)),
            _ => Err(Problem::forbidden("only an operator may do this")),
        }
    }
}

impl FromRequestParts<AppState> for AuthorityCaller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        match Caller::from_request_parts(parts, state).await?.role {
            Role::Authority { uscc } => Ok(Self(uscc)),
            _ => Err(Problem::forbidden("only an issuing authority may do this")),
        }
    }
}

/// An operator (`None`) or an issuing authority (its USCC): who may change a licence type's
/// issuers, the authority only for the types it defines.
pub struct CatalogueCaller(pub Option<Uscc>);

impl FromRequestParts<AppState> for CatalogueCaller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        match Caller::from_request_parts(parts, state).await?.role {
            Role::Operator => Ok(Self(None)),
            Role::Authority { uscc } => Ok(Self(Some(uscc))),
            _ => Err(Problem::forbidden(
                "a type's issuers are set by its defining authority or an operator",
            )),
        }
    }
}

/// An auditor or an operator (use records).
pub struct AuditorCaller(pub Caller);

impl FromRequestParts<AppState> for AuditorCaller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let caller = Caller::from_request_parts(parts, state).await?;
        match caller.role {
            Role::Auditor | Role::Operator => Ok(Self(caller)),
            _ => Err(Problem::forbidden("this needs an auditor token")),
        }
    }
}

/// A caller that may read the signature log in full: an auditor, an upstream node or an
/// operator.
pub struct LogCaller(pub Caller);

impl FromRequestParts<AppState> for LogCaller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let caller = Caller::from_request_parts(parts, state).await?;
        match caller.role {
            Role::Auditor | Role::Node | Role::Operator => Ok(Self(caller)),
            _ => Err(Problem::forbidden(
                "the log's entries and proofs need an auditor or node token",
            )),
        }
    }
}

/// An upstream node (or an operator): may read the objects the log's entries name, personal
/// data included.
pub struct NodeCaller(pub Caller);

impl FromRequestParts<AppState> for NodeCaller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let caller = Caller::from_request_parts(parts, state).await?;
        match caller.role {
            Role::Node | Role::Operator => Ok(Self(caller)),
            _ => Err(Problem::forbidden("the objects of the log need a node token")),
        }
    }
}

impl FromRequestParts<AppState> for VerifierCaller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let caller = Caller::from_request_parts(parts, state).await?;
        match caller.role {
            Role::Verifier { .. } | Role::Operator => Ok(Self(caller)),
            _ => Err(Problem::forbidden("verification needs a verifier token")),
        }
    }
}

impl Caller {
    /// Whether the caller may read licence `issuer`'s licences in full: operators and the
    /// issuer. Departments use the per-type interface (grant, use cause, use record); holders
    /// read their own under `/v1/me`.
    pub fn may_read(&self, issuer: &Uscc) -> Result<(), Problem> {
        match &self.role {
            Role::Operator => Ok(()),
            Role::Authority { uscc } if uscc == issuer => Ok(()),
            Role::Authority { .. } => Err(Problem::out_of_scope("another authority's licence")),
            _ => Err(Problem::forbidden(
                "read licences through /v1/licence-types/{code}/lookup (departments) or /v1/me/licences (holders)",
            )),
        }
    }
}

/// A using department (a verifier token): its department code.
pub struct DepartmentCaller(pub String);

impl FromRequestParts<AppState> for DepartmentCaller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        match Caller::from_request_parts(parts, state).await?.role {
            Role::Verifier { department } => Ok(Self(department)),
            _ => Err(Problem::forbidden("only a using department may do this")),
        }
    }
}

/// A holder signed in through the identity platform.
pub struct HolderCaller(pub HolderRef);

impl FromRequestParts<AppState> for HolderCaller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        match Caller::from_request_parts(parts, state).await?.role {
            Role::Holder { holder } => Ok(Self(holder)),
            _ => Err(Problem::forbidden(
                "only a holder (identity-platform token) may do this",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_other_schemes_are_not_bearer() {
        for header in ["Bearer t", "bearer t", "BEARER t", "bEaReR t"] {
            assert_eq!(bearer_token(header), Some("t"), "{header}");
        }
        for header in ["Basic dDp0", "Bearert", "Bearer", "", "Token t"] {
            assert_eq!(bearer_token(header), None, "{header}");
        }
    }
}
