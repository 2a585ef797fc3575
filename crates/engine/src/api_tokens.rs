//! API tokens an operator issues at run time (beside the configured ones): only each secret's
//! SHA-256 is stored, and the secret is shown once.

use serde::Deserialize;
use serde_json::json;
use zhengyin_crypto::hash;
use zhengyin_model::licence::format_time;
use zhengyin_model::ApiToken;

use crate::access::commitment;
use crate::{log, Engine, EngineError};

/// An operator's request for a new API token. Which roles and scopes are valid is the HTTP
/// layer's rule (it maps tokens to callers); the engine stores what it is given, hashed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewApiToken {
    /// A name for logs.
    pub name: String,
    /// `operator`, `authority`, `verifier` or `auditor`.
    pub role: String,
    /// With role `authority`.
    #[serde(default)]
    pub uscc: Option<String>,
    /// With role `verifier`.
    #[serde(default)]
    pub department: Option<String>,
    /// Requests per second allowed.
    #[serde(default)]
    pub rate_per_second: Option<f64>,
}

impl Engine {
    /// Issues an API token: a fresh 256-bit secret, of which only the SHA-256 is stored. The
    /// secret is returned once, here.
    pub async fn issue_api_token(&self, req: NewApiToken) -> Result<(ApiToken, String), EngineError> {
        crate::check_text(&req.name, "name", 100)?;
        let secret = format!(
            "zy_{:016x}{:016x}{:016x}{:016x}",
            zhengyin_crypto::random_u64(),
            zhengyin_crypto::random_u64(),
            zhengyin_crypto::random_u64(),
            zhengyin_crypto::random_u64()
        );
        let now = self.clock.now();
        let token = ApiToken {
            id: format!("TK{:016}", self.store.next_serial()?),
            name: req.name,
            role: req.role,
            uscc: req.uscc,
            department: req.department,
            rate_per_second: req.rate_per_second,
            sha256: hash::sha256_hex(secret.as_bytes()),
            created: now,
            revoked: None,
        };
        let entry = log::entry(json!({
            "event": "token.issued",
            "token": token.id,
            "role": token.role,
            "record_sha256": commitment(&token),
            "time": format_time(now),
        }));
        self.ensure_signing()?;
        self.store.put_api_token(&token, &entry)?.durable.await?;
        Ok((token, secret))
    }

    /// Revokes an API token (idempotent).
    pub async fn revoke_api_token(&self, id: &str) -> Result<ApiToken, EngineError> {
        let current = self
            .store
            .api_tokens()?
            .into_iter()
            .find(|t| t.id == id)
            .ok_or_else(|| EngineError::ApiTokenNotFound(id.to_owned()))?;
        if current.revoked.is_some() {
            return Ok(current);
        }
        let now = self.clock.now();
        let revoked = ApiToken {
            revoked: Some(now),
            ..current.clone()
        };
        let entry = log::entry(json!({
            "event": "token.revoked",
            "token": id,
            "time": format_time(now),
        }));
        self.ensure_signing()?;
        self.store.update_api_token(&current, &revoked, &entry)?.durable.await?;
        Ok(revoked)
    }

    /// Every API token issued (hashes only), revoked ones included.
    pub fn api_tokens(&self) -> Result<Vec<ApiToken>, EngineError> {
        Ok(self.store.api_tokens()?)
    }
}
