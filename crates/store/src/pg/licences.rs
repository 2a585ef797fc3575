//! The registry, licences and seals on PostgreSQL.

use zhengyin_model::{Authority, HolderCodeType, LicenceId, LicenceType, SealHistory, StatusHistory, TypeCode};

use super::{
    batch, bytes, column, decode, encode, holder_key, insert_new, logged_when, query, swap, tx_execute, tx_query, wait,
    Answer, PgStore,
};
use crate::{
    packed, Durable, Intent, LeafIndex, LicenceCommit, LicenceFileStore, LicenceState, LicenceStore, Logged,
    RegistryStore, SealStore, StoreError, StoredLicence, StoredSeal,
};

impl RegistryStore for PgStore {
    fn put_authority(&self, authority: &Authority, entry: &[u8]) -> Result<Logged, StoreError> {
        self.upsert_logged(
            "INSERT INTO authorities (uscc, record) VALUES ($1, $2) \
             ON CONFLICT (uscc) DO UPDATE SET record = EXCLUDED.record",
            authority.uscc.to_string(),
            encode(authority)?,
            entry,
        )
    }

    fn authorities(&self) -> Result<Vec<Authority>, StoreError> {
        self.all("authority", "SELECT record FROM authorities ORDER BY uscc")
    }

    fn put_licence_type(&self, licence_type: &LicenceType, entry: &[u8]) -> Result<Logged, StoreError> {
        let (new, record) = (licence_type.clone(), encode(licence_type)?);
        let (code, version) = (
            new.code.to_string(),
            i32::try_from(new.version).map_err(|_| StoreError::Conflict)?,
        );
        self.logged(vec![entry.to_vec()], move |tx| {
            Box::pin(async move {
                // The row lock orders writers of one type across frontends.
                let current = tx_query(
                    tx,
                    "SELECT record FROM licence_types WHERE code = $1 FOR UPDATE",
                    &[&code],
                )
                .await?;
                let kept = tx_query(
                    tx,
                    "SELECT record FROM licence_type_versions WHERE code = $1 AND version = $2",
                    &[&code, &version],
                )
                .await?;
                for row in current.iter().chain(&kept) {
                    let held: LicenceType = decode("licence type", &bytes(row, 0)?)?;
                    let same_version = held.version == new.version;
                    if held.version > new.version || (same_version && !held.same_definition(&new)) {
                        return Err(StoreError::Conflict);
                    }
                }
                tx_execute(
                    tx,
                    "INSERT INTO licence_types (code, record) VALUES ($1, $2) \
                     ON CONFLICT (code) DO UPDATE SET record = EXCLUDED.record",
                    &[&code, &record],
                )
                .await?;
                tx_execute(
                    tx,
                    "INSERT INTO licence_type_versions (code, version, record) VALUES ($1, $2, $3) \
                     ON CONFLICT (code, version) DO UPDATE SET record = EXCLUDED.record",
                    &[&code, &version, &record],
                )
                .await?;
                Ok(())
            })
        })
    }

    fn licence_types(&self) -> Result<Vec<LicenceType>, StoreError> {
        self.all("licence type", "SELECT record FROM licence_types ORDER BY code")
    }

    fn licence_type_versions(&self, code: &TypeCode) -> Result<Vec<LicenceType>, StoreError> {
        let code = code.to_string();
        self.run(move |client| async move {
            query(
                &client,
                "SELECT record FROM licence_type_versions WHERE code = $1 ORDER BY version",
                &[&code],
            )
            .await?
            .iter()
            .map(|row| decode("licence type", &bytes(row, 0)?))
            .collect()
        })
    }

    fn put_crl(&self, issuer: &[u8], der: &[u8]) -> Result<Durable, StoreError> {
        self.write(
            "INSERT INTO crls (issuer, der) VALUES ($1, $2) ON CONFLICT (issuer) DO UPDATE SET der = EXCLUDED.der",
            vec![Box::new(issuer.to_vec()), Box::new(der.to_vec())],
        )
    }

    fn crls(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.run(|client| async move {
            query(&client, "SELECT der FROM crls ORDER BY issuer", &[])
                .await?
                .iter()
                .map(|row| bytes(row, 0))
                .collect()
        })
    }
}

