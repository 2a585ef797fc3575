//! Applying verified pages of a source's log on PostgreSQL, with the cursor, in one transaction.

use zhengyin_model::SyncIncident;

use super::log::append;
use super::{bytes, db, decode, encode, holder_key, insert_new, query, swap, tx_execute, tx_query, PgStore};
use crate::{packed, Durable, StoreError, SyncApply, SyncCursor, SyncStore};

impl SyncStore for PgStore {
    fn apply_sync(&self, apply: &SyncApply) -> Result<Durable, StoreError> {
        let origin = apply.cursor.origin.clone();
        let expected = apply.expected.as_ref().map(encode).transpose()?;
        let cursor = encode(&apply.cursor)?;
        let authorities = apply
            .authorities
            .iter()
            .map(|a| Ok((a.uscc.to_string(), encode(a)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let licences: Vec<_> = apply
            .licences
            .iter()
            .map(|l| {
                (
                    l.id.to_string(),
                    l.id.lineage(),
                    holder_key(l.holder.0, &l.holder.1),
                    l.signed.clone(),
                    packed::pack_licence(&l.signed),
                    l.document_sha256.to_vec(),
                )
            })
            .collect();
        let statuses = apply
            .statuses
            .iter()
            .map(|(id, history)| Ok((id.to_string(), encode(history)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let seals = apply
            .seals
            .iter()
            .map(|s| Ok((s.record.es_id.clone(), encode(&s.record)?, s.der.clone())))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let seal_statuses = apply
            .seal_statuses
            .iter()
            .map(|(es_id, history)| Ok((es_id.clone(), encode(history)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let entries = apply.entries.clone();
        let incidents = apply
            .incidents
            .iter()
            .map(|i| Ok((i.id.clone(), i.pending(), encode(i)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.committed(move |mut client| async move {
            let tx = client.transaction().await.map_err(db)?;
            // The cursor first: its row lock makes one apply per source at a time, cluster-wide.
            match &expected {
                None => {
                    insert_new(
                        &tx,
                        "INSERT INTO sync_cursors (origin, record) VALUES ($1, $2)",
                        &[&origin, &cursor],
                    )
                    .await?
                }
                Some(expected) => swap(&tx, ("sync_cursors", "origin", "record"), &origin, expected, &cursor)
                    .await
                    .map_err(|e| match e {
                        StoreError::NotFound => StoreError::Conflict,
                        other => other,
                    })?,
            }
            for (uscc, record) in &authorities {
                tx_execute(
                    &tx,
                    "INSERT INTO authorities (uscc, record) VALUES ($1, $2) \
                     ON CONFLICT (uscc) DO UPDATE SET record = EXCLUDED.record",
                    &[uscc, record],
                )
                .await?;
            }
            for (id, lineage, holder, signed, stored, digest) in &licences {
                let found = tx_query(&tx, "SELECT signed FROM licences WHERE id = $1", &[id]).await?;
                match found.first().map(|row| bytes(row, 0)).transpose()? {
                    Some(held) if packed::unpack(&held)? != *signed => return Err(StoreError::Conflict),
                    Some(_) => continue,
                    None => {}
                }
                tx_execute(
                    &tx,
                    "INSERT INTO licences (id, holder, signed, document_sha256, status) VALUES ($1, $2, $3, $4, NULL)",
                    &[id, holder, stored, digest],
                )
                .await?;
                // Versions of a lineage differ only in their version digits: later sorts higher.
                tx_execute(
                    &tx,
                    "INSERT INTO licence_heads (lineage, id) VALUES ($1, $2) \
                     ON CONFLICT (lineage) DO UPDATE SET id = EXCLUDED.id WHERE licence_heads.id < EXCLUDED.id",
                    &[lineage, id],
                )
                .await?;
            }
            for (id, history) in &statuses {
                if tx_execute(&tx, "UPDATE licences SET status = $1 WHERE id = $2", &[history, id]).await? != 1 {
                    return Err(StoreError::Corrupt(format!(
                        "status of licence {id}, which is not held"
                    )));
                }
            }
            for (es_id, record, der) in &seals {
                let found = tx_query(&tx, "SELECT der FROM seals WHERE es_id = $1", &[es_id]).await?;
                match found.first().map(|row| bytes(row, 0)).transpose()? {
                    Some(held) if held != *der => return Err(StoreError::Conflict),
                    Some(_) => continue,
                    None => {}
                }
                tx_execute(
                    &tx,
                    "INSERT INTO seals (es_id, record, der, status) VALUES ($1, $2, $3, NULL)",
                    &[es_id, record, der],
                )
                .await?;
            }
            for (es_id, history) in &seal_statuses {
                if tx_execute(&tx, "UPDATE seals SET status = $1 WHERE es_id = $2", &[history, es_id]).await? != 1 {
                    return Err(StoreError::Corrupt(format!(
                        "status of seal {es_id}, which is not held"
                    )));
                }
            }
            if !entries.is_empty() {
                append(&tx, &entries).await?;
            }
            for (id, pending, record) in &incidents {
                tx_execute(&tx, UPSERT_INCIDENT, &[id, pending, record]).await?;
            }
            tx.commit().await.map_err(db)
        })
    }

    fn sync_cursors(&self) -> Result<Vec<SyncCursor>, StoreError> {
        self.all("sync cursor", "SELECT record FROM sync_cursors ORDER BY origin")
    }

    fn put_incident(&self, incident: &SyncIncident) -> Result<Durable, StoreError> {
        self.write(
            UPSERT_INCIDENT,
            vec![
                Box::new(incident.id.clone()),
                Box::new(incident.pending()),
                Box::new(encode(incident)?),
            ],
        )
    }

    fn incident(&self, id: &str) -> Result<Option<SyncIncident>, StoreError> {
        self.one("sync incident", "SELECT record FROM sync_incidents WHERE id = $1", id)
    }

    fn incidents_page(
        &self,
        open_only: bool,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SyncIncident>, StoreError> {
        let sql = if open_only {
            "SELECT record FROM sync_incidents WHERE open AND id > $1 ORDER BY id LIMIT $2"
        } else {
            "SELECT record FROM sync_incidents WHERE id > $1 ORDER BY id LIMIT $2"
        };
        let after = after.unwrap_or_default().to_owned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |client| async move {
            query(&client, sql, &[&after, &limit])
                .await?
                .iter()
                .map(|row| decode("sync incident", &bytes(row, 0)?))
                .collect()
        })
    }
}

/// Creates or replaces an incident; `open` marks the pending ones.
const UPSERT_INCIDENT: &str = "INSERT INTO sync_incidents (id, open, record) VALUES ($1, $2, $3) \
     ON CONFLICT (id) DO UPDATE SET open = EXCLUDED.open, record = EXCLUDED.record";
