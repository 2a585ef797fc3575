//! The entries of a source's log this node aggregates, read: authorities, licences, seals and
//! their status changes. The others (use records, grants, objections…) stay local.

use serde_json::Value;
use time::OffsetDateTime;
use zhengyin_crypto::hash;
use zhengyin_model::licence::format_time;
use zhengyin_model::{LicenceId, RevocationReason, SealChange, SealState, Status, StatusChange, Uscc};

/// The events a node aggregates; the others (use records, grants, objections…) stay local.
pub(super) enum Event {
    Authority {
        uscc: Uscc,
        certificates: Vec<String>,
    },
    Licence {
        id: LicenceId,
        sha256: String,
        supersedes: Option<LicenceId>,
        time: OffsetDateTime,
    },
    Status {
        id: LicenceId,
        change: StatusPattern,
    },
    Seal {
        es_id: String,
        sha256: String,
        time: OffsetDateTime,
    },
    SealStatus {
        es_id: String,
        change: StatusPattern,
    },
}

/// A status change as the entry states it; the free text only as its SHA-256.
pub(super) struct StatusPattern {
    state: String,
    reason: Option<RevocationReason>,
    text_sha256: Option<String>,
    by: Option<LicenceId>,
    effective: OffsetDateTime,
    recorded: OffsetDateTime,
}

/// The innermost event of an entry (`sync.applied` entries wrap the event they replicate).
pub(super) fn innermost(entry: &Value) -> &Value {
    let mut e = entry;
    while e["event"] == "sync.applied" {
        e = &e["entry"];
    }
    e
}

fn field<'a>(e: &'a Value, name: &str) -> Result<&'a str, String> {
    e[name].as_str().ok_or_else(|| format!("no `{name}`"))
}

fn time_field(e: &Value, name: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(field(e, name)?, &time::format_description::well_known::Rfc3339)
        .map_err(|_| format!("`{name}` is not a time"))
}

fn licence_field(e: &Value) -> Result<LicenceId, String> {
    LicenceId::parse(field(e, "licence")?).map_err(|e| e.to_string())
}

fn status_pattern(e: &Value) -> Result<StatusPattern, String> {
    let status = &e["status"];
    Ok(StatusPattern {
        state: field(status, "state")?.to_owned(),
        reason: status
            .get("reason")
            .map(|r| serde_json::from_value(r.clone()).map_err(|e| e.to_string()))
            .transpose()?,
        text_sha256: status["note_sha256"]
            .as_str()
            .or(status["reason_sha256"].as_str())
            .map(str::to_owned),
        by: status["by"]
            .as_str()
            .map(|s| LicenceId::parse(s).map_err(|e| e.to_string()))
            .transpose()?,
        effective: time_field(e, "effective")?,
        recorded: time_field(e, "time")?,
    })
}

pub(super) fn parse_event(e: &Value) -> Result<Option<Event>, String> {
    let event = match e["event"].as_str() {
        Some("authority.registered") => Event::Authority {
            uscc: Uscc::parse(field(e, "authority")?).map_err(|e| e.to_string())?,
            certificates: e["certificates"]
                .as_array()
                .ok_or("no `certificates`")?
                .iter()
                .map(|c| c.as_str().map(str::to_owned).ok_or("a certificate id is not a string"))
                .collect::<Result<_, _>>()?,
        },
        // A retirement changes the authority's record: it travels as the record does.
        Some("authority.key_retired") => Event::Authority {
            uscc: Uscc::parse(field(e, "authority")?).map_err(|e| e.to_string())?,
            certificates: vec![field(e, "certificate")?.to_owned()],
        },
        Some("licence.issued" | "licence.updated") => Event::Licence {
            id: licence_field(e)?,
            sha256: field(e, "licence_sha256")?.to_owned(),
            supersedes: e["supersedes"]
                .as_str()
                .map(|s| LicenceId::parse(s).map_err(|e| e.to_string()))
                .transpose()?,
            time: time_field(e, "time")?,
        },
        Some("licence.revoked" | "licence.suspended" | "licence.reinstated" | "licence.superseded") => Event::Status {
            id: licence_field(e)?,
            change: status_pattern(e)?,
        },
        Some("seal.made") => Event::Seal {
            es_id: field(e, "es_id")?.to_owned(),
            sha256: field(e, "seal_sha256")?.to_owned(),
            time: time_field(e, "time")?,
        },
        Some("seal.suspended" | "seal.revoked" | "seal.reinstated") => Event::SealStatus {
            es_id: field(e, "es_id")?.to_owned(),
            change: status_pattern(e)?,
        },
        _ => return Ok(None),
    };
    Ok(Some(event))
}

impl StatusPattern {
    /// Whether a stored change is the one the entry states (entries give times in whole seconds).
    pub(super) fn same_times<S>(&self, c: &zhengyin_model::licence::Change<S>) -> bool {
        format_time(c.effective) == format_time(self.effective) && format_time(c.recorded) == format_time(self.recorded)
    }

    /// The free text, checked against the entry's hash (empty when the entry has none).
    fn text(&self, text: Option<&str>) -> Result<String, String> {
        match (&self.text_sha256, text) {
            (Some(sha), Some(t)) if hash::sha256_hex(t.as_bytes()) == *sha => Ok(t.to_owned()),
            (Some(_), _) => Err("the status text does not match the entry's hash".to_owned()),
            (None, _) => Ok(String::new()),
        }
    }

    /// The seal status change, with its reason checked against the entry.
    pub(super) fn seal_change(self, text: Option<&str>) -> Result<SealChange, String> {
        let reason = self.text(text)?;
        let status = match self.state.as_str() {
            "active" => SealState::Active,
            "suspended" => SealState::Suspended { reason },
            "revoked" => SealState::Revoked { reason },
            other => return Err(format!("seal status `{other}` is not understood")),
        };
        Ok(SealChange {
            status,
            effective: self.effective,
            recorded: self.recorded,
        })
    }

    /// The status change, with its free text checked against the entry.
    pub(super) fn change(self, text: Option<&str>) -> Result<StatusChange, String> {
        let text = self.text(text)?;
        let status = match (self.state.as_str(), self.reason, self.by) {
            ("revoked", Some(reason), _) => Status::Revoked { reason, note: text },
            ("suspended", _, _) => Status::Suspended { reason: text },
            ("valid", _, _) => Status::Valid,
            ("superseded", _, Some(by)) => Status::Superseded { by },
            _ => return Err(format!("status `{}` is not understood", self.state)),
        };
        Ok(StatusChange {
            status,
            effective: self.effective,
            recorded: self.recorded,
        })
    }
}