impl LicenceStore for PgStore {
    fn next_serial(&self) -> Result<u64, StoreError> {
        // A sequence never hands a value out twice, not even across a crash or a failover.
        self.run(|client| async move {
            let rows = query(&client, "SELECT nextval('licence_serials')", &[]).await?;
            let n = rows
                .first()
                .map(|row| column::<i64>(row, 0))
                .transpose()?
                .ok_or_else(|| StoreError::Corrupt("serial sequence".to_owned()))?;
            u64::try_from(n).map_err(|_| StoreError::Corrupt("serial sequence".to_owned()))
        })
    }

    fn record_intent(&self, intent: &Intent) -> Result<Durable, StoreError> {
        self.write(
            "INSERT INTO intents (id, record, abandoned) VALUES ($1, $2, FALSE) \
             ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record",
            vec![Box::new(intent.id.to_string()), Box::new(encode(intent)?)],
        )
    }

    fn pending_intents(&self) -> Result<Vec<Intent>, StoreError> {
        self.all(
            "intent",
            "SELECT record FROM intents WHERE abandoned = FALSE ORDER BY id",
        )
    }

    fn abandon_intent(&self, id: &LicenceId) -> Result<Durable, StoreError> {
        self.write(
            "UPDATE intents SET abandoned = TRUE WHERE id = $1",
            vec![Box::new(id.to_string())],
        )
    }

    fn commit_licence(&self, c: &LicenceCommit, entry: &[u8]) -> Result<Logged, StoreError> {
        let answered = self.enqueue_logged(vec![entry.to_vec()], commit_work(c)?)?;
        logged_when(&answered)
    }

    fn commit_licences(&self, commits: &[(LicenceCommit, Vec<u8>)]) -> Vec<Result<Logged, StoreError>> {
        if let Some(together) = self.commit_new_licences_together(commits) {
            return together;
        }
        // All queued before any is waited for, so that they share the appenders' transactions.
        let queued: Vec<Result<Answer, StoreError>> = commits
            .iter()
            .map(|(c, entry)| self.enqueue_logged(vec![entry.clone()], commit_work(c)?))
            .collect();
        queued
            .into_iter()
            .map(|answered| answered.and_then(|a| logged_when(&a)))
            .collect()
    }

    fn record_intents(&self, intents: &[Intent]) -> Result<Vec<Durable>, StoreError> {
        let ids: Vec<String> = intents.iter().map(|i| i.id.to_string()).collect();
        let records = intents.iter().map(encode).collect::<Result<Vec<_>, _>>()?;
        Ok(vec![self.write(
            "INSERT INTO intents (id, record, abandoned) SELECT id, record, FALSE \
             FROM UNNEST($1::TEXT[], $2::BYTEA[]) AS t (id, record) \
             ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record",
            vec![Box::new(ids), Box::new(records)],
        )?])
    }

    fn number_holder(&self, id: &LicenceId, number: &str) -> Result<Option<String>, StoreError> {
        let key = crate::number_key(id, number);
        self.run(move |client| async move {
            query(&client, "SELECT lineage FROM licence_numbers WHERE key = $1", &[&key])
                .await?
                .first()
                .map(|row| column::<String>(row, 0))
                .transpose()
        })
    }

    fn licence(&self, id: &LicenceId) -> Result<Option<StoredLicence>, StoreError> {
        let key = id.to_string();
        self.run(move |client| async move {
            let rows = query(
                &client,
                "SELECT document_sha256, status, signed FROM licences WHERE id = $1",
                &[&key],
            )
            .await?;
            let Some(row) = rows.first() else {
                return Ok(None);
            };
            let Some(state) = state(&key, row)? else {
                return Ok(None);
            };
            Ok(Some(StoredLicence {
                signed: packed::unpack(&bytes(row, 2)?)?,
                document_sha256: state.document_sha256,
                status: state.status,
            }))
        })
    }

    fn licence_state(&self, id: &LicenceId) -> Result<Option<LicenceState>, StoreError> {
        let key = id.to_string();
        self.run(move |client| async move {
            let rows = query(
                &client,
                "SELECT document_sha256, status FROM licences WHERE id = $1",
                &[&key],
            )
            .await?;
            match rows.first() {
                Some(row) => state(&key, row),
                None => Ok(None),
            }
        })
    }

