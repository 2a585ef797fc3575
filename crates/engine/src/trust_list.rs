//! Mutual recognition between regions (互通互认): the trust list a national node (or any scheme
//! operator) publishes, and what a node configured with one does with it.
//!
//! The list is modelled on ETSI TS 119 612 trusted lists, in JSON: a scheme operator, a
//! sequence number that only grows, an issue time and the time of the next update (past it,
//! the list no longer vouches for anything), and per region its trust anchors, the logs of its
//! nodes (origin, verifier key, base URL — the status endpoint), the authorities it vouches
//! for, the licence types recognised from it and the keys of its logs' witnesses. It travels
//! as a JWS compact serialisation (`typ` [`JWS_TYPE`]) signed with the operator's key;
//! `api-spec/trust-list.md` has a worked example.
//!
//! A node holding a list follows each other region's logs as sync sources
//! ([`Engine::recognised_sources`]), applying only the authorities and licence types the list
//! names, and relaying nothing into its own log (recognition is not aggregation: a region's
//! licences stay that region's). Verification names the list and region that vouched; while
//! the held list is past its next update, status from those regions is in doubt.
//!
//! This module does not fetch lists or run the sources: the server does.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use zhengyin_crypto::jws::{self, alg_name};
use zhengyin_crypto::{PublicKey, Signer, TrustAnchors};
use zhengyin_model::licence::format_time;
use zhengyin_model::{TypeCode, Uscc};
use zhengyin_tlog::NoteVerifier;

use crate::sync::SyncSource;
use crate::Engine;

/// The `format` of a list this code reads.
pub const FORMAT: &str = "zhengyin/trust-list/v1";
/// The JWS `typ` of a signed list (so no other JWS the operator's key signs reads as one).
pub const JWS_TYPE: &str = "zhengyin-trust-list+jws";
/// Largest signed list accepted, in bytes.
pub const MAX_SIGNED_LEN: usize = 8 << 20;

/// A trust list, as its operator signs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustList {
    /// Always [`FORMAT`].
    pub format: String,
    /// Who publishes the list (ETSI: scheme operator name).
    pub scheme_operator: String,
    /// Grows by at least one with every list the operator issues.
    pub sequence: u64,
    /// When the list was issued.
    #[serde(with = "time::serde::rfc3339")]
    pub issued: OffsetDateTime,
    /// When the next list will be issued at the latest; past it, this one vouches for nothing.
    #[serde(with = "time::serde::rfc3339")]
    pub next_update: OffsetDateTime,
    /// The regions whose licences are recognised.
    pub regions: Vec<TrustedRegion>,
}

/// One region of a trust list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedRegion {
    /// Its administrative division code (GB/T 2260), six digits.
    pub region: String,
    /// Its name.
    pub name: String,
    /// The roots its authorities' certificates chain to, PEM.
    pub trust_anchors: Vec<String>,
    /// The signature logs of its nodes: where status comes from.
    pub logs: Vec<TrustedLog>,
    /// The authorities (USCC) vouched for.
    pub authorities: Vec<Uscc>,
    /// The licence types recognised from this region.
    pub licence_types: Vec<TypeCode>,
    /// Verifier keys of the witnesses of its logs (C2SP note keys).
    #[serde(default)]
    pub witness_keys: Vec<String>,
}

/// One node's log in a trust list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedLog {
    /// The origin line of its checkpoints.
    pub origin: String,
    /// Its checkpoints' verifier key (`<origin>+<hash>+<key>`).
    pub key: String,
    /// Its API's base URL: its log, objects and status.
    pub url: String,
}

/// Why a list was refused. The list held before stays.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustListError {
    /// Not a signed list this code reads.
    #[error("the trust list is malformed: {0}")]
    Malformed(String),
    /// The operator's signature does not verify.
    #[error("the trust list's signature does not verify with the operator's key: {0}")]
    Signature(String),
    /// Older than the list held.
    #[error("the trust list's sequence number {got} is older than the {held} already held")]
    RolledBack {
        /// The sequence received.
        got: u64,
        /// The sequence held.
        held: u64,
    },
    /// The sequence held, with other contents.
    #[error("the trust list reuses sequence number {0} with other contents")]
    Reused(u64),
    /// Past its next update.
    #[error("the trust list expired: its next update was due at {0}")]
    Expired(String),
}

