//! An operator's answer to an incident, and what follows from it.
//!
//! A halting incident is resolved with a note: its source syncs again from the last verified
//! checkpoint. A conflict over an authority is resolved with a [`Decision`] as well:
//! - `keep_owner`: the authority stays where it is; the claimant's entries for it stay skipped
//!   (a later claim opens a new conflict).
//! - `accept_claimant`: the claimant owns the authority. Its next round fetches the entries the
//!   conflict skipped again, each with an inclusion proof under the verified checkpoint, and
//!   applies them in one write that marks the conflict replayed; from then on the former
//!   owner's entries for the authority are the conflicts.
//!
//! Every resolution is an entry of this node's log (`sync.incident.resolved`), so auditors see
//! who was kept or accepted, and when.

use serde_json::json;
use zhengyin_crypto::hash;
use zhengyin_model::licence::format_time;
use zhengyin_model::{Decision, Resolution, SyncIncident, Uscc};
use zhengyin_tlog::{leaf_hash, verify_inclusion, LeafIndex, TreeSize};

use super::{Feed, FeedError, SyncError, SyncSource};
use crate::{log, Engine, EngineError};

impl Engine {
    /// Resolves an incident (an operator checked the source). A conflict over an authority
    /// needs a decision; other incidents take none. Resolving twice changes nothing.
    pub async fn resolve_incident(
        &self,
        id: &str,
        note: &str,
        decision: Option<Decision>,
    ) -> Result<SyncIncident, EngineError> {
        let note = note.trim();
        if note.is_empty() || note.chars().count() > 2000 {
            return Err(EngineError::invalid(
                "a resolution note of 1 to 2000 characters is needed",
            ));
        }
        let mut incident = self
            .store
            .incident(id)?
            .ok_or_else(|| EngineError::IncidentNotFound(id.to_owned()))?;
        if incident.resolved.is_some() {
            return Ok(incident);
        }
        match (&incident.conflict, decision) {
            (Some(c), None) => {
                return Err(EngineError::invalid(format!(
                    "incident {id} is a conflict over authority {}: give a decision, keep_owner or accept_claimant",
                    c.authority
                )))
            }
            (None, Some(_)) => {
                return Err(EngineError::invalid(format!(
                    "incident {id} is not a conflict over an authority: it takes no decision"
                )))
            }
            (Some(c), Some(Decision::AcceptClaimant)) if c.registration.is_none() => {
                return Err(EngineError::invalid(format!(
                    "{} never registered authority {}: there is no claim to accept",
                    incident.origin, c.authority
                )))
            }
            (Some(c), Some(Decision::AcceptClaimant)) if c.unlisted > 0 => {
                return Err(EngineError::invalid(format!(
                    "more entries were skipped for authority {} than the incident lists; only keep_owner is possible",
                    c.authority
                )))
            }
            _ => {}
        }
        let now = self.clock.now();
        let entry = log::entry(json!({
            "event": "sync.incident.resolved",
            "incident": id,
            "origin": incident.origin,
            "kind": incident.kind.name(),
            "decision": decision.map(Decision::name),
            "authority": incident.conflict.as_ref().map(|c| c.authority.as_str()),
            "note_sha256": hash::sha256_hex(note.as_bytes()),
            "time": format_time(now),
        }));
        incident.resolved = Some(Resolution {
            at: now,
            note: note.to_owned(),
            decision,
        });
        self.ensure_signing()?;
        self.store.append_log(&entry)?.durable.await?;
        self.store.put_incident(&incident)?.await?;
        self.sync.update(&incident.origin, |s| {
            s.open_incidents.retain(|i| i != id);
            s.conflicts.retain(|_, i| i != id);
            if incident.pending() {
                s.hold(&incident);
            }
        });
        tracing::warn!(incident = id, origin = %incident.origin, decision = decision.map(Decision::name), "sync incident resolved by an operator");
        Ok(incident)
    }

    /// Applies the entries skipped for conflicts resolved in `source`'s favour, fetched again
    /// with inclusion proofs under the last verified checkpoint; each conflict in one write.
    pub(super) async fn replay_accepted<F: Feed>(
        &self,
        source: &SyncSource,
        feed: &F,
        page: u64,
    ) -> Result<(), SyncError> {
        let replays = self
            .sync
            .read()
            .get(&source.origin)
            .map(|s| s.replays.clone())
            .unwrap_or_default();
        for id in replays {
            let Some(mut incident) = self.store.incident(&id)? else {
                continue;
            };
            let Some(conflict) = incident.conflict.as_mut() else {
                continue;
            };
            let uscc = Uscc::parse(&conflict.authority)
                .map_err(|e| FeedError(format!("incident {id}: authority {}: {e}", conflict.authority)))?;
            let cursor = self
                .store
                .sync_cursors()?
                .into_iter()
                .find(|c| c.origin == source.origin)
                .ok_or_else(|| FeedError(format!("incident {id}: no verified checkpoint of {}", source.origin)))?;
            let mut entries = Vec::new();
            let mut objects = Vec::new();
            for chunk in conflict.skipped.chunks(page.max(1) as usize) {
                for &index in chunk {
                    let entry = feed
                        .entries(index, index + 1)
                        .await?
                        .into_iter()
                        .next()
                        .ok_or_else(|| FeedError(format!("entry {index} not served")))?;
                    let proof = feed.inclusion(index, cursor.size).await?;
                    if verify_inclusion(
                        LeafIndex(index),
                        TreeSize(cursor.size),
                        &leaf_hash(&entry),
                        &proof,
                        &cursor.root,
                    )
                    .is_err()
                    {
                        // Not an incident of its own: the entry was proven once already; a source
                        // that now serves another is caught by the next round's checks.
                        return Err(FeedError(format!(
                            "entry {index} is not included in the verified checkpoint of size {}",
                            cursor.size
                        ))
                        .into());
                    }
                    objects.extend(feed.objects(index, index + 1).await?);
                    entries.push((index, entry));
                }
            }
            conflict.replayed = true;
            let evidence = incident.evidence.clone();
            let accepting = [uscc];
            let now = self.clock.now();
            let mut apply = match self
                .prepare_page(source, feed, &entries, objects, now, (&accepting, &evidence))
                .await
            {
                Ok(apply) => apply,
                Err(SyncError::Incident(draft)) => {
                    return Err(self.incident(source, draft.kind, draft.detail, evidence).await)
                }
                Err(e) => return Err(e),
            };
            apply.expected = Some(cursor.clone());
            apply.cursor = cursor;
            apply.incidents.retain(|i| i.id != incident.id);
            apply.incidents.push(incident);
            self.ensure_signing()?;
            self.store.apply_sync(&apply)?.await?;
            self.applied(&apply);
            tracing::info!(incident = id, origin = %source.origin, entries = entries.len(), "skipped entries applied for an accepted claim");
        }
        Ok(())
    }
}
