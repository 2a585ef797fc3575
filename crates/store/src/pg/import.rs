//! Writing a store's records ([`Item`]s) into an empty database: moving a node here.

use deadpool_postgres::Transaction;
use tokio_postgres::types::ToSql;

use super::log::{append, signed};
use super::objections::nanos;
use super::{db, encode, holder_key, query, tx_execute, PgStore};
use crate::copy::Item;
use crate::{packed, StoreError};

/// Log entries appended at once.
const ENTRY_PAGE: usize = 1000;

impl PgStore {
    /// Writes every item received into this database, which must be migrated and empty, in
    /// one transaction (nothing is left of a copy that fails); the log's tree nodes are
    /// computed from the entries. Answers the number of records written.
    pub fn import(&self, mut items: tokio::sync::mpsc::Receiver<Item>) -> Result<u64, StoreError> {
        self.run(move |mut client| async move {
            let used = query(
                &client,
                "SELECT (SELECT size FROM log_head WHERE one = 1) > 0 OR EXISTS (SELECT 1 FROM authorities) \
                 OR EXISTS (SELECT 1 FROM licences)",
                &[],
            )
            .await?;
            if used.first().is_some_and(|row| row.get::<_, bool>(0)) {
                return Err(StoreError::Backend(
                    "the database already holds a node's data: copy into a new, migrated database".to_owned(),
                ));
            }
            let tx = client.transaction().await.map_err(db)?;
            let (mut records, mut entries) = (0u64, Vec::with_capacity(ENTRY_PAGE));
            while let Some(item) = items.recv().await {
                records += 1;
                if let Item::LogEntry(entry) = item {
                    entries.push(entry);
                    if entries.len() == ENTRY_PAGE {
                        append(&tx, &std::mem::take(&mut entries)).await?;
                    }
                    continue;
                }
                if !entries.is_empty() {
                    append(&tx, &std::mem::take(&mut entries)).await?;
                }
                write(&tx, item).await?;
            }
            if !entries.is_empty() {
                append(&tx, &entries).await?;
            }
            tx.commit().await.map_err(db)?;
            Ok(records)
        })
    }
}

async fn insert(tx: &Transaction<'_>, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<(), StoreError> {
    tx_execute(tx, sql, params).await.map(drop)
}

/// Inserts a record under its key, `sql` being `INSERT INTO t (key, record) VALUES ($1, $2)`.
async fn keyed<T: serde::Serialize>(tx: &Transaction<'_>, sql: &str, key: &str, value: &T) -> Result<(), StoreError> {
    insert(tx, sql, &[&key, &encode(value)?]).await
}