impl TrustList {
    /// Checks what a signature cannot: the format, and every region's anchors, logs, keys and
    /// URLs well formed, no region, origin or authority listed twice.
    pub fn check(&self) -> Result<(), TrustListError> {
        let bad = |why: String| Err(TrustListError::Malformed(why));
        if self.format != FORMAT {
            return bad(format!("format {:?}, not {FORMAT}", self.format));
        }
        if self.next_update <= self.issued {
            return bad("next_update is not after issued".to_owned());
        }
        let (mut regions, mut origins, mut authorities) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        for r in &self.regions {
            let at = |why: &str| TrustListError::Malformed(format!("region {}: {why}", r.region));
            if r.region.len() != 6 || !r.region.bytes().all(|b| b.is_ascii_digit()) {
                return Err(at("the region code is not six digits"));
            }
            if !regions.insert(&r.region) {
                return Err(at("listed twice"));
            }
            let anchors =
                TrustAnchors::from_pem(&r.trust_anchors.concat()).map_err(|e| at(&format!("trust anchors: {e}")))?;
            if anchors.certificates().len() < r.trust_anchors.len().max(1) {
                return Err(at("every trust anchor must be one PEM certificate"));
            }
            if r.logs.is_empty() {
                return Err(at("no log"));
            }
            for log in &r.logs {
                let verifier = NoteVerifier::parse(&log.key).map_err(|e| at(&format!("log {}: {e}", log.origin)))?;
                if verifier.name() != log.origin {
                    return Err(at(&format!("log {}: the key is named {}", log.origin, verifier.name())));
                }
                if !(log.url.starts_with("http://") || log.url.starts_with("https://")) {
                    return Err(at(&format!("log {}: the URL is not http(s)", log.origin)));
                }
                if !origins.insert(&log.origin) {
                    return Err(at(&format!("log {} listed twice", log.origin)));
                }
            }
            for uscc in &r.authorities {
                if !authorities.insert(uscc) {
                    return Err(at(&format!("authority {uscc} listed twice")));
                }
            }
            for key in &r.witness_keys {
                NoteVerifier::parse(key).map_err(|e| at(&format!("witness key: {e}")))?;
            }
        }
        Ok(())
    }

    /// The list signed as a JWS with the operator's key.
    pub fn sign(&self, signer: &dyn Signer) -> Result<String, TrustListError> {
        self.check()?;
        let alg = alg_name(signer.public_key().algorithm())
            .ok_or_else(|| TrustListError::Malformed("the operator's key has no JWS algorithm".to_owned()))?;
        let header = serde_json::json!({"alg": alg, "typ": JWS_TYPE});
        let payload = serde_json::to_vec(self).map_err(|e| TrustListError::Malformed(e.to_string()))?;
        jws::sign_compact(signer, header.to_string().as_bytes(), &payload)
            .map_err(|e| TrustListError::Signature(e.to_string()))
    }

