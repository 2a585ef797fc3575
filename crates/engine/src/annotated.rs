//! 加注件: an annotated copy of a licence — the signed licence, bound to one use cause and one
//! expiry, signed again by this node's token key. Anyone holding the node's token public key can
//! check it offline; after its expiry it is refused.
//!
//! ```json
//! {"type": "AnnotatedCopy",
//!  "licence": { …the signed licence, unchanged… },
//!  "annotation": {"use_cause": "仅供办理企业银行开户使用", "issued": "…", "expires": "…", "node": "<log origin>"},
//!  "proof": {"type": "DataIntegrityProof", "cryptosuite": "eddsa-jcs-2022",
//!            "verificationMethod": "urn:zhengyin:token-key:sha256:<key id>", "created": "…",
//!            "proofPurpose": "assertionMethod", "proofValue": "z…"}}
//! ```
//!
//! The proof is made exactly like a licence's (W3C `jcs` cryptosuites: `H(JCS(proof config)) ||
//! H(JCS(copy without proof))`), so one verifier serves both.

use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};
use zhengyin_crypto::suite::{decode_proof_value, encode_proof_value};
use zhengyin_crypto::{Cryptosuite, PublicKey};
use zhengyin_model::access::check_use_cause;
use zhengyin_model::licence::format_time;
use zhengyin_model::{canonical, HolderRef, LicenceId, ReportBuilder, VerificationReport};

use crate::access::{body_of, holder_of};
use crate::presentation::PresentationRefusal;
use crate::{Engine, EngineError};

/// The `type` of an annotated copy.
pub const ANNOTATED_COPY: &str = "AnnotatedCopy";
/// Longest an annotated copy may remain valid.
pub const MAX_COPY_LIFETIME: Duration = Duration::days(90);

const REQUIRED: &[&str] = &["format", "copy_signature", "copy_validity", "licence"];

/// `urn:zhengyin:token-key:sha256:<hex>` of a token key.
pub fn token_key_method(key: &PublicKey) -> String {
    // The key id reads `sha256:<hex>`.
    format!("urn:zhengyin:token-key:{}", key.id())
}

/// The method copies made before it was corrected named (`…:sha256:sha256:<hex>`); such copies
/// still verify until they expire.
fn doubled_token_key_method(key: &PublicKey) -> String {
    format!("urn:zhengyin:token-key:sha256:{}", key.id())
}

fn proof_config(suite: Cryptosuite, method: &str, created: OffsetDateTime) -> Value {
    json!({
        "type": "DataIntegrityProof",
        "cryptosuite": suite.name(),
        "verificationMethod": method,
        "created": format_time(created),
        "proofPurpose": "assertionMethod",
    })
}

fn canonical_bytes(value: &Value) -> Result<Vec<u8>, EngineError> {
    canonical::to_canonical(value).map_err(|e| EngineError::invalid(e.to_string()))
}

impl Engine {
    /// A holder makes an annotated copy of one of its licences, for one use cause, until `until`
    /// (at most 90 days ahead). The canonical JSON of the copy.
    pub async fn annotate(
        &self,
        holder: &HolderRef,
        licence: &str,
        use_cause: &str,
        until: OffsetDateTime,
    ) -> Result<Vec<u8>, EngineError> {
        let key = self
            .token_key
            .as_ref()
            .ok_or(EngineError::Presentation(PresentationRefusal::Unavailable))?;
        let suite = Cryptosuite::for_algorithm(key.algorithm())
            .ok_or(EngineError::Presentation(PresentationRefusal::Unavailable))?;
        check_use_cause(use_cause).map_err(|e| EngineError::invalid(e.to_string()))?;
        let id = LicenceId::parse(licence)?;
        let stored = self.licence(&id)?;
        if holder_of(&body_of(&stored)?) != *holder {
            return Err(EngineError::Forbidden(
                "a holder annotates its own licences only".into(),
            ));
        }
        let now = self.signing_time();
        if until <= now || until > now + MAX_COPY_LIFETIME {
            return Err(EngineError::invalid(
                "until must be in the future and at most 90 days ahead",
            ));
        }
        let licence_value: Value =
            serde_json::from_slice(&stored.bytes).map_err(|e| EngineError::Signing(e.to_string()))?;
        let document = json!({
            "type": ANNOTATED_COPY,
            "licence": licence_value,
            "annotation": {
                "use_cause": use_cause,
                "issued": format_time(now),
                "expires": format_time(until),
                "node": self.log.origin,
            },
        });
        let config = proof_config(suite, &token_key_method(key.public_key()), now);
        let hash_data = suite.hash_data(&canonical_bytes(&config)?, &canonical_bytes(&document)?);
        let signature = key.sign(&hash_data).map_err(EngineError::signing)?;
        let mut proof = config;
        proof["proofValue"] = json!(encode_proof_value(&signature));
        let mut copy = document;
        copy["proof"] = proof;
        canonical_bytes(&copy)
    }

    /// The node's token public key (PEM) and its verification method, for offline checks of
    /// annotated copies; `None` without a token key.
    pub fn token_public_key(&self) -> Option<(String, String)> {
        let key = self.token_key.as_ref()?.public_key();
        Some((
            zhengyin_crypto::pem::encode("PUBLIC KEY", key.spki_der()),
            token_key_method(key),
        ))
    }

