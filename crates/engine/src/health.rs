//! Readiness: whether this node can do its work now, and if not, which part cannot.

use time::OffsetDateTime;

use crate::Engine;

/// The part of a node that is not ready, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotReady {
    /// `log.behind`, `store.unwritable`, `log.signer` or `sync.stale`.
    pub part: &'static str,
    /// What was found, for the operator.
    pub detail: String,
}

/// A fixed message the log signer signs to show it can (never a checkpoint: it names no origin).
const SIGNER_PROBE: &[u8] = b"zhengyin readiness probe";

impl Engine {
    /// Checks, in order, that signing is not halted, that the store takes a durable write, that
    /// the log's signer signs, and that every source this node aggregates was confirmed current
    /// within the maximum staleness (a source not yet heard from counts from this node's start).
    /// Blocking: it writes to the store.
    pub fn readiness(&self) -> Result<(), NotReady> {
        if let Some(why) = self.signing_halted() {
            return Err(NotReady {
                part: "log.behind",
                detail: why,
            });
        }
        self.store.check_writable().map_err(|e| NotReady {
            part: "store.unwritable",
            detail: format!("the store does not take a durable write: {e}"),
        })?;
        self.log.signer.sign(SIGNER_PROBE).map_err(|e| NotReady {
            part: "log.signer",
            detail: format!("the log's checkpoint key does not sign: {e}"),
        })?;
        let now = self.clock.now();
        for source in self.sync_sources() {
            let confirmed = source.synced_at.unwrap_or(self.started);
            if now - confirmed > self.max_staleness {
                return Err(NotReady {
                    part: "sync.stale",
                    detail: stale_detail(&source.origin, source.synced_at, now - confirmed, self.max_staleness),
                });
            }
        }
        Ok(())
    }
}

fn stale_detail(origin: &str, synced_at: Option<OffsetDateTime>, age: time::Duration, max: time::Duration) -> String {
    let heard = if synced_at.is_some() {
        "was last confirmed current"
    } else {
        "has not been confirmed current since this node started"
    };
    format!(
        "source {origin} {heard} {} s ago, more than the maximum staleness of {} s",
        age.whole_seconds(),
        max.whole_seconds()
    )
}
