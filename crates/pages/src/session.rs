//! Sign-in sessions. A session is a random 32-byte secret in an HttpOnly, Secure, SameSite=Lax
//! cookie (`__Host-` prefixed: this origin only, path `/`); the store keeps its record under the
//! secret's SHA-256, so reading the store hands out no session. Each record holds who signed in
//! — a holder, or the SHA-256 of a staff member's API token, looked up again on every request so
//! that a revoked token ends its sessions — and the session's CSRF token, which every form sends
//! back. Signing in always starts a new session (the old secret is dropped: no fixation).

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use time::Duration;
use zhengyin_model::{HolderRef, Uscc};

use crate::error::PageError;
use crate::{Pages, Shared};

/// The session cookie.
const COOKIE: &str = "__Host-zhengyin";
/// How long a signed-in session lasts.
pub(crate) const SIGNED_IN_FOR: Duration = Duration::hours(8);
/// How long a visitor's session before sign-in lasts (it carries the sign-in's state).
pub(crate) const SIGNING_IN_FOR: Duration = Duration::minutes(15);

/// Who an API token stands for, on the pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Staff {
    /// A using department (办事部门).
    Department(String),
    /// An issuing authority.
    Authority(Uscc),
    /// An auditor.
    Auditor,
    /// An operator.
    Operator,
}

/// Who the API token with a given SHA-256 stands for: the node's token table.
pub trait StaffDirectory: Send + Sync {
    /// The token's name and role, if it is a live token of a person-facing role.
    fn staff(&self, token_sha256: &[u8; 32]) -> Option<(String, Staff)>;
}

/// A session's record in the store.
#[derive(Serialize, Deserialize)]
struct Record {
    who: Who,
    csrf: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pending: Option<Pending>,
}

/// Who a session is for.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Who {
    /// Not signed in yet.
    Visitor,
    /// A holder, signed in through the identity platform.
    Holder { holder: HolderRef },
    /// A staff member, by the SHA-256 of the API token they signed in with.
    Staff { token_sha256: String },
}

/// A sign-in under way at the identity platform: what its answer must carry.
#[derive(Serialize, Deserialize, Clone)]
pub(crate) struct Pending {
    pub(crate) state: String,
    pub(crate) nonce: String,
    pub(crate) redirect_uri: String,
}

/// Who is signed in.
pub(crate) enum Signed {
    Nobody,
    Holder(HolderRef),
    Staff(Staff),
}

/// The visitor of a page: their session, if any, and who it signs in.
pub(crate) struct Visitor {
    key: Option<[u8; 32]>,
    record: Option<Record>,
    pub(crate) signed: Signed,
}

/// What every page shows of the session: who, and the CSRF token for its forms.
pub(crate) struct Me {
    pub(crate) label: String,
    pub(crate) csrf: String,
}

fn cookie_secret(parts: &Parts) -> Option<[u8; 32]> {
    let cookies = parts.headers.get_all(header::COOKIE);
    cookies
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .and_then(|(_, value)| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(value).ok())
        .and_then(|bytes| bytes.try_into().ok())
}

impl FromRequestParts<Shared> for Visitor {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, pages: &Shared) -> Result<Self, PageError> {
        let Some(secret) = cookie_secret(parts) else {
            return Ok(Visitor::nobody());
        };
        let key = zhengyin_crypto::hash::sha256(&secret);
        let Some(bytes) = pages.engine.session(&key)? else {
            return Ok(Visitor::nobody());
        };
        // A record this build cannot read is no session.
        let Ok(record) = serde_json::from_slice::<Record>(&bytes) else {
            return Ok(Visitor::nobody());
        };
        let signed = match &record.who {
            Who::Visitor => Signed::Nobody,
            Who::Holder { holder } => Signed::Holder(holder.clone()),
            Who::Staff { token_sha256 } => {
                let found = hex::decode(token_sha256)
                    .ok()
                    .and_then(|h| <[u8; 32]>::try_from(h).ok())
                    .and_then(|h| pages.staff.staff(&h));
                match found {
                    Some((_, staff)) => Signed::Staff(staff),
                    None => Signed::Nobody,
                }
            }
        };
        Ok(Visitor {
            key: Some(key),
            record: Some(record),
            signed,
        })
    }
}

