//! Objections, evidence, notifications and the webhook outbox on PostgreSQL.

use time::OffsetDateTime;
use zhengyin_model::{Delivery, LicenceId, Notification, Objection};

use super::{bytes, decode, encode, insert_new, query, swap, tx_execute, PgStore};
use crate::{Durable, Logged, ObjectionPage, ObjectionScope, ObjectionStore, StoreError};
use deadpool_postgres::Transaction;

/// A delivery's next attempt as the outbox's BIGINT (nanoseconds since 1970, saturating).
pub(super) fn nanos(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos()).unwrap_or(if t.unix_timestamp() < 0 { i64::MIN } else { i64::MAX })
}

const UPSERT_DELIVERY: &str = "INSERT INTO outbox (id, next_attempt, record) VALUES ($1, $2, $3) \
     ON CONFLICT (id) DO UPDATE SET next_attempt = EXCLUDED.next_attempt, record = EXCLUDED.record";

/// An objection as its table's row: the record and the columns its listings are indexed by.
pub(super) struct ObjectionRow {
    id: String,
    licence: String,
    objector: String,
    issuer: String,
    open: bool,
    record: Vec<u8>,
}

impl ObjectionRow {
    pub(super) fn of(objection: &Objection) -> Result<Self, StoreError> {
        Ok(Self {
            id: objection.id.clone(),
            licence: objection.licence.to_string(),
            objector: objection.objector.clone(),
            issuer: objection.licence.issuer().as_str().to_owned(),
            open: objection.workflow.state().is_open(),
            record: encode(objection)?,
        })
    }

    /// Inserts the row; [`StoreError::Conflict`] if its id is taken.
    pub(super) async fn insert(&self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        insert_new(
            tx,
            "INSERT INTO objections (id, licence, objector, issuer, open, record) VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &self.id,
                &self.licence,
                &self.objector,
                &self.issuer,
                &self.open,
                &self.record,
            ],
        )
        .await
    }
}

fn by_filing(mut objections: Vec<Objection>) -> Vec<Objection> {
    objections.sort_by_key(|o| o.workflow.filed_at);
    objections
}

impl ObjectionStore for PgStore {
    fn put_objection(&self, objection: &Objection, entry: &[u8]) -> Result<Logged, StoreError> {
        let row = ObjectionRow::of(objection)?;
        self.logged(vec![entry.to_vec()], move |tx| {
            Box::pin(async move { row.insert(tx).await })
        })
    }

    fn objection(&self, id: &str) -> Result<Option<Objection>, StoreError> {
        self.one("objection", "SELECT record FROM objections WHERE id = $1", id)
    }

    fn update_objection(
        &self,
        expected: &Objection,
        new: &Objection,
        entry: &[u8],
        notify: Option<(&Notification, Option<&str>)>,
    ) -> Result<Logged, StoreError> {
        if expected.id != new.id || expected.licence != new.licence || expected.objector != new.objector {
            return Err(StoreError::Conflict);
        }
        let (id, old, record) = (new.id.clone(), encode(expected)?, encode(new)?);
        let open = new.workflow.state().is_open();
        let notice = match notify {
            Some((notification, url)) => {
                let delivery = url
                    .map(|url| {
                        let d = Delivery {
                            notification: notification.clone(),
                            url: url.to_owned(),
                            attempts: 0,
                            next_attempt: notification.time,
                        };
                        Ok::<_, StoreError>((nanos(d.next_attempt), encode(&d)?))
                    })
                    .transpose()?;
                Some((
                    notification.id.clone(),
                    notification.recipient.clone(),
                    encode(notification)?,
                    delivery,
                ))
            }
            None => None,
        };
        let entry = entry.to_vec();
        self.logged(vec![entry], move |tx| {
            Box::pin(async move {
                swap(tx, ("objections", "id", "record"), &id, &old, &record).await?;
                tx_execute(tx, "UPDATE objections SET open = $2 WHERE id = $1", &[&id, &open]).await?;
                if let Some((note_id, recipient, note, delivery)) = &notice {
                    tx_execute(
                        tx,
                        "INSERT INTO notifications (id, recipient, record) VALUES ($1, $2, $3) \
                     ON CONFLICT (id) DO UPDATE SET recipient = EXCLUDED.recipient, record = EXCLUDED.record",
                        &[note_id, recipient, note],
                    )
                    .await?;
                    if let Some((next, delivery)) = delivery {
                        tx_execute(tx, UPSERT_DELIVERY, &[note_id, next, delivery]).await?;
                    }
                }
                Ok(())
            })
        })
    }

