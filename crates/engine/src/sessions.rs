//! Sign-in sessions of the pages, kept in the store so that every frontend of a cluster knows
//! them. The engine keeps them opaque (the pages own the record's format) and adds the clock:
//! a session is found until its end, and ended sessions are purged now and then.

use time::{Duration, OffsetDateTime};

use crate::{Engine, EngineError};

impl Engine {
    /// Keeps session `key` (the SHA-256 of its cookie's secret) with `record` for `lifetime`;
    /// returns its end. About one call in 64 also purges ended sessions.
    pub fn keep_session(
        &self,
        key: &[u8; 32],
        record: &[u8],
        lifetime: Duration,
    ) -> Result<OffsetDateTime, EngineError> {
        let now = self.clock.now();
        let ends = now + lifetime;
        self.store.put_session(key, record, ends)?;
        // The key is a hash of a random secret: its first byte is uniform.
        if key[0] < 4 {
            let purged = self.store.purge_sessions(now)?;
            tracing::debug!(purged, "purged ended sign-in sessions");
        }
        Ok(ends)
    }

    /// The record of session `key`, unless it has ended.
    pub fn session(&self, key: &[u8; 32]) -> Result<Option<Vec<u8>>, EngineError> {
        Ok(self.store.session(key, self.clock.now())?)
    }

    /// Ends session `key` (signing out).
    pub fn end_session(&self, key: &[u8; 32]) -> Result<(), EngineError> {
        Ok(self.store.delete_session(key)?)
    }
}
