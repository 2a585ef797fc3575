//! Holders sign in through the unified identity platform (统一身份认证平台): its signed JWT
//! (RFC 7519, compact JWS) names the holder in a claim. This node accepts tokens only from the
//! issuers it is configured with, verified with their keys.
//!
//! A token is accepted when: it is a compact JWS within 8 KiB; its header's `alg` is the one of an
//! issuer key (`EdDSA`, `ES256`, `RS256`, `SM2`; never `none`), with no `crit`; its `iss` is a
//! configured issuer and one of that issuer's keys verifies it; `aud` names this node's audience;
//! `exp` is in the future and at most the maximum lifetime away, `nbf` and `iat` are not in the
//! future (60 s leeway each way); and the holder claims hold a valid code of a known type.

use serde_json::{json, Map, Value};
use time::{Duration, OffsetDateTime};
use zhengyin_crypto::jws::{self, alg_name};
use zhengyin_crypto::{PublicKey, Signer};
use zhengyin_model::{HolderCodeType, HolderRef};

/// Clock difference tolerated between the identity platform and this node.
pub const LEEWAY: Duration = Duration::seconds(60);

/// One identity platform whose tokens this node accepts.
#[derive(Debug, Clone)]
pub struct IdentityIssuer {
    /// Its `iss` value.
    pub issuer: String,
    /// Its verification keys (several during a key rollover).
    pub keys: Vec<PublicKey>,
}

/// Which holder tokens this node accepts.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The identity platforms.
    pub issuers: Vec<IdentityIssuer>,
    /// The `aud` a token must name.
    pub audience: String,
    /// The claim that carries the holder code.
    pub holder_claim: String,
    /// The claim that carries the holder code type (`111` citizen ID, `001` USCC).
    pub holder_type_claim: String,
    /// The longest a token may still be valid when presented.
    pub max_lifetime: Duration,
}

impl Default for Identity {
    fn default() -> Self {
        Self {
            issuers: Vec::new(),
            audience: "zhengyin".to_owned(),
            holder_claim: "holder_code".to_owned(),
            holder_type_claim: "holder_code_type".to_owned(),
            max_lifetime: Duration::hours(24),
        }
    }
}

/// Why a holder token was refused. The messages name the rule, never the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a well-formed JWT.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// `iss` is not a configured identity platform.
    #[error("the token's issuer is not a configured identity platform")]
    UnknownIssuer,
    /// No key of the issuer verifies it (or the `alg` is not the key's).
    #[error("the token's signature does not verify")]
    BadSignature,
    /// `exp` has passed, or the token lives longer than allowed.
    #[error("the token has expired")]
    Expired,
    /// `exp` is further away than the maximum lifetime.
    #[error("the token lives longer than this node accepts")]
    TooLong,
    /// `nbf` or `iat` is in the future.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `aud` does not name this node.
    #[error("the token is for another audience")]
    WrongAudience,
    /// The holder claims are missing or invalid.
    #[error("the token does not name a valid holder: {0}")]
    BadHolder(String),
    /// An ID token whose `nonce` is not the one of the sign-in it answers (a replayed token).
    #[error("the ID token's nonce is not the one this sign-in sent")]
    WrongNonce,
}

fn malformed(why: &str) -> TokenError {
    TokenError::Malformed(why.to_owned())
}

fn object(bytes: &[u8], what: &str) -> Result<Map<String, Value>, TokenError> {
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(malformed(&format!("the {what} is not a JSON object"))),
    }
}

fn time_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<OffsetDateTime>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
            .map(Some)
            .ok_or_else(|| malformed(&format!("`{name}` must be a NumericDate"))),
    }
}

impl Identity {
    /// Verifies a holder token at `now`; the holder it names.
    pub fn authenticate(&self, token: &str, now: OffsetDateTime) -> Result<HolderRef, TokenError> {
        self.authenticate_with(token, now, None)
    }

