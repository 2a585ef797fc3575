//! The readiness probe on sled: a timestamp rewritten in the `meta` tree and flushed with the
//! next group commit, as any write is.

use super::{backend, SledStore, META};
use crate::{HealthStore, StoreError};

const HEALTH_PROBE: &[u8] = b"health_probe";

impl HealthStore for SledStore {
    fn check_writable(&self) -> Result<(), StoreError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
        self.db
            .open_tree(META)
            .and_then(|meta| meta.insert(HEALTH_PROBE, &now.to_be_bytes()))
            .map_err(backend)?;
        self.durable().wait()
    }
}
