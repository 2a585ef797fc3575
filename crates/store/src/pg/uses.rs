//! Use records on PostgreSQL. The journal is the table itself: a journaled record is a row with
//! `recorded = FALSE`, durable and listed at once; recording it sets the flag in the transaction
//! that appends its log entry. Nothing is left to release.

use zhengyin_model::UseRecord;

use super::{bytes, column, db, decode, encode, holder_key, query, tx_execute, tx_query, PgStore};
use crate::{Logged, StoreError, UseQuery, UseStore};

/// One use record as its row: id, holder, department, record.
fn row_of(r: &UseRecord) -> Result<(String, Option<String>, String, Vec<u8>), StoreError> {
    Ok((
        r.id.clone(),
        r.holder.as_ref().map(|h| holder_key(h.code_type, &h.code)),
        r.department.clone(),
        encode(r)?,
    ))
}

/// Rows per INSERT: 4 parameters each, well under the protocol's 65,535.
const ROWS_PER_INSERT: usize = 1000;

/// Inserts use record rows, many per statement (one round trip for a whole group commit, not
/// one per record); `recorded` rows also flag a journaled row of the same id as recorded.
async fn insert_rows(
    tx: &deadpool_postgres::Transaction<'_>,
    rows: &[(String, Option<String>, String, Vec<u8>)],
    recorded: bool,
) -> Result<(), StoreError> {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| {
                format!(
                    "(${}, ${}, ${}, {recorded}, ${})",
                    4 * i + 1,
                    4 * i + 2,
                    4 * i + 3,
                    4 * i + 4
                )
            })
            .collect();
        let mut sql = format!(
            "INSERT INTO use_records (id, holder, department, recorded, record) VALUES {}",
            values.join(", ")
        );
        if recorded {
            sql.push_str(" ON CONFLICT (id) DO UPDATE SET recorded = TRUE");
        }
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = chunk
            .iter()
            .flat_map(|(id, holder, department, record)| {
                [
                    id as &(dyn tokio_postgres::types::ToSql + Sync),
                    holder as _,
                    department as _,
                    record as _,
                ]
            })
            .collect();
        // Not prepared ahead: the statement's shape changes with the number of rows.
        tx.execute(sql.as_str(), &params).await.map_err(db)?;
    }
    Ok(())
}

impl UseStore for PgStore {
    fn journal_uses(&self, records: &[UseRecord]) -> Result<(), StoreError> {
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return Ok(());
        };
        if !records.windows(2).all(|w| w[0].id < w[1].id) {
            return Err(StoreError::Conflict);
        }
        let (first, last) = (first.id.clone(), last.id.clone());
        let rows = records.iter().map(row_of).collect::<Result<Vec<_>, _>>()?;
        self.run(move |mut client| async move {
            let tx = client.transaction().await.map_err(db)?;
            // The head's row lock orders journal writes from every frontend.
            let head = tx_query(&tx, "SELECT last_id FROM use_head WHERE one = 1 FOR UPDATE", &[]).await?;
            let stored: Option<String> = head.first().map(|r| column(r, 0)).transpose()?.flatten();
            if stored.is_some_and(|s| first <= s) {
                return Err(StoreError::Conflict);
            }
            insert_rows(&tx, &rows, false).await?;
            tx_execute(&tx, "UPDATE use_head SET last_id = $1 WHERE one = 1", &[&last]).await?;
            tx.commit().await.map_err(db)
        })
    }

    fn journaled_uses(&self) -> Result<Vec<UseRecord>, StoreError> {
        self.all(
            "use record",
            "SELECT record FROM use_records WHERE recorded = FALSE ORDER BY id",
        )
    }

    fn release_journal(&self, _through: &str) -> Result<(), StoreError> {
        Ok(())
    }

    fn record_uses(&self, records: &[UseRecord], entry: &[u8]) -> Result<Logged, StoreError> {
        let mut sorted: Vec<&UseRecord> = records.iter().collect();
        sorted.sort_by(|a, b| a.id.cmp(&b.id));
        if sorted.windows(2).any(|w| w[0].id == w[1].id) {
            return Err(StoreError::Conflict);
        }
        let rows = sorted.into_iter().map(row_of).collect::<Result<Vec<_>, _>>()?;
        let entry = entry.to_vec();
        self.logged(vec![entry], move |tx| {
            Box::pin(async move {
                // One recording at a time across frontends, so that no record is covered twice.
                tx_query(tx, "SELECT one FROM use_head WHERE one = 2 FOR UPDATE", &[]).await?;
                if let Some((first, ..)) = rows.first() {
                    // Ids only grow: nothing at or below a recorded id may be recorded again.
                    let recorded = tx_query(tx, "SELECT MAX(id) FROM use_records WHERE recorded = TRUE", &[]).await?;
                    let highest: Option<String> = recorded.first().map(|r| column(r, 0)).transpose()?.flatten();
                    if highest.is_some_and(|h| *first <= h) {
                        return Err(StoreError::Conflict);
                    }
                    insert_rows(tx, &rows, true).await?;
                    if let Some((last, ..)) = rows.last() {
                        tx_execute(
                            tx,
                            "UPDATE use_head SET last_id = $1 WHERE one = 1 AND (last_id IS NULL OR last_id < $1)",
                            &[last],
                        )
                        .await?;
                    }
                }
                Ok(())
            })
        })
    }

    fn last_use_record(&self) -> Result<Option<String>, StoreError> {
        self.run(|client| async move {
            let rows = query(&client, "SELECT last_id FROM use_head WHERE one = 1", &[]).await?;
            Ok(rows.first().map(|r| column(r, 0)).transpose()?.flatten())
        })
    }

    fn use_records(&self, q: &UseQuery) -> Result<Vec<UseRecord>, StoreError> {
        let mut sql = String::from("SELECT record FROM use_records WHERE TRUE");
        let mut params: Vec<String> = Vec::new();
        let mut bind = |sql: &mut String, clause: &str, value: String| {
            params.push(value);
            sql.push_str(&clause.replace('?', &format!("${}", params.len())));
        };
        match (&q.holder, &q.department) {
            (Some(h), _) => bind(&mut sql, " AND holder = ?", holder_key(h.code_type, &h.code)),
            (None, Some(d)) => bind(&mut sql, " AND department = ?", d.clone()),
            (None, None) => {}
        }
        if let Some(after) = &q.after {
            bind(&mut sql, " AND id > ?", after.clone());
        }
        if let Some(before) = &q.before {
            bind(&mut sql, " AND id < ?", before.clone());
        }
        let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
        sql.push_str(&format!(" ORDER BY id LIMIT ${}", params.len() + 1));
        self.run(move |client| async move {
            let mut values: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
                .iter()
                .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
                .collect();
            values.push(&limit);
            query(&client, &sql, &values)
                .await?
                .iter()
                .map(|row| decode("use record", &bytes(row, 0)?))
                .collect()
        })
    }
}
