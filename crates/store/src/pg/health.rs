//! The readiness probe on PostgreSQL: one row rewritten in its own transaction, whose commit
//! waits for the write-ahead log's flush (and a synchronous standby, where one is configured).

use super::{query, PgStore};
use crate::{HealthStore, StoreError};

impl HealthStore for PgStore {
    fn check_writable(&self) -> Result<(), StoreError> {
        self.run(|client| async move {
            query(
                &client,
                "INSERT INTO health_probe (id, written) VALUES (1, CURRENT_TIMESTAMP) \
                 ON CONFLICT (id) DO UPDATE SET written = EXCLUDED.written",
                &[],
            )
            .await?;
            Ok(())
        })
    }
}