    /// A signed list, checked: the signature with `key` (the algorithm is the key's, never the
    /// header's), the contents, that it is not older than the `held` sequence number (nor that
    /// number with other contents: `held_list`), and, when `now` is given, that it has not
    /// expired.
    pub fn open(
        signed: &str,
        key: &PublicKey,
        held: Option<&TrustList>,
        now: Option<OffsetDateTime>,
    ) -> Result<Self, TrustListError> {
        let compact = jws::parse_compact_within(signed.trim(), MAX_SIGNED_LEN)
            .map_err(|e| TrustListError::Malformed(e.to_string()))?;
        let header: serde_json::Value = serde_json::from_slice(&compact.header)
            .map_err(|_| TrustListError::Malformed("the JWS header is not JSON".to_owned()))?;
        if header["typ"] != JWS_TYPE {
            return Err(TrustListError::Malformed(format!("the JWS typ is not {JWS_TYPE}")));
        }
        let alg = alg_name(key.algorithm());
        if alg.is_none() || header["alg"].as_str() != alg {
            return Err(TrustListError::Signature(format!(
                "the header's alg {} is not the key's",
                header["alg"]
            )));
        }
        compact
            .verify(key)
            .map_err(|e| TrustListError::Signature(e.to_string()))?;
        let list: TrustList =
            serde_json::from_slice(&compact.payload).map_err(|e| TrustListError::Malformed(e.to_string()))?;
        list.check()?;
        if let Some(held) = held {
            if list.sequence < held.sequence {
                return Err(TrustListError::RolledBack {
                    got: list.sequence,
                    held: held.sequence,
                });
            }
            if list.sequence == held.sequence && list != *held {
                return Err(TrustListError::Reused(list.sequence));
            }
        }
        if let Some(now) = now {
            if now > list.next_update {
                return Err(TrustListError::Expired(format_time(list.next_update)));
            }
        }
        Ok(list)
    }

    /// How reports name this list.
    pub fn label(&self) -> String {
        format!("trust list of {} sequence {}", self.scheme_operator, self.sequence)
    }
}

/// What a node recognises of a region it follows through a trust list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recognition {
    /// The region's code.
    pub region: String,
    /// The authorities whose entries apply; the others are passed over.
    pub authorities: BTreeSet<Uscc>,
    /// The licence types whose licences apply.
    pub licence_types: BTreeSet<TypeCode>,
}

/// A log of another region to follow, as the held list describes it.
#[derive(Debug, Clone)]
pub struct RecognisedLog {
    /// The source (origin, key, anchors, what is recognised).
    pub source: SyncSource,
    /// Its base URL.
    pub url: String,
}

/// The list a node holds, and what it refused since.
#[derive(Debug, Default)]
pub(crate) struct HeldTrustList {
    list: Option<TrustList>,
    signed: String,
    /// Every origin a list held since start vouched for: one that a newer list drops is no
    /// longer vouched for.
    vouched: BTreeSet<String>,
    refused: Option<String>,
}

/// What an operator sees of the held list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrustListView {
    /// Its operator.
    pub scheme_operator: String,
    /// Its sequence number.
    pub sequence: u64,
    /// When it was issued.
    #[serde(with = "time::serde::rfc3339")]
    pub issued: OffsetDateTime,
    /// When the next one is due.
    #[serde(with = "time::serde::rfc3339")]
    pub next_update: OffsetDateTime,
    /// Whether it is past its next update.
    pub expired: bool,
    /// Region code → the origins of its logs.
    pub regions: BTreeMap<String, Vec<String>>,
    /// The last list refused since this one was adopted, and why.
    pub refused: Option<String>,
}

impl Engine {
    /// Takes in a trust list fetched from its operator: refused (and the refusal kept for
    /// operators) if its signature fails, it is older than the one held, or it has expired.
    pub fn adopt_trust_list(&self, signed: &str, key: &PublicKey) -> Result<TrustListView, TrustListError> {
        self.take_trust_list(signed, key, Some(self.clock.now()))
    }

    /// Takes back the list this node held before it stopped (kept by the server): checked like
    /// a fetched one except for expiry, so that an older list is refused after a restart too.
    pub fn restore_trust_list(&self, signed: &str, key: &PublicKey) -> Result<TrustListView, TrustListError> {
        self.take_trust_list(signed, key, None)
    }

