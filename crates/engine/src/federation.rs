//! Who owns what in a federation of nodes: the ownership map an upper node (a province)
//! publishes of the authorities it aggregates, and the copy a lower node (a city) keeps of it.
//!
//! The map is a C2SP signed note under the publisher's log key, versioned by the publisher's log
//! size when it was made (so it only grows). Its body, one fact per line:
//!
//! ```text
//! zhengyin/ownership/v1                                  <- kind: never parses as a checkpoint
//! publisher zhengyin.example/province-220000             <- the publisher's origin (its key's name)
//! version 1042                                           <- its log size then
//! issued 2026-12-04T19:00:00Z
//! authority 11220000MB1234567X zhengyin.example/city-220100   <- USCC, owning node's origin
//! ```
//!
//! A node that holds a map refuses to register (or issue for, or change) an authority the map
//! says another node owns. Seals are not in the map: their esIDs are node-local serials.
//! What the upper node does when an entry conflicts anyway is in [`crate::sync`].

use std::collections::BTreeMap;

use time::OffsetDateTime;
use zhengyin_model::licence::format_time;
use zhengyin_model::Uscc;
use zhengyin_tlog::{open_note, sign_note, NoteVerifier};

use crate::{Engine, EngineError};

/// The first line of a map's body.
const KIND: &str = "zhengyin/ownership/v1";

/// Most authorities a map lists.
const MAX_AUTHORITIES: usize = 100_000;

/// Why a published map was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// The signature does not verify, or the note is malformed.
    #[error("the ownership map's signature: {0}")]
    Signature(String),
    /// The body is not a map.
    #[error("the ownership map is malformed: {0}")]
    Malformed(String),
    /// Signed by the expected key but naming another publisher.
    #[error("the ownership map names publisher {0}, not the upstream node")]
    Publisher(String),
    /// Older than the map already held.
    #[error("the ownership map's version {got} is older than the version {held} already held")]
    RolledBack {
        /// The version received.
        got: u64,
        /// The version held.
        held: u64,
    },
}

/// A published ownership map, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnershipMap {
    /// The origin of the node that signed it.
    pub publisher: String,
    /// The publisher's log size when it was made.
    pub version: u64,
    /// When it was made.
    pub issued: OffsetDateTime,
    /// Each authority's owning node (its log origin).
    pub authorities: BTreeMap<Uscc, String>,
}

impl OwnershipMap {
    /// The note body.
    pub fn body(&self) -> String {
        let mut body = format!(
            "{KIND}\npublisher {}\nversion {}\nissued {}\n",
            self.publisher,
            self.version,
            format_time(self.issued)
        );
        for (uscc, owner) in &self.authorities {
            body.push_str(&format!("authority {uscc} {owner}\n"));
        }
        body
    }

    /// Reads a note body.
    pub fn parse_body(body: &str) -> Result<Self, MapError> {
        let bad = |what: &str| MapError::Malformed(what.to_owned());
        let mut lines = body
            .strip_suffix('\n')
            .ok_or_else(|| bad("no final newline"))?
            .split('\n');
        if lines.next() != Some(KIND) {
            return Err(bad("not an ownership map"));
        }
        let mut field = |name: &str| {
            lines
                .next()
                .and_then(|l| l.strip_prefix(name))
                .and_then(|l| l.strip_prefix(' '))
                .map(str::to_owned)
                .ok_or_else(|| bad(&format!("no {name} line")))
        };
        let publisher = field("publisher")?;
        let version = field("version")?.parse().map_err(|_| bad("version is not a number"))?;
        let issued = OffsetDateTime::parse(&field("issued")?, &time::format_description::well_known::Rfc3339)
            .map_err(|_| bad("issued is not an RFC 3339 time"))?;
        let mut authorities = BTreeMap::new();
        for line in lines {
            let mut words = line.split(' ');
            let (Some("authority"), Some(uscc), Some(owner), None) =
                (words.next(), words.next(), words.next(), words.next())
            else {
                return Err(bad("a line is not `authority <USCC> <origin>`"));
            };
            let uscc = Uscc::parse(uscc).map_err(|e| MapError::Malformed(e.to_string()))?;
            if owner.is_empty() || authorities.insert(uscc, owner.to_owned()).is_some() {
                return Err(bad("an authority is listed twice or without an owner"));
            }
            if authorities.len() > MAX_AUTHORITIES {
                return Err(bad("too many authorities"));
            }
        }
        Ok(Self {
            publisher,
            version,
            issued,
            authorities,
        })
    }
}

