//! Service items, grants, authorisations, API tokens and presentations on PostgreSQL.

use zhengyin_model::{ApiToken, Authorisation, Grant, HolderRef, Presentation, ServiceItem};

use super::{bytes, db, decode, encode, holder_key, insert_new, query, swap, PgStore};
use crate::{AccessStore, Durable, Logged, StoreError};

impl AccessStore for PgStore {
    fn put_service_item(&self, item: &ServiceItem) -> Result<Durable, StoreError> {
        self.write(
            "INSERT INTO service_items (code, record) VALUES ($1, $2) \
             ON CONFLICT (code) DO UPDATE SET record = EXCLUDED.record",
            vec![Box::new(item.code.clone()), Box::new(encode(item)?)],
        )
    }

    fn service_items(&self) -> Result<Vec<ServiceItem>, StoreError> {
        self.all("service item", "SELECT record FROM service_items ORDER BY code")
    }

    fn put_grant(&self, grant: &Grant, entry: &[u8]) -> Result<Logged, StoreError> {
        self.insert_logged(
            "INSERT INTO grants (id, record) VALUES ($1, $2)",
            vec![grant.id.clone()],
            encode(grant)?,
            entry,
        )
    }

    fn update_grant(&self, expected: &Grant, new: &Grant, entry: &[u8]) -> Result<Logged, StoreError> {
        if expected.id != new.id {
            return Err(StoreError::Conflict);
        }
        self.swap_logged(
            ("grants", "id", "record"),
            &new.id,
            encode(expected)?,
            encode(new)?,
            entry,
        )
    }

    fn grants(&self) -> Result<Vec<Grant>, StoreError> {
        self.all("grant", "SELECT record FROM grants ORDER BY id")
    }

    fn put_authorisation(&self, a: &Authorisation, entry: &[u8]) -> Result<Logged, StoreError> {
        self.insert_logged(
            "INSERT INTO authorisations (id, holder, record) VALUES ($1, $2, $3)",
            vec![a.id.clone(), holder_key(a.holder.code_type, &a.holder.code)],
            encode(a)?,
            entry,
        )
    }

    fn authorisation(&self, id: &str) -> Result<Option<Authorisation>, StoreError> {
        self.one("authorisation", "SELECT record FROM authorisations WHERE id = $1", id)
    }

    fn update_authorisation(
        &self,
        expected: &Authorisation,
        new: &Authorisation,
        entry: &[u8],
    ) -> Result<Logged, StoreError> {
        if expected.id != new.id || expected.holder != new.holder {
            return Err(StoreError::Conflict);
        }
        self.swap_logged(
            ("authorisations", "id", "record"),
            &new.id,
            encode(expected)?,
            encode(new)?,
            entry,
        )
    }

    fn authorisations_of_holder(&self, holder: &HolderRef) -> Result<Vec<Authorisation>, StoreError> {
        let holder = holder_key(holder.code_type, &holder.code);
        let mut found: Vec<Authorisation> = self.run(move |client| async move {
            query(
                &client,
                "SELECT record FROM authorisations WHERE holder = $1 ORDER BY id",
                &[&holder],
            )
            .await?
            .iter()
            .map(|row| decode("authorisation", &bytes(row, 0)?))
            .collect()
        })?;
        found.sort_by_key(|a| a.created);
        Ok(found)
    }

    fn put_api_token(&self, token: &ApiToken, entry: &[u8]) -> Result<Logged, StoreError> {
        self.insert_logged(
            "INSERT INTO api_tokens (id, record) VALUES ($1, $2)",
            vec![token.id.clone()],
            encode(token)?,
            entry,
        )
    }

    fn update_api_token(&self, expected: &ApiToken, new: &ApiToken, entry: &[u8]) -> Result<Logged, StoreError> {
        if expected.id != new.id || expected.sha256 != new.sha256 {
            return Err(StoreError::Conflict);
        }
        self.swap_logged(
            ("api_tokens", "id", "record"),
            &new.id,
            encode(expected)?,
            encode(new)?,
            entry,
        )
    }

    fn api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        self.all("API token", "SELECT record FROM api_tokens ORDER BY id")
    }

    fn put_presentation(&self, p: &Presentation) -> Result<Durable, StoreError> {
        let (id, record) = (p.id.clone(), encode(p)?);
        self.committed(move |mut client| async move {
            let tx = client.transaction().await.map_err(db)?;
            insert_new(
                &tx,
                "INSERT INTO presentations (id, record) VALUES ($1, $2)",
                &[&id, &record],
            )
            .await?;
            tx.commit().await.map_err(db)
        })
    }

    fn presentation(&self, id: &str) -> Result<Option<Presentation>, StoreError> {
        self.one("presentation", "SELECT record FROM presentations WHERE id = $1", id)
    }

    fn update_presentation(&self, expected: &Presentation, new: &Presentation) -> Result<Durable, StoreError> {
        if expected.id != new.id {
            return Err(StoreError::Conflict);
        }
        let (id, old, record) = (new.id.clone(), encode(expected)?, encode(new)?);
        self.committed(move |mut client| async move {
            let tx = client.transaction().await.map_err(db)?;
            // A presentation that is gone cannot be consumed: the same answer as a changed one.
            swap(&tx, ("presentations", "id", "record"), &id, &old, &record)
                .await
                .map_err(|e| match e {
                    StoreError::NotFound => StoreError::Conflict,
                    other => other,
                })?;
            tx.commit().await.map_err(db)
        })
    }
}