    fn put_evidence(&self, sha256: &[u8; 32], bytes: &[u8]) -> Result<Durable, StoreError> {
        self.write(
            "INSERT INTO evidence (sha256, bytes) VALUES ($1, $2) ON CONFLICT (sha256) DO NOTHING",
            vec![Box::new(sha256.to_vec()), Box::new(bytes.to_vec())],
        )
    }

    fn evidence(&self, sha256: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        let key = sha256.to_vec();
        self.run(move |client| async move {
            query(&client, "SELECT bytes FROM evidence WHERE sha256 = $1", &[&key])
                .await?
                .first()
                .map(|row| bytes(row, 0))
                .transpose()
        })
    }

    fn notifications_of(
        &self,
        recipient: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError> {
        let (recipient, after) = (recipient.to_owned(), after.unwrap_or_default().to_owned());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |client| async move {
            query(
                &client,
                "SELECT record FROM notifications WHERE recipient = $1 AND id > $2 ORDER BY id LIMIT $3",
                &[&recipient, &after, &limit],
            )
            .await?
            .iter()
            .map(|row| decode("notification", &bytes(row, 0)?))
            .collect()
        })
    }

    fn due_deliveries(&self, now: OffsetDateTime, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        let (now, limit) = (nanos(now), i64::try_from(limit).unwrap_or(i64::MAX));
        self.run(move |client| async move {
            query(
                &client,
                "SELECT record FROM outbox WHERE next_attempt <= $1 ORDER BY id LIMIT $2",
                &[&now, &limit],
            )
            .await?
            .iter()
            .map(|row| decode("delivery", &bytes(row, 0)?))
            .collect()
        })
    }

    fn settle_delivery(&self, id: &str, next: Option<&Delivery>) -> Result<Durable, StoreError> {
        match next {
            Some(d) => self.write(
                UPSERT_DELIVERY,
                vec![
                    Box::new(id.to_owned()),
                    Box::new(nanos(d.next_attempt)),
                    Box::new(encode(d)?),
                ],
            ),
            None => self.write("DELETE FROM outbox WHERE id = $1", vec![Box::new(id.to_owned())]),
        }
    }

    fn objections_page(&self, page: &ObjectionPage) -> Result<Vec<Objection>, StoreError> {
        let scope = match &page.scope {
            ObjectionScope::All => None,
            ObjectionScope::Objector(who) => Some(("objector", who.clone())),
            ObjectionScope::Issuer(uscc) => Some(("issuer", uscc.as_str().to_owned())),
        };
        // Each (scope, open) pair is one of six statements, each served by an index.
        let sql = format!(
            "SELECT record FROM objections WHERE id > $1{}{} ORDER BY id LIMIT $2",
            scope
                .as_ref()
                .map_or(String::new(), |(column, _)| format!(" AND {column} = $3")),
            if page.open_only { " AND open" } else { "" },
        );
        let after = page.after.clone().unwrap_or_default();
        let limit = i64::try_from(page.limit).unwrap_or(i64::MAX);
        self.run(move |client| async move {
            let rows = match &scope {
                None => query(&client, &sql, &[&after, &limit]).await?,
                Some((_, key)) => query(&client, &sql, &[&after, &limit, key]).await?,
            };
            rows.iter().map(|row| decode("objection", &bytes(row, 0)?)).collect()
        })
    }

    fn objections_of_licence(&self, licence: &LicenceId) -> Result<Vec<Objection>, StoreError> {
        let licence = licence.to_string();
        let found: Vec<Objection> = self.run(move |client| async move {
            query(
                &client,
                "SELECT record FROM objections WHERE licence = $1 ORDER BY id",
                &[&licence],
            )
            .await?
            .iter()
            .map(|row| decode("objection", &bytes(row, 0)?))
            .collect()
        })?;
        Ok(by_filing(found))
    }
}