/// What an operator sees of the map a node holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OwnershipView {
    /// Who signed it.
    pub publisher: String,
    /// Its version.
    pub version: u64,
    /// When the publisher made it.
    #[serde(with = "time::serde::rfc3339")]
    pub issued: OffsetDateTime,
    /// Authorities it lists.
    pub authorities: usize,
}

impl Engine {
    /// This node's ownership map, signed: every authority it holds, with the node it comes from
    /// (this one for its own).
    pub fn ownership_map(&self) -> Result<String, EngineError> {
        let version = self.store.log_size()?.0;
        let authorities = self
            .read_registry()
            .authorities
            .iter()
            .map(|(uscc, a)| {
                let owner = a.authority.origin.clone().unwrap_or_else(|| self.log.origin.clone());
                (uscc.clone(), owner)
            })
            .collect();
        let map = OwnershipMap {
            publisher: self.log.origin.clone(),
            version,
            issued: self.clock.now(),
            authorities,
        };
        sign_note(&map.body(), &self.log.origin, &*self.log.signer)
            .map_err(|e| EngineError::invalid(format!("signing the ownership map: {e}")))
    }

    /// Takes in the map the upstream node published, checked against its log key: refused if
    /// the signature fails, it names another publisher, or it is older than the one held.
    pub fn adopt_ownership_map(&self, note: &str, upstream: &NoteVerifier) -> Result<OwnershipView, MapError> {
        let body = open_note(note, upstream).map_err(|e| MapError::Signature(e.to_string()))?;
        let map = OwnershipMap::parse_body(body)?;
        if map.publisher != upstream.name() {
            return Err(MapError::Publisher(map.publisher));
        }
        let mut held = self.ownership.write().unwrap_or_else(|p| p.into_inner());
        if let Some(current) = held.as_ref() {
            if map.version < current.version {
                return Err(MapError::RolledBack {
                    got: map.version,
                    held: current.version,
                });
            }
        }
        let view = view(&map);
        *held = Some(map);
        Ok(view)
    }

    /// The ownership map this node holds, if any.
    pub fn ownership(&self) -> Option<OwnershipView> {
        self.ownership
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(view)
    }

    /// The node the held map says owns `uscc`, when that is not this node.
    pub(crate) fn owned_elsewhere(&self, uscc: &Uscc) -> Option<(String, u64)> {
        let held = self.ownership.read().unwrap_or_else(|p| p.into_inner());
        let map = held.as_ref()?;
        map.authorities
            .get(uscc)
            .filter(|owner| **owner != self.log.origin)
            .map(|owner| (owner.clone(), map.version))
    }
}

fn view(map: &OwnershipMap) -> OwnershipView {
    OwnershipView {
        publisher: map.publisher.clone(),
        version: map.version,
        issued: map.issued,
        authorities: map.authorities.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_reads_back_and_refuses_what_is_not_one() {
        let map = OwnershipMap {
            publisher: "zhengyin.example/province-220000".to_owned(),
            version: 42,
            issued: OffsetDateTime::UNIX_EPOCH,
            authorities: [(
                Uscc::parse("11100000000013338W").unwrap_or_else(|e| panic!("{e}")),
                "zhengyin.example/city-220100".to_owned(),
            )]
            .into_iter()
            .collect(),
        };
        assert_eq!(OwnershipMap::parse_body(&map.body()), Ok(map.clone()));
        let checkpoint = "zhengyin.example/province-220000\n42\nAAAA\n";
        assert!(OwnershipMap::parse_body(checkpoint).is_err());
        let twice = format!("{}authority 11100000000013338W other\n", map.body());
        assert!(OwnershipMap::parse_body(&twice).is_err());
        let extra = map.body().replace("authority 1", "authority  1");
        assert!(OwnershipMap::parse_body(&extra).is_err());
        assert!(zhengyin_tlog::Checkpoint::parse_body(&map.body()).is_err());
    }
}