    /// Verifies a holder token at `now`, and when `nonce` is given, that its `nonce` claim is it
    /// (an OpenID Connect ID token answering one sign-in).
    pub fn authenticate_with(
        &self,
        token: &str,
        now: OffsetDateTime,
        nonce: Option<&str>,
    ) -> Result<HolderRef, TokenError> {
        let parts = jws::parse_compact(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
        let header = object(&parts.header, "header")?;
        let claims = object(&parts.payload, "payload")?;
        if header.contains_key("crit") {
            return Err(malformed("`crit` extensions are not supported"));
        }
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("no `alg`"))?;
        let iss = claims
            .get("iss")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("no `iss`"))?;
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.issuer == iss)
            .ok_or(TokenError::UnknownIssuer)?;
        let verified = issuer
            .keys
            .iter()
            .filter(|k| alg_name(k.algorithm()) == Some(alg))
            .any(|k| parts.verify(k).is_ok());
        if !verified {
            return Err(TokenError::BadSignature);
        }
        if nonce.is_some_and(|n| claims.get("nonce").and_then(Value::as_str) != Some(n)) {
            return Err(TokenError::WrongNonce);
        }
        let audience_ok = match claims.get("aud") {
            Some(Value::String(aud)) => *aud == self.audience,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(self.audience.as_str())),
            _ => false,
        };
        if !audience_ok {
            return Err(TokenError::WrongAudience);
        }
        let exp = time_claim(&claims, "exp")?.ok_or_else(|| malformed("no `exp`"))?;
        if exp + LEEWAY <= now {
            return Err(TokenError::Expired);
        }
        if exp > now + self.max_lifetime + LEEWAY {
            return Err(TokenError::TooLong);
        }
        for name in ["nbf", "iat"] {
            if time_claim(&claims, name)?.is_some_and(|t| t > now + LEEWAY) {
                return Err(TokenError::NotYetValid);
            }
        }
        let text = |name: &str| {
            claims
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| TokenError::BadHolder(format!("no `{name}` claim")))
        };
        let code_type =
            HolderCodeType::parse(text(&self.holder_type_claim)?).map_err(|e| TokenError::BadHolder(e.to_string()))?;
        let code = text(&self.holder_claim)?;
        code_type
            .check_code(code)
            .map_err(|e| TokenError::BadHolder(e.to_string()))?;
        Ok(HolderRef {
            code_type,
            code: code.to_owned(),
        })
    }
}

/// What a minted holder token says.
#[derive(Debug, Clone)]
pub struct HolderTokenClaims<'a> {
    /// `iss`.
    pub issuer: &'a str,
    /// `aud`.
    pub audience: &'a str,
    /// The holder.
    pub holder: &'a HolderRef,
    /// `iat`.
    pub issued_at: OffsetDateTime,
    /// `exp - iat`.
    pub lifetime: Duration,
    /// `nonce` (OpenID Connect: the value the relying party sent with the sign-in request).
    pub nonce: Option<&'a str>,
}

/// Mints a holder token as an identity platform would (demo and tests; production tokens come
/// from the platform itself). Claims use the default names.
pub fn mint_holder_token(signer: &dyn Signer, claims: &HolderTokenClaims<'_>) -> Result<String, TokenError> {
    let alg = alg_name(signer.algorithm()).ok_or_else(|| malformed("this key cannot sign tokens"))?;
    let header = json!({"alg": alg, "typ": "JWT"});
    let iat = claims.issued_at.unix_timestamp();
    let defaults = Identity::default();
    let mut payload = json!({
        "iss": claims.issuer,
        "aud": claims.audience,
        "iat": iat,
        "exp": iat + claims.lifetime.whole_seconds(),
    });
    payload[defaults.holder_claim] = json!(claims.holder.code);
    payload[defaults.holder_type_claim] = json!(claims.holder.code_type.as_str());
    if let Some(nonce) = claims.nonce {
        payload["nonce"] = json!(nonce);
    }
    jws::sign_compact(signer, header.to_string().as_bytes(), payload.to_string().as_bytes())
        .map_err(|e| TokenError::Malformed(e.to_string()))
}

impl crate::Engine {
    /// Accepts holder tokens as `identity` says (none are accepted until this is called).
    pub fn with_identity(mut self, identity: Identity) -> Self {
        self.identity = identity;
        self
    }

    /// The holder a bearer token signs in, checked now.
    pub fn authenticate_holder(&self, token: &str) -> Result<HolderRef, TokenError> {
        self.identity.authenticate(token, self.clock.now())
    }

    /// The holder an OpenID Connect ID token signs in, checked now, answering the sign-in that
    /// sent `nonce`.
    pub fn authenticate_signed_in(&self, id_token: &str, nonce: &str) -> Result<HolderRef, TokenError> {
        self.identity.authenticate_with(id_token, self.clock.now(), Some(nonce))
    }

    /// The `iss` and `aud` this node's holder tokens carry, when it trusts one identity platform
    /// (for the demo identity page, which mints tokens as that platform would).
    pub fn identity_platform(&self) -> Option<(&str, &str)> {
        match self.identity.issuers.as_slice() {
            [one] => Some((one.issuer.as_str(), self.identity.audience.as_str())),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use zhengyin_crypto::FileKey;

    const ISSUER: &str = "https://id.example.gov.cn";

    fn keys() -> Vec<FileKey> {
        [
            include_str!("../../../keys-example/authority-ed25519.key"),
            include_str!("../../../keys-example/authority-p256.key"),
            include_str!("../../../keys-example/authority-rsa2048.key"),
            include_str!("../../../keys-example/authority-sm2.key"),
        ]
        .iter()
        .map(|pem| FileKey::from_pem(pem).unwrap())
        .collect()
    }

    fn holder() -> HolderRef {
        HolderRef {
            code_type: HolderCodeType::Uscc,
            code: "91110000600037341L".to_owned(),
        }
    }

    fn identity(keys: &[FileKey]) -> Identity {
        Identity {
            issuers: vec![IdentityIssuer {
                issuer: ISSUER.to_owned(),
                keys: keys.iter().map(|k| k.public_key().clone()).collect(),
            }],
            ..Identity::default()
        }
    }

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-12-01 8:00 UTC)
    }