/// Writes one record (not a log entry).
async fn write(tx: &Transaction<'_>, item: Item) -> Result<(), StoreError> {
    match item {
        Item::Serial(next) => {
            let next = signed(next.max(1))?;
            insert(tx, "SELECT setval('licence_serials', $1)", &[&next]).await
        }
        Item::Authority(a) => {
            keyed(
                tx,
                "INSERT INTO authorities (uscc, record) VALUES ($1, $2)",
                a.uscc.as_str(),
                &a,
            )
            .await
        }
        Item::LicenceType(t) => {
            keyed(
                tx,
                "INSERT INTO licence_types (code, record) VALUES ($1, $2)",
                t.code.as_str(),
                &t,
            )
            .await
        }
        Item::LicenceTypeVersion(t) => {
            let (record, version) = (
                encode(&t)?,
                i32::try_from(t.version).map_err(|_| StoreError::Corrupt("a type version".to_owned()))?,
            );
            insert(
                tx,
                "INSERT INTO licence_type_versions (code, version, record) VALUES ($1, $2, $3)",
                &[&t.code.as_str(), &version, &record],
            )
            .await
        }
        Item::Crl { issuer, der } => {
            insert(tx, "INSERT INTO crls (issuer, der) VALUES ($1, $2)", &[&issuer, &der]).await
        }
        Item::Intent(intent, abandoned) => {
            let record = encode(&intent)?;
            insert(
                tx,
                "INSERT INTO intents (id, record, abandoned) VALUES ($1, $2, $3)",
                &[&intent.id.as_str(), &record, &abandoned],
            )
            .await
        }
        Item::Licence {
            id,
            signed,
            document_sha256,
            status,
            holder,
        } => {
            let status = status.as_ref().map(encode).transpose()?;
            insert(
                tx,
                "INSERT INTO licences (id, holder, signed, document_sha256, status) VALUES ($1, $2, $3, $4, $5)",
                &[
                    &id.as_str(),
                    &holder_key(holder.0, &holder.1),
                    &packed::pack_licence(&signed),
                    &&document_sha256[..],
                    &status,
                ],
            )
            .await
        }
        Item::Head { lineage, id } => {
            insert(
                tx,
                "INSERT INTO licence_heads (lineage, id) VALUES ($1, $2)",
                &[&lineage, &id.as_str()],
            )
            .await
        }
        Item::Number { key, lineage } => {
            insert(
                tx,
                "INSERT INTO licence_numbers (key, lineage) VALUES ($1, $2)",
                &[&key, &lineage],
            )
            .await
        }
        Item::Seal(seal) => {
            let (record, status) = (encode(&seal.record)?, encode(&seal.status)?);
            insert(
                tx,
                "INSERT INTO seals (es_id, record, der, status) VALUES ($1, $2, $3, $4)",
                &[&seal.record.es_id, &record, &seal.der, &status],
            )
            .await
        }
        Item::LicenceFile { id, file } => {
            insert(
                tx,
                "INSERT INTO licence_files (id, file) VALUES ($1, $2)",
                &[&id.as_str(), &file],
            )
            .await
        }
        Item::Objection(o) => super::objections::ObjectionRow::of(&o)?.insert(tx).await,
        Item::Evidence { sha256, bytes } => {
            insert(
                tx,
                "INSERT INTO evidence (sha256, bytes) VALUES ($1, $2)",
                &[&&sha256[..], &bytes],
            )
            .await
        }
        Item::Notification(n) => {
            let record = encode(&n)?;
            insert(
                tx,
                "INSERT INTO notifications (id, recipient, record) VALUES ($1, $2, $3)",
                &[&n.id, &n.recipient, &record],
            )
            .await
        }
        Item::Delivery(d) => {
            let record = encode(&d)?;
            insert(
                tx,
                "INSERT INTO outbox (id, next_attempt, record) VALUES ($1, $2, $3)",
                &[&d.notification.id, &nanos(d.next_attempt), &record],
            )
            .await
        }
        Item::ServiceItem(s) => {
            keyed(
                tx,
                "INSERT INTO service_items (code, record) VALUES ($1, $2)",
                &s.code,
                &s,
            )
            .await
        }
        Item::Grant(g) => keyed(tx, "INSERT INTO grants (id, record) VALUES ($1, $2)", &g.id, &g).await,
        Item::Authorisation(a) => {
            let record = encode(&a)?;
            insert(
                tx,
                "INSERT INTO authorisations (id, holder, record) VALUES ($1, $2, $3)",
                &[&a.id, &holder_key(a.holder.code_type, &a.holder.code), &record],
            )
            .await
        }
        Item::ApiToken(t) => keyed(tx, "INSERT INTO api_tokens (id, record) VALUES ($1, $2)", &t.id, &t).await,
        Item::Presentation(p) => keyed(tx, "INSERT INTO presentations (id, record) VALUES ($1, $2)", &p.id, &p).await,
        Item::UseRecord(r, recorded) => {
            let (record, holder) = (encode(&r)?, r.holder.as_ref().map(|h| holder_key(h.code_type, &h.code)));
            insert(
                tx,
                "INSERT INTO use_records (id, holder, department, recorded, record) VALUES ($1, $2, $3, $4, $5)",
                &[&r.id, &holder, &r.department, &recorded, &record],
            )
            .await?;
            insert(
                tx,
                "UPDATE use_head SET last_id = $1 WHERE one = 1 AND (last_id IS NULL OR last_id < $1)",
                &[&r.id],
            )
            .await
        }
        Item::SyncCursor(c) => {
            keyed(
                tx,
                "INSERT INTO sync_cursors (origin, record) VALUES ($1, $2)",
                &c.origin,
                &c,
            )
            .await
        }
        Item::Incident(i) => {
            let record = encode(&i)?;
            insert(
                tx,
                "INSERT INTO sync_incidents (id, open, record) VALUES ($1, $2, $3)",
                &[&i.id, &i.pending(), &record],
            )
            .await
        }
        Item::Checkpoint { size, note } => {
            insert(
                tx,
                "INSERT INTO checkpoints (size, note) VALUES ($1, $2)",
                &[&signed(size)?, &note],
            )
            .await
        }
        Item::LogEntry(entry) => append(tx, &[entry]).await.map(drop),
    }
}

impl PgStore {
    /// Every table with its rows and its bytes on disk, indexes included.
    pub fn table_sizes(&self) -> Result<Vec<crate::copy::TableSize>, StoreError> {
        self.run(|client| async move {
            let rows = query(
                &client,
                "SELECT relname::TEXT, n_live_tup, pg_total_relation_size(relid) FROM pg_stat_user_tables \
                 ORDER BY relname",
                &[],
            )
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(crate::copy::TableSize {
                        name: row.try_get(0).map_err(db)?,
                        records: u64::try_from(row.try_get::<_, i64>(1).map_err(db)?).unwrap_or(0),
                        bytes: u64::try_from(row.try_get::<_, i64>(2).map_err(db)?).unwrap_or(0),
                    })
                })
                .collect()
        })
    }
}
