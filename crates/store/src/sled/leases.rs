//! Leases on sled: one process opens a sled database, so they are held in its memory.

use std::time::{Duration, Instant};

use super::SledStore;
use crate::{LeaseStore, StoreError};

impl LeaseStore for SledStore {
    fn take_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let free = leases
            .get(name)
            .is_none_or(|(current, until)| current == holder || *until <= now);
        if free {
            leases.insert(name.to_owned(), (holder.to_owned(), now + ttl));
        }
        Ok(free)
    }

    fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        if leases.get(name).is_some_and(|(current, _)| current == holder) {
            leases.remove(name);
        }
        Ok(())
    }
}