    fn update_status(
        &self,
        id: &LicenceId,
        expected: &StatusHistory,
        new: &StatusHistory,
        entry: &[u8],
    ) -> Result<Logged, StoreError> {
        self.swap_logged(
            ("licences", "id", "status"),
            id.as_str(),
            encode(expected)?,
            encode(new)?,
            entry,
        )
    }

    fn current_version(&self, lineage: &str) -> Result<Option<LicenceId>, StoreError> {
        let lineage = lineage.to_owned();
        self.run(move |client| async move {
            let rows = query(&client, "SELECT id FROM licence_heads WHERE lineage = $1", &[&lineage]).await?;
            rows.first()
                .map(|row| LicenceId::parse(&column::<String>(row, 0)?).map_err(|e| StoreError::Corrupt(e.to_string())))
                .transpose()
        })
    }

    fn current_versions_under(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<LicenceId>, StoreError> {
        // Lineages are digits, capitals and dots: no LIKE wildcard can be in the prefix.
        let pattern = format!("{}%", prefix.replace(['%', '_', '\\'], ""));
        let after = after.unwrap_or_default().to_owned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let ids: Vec<String> = self.run(move |client| async move {
            query(
                &client,
                "SELECT id FROM licence_heads WHERE lineage LIKE $1 AND lineage > $2 ORDER BY lineage LIMIT $3",
                &[&pattern, &after, &limit],
            )
            .await?
            .iter()
            .map(|row| column::<String>(row, 0))
            .collect()
        })?;
        ids.iter()
            .map(|text| LicenceId::parse(text).map_err(|e| StoreError::Corrupt(e.to_string())))
            .collect()
    }

    fn licences_of_holder(
        &self,
        code_type: HolderCodeType,
        code: &str,
        type_code: Option<&TypeCode>,
    ) -> Result<Vec<LicenceId>, StoreError> {
        let holder = holder_key(code_type, code);
        let ids: Vec<String> = self.run(move |client| async move {
            query(
                &client,
                "SELECT id FROM licences WHERE holder = $1 ORDER BY id",
                &[&holder],
            )
            .await?
            .iter()
            .map(|row| column::<String>(row, 0))
            .collect()
        })?;
        let mut out = Vec::new();
        for text in ids {
            let id = LicenceId::parse(&text).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if type_code.is_none_or(|t| t == id.type_code()) {
                out.push(id);
            }
        }
        Ok(out)
    }
}

/// A licence row's digest and status; `None` while a replicated licence has no status yet.
fn state(id: &str, row: &tokio_postgres::Row) -> Result<Option<LicenceState>, StoreError> {
    let Some(status) = column::<Option<Vec<u8>>>(row, 1)? else {
        return Ok(None);
    };
    let digest = bytes(row, 0)?;
    Ok(Some(LicenceState {
        document_sha256: digest
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Corrupt(format!("licence {id} has no well-formed digest")))?,
        status: decode("status", &status)?,
    }))
}

/// A seal from its row: es_id, record, der, status.
fn seal_of_row(row: &tokio_postgres::Row) -> Result<StoredSeal, StoreError> {
    let status = column::<Option<Vec<u8>>>(row, 3)?.ok_or_else(|| {
        StoreError::Corrupt(format!(
            "seal {} has no status",
            column::<String>(row, 0).unwrap_or_default()
        ))
    })?;
    Ok(StoredSeal {
        record: decode("seal", &bytes(row, 1)?)?,
        der: bytes(row, 2)?,
        status: decode("seal status", &status)?,
    })
}

impl LicenceFileStore for PgStore {
    fn put_licence_file(&self, id: &LicenceId, file: &[u8]) -> Result<Durable, StoreError> {
        self.write(
            "INSERT INTO licence_files (id, file) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
            vec![Box::new(id.as_str().to_owned()), Box::new(file.to_vec())],
        )
    }

    fn licence_file(&self, id: &LicenceId) -> Result<Option<Vec<u8>>, StoreError> {
        let key = id.as_str().to_owned();
        self.run(move |client| async move {
            let rows = query(&client, "SELECT file FROM licence_files WHERE id = $1", &[&key]).await?;
            rows.first().map(|row| bytes(row, 0)).transpose()
        })
    }
}

