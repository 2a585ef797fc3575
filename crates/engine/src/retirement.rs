//! Retiring an authority's key (密钥停用): from then on the key signs nothing — new licences are
//! signed with the authority's newest other key, or refused when it has none — while what it
//! signed before stays valid. A licence that claims to be signed with it after the retirement
//! fails verification. Each retirement is a log entry an auditor sees:
//!
//! ```json
//! {"event":"authority.key_retired","authority":"…","certificate":"…","reason_sha256":"…","time":"…"}
//! ```
//!
//! Rotation needs nothing more: registering the authority again with a new certificate adds it,
//! and the newest held key signs.

use serde_json::json;
use zhengyin_crypto::hash;
use zhengyin_model::licence::format_time;
use zhengyin_model::{Authority, RetiredKey, Uscc};

use crate::{log, Engine, EngineError};

impl Engine {
    /// Retires the key of `authority`'s certificate `certificate` (its id, as licences name it).
    pub async fn retire_key(&self, uscc: &Uscc, certificate: &str, reason: &str) -> Result<Authority, EngineError> {
        self.local_authority(uscc, || format!("retiring a key of authority {uscc}"))?;
        crate::check_text(reason, "reason", 500)?;
        let mut authority = self
            .authority(uscc)
            .ok_or_else(|| EngineError::UnknownAuthority(uscc.clone()))?;
        let registered = self
            .read_registry()
            .certificates
            .get(certificate)
            .is_some_and(|c| c.authority.as_ref() == Some(uscc));
        if !registered {
            return Err(EngineError::KeyNotFound {
                uscc: uscc.clone(),
                certificate: certificate.to_owned(),
            });
        }
        if let Some(at) = authority.retired_at(certificate) {
            return Err(EngineError::KeyRetired {
                certificate: certificate.to_owned(),
                at: format_time(at),
            });
        }
        let now = self.clock.now();
        authority.retired.push(RetiredKey {
            certificate: certificate.to_owned(),
            retired: now,
            reason: reason.to_owned(),
        });
        let entry = log::entry(json!({
            "event": "authority.key_retired",
            "authority": uscc.as_str(),
            "certificate": certificate,
            "reason_sha256": hash::sha256_hex(reason.as_bytes()),
            "time": format_time(now),
        }));
        self.ensure_signing()?;
        self.store.put_authority(&authority, &entry)?.durable.await?;
        self.hold_authorities([authority.clone()]);
        tracing::info!(authority = %uscc, certificate, "key retired");
        Ok(authority)
    }
}
