//! Sign-in sessions on PostgreSQL: a row per session; its end is compared with the engine's
//! clock (passed in), as on sled.

use time::OffsetDateTime;

use super::{query, PgStore};
use crate::{SessionStore, StoreError};

impl SessionStore for PgStore {
    fn put_session(&self, key: &[u8; 32], record: &[u8], expires: OffsetDateTime) -> Result<(), StoreError> {
        let (key, record, expires) = (key.to_vec(), record.to_vec(), expires.unix_timestamp());
        self.run(move |client| async move {
            query(
                &client,
                "INSERT INTO sessions (key, record, expires) VALUES ($1, $2, $3) \
                 ON CONFLICT (key) DO UPDATE SET record = EXCLUDED.record, expires = EXCLUDED.expires",
                &[&key, &record, &expires],
            )
            .await?;
            Ok(())
        })
    }

    fn session(&self, key: &[u8; 32], now: OffsetDateTime) -> Result<Option<Vec<u8>>, StoreError> {
        let (key, now) = (key.to_vec(), now.unix_timestamp());
        self.run(move |client| async move {
            let rows = query(
                &client,
                "SELECT record FROM sessions WHERE key = $1 AND expires > $2",
                &[&key, &now],
            )
            .await?;
            Ok(rows.first().map(|row| row.get(0)))
        })
    }

    fn delete_session(&self, key: &[u8; 32]) -> Result<(), StoreError> {
        let key = key.to_vec();
        self.run(move |client| async move {
            query(&client, "DELETE FROM sessions WHERE key = $1", &[&key]).await?;
            Ok(())
        })
    }

    fn purge_sessions(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let now = now.unix_timestamp();
        self.run(move |client| async move {
            let rows = query(
                &client,
                "DELETE FROM sessions WHERE expires <= $1 RETURNING key",
                &[&now],
            )
            .await?;
            Ok(rows.len() as u64)
        })
    }
}