impl Visitor {
    fn nobody() -> Self {
        Visitor {
            key: None,
            record: None,
            signed: Signed::Nobody,
        }
    }

    /// Refuses a form whose CSRF token is not this session's.
    pub(crate) fn check_csrf(&self, given: Option<&str>) -> Result<(), PageError> {
        let expected = self.record.as_ref().map(|r| r.csrf.as_bytes());
        match (expected, given) {
            (Some(expected), Some(given)) if constant_time_eq(expected, given.as_bytes()) => Ok(()),
            _ => Err(PageError::Csrf),
        }
    }

    /// The sign-in under way, if any.
    pub(crate) fn pending(&self) -> Option<&Pending> {
        self.record.as_ref().and_then(|r| r.pending.as_ref())
    }

    /// The CSRF token of a session that may still sign in (a visitor's).
    pub(crate) fn csrf(&self) -> Option<&str> {
        self.record.as_ref().map(|r| r.csrf.as_str())
    }

    /// The signed-in holder, or a redirect to sign in.
    pub(crate) fn holder(&self) -> Result<&HolderRef, PageError> {
        match &self.signed {
            Signed::Holder(holder) => Ok(holder),
            Signed::Nobody => Err(PageError::SignIn),
            Signed::Staff(_) => Err(PageError::WrongAudience("持证人页面")),
        }
    }

    /// The signed-in department, or a redirect to sign in.
    pub(crate) fn department(&self) -> Result<&str, PageError> {
        match &self.signed {
            Signed::Staff(Staff::Department(d)) => Ok(d),
            Signed::Nobody => Err(PageError::SignIn),
            _ => Err(PageError::WrongAudience("办事部门页面")),
        }
    }

    /// What the page header shows, when someone is signed in.
    pub(crate) fn me(&self) -> Option<Me> {
        let csrf = self.record.as_ref()?.csrf.clone();
        let label = match &self.signed {
            Signed::Nobody => return None,
            Signed::Holder(holder) => format!("持证人 {}", holder.code),
            Signed::Staff(staff) => match staff {
                Staff::Department(d) => format!("办事部门 {d}"),
                Staff::Authority(uscc) => format!("发证机关 {uscc}"),
                Staff::Auditor => "审计人员".to_owned(),
                Staff::Operator => "运维人员".to_owned(),
            },
        };
        Some(Me { label, csrf })
    }

    /// Ends this session; the cookie that forgets it.
    pub(crate) fn end(&self, pages: &Pages) -> Result<String, PageError> {
        if let Some(key) = &self.key {
            pages.engine.end_session(key)?;
        }
        Ok(format!("{COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A fresh random value for URLs and forms (43 characters of base64url).
pub(crate) fn random_token() -> Result<String, PageError> {
    let bytes = zhengyin_crypto::random_secret()
        .ok_or_else(|| PageError::BadRequest("the system's random generator failed".to_owned()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// A new session for `who` (with a sign-in under way, `pending`), replacing `old` if any: the
/// `Set-Cookie` value, and the new session's CSRF token.
pub(crate) fn start(
    pages: &Pages,
    old: &Visitor,
    who: Who,
    pending: Option<Pending>,
    lifetime: Duration,
) -> Result<(String, String), PageError> {
    let secret = zhengyin_crypto::random_secret()
        .ok_or_else(|| PageError::BadRequest("the system's random generator failed".to_owned()))?;
    let csrf = random_token()?;
    let record = Record {
        who,
        csrf: csrf.clone(),
        pending,
    };
    let bytes = serde_json::to_vec(&record).map_err(|e| PageError::BadRequest(e.to_string()))?;
    pages
        .engine
        .keep_session(&zhengyin_crypto::hash::sha256(&secret), &bytes, lifetime)?;
    if let Some(key) = &old.key {
        pages.engine.end_session(key)?;
    }
    let value = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let cookie = format!(
        "{COOKIE}={value}; Path=/; Max-Age={}; HttpOnly; Secure; SameSite=Lax",
        lifetime.whole_seconds()
    );
    Ok((cookie, csrf))
}
