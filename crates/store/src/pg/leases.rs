//! Leases on PostgreSQL: a row per lease, taken with one `INSERT … ON CONFLICT … WHERE`, so that
//! of frontends racing for it exactly one gets a row back.

use std::time::Duration;

use super::{query, PgStore};
use crate::{LeaseStore, StoreError};

impl LeaseStore for PgStore {
    fn take_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        let millis = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        self.run(move |client| async move {
            let rows = query(
                &client,
                "INSERT INTO leases (name, holder, expires) \
                 VALUES ($1, $2, CURRENT_TIMESTAMP + $3::BIGINT * INTERVAL '1 millisecond') \
                 ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires = EXCLUDED.expires \
                 WHERE leases.holder = EXCLUDED.holder OR leases.expires <= CURRENT_TIMESTAMP \
                 RETURNING holder",
                &[&name, &holder, &millis],
            )
            .await?;
            Ok(!rows.is_empty())
        })
    }

    fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.run(move |client| async move {
            query(
                &client,
                "DELETE FROM leases WHERE name = $1 AND holder = $2",
                &[&name, &holder],
            )
            .await?;
            Ok(())
        })
    }
}