    fn take_trust_list(
        &self,
        signed: &str,
        key: &PublicKey,
        now: Option<OffsetDateTime>,
    ) -> Result<TrustListView, TrustListError> {
        let mut held = self.trust_list.write().unwrap_or_else(|p| p.into_inner());
        let list = match TrustList::open(signed, key, held.list.as_ref(), now) {
            Ok(list) => list,
            Err(e) => {
                held.refused = Some(format!("{e} (at {})", format_time(self.clock.now())));
                return Err(e);
            }
        };
        let view = view(&list, None, self.clock.now());
        if held.list.as_ref() != Some(&list) {
            tracing::info!(operator = %list.scheme_operator, sequence = list.sequence, "trust list adopted");
            held.refused = None;
            for region in &list.regions {
                let anchors = TrustAnchors::from_pem(&region.trust_anchors.concat()).unwrap_or_default();
                for log in region.logs.iter().filter(|l| l.origin != self.log.origin) {
                    held.vouched.insert(log.origin.clone());
                    self.bind_anchors(&log.origin, anchors.clone());
                }
            }
            held.list = Some(list);
            held.signed = signed.trim().to_owned();
        }
        Ok(view)
    }

    /// The held list as signed (for the server to keep across restarts).
    pub fn trust_list_signed(&self) -> Option<String> {
        let held = self.trust_list.read().unwrap_or_else(|p| p.into_inner());
        held.list.as_ref().map(|_| held.signed.clone())
    }

    /// The held list, for operators.
    pub fn trust_list(&self) -> Option<TrustListView> {
        let held = self.trust_list.read().unwrap_or_else(|p| p.into_inner());
        let list = held.list.as_ref()?;
        Some(view(list, held.refused.clone(), self.clock.now()))
    }

    /// The other regions' logs the held list vouches for, to follow as sync sources.
    pub fn recognised_sources(&self) -> Vec<RecognisedLog> {
        let held = self.trust_list.read().unwrap_or_else(|p| p.into_inner());
        let Some(list) = held.list.as_ref() else {
            return Vec::new();
        };
        let mut sources = Vec::new();
        for region in &list.regions {
            let anchors = TrustAnchors::from_pem(&region.trust_anchors.concat()).unwrap_or_default();
            let recognition = Recognition {
                region: region.region.clone(),
                authorities: region.authorities.iter().cloned().collect(),
                licence_types: region.licence_types.iter().cloned().collect(),
            };
            for log in region.logs.iter().filter(|l| l.origin != self.log.origin) {
                let Ok(verifier) = NoteVerifier::parse(&log.key) else {
                    continue;
                };
                sources.push(RecognisedLog {
                    source: SyncSource {
                        origin: log.origin.clone(),
                        verifier,
                        anchors: anchors.clone(),
                        recognition: Some(recognition.clone()),
                    },
                    url: log.url.clone(),
                });
            }
        }
        sources
    }

    /// Who vouches for `origin` through the held list (`None` for a source that is no list's),
    /// and the doubt, if any: the list expired, or a newer one no longer names the origin.
    pub(crate) fn vouched(&self, origin: &str, now: OffsetDateTime) -> Option<(String, Option<String>)> {
        let held = self.trust_list.read().unwrap_or_else(|p| p.into_inner());
        if !held.vouched.contains(origin) {
            return None;
        }
        let list = held.list.as_ref()?;
        let Some(region) = list.regions.iter().find(|r| r.logs.iter().any(|l| l.origin == origin)) else {
            return Some((
                list.label(),
                Some(format!("{origin} is no longer in the {}", list.label())),
            ));
        };
        let label = format!(
            "region {} {}, vouched for by the {}",
            region.region,
            region.name,
            list.label()
        );
        let doubt = (now > list.next_update).then(|| {
            format!(
                "the {} passed its next update at {}: region {} is not vouched for until a newer list is held",
                list.label(),
                format_time(list.next_update),
                region.region
            )
        });
        Some((label, doubt))
    }
}

fn view(list: &TrustList, refused: Option<String>, now: OffsetDateTime) -> TrustListView {
    TrustListView {
        scheme_operator: list.scheme_operator.clone(),
        sequence: list.sequence,
        issued: list.issued,
        next_update: list.next_update,
        expired: now > list.next_update,
        regions: list
            .regions
            .iter()
            .map(|r| (r.region.clone(), r.logs.iter().map(|l| l.origin.clone()).collect()))
            .collect(),
        refused,
    }
}