impl SealStore for PgStore {
    fn put_seal(&self, seal: &StoredSeal, entry: &[u8]) -> Result<Logged, StoreError> {
        let es_id = seal.record.es_id.clone();
        let (record, der, status) = (encode(&seal.record)?, seal.der.clone(), encode(&seal.status)?);
        let entry = entry.to_vec();
        self.logged(vec![entry], move |tx| {
            Box::pin(async move {
                insert_new(
                    tx,
                    "INSERT INTO seals (es_id, record, der, status) VALUES ($1, $2, $3, $4)",
                    &[&es_id, &record, &der, &status],
                )
                .await?;
                Ok(())
            })
        })
    }

    fn seal(&self, es_id: &str) -> Result<Option<StoredSeal>, StoreError> {
        let key = es_id.to_owned();
        self.run(move |client| async move {
            let rows = query(
                &client,
                "SELECT es_id, record, der, status FROM seals WHERE es_id = $1",
                &[&key],
            )
            .await?;
            rows.first().map(seal_of_row).transpose()
        })
    }

    fn seals(&self) -> Result<Vec<StoredSeal>, StoreError> {
        self.run(move |client| async move {
            let rows = query(
                &client,
                "SELECT es_id, record, der, status FROM seals ORDER BY es_id",
                &[],
            )
            .await?;
            rows.iter().map(seal_of_row).collect()
        })
    }

    fn update_seal_status(
        &self,
        es_id: &str,
        expected: &SealHistory,
        new: &SealHistory,
        entry: &[u8],
    ) -> Result<Logged, StoreError> {
        self.swap_logged(
            ("seals", "es_id", "status"),
            es_id,
            encode(expected)?,
            encode(new)?,
            entry,
        )
    }
}

/// The statements of one licence commit, for the appenders' shared transaction.
impl PgStore {
    /// Bulk issuance's usual case — new licences, each of its own lineage — as one write of
    /// set-based statements: five round trips for the lot instead of seven per licence. `None`
    /// when that does not apply or one of them is refused (a number or identifier taken
    /// meanwhile): the write then left nothing behind, and each goes again on its own, to be
    /// answered alone.
    fn commit_new_licences_together(
        &self,
        commits: &[(LicenceCommit, Vec<u8>)],
    ) -> Option<Vec<Result<Logged, StoreError>>> {
        if commits.len() < 2 || commits.iter().any(|(c, _)| c.supersedes.is_some()) {
            return None;
        }
        let rows = match commits
            .iter()
            .map(|(c, _)| LicenceRow::of(c))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(rows) => rows,
            Err(e) => return Some(commits.iter().map(|_| Err(e.clone())).collect()),
        };
        let lineages: std::collections::HashSet<&str> = rows.iter().map(|r| r.lineage.as_str()).collect();
        if lineages.len() < rows.len() {
            return None;
        }
        let entries = commits.iter().map(|(_, entry)| entry.clone()).collect();
        let outcome = self
            .enqueue_logged(entries, new_licences_work(rows))
            .and_then(|answered| wait(&answered));
        match outcome {
            Ok(first) => Some(
                (0..commits.len() as u64)
                    .map(|k| {
                        Ok(Logged {
                            durable: Durable::committed(),
                            index: LeafIndex(first.0 + k),
                        })
                    })
                    .collect(),
            ),
            Err(StoreError::Conflict | StoreError::Taken(_)) => None,
            Err(e) => Some(commits.iter().map(|_| Err(e.clone())).collect()),
        }
    }
}

/// A licence commit's row values, as both the one-by-one and the set-based writes store them.
struct LicenceRow {
    id: String,
    lineage: String,
    number_key: String,
    holder: String,
    signed: Vec<u8>,
    digest: Vec<u8>,
    status: Vec<u8>,
}

impl LicenceRow {
    fn of(c: &LicenceCommit) -> Result<Self, StoreError> {
        Ok(Self {
            id: c.id.to_string(),
            lineage: c.id.lineage(),
            number_key: crate::number_key(&c.id, &c.number),
            holder: holder_key(c.holder.0, &c.holder.1),
            signed: packed::pack_licence(&c.signed),
            digest: c.document_sha256.to_vec(),
            status: encode(&c.status)?,
        })
    }
}

