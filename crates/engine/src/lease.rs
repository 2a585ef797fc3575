//! Doing a job once at a time across every frontend of a shared store (seeding the demo), with
//! the store's leases: a frontend waits while another holds the job's lease, then catches up with
//! what that one wrote before it starts, so that it repeats nothing already done.

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
        let holder = format!("{:016x}", zhengyin_crypto::random_u64());
        while !self
            .store
            .take_lease(name, &holder, LEASE_TIME)
            .map_err(EngineError::Store)?
        {
            tokio::time::sleep(RETRY).await;
        }
        let outcome = match self.follow_store().await {
            Ok(_) => job().await,
            Err(e) => Err(e.into()),
        };
        if let Err(e) = self.store.release_lease(name, &holder) {
            // It ends by itself after LEASE_TIME.
            tracing::warn!(error = %e, lease = name, "releasing a lease failed");
        }
        outcome
    }
}