    /// Verifies an annotated copy here: its own proof with this node's token key, its expiry,
    /// and the licence inside with this node's registry and status.
    pub fn verify_annotated(&self, copy: &[u8]) -> VerificationReport {
        let now = self.clock.now();
        let key = self.token_key.as_ref().map(|k| k.public_key().clone());
        verify_annotated_copy(copy, key.as_ref(), now, |licence| self.verify(licence, None))
    }
}

/// Whether `proof` is a signature over `copy` (without its proof) by `key`.
fn copy_signature_verifies(copy: &Value, proof: &serde_json::Map<String, Value>, key: &PublicKey) -> bool {
    let suite = proof
        .get("cryptosuite")
        .and_then(Value::as_str)
        .and_then(Cryptosuite::from_name);
    let method = proof.get("verificationMethod").and_then(Value::as_str);
    let signature = proof.get("proofValue").and_then(Value::as_str).map(decode_proof_value);
    let (Some(suite), Some(method), Some(Ok(signature))) = (suite, method, signature) else {
        return false;
    };
    if method != token_key_method(key) && method != doubled_token_key_method(key) {
        return false;
    }
    let mut config = proof.clone();
    config.remove("proofValue");
    let mut document = copy.clone();
    if let Some(map) = document.as_object_mut() {
        map.remove("proof");
    }
    match (
        canonical::to_canonical(&Value::Object(config)),
        canonical::to_canonical(&document),
    ) {
        (Ok(c), Ok(d)) => suite.verify(key, &suite.hash_data(&c, &d), &signature).is_ok(),
        _ => false,
    }
}

/// Verifies an annotated copy: structure, its proof with `token_key`, its validity at `now` (an
/// expired copy is INVALID), and the licence inside with `verify_licence` (online, or offline
/// with certificates). Without the key the copy's signature is INDETERMINATE.
pub fn verify_annotated_copy(
    copy: &[u8],
    token_key: Option<&PublicKey>,
    now: OffsetDateTime,
    verify_licence: impl FnOnce(&[u8]) -> VerificationReport,
) -> VerificationReport {
    let mut r = ReportBuilder::new(REQUIRED);
    let value = match canonical::parse_strict(copy) {
        Ok(Value::Object(map)) if map.get("type").and_then(Value::as_str) == Some(ANNOTATED_COPY) => Value::Object(map),
        _ => {
            r.fail("format", "not an annotated copy (strict JSON with type AnnotatedCopy)");
            return r.finish(now);
        }
    };
    let (Some(licence), Some(annotation), Some(proof)) = (
        value.get("licence"),
        value.get("annotation").and_then(Value::as_object),
        value.get("proof").and_then(Value::as_object),
    ) else {
        r.fail("format", "licence, annotation and proof are required");
        return r.finish(now);
    };
    let time_of = |name: &str| {
        annotation
            .get(name)
            .and_then(Value::as_str)
            .and_then(|t| OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok())
    };
    let (Some(issued), Some(expires), Some(_cause)) = (
        time_of("issued"),
        time_of("expires"),
        annotation.get("use_cause").and_then(Value::as_str),
    ) else {
        r.fail("format", "the annotation needs use_cause, issued and expires");
        return r.finish(now);
    };
    if let Some(id) = licence.get("id").and_then(Value::as_str) {
        r.licence_id(id);
    }
    r.pass("format", "an annotated copy");

    // The copy's own signature.
    match token_key {
        None => {
            r.indeterminate("copy_signature", "no token key of the issuing node to check against");
        }
        Some(key) if copy_signature_verifies(&value, proof, key) => {
            r.pass("copy_signature", "signed by the node's token key");
        }
        Some(_) => {
            r.fail(
                "copy_signature",
                "the copy's signature does not verify with the node's token key",
            );
        }
    }

    // Its validity: refused after expiry.
    if now >= expires {
        r.fail("copy_validity", format!("the copy expired at {}", format_time(expires)));
    } else if now < issued {
        r.fail("copy_validity", "the copy is not valid yet");
    } else {
        r.pass("copy_validity", format!("valid until {}", format_time(expires)));
    }

    // The licence inside.
    let inner = serde_json::to_vec(licence).map(|bytes| verify_licence(&bytes));
    let copy_signed = r.checks_passed("copy_signature");
    if let (Ok(Some(holder)), true) = (inner.as_ref().map(|report| report.holder.clone()), copy_signed) {
        r.signed_holder(holder);
    }
    match inner.as_ref().map(|report| report.verdict) {
        Ok(zhengyin_model::Verdict::Valid) => r.pass("licence", "the licence inside verifies"),
        Ok(zhengyin_model::Verdict::Invalid) => {
            let why: Vec<&str> = inner
                .iter()
                .flat_map(|report| &report.checks)
                .filter(|c| c.outcome == zhengyin_model::Outcome::Failed)
                .map(|c| c.code)
                .collect();
            r.fail("licence", format!("the licence inside is INVALID ({})", why.join(", ")))
        }
        Ok(_) if inner.as_ref().is_ok_and(|report| report.store_unreadable) => r.unreadable(
            "licence",
            "the licence inside could not be checked against the registry",
        ),
        _ => r.indeterminate("licence", "the licence inside could not be verified completely"),
    };
    r.finish(now)
}
