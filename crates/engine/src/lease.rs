//! Doing a job once at a time across every frontend of a shared store, with the store's leases:
//! a one-off job (seeding the demo) waits while another frontend holds its lease, then catches up
//! with what that one wrote, so that it repeats nothing already done; a recurring one (following
//! a sync source) runs its rounds only while this frontend holds the lease, renewed every round.

use std::future::Future;
use std::time::Duration;

use crate::{Engine, EngineError};

/// How long a lease lasts unless released: a job must finish well within it. A frontend that
/// dies holding one delays the others that long at most.
pub const LEASE_TIME: Duration = Duration::from_secs(60);

/// How often a waiting frontend asks for the lease again.
const RETRY: Duration = Duration::from_millis(100);

impl Engine {
    /// Runs `job` holding the lease `name`: waits while another frontend holds it, then follows
    /// the store (so that `job` sees what the other wrote) and runs `job`. The lease is released
    /// afterwards, whether `job` succeeded or not.
    pub async fn exclusively<T, E, Fut>(&self, name: &str, job: impl FnOnce() -> Fut) -> Result<T, E>
    where
        Fut: Future<Output = Result<T, E>>,
        E: From<EngineError>,
    {
        let lease = Lease::new(name, LEASE_TIME);
        while !self.hold(&lease)? {
            tokio::time::sleep(RETRY).await;
        }
        let outcome = match self.follow_store().await {
            Ok(_) => job().await,
            Err(e) => Err(e.into()),
        };
        if let Err(e) = self.store.release_lease(name, &lease.holder) {
            // It ends by itself after LEASE_TIME.
            tracing::warn!(error = %e, lease = name, "releasing a lease failed");
        }
        outcome
    }

    /// Whether this frontend holds `lease` now: takes it if it is free or expired, renews it if
    /// already held.
    pub fn hold(&self, lease: &Lease) -> Result<bool, EngineError> {
        Ok(self.store.take_lease(&lease.name, &lease.holder, lease.time)?)
    }
}

/// A lease as one holder (this frontend, for one job) asks for it.
#[derive(Debug, Clone)]
pub struct Lease {
    name: String,
    holder: String,
    time: Duration,
}

impl Lease {
    /// The lease `name`, lasting `time` from each taking, for a holder of its own.
    pub fn new(name: &str, time: Duration) -> Self {
        Self {
            name: name.to_owned(),
            holder: format!("{:016x}", zhengyin_crypto::random_u64()),
            time,
        }
    }
}