    fn mint(key: &FileKey, issuer: &str, audience: &str, issued_at: OffsetDateTime, lifetime: Duration) -> String {
        mint_holder_token(
            key,
            &HolderTokenClaims {
                issuer,
                audience,
                holder: &holder(),
                issued_at,
                lifetime,
                nonce: None,
            },
        )
        .unwrap()
    }

    fn sign_raw(key: &FileKey, header: &Value, payload: &Value) -> String {
        jws::sign_compact(key, header.to_string().as_bytes(), payload.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn every_algorithm_is_accepted_from_the_configured_issuer() {
        let keys = keys();
        let id = identity(&keys);
        for key in &keys {
            let token = mint(key, ISSUER, "zhengyin", now(), Duration::hours(1));
            assert_eq!(
                id.authenticate(&token, now()).unwrap(),
                holder(),
                "{:?}",
                key.algorithm()
            );
        }
    }

    #[test]
    fn refusals() {
        let keys = keys();
        let id = identity(&keys[..1]);
        let key = &keys[0];
        let hour = Duration::hours(1);
        let check = |token: &str| id.authenticate(token, now());
        assert_eq!(
            check(&mint(key, "https://evil.example", "zhengyin", now(), hour)),
            Err(TokenError::UnknownIssuer)
        );
        assert_eq!(
            check(&mint(&keys[1], ISSUER, "zhengyin", now(), hour)),
            Err(TokenError::BadSignature),
            "another key"
        );
        assert_eq!(
            check(&mint(key, ISSUER, "other-node", now(), hour)),
            Err(TokenError::WrongAudience)
        );
        assert_eq!(
            check(&mint(key, ISSUER, "zhengyin", now() - Duration::hours(2), hour)),
            Err(TokenError::Expired)
        );
        assert_eq!(
            check(&mint(key, ISSUER, "zhengyin", now(), Duration::days(30))),
            Err(TokenError::TooLong)
        );
        assert_eq!(
            check(&mint(key, ISSUER, "zhengyin", now() + Duration::hours(1), hour)),
            Err(TokenError::NotYetValid)
        );
        // Within the leeway, a slightly early or late clock is fine.
        assert!(check(&mint(key, ISSUER, "zhengyin", now() + Duration::seconds(30), hour)).is_ok());

        // Tampered payload: the signature no longer matches.
        let token = mint(key, ISSUER, "zhengyin", now(), hour);
        let parts: Vec<&str> = token.split('.').collect();
        let mut claims: Value = serde_json::from_slice(&jws::parse_compact(&token).unwrap().payload).unwrap();
        claims["holder_code"] = json!("91110000MA01ABCD1X");
        use base64::Engine as _;
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string()),
            parts[2]
        );
        assert_eq!(check(&forged), Err(TokenError::BadSignature));
        // alg none, a header alg that is not the key's, crit: refused.
        let payload = serde_json::from_slice::<Value>(&jws::parse_compact(&token).unwrap().payload).unwrap();
        let unsigned = format!("{}.{}.", parts[0].replace('x', "y"), parts[1]);
        assert!(check(&unsigned).is_err());
        assert_eq!(
            check(&sign_raw(key, &json!({"alg": "none"}), &payload)),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            check(&sign_raw(key, &json!({"alg": "ES256"}), &payload)),
            Err(TokenError::BadSignature)
        );
        assert!(matches!(
            check(&sign_raw(key, &json!({"alg": "EdDSA", "crit": ["x"]}), &payload)),
            Err(TokenError::Malformed(_))
        ));
        // Holder claims: missing or with a bad check character.
        let mut bad = payload.clone();
        bad["holder_code"] = json!("91110000600037341X");
        assert!(matches!(
            check(&sign_raw(key, &json!({"alg": "EdDSA"}), &bad)),
            Err(TokenError::BadHolder(_))
        ));
        bad.as_object_mut().unwrap().remove("holder_code_type");
        assert!(matches!(
            check(&sign_raw(key, &json!({"alg": "EdDSA"}), &bad)),
            Err(TokenError::BadHolder(_))
        ));
        let mut no_exp = payload;
        no_exp.as_object_mut().unwrap().remove("exp");
        assert!(matches!(
            check(&sign_raw(key, &json!({"alg": "EdDSA"}), &no_exp)),
            Err(TokenError::Malformed(_))
        ));
        for junk in ["", "a.b.c", "not a token", "e30.e30.e30"] {
            assert!(check(junk).is_err(), "{junk}");
        }
    }
}
