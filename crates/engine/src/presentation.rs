//! 亮证 and 扫码核验: a holder shows one licence with a short-lived token small enough for a QR
//! code; a department scans it and asks this node, which answers with the verified licence and
//! its current status, and records the use.
//!
//! The token is a compact JWS signed with the node's token key (header `typ`
//! `zhengyin-presentation+jwt`, so it cannot be taken for any other token), payload
//! `{"iss": <log origin>, "jti": <128-bit random id>, "lic": <licence id>, "exp"}` (about 350
//! characters: a version-12 QR code at error-correction level M). It is
//! accepted once: the scan consumes it (compare-and-swap on its stored record), so a replayed
//! token is refused, as is an expired or altered one.

use std::sync::Arc;

use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};
use zhengyin_crypto::jws::{self, alg_name};
use zhengyin_crypto::Signer;
use zhengyin_model::{HolderRef, LicenceId, Presentation, UseOperation, VerificationReport};
use zhengyin_store::StoreError;

use crate::access::{body_of, holder_of, UseContext};
use crate::{Engine, EngineError, SignedLicence};

/// The JWS `typ` of presentation tokens.
pub const PRESENTATION_TYP: &str = "zhengyin-presentation+jwt";
/// Default lifetime of a presentation token.
pub const DEFAULT_PRESENTATION_TTL: Duration = Duration::minutes(5);
/// Longest lifetime a holder may ask for.
pub const MAX_PRESENTATION_TTL: Duration = Duration::minutes(10);

/// Why a presentation token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresentationRefusal {
    /// Not a presentation token of this node, or altered.
    #[error("not a valid presentation token of this node")]
    Invalid,
    /// Past its expiry.
    #[error("the presentation token has expired")]
    Expired,
    /// Already scanned once.
    #[error("the presentation token was already used")]
    Used,
    /// This node has no token key configured.
    #[error("this node issues no presentation tokens (no token key configured)")]
    Unavailable,
}

/// A token made for a holder.
#[derive(Debug, Clone)]
pub struct PresentationToken {
    /// The compact JWS, for the QR code.
    pub token: String,
    /// Its id.
    pub id: String,
    /// When it stops being accepted.
    pub expires: OffsetDateTime,
}

/// What a scan answers.
#[derive(Debug, Clone)]
pub struct ScanAnswer {
    /// The licence shown, as signed.
    pub licence: SignedLicence,
    /// Its verification now.
    pub report: VerificationReport,
    /// The use record of the scan.
    pub use_record: String,
}

fn refused(r: PresentationRefusal) -> EngineError {
    EngineError::Presentation(r)
}

impl Engine {
    /// Lets this node issue presentation tokens (and later annotated copies) signed with `key`.
    pub fn with_token_key(mut self, key: Arc<dyn Signer>) -> Self {
        self.token_key = Some(key);
        self
    }

    /// A holder makes a presentation token for one of its licences, valid for `ttl` (default 5
    /// minutes, at most 10).
    pub async fn present(
        &self,
        holder: &HolderRef,
        licence: &str,
        ttl: Option<Duration>,
    ) -> Result<PresentationToken, EngineError> {
        let key = self
            .token_key
            .as_ref()
            .ok_or(refused(PresentationRefusal::Unavailable))?;
        let alg = alg_name(key.algorithm()).ok_or(refused(PresentationRefusal::Unavailable))?;
        let ttl = ttl.unwrap_or(DEFAULT_PRESENTATION_TTL);
        if ttl <= Duration::ZERO || ttl > MAX_PRESENTATION_TTL {
            return Err(EngineError::invalid("a presentation lives 1 second to 10 minutes"));
        }
        let id = LicenceId::parse(licence)?;
        let stored = self.licence(&id)?;
        if holder_of(&body_of(&stored)?) != *holder {
            return Err(EngineError::Forbidden("a holder presents its own licences only".into()));
        }
        let now = self.clock.now();
        let jti = format!("{:016x}{:016x}", self.random.next_u64(), self.random.next_u64());
        let presentation = Presentation {
            id: jti.clone(),
            licence: id,
            holder: holder.clone(),
            created: now,
            expires: now + ttl,
            scanned: None,
        };
        self.store.put_presentation(&presentation)?.await?;
        let header = json!({"alg": alg, "typ": PRESENTATION_TYP});
        let payload = json!({
            "iss": self.log.origin,
            "jti": jti,
            "lic": presentation.licence.as_str(),
            "exp": presentation.expires.unix_timestamp(),
        });
        let token = jws::sign_compact(
            key.as_ref(),
            header.to_string().as_bytes(),
            payload.to_string().as_bytes(),
        )
        .map_err(EngineError::signing)?;
        Ok(PresentationToken {
            token,
            id: jti,
            expires: presentation.expires,
        })
    }

    /// A department scans a presentation token: checked, consumed, the licence verified now, and
    /// the use recorded.
    pub async fn scan(&self, department: &str, ctx: &UseContext, token: &str) -> Result<ScanAnswer, EngineError> {
        self.check_purpose(ctx)?;
        let key = self
            .token_key
            .as_ref()
            .ok_or(refused(PresentationRefusal::Unavailable))?;
        let invalid = || refused(PresentationRefusal::Invalid);
        let parts = jws::parse_compact(token.trim()).map_err(|_| invalid())?;
        let header: Value = serde_json::from_slice(&parts.header).map_err(|_| invalid())?;
        let expected_alg = alg_name(key.algorithm());
        if header["typ"] != PRESENTATION_TYP || header["alg"].as_str() != expected_alg || header.get("crit").is_some() {
            return Err(invalid());
        }
        parts.verify(key.public_key()).map_err(|_| invalid())?;
        let claims: Value = serde_json::from_slice(&parts.payload).map_err(|_| invalid())?;
        let (Some(jti), Some(exp)) = (claims["jti"].as_str(), claims["exp"].as_i64()) else {
            return Err(invalid());
        };
        let now = self.clock.now();
        if exp <= now.unix_timestamp() {
            return Err(refused(PresentationRefusal::Expired));
        }
        let current = self.store.presentation(jti)?.ok_or_else(invalid)?;
        if current.licence.as_str() != claims["lic"].as_str().unwrap_or_default() {
            return Err(invalid());
        }
        if current.expires <= now {
            return Err(refused(PresentationRefusal::Expired));
        }
        if current.scanned.is_some() {
            return Err(refused(PresentationRefusal::Used));
        }
        let consumed = Presentation {
            scanned: Some((zhengyin_model::licence::format_time(now), department.to_owned())),
            ..current.clone()
        };
        match self.store.update_presentation(&current, &consumed) {
            Ok(durable) => durable.await?,
            Err(StoreError::Conflict) => return Err(refused(PresentationRefusal::Used)),
            Err(e) => return Err(e.into()),
        }
        let licence = self.licence(&current.licence)?;
        let report = self.verify(&licence.bytes, None);
        let use_record = self
            .record_use(
                department,
                UseOperation::Scan,
                current.licence.type_code(),
                ctx,
                None,
                &[(current.licence.clone(), current.holder.clone())],
            )
            .await?;
        Ok(ScanAnswer {
            licence,
            report,
            use_record,
        })
    }
}