/// The statements of [`PgStore::commit_new_licences_together`]; refused whole, with
/// [`StoreError::Taken`] or [`StoreError::Conflict`], if any licence would be.
fn new_licences_work(rows: Vec<LicenceRow>) -> batch::Work {
    let count = rows.len() as u64;
    let (mut ids, mut holders, mut signed, mut digests, mut statuses) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut lineages, mut number_keys) = (vec![], vec![]);
    for row in rows {
        ids.push(row.id);
        holders.push(row.holder);
        signed.push(row.signed);
        digests.push(row.digest);
        statuses.push(row.status);
        lineages.push(row.lineage);
        number_keys.push(row.number_key);
    }
    Box::new(move |tx| {
        Box::pin(async move {
            tx_execute(
                tx,
                "INSERT INTO licence_numbers (key, lineage) SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[]) \
                 ON CONFLICT (key) DO NOTHING",
                &[&number_keys, &lineages],
            )
            .await?;
            let taken = tx_query(
                tx,
                "SELECT count(*) FROM licence_numbers n, UNNEST($1::TEXT[], $2::TEXT[]) AS t (key, lineage) \
                 WHERE n.key = t.key AND n.lineage <> t.lineage",
                &[&number_keys, &lineages],
            )
            .await?
            .first()
            .map(|row| column::<i64>(row, 0))
            .transpose()?;
            if taken != Some(0) {
                return Err(StoreError::Taken("a licence number of the batch".to_owned()));
            }
            let inserted = tx_execute(
                tx,
                "INSERT INTO licences (id, holder, signed, document_sha256, status) \
                 SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::BYTEA[], $4::BYTEA[], $5::BYTEA[]) \
                 ON CONFLICT (id) DO NOTHING",
                &[&ids, &holders, &signed, &digests, &statuses],
            )
            .await?;
            if inserted != count {
                return Err(StoreError::Conflict);
            }
            tx_execute(tx, "DELETE FROM intents WHERE id = ANY($1::TEXT[])", &[&ids]).await?;
            tx_execute(
                tx,
                "INSERT INTO licence_heads (lineage, id) SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[]) \
                 ON CONFLICT (lineage) DO UPDATE SET id = EXCLUDED.id",
                &[&lineages, &ids],
            )
            .await?;
            Ok(())
        })
    })
}

fn commit_work(c: &LicenceCommit) -> Result<batch::Work, StoreError> {
    let number = c.number.clone();
    let LicenceRow {
        id,
        lineage,
        number_key,
        holder,
        signed,
        digest,
        status,
    } = LicenceRow::of(c)?;
    let supersedes = match &c.supersedes {
        Some((old, expected, new)) => Some((old.to_string(), encode(expected)?, encode(new)?)),
        None => None,
    };
    Ok(Box::new(move |tx| {
        Box::pin(async move {
            if let Some((old, expected, new)) = &supersedes {
                swap(tx, ("licences", "id", "status"), old, expected, new)
                    .await
                    .map_err(|e| match e {
                        StoreError::NotFound => StoreError::Conflict,
                        other => other,
                    })?;
            }
            tx_execute(
                tx,
                "INSERT INTO licence_numbers (key, lineage) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                &[&number_key, &lineage],
            )
            .await?;
            let holder_of_number = tx_query(tx, "SELECT lineage FROM licence_numbers WHERE key = $1", &[&number_key])
                .await?
                .first()
                .map(|row| column::<String>(row, 0))
                .transpose()?;
            if holder_of_number.as_deref() != Some(lineage.as_str()) {
                return Err(StoreError::Taken(format!("licence number {number}")));
            }
            insert_new(
                tx,
                "INSERT INTO licences (id, holder, signed, document_sha256, status) VALUES ($1, $2, $3, $4, $5)",
                &[&id, &holder, &signed, &digest, &status],
            )
            .await?;
            tx_execute(tx, "DELETE FROM intents WHERE id = $1", &[&id]).await?;
            tx_execute(
                tx,
                "INSERT INTO licence_heads (lineage, id) VALUES ($1, $2) \
             ON CONFLICT (lineage) DO UPDATE SET id = EXCLUDED.id",
                &[&lineage, &id],
            )
            .await?;
            Ok(())
        })
    }))
}
