//! Sign-in sessions on sled: each value is the session's end (Unix seconds, big-endian) and then
//! its record; an ended one is treated as absent and removed by the next purge.

use time::OffsetDateTime;

use super::{backend, SledStore};
use crate::{SessionStore, StoreError};

fn split(value: &[u8]) -> Result<(i64, &[u8]), StoreError> {
    let (end, record) = value
        .split_first_chunk::<8>()
        .ok_or_else(|| StoreError::Corrupt("a session record".to_owned()))?;
    Ok((i64::from_be_bytes(*end), record))
}

impl SessionStore for SledStore {
    fn put_session(&self, key: &[u8; 32], record: &[u8], expires: OffsetDateTime) -> Result<(), StoreError> {
        let mut value = Vec::with_capacity(8 + record.len());
        value.extend_from_slice(&expires.unix_timestamp().to_be_bytes());
        value.extend_from_slice(record);
        self.sessions.insert(key, value).map_err(backend)?;
        Ok(())
    }

    fn session(&self, key: &[u8; 32], now: OffsetDateTime) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(value) = self.sessions.get(key).map_err(backend)? else {
            return Ok(None);
        };
        let (end, record) = split(&value)?;
        Ok((end > now.unix_timestamp()).then(|| record.to_vec()))
    }

    fn delete_session(&self, key: &[u8; 32]) -> Result<(), StoreError> {
        self.sessions.remove(key).map_err(backend)?;
        Ok(())
    }

    fn purge_sessions(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let mut purged = 0;
        for pair in self.sessions.iter() {
            let (key, value) = pair.map_err(backend)?;
            if split(&value)?.0 <= now.unix_timestamp() {
                // Only if unchanged: a session renewed meanwhile stays.
                if self
                    .sessions
                    .compare_and_swap(&key, Some(&value), None::<&[u8]>)
                    .map_err(backend)?
                    .is_ok()
                {
                    purged += 1;
                }
            }
        }
        Ok(purged)
    }
}
