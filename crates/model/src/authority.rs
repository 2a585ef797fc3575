//! Issuing authorities (发证机构) as registered with the service.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::id::Uscc;

/// An issuing authority and the certificates it signs with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authority {
    /// Unified social credit code.
    pub uscc: Uscc,
    /// Name.
    pub name: String,
    /// Administrative level: `national`, `provincial`, `city` or `county`.
    pub level: String,
    /// Region code (6 digits).
    pub region_code: String,
    /// Signing certificates, each a PEM chain: the authority's certificate first, then the
    /// intermediates up to (not including) a trust anchor. The last one is used for new licences.
    pub certificates: Vec<String>,
    /// When the authority was registered (or last changed).
    #[serde(with = "time::serde::rfc3339")]
    pub registered: OffsetDateTime,
    /// The log origin of the node it was replicated from; `None` when registered here. The
    /// licences of a replicated authority change only by sync from that node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Keys retired from signing, by certificate: a retired key signs nothing more, and what
    /// it signed before stays valid.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<RetiredKey>,
}

/// A certificate whose key an authority retired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetiredKey {
    /// The certificate's id (as licences name it in `verificationMethod`).
    pub certificate: String,
    /// From when it signs nothing.
    #[serde(with = "time::serde::rfc3339")]
    pub retired: OffsetDateTime,
    /// Why (e.g. rotated, certificate expiring, device replaced).
    pub reason: String,
}

impl Authority {
    /// When the key of certificate `id` was retired, if it was.
    pub fn retired_at(&self, id: &str) -> Option<OffsetDateTime> {
        self.retired.iter().find(|r| r.certificate == id).map(|r| r.retired)
    }
}

/// The administrative levels an authority may have.
pub const LEVELS: [&str; 4] = ["national", "provincial", "city", "county"];

/// Checks a 6-digit administrative region code (GB/T 2260 shape).
pub fn check_region_code(code: &str) -> Result<(), &'static str> {
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) && code != "000000" {
        Ok(())
    } else {
        Err("region code must be 6 digits")
    }
}
