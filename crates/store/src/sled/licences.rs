//! The registry, licences and seals on sled.

use std::cmp::Ordering;

use super::*;

/// The key of one version of a licence type.
fn type_version_key(code: &TypeCode, version: u32) -> Vec<u8> {
    let mut key = code.as_str().as_bytes().to_vec();
    key.extend_from_slice(&version.to_be_bytes());
    key
}

impl RegistryStore for SledStore {
    fn put_authority(&self, authority: &Authority, entry: &[u8]) -> Result<Logged, StoreError> {
        let _writing = self.writing();
        self.put_logged(&self.authorities, authority.uscc.as_str(), &encode(authority)?, entry)
    }

    fn authorities(&self) -> Result<Vec<Authority>, StoreError> {
        Self::all(&self.authorities, "authority")
    }

    fn put_licence_type(&self, licence_type: &LicenceType, entry: &[u8]) -> Result<Logged, StoreError> {
        let _writing = self.writing();
        let code = licence_type.code.as_str();
        let version_key = type_version_key(&licence_type.code, licence_type.version);
        let record = encode(licence_type)?;
        let _log = self.lock_log();
        let index = (&self.types, &self.type_versions, &self.log, &self.log_nodes)
            .transaction(|(types, versions, log, nodes)| {
                let current: Option<LicenceType> = types
                    .get(code)?
                    .map(|v| decode("licence type", &v))
                    .transpose()
                    .map_err(abort)?;
                if let Some(current) = current {
                    match current.version.cmp(&licence_type.version) {
                        Ordering::Greater => return Err(abort(StoreError::Conflict)),
                        Ordering::Equal if !current.same_definition(licence_type) => {
                            return Err(abort(StoreError::Conflict))
                        }
                        _ => {}
                    }
                }
                match versions.get(version_key.as_slice())? {
                    Some(kept)
                        if !decode::<LicenceType>("licence type", &kept)
                            .map_err(abort)?
                            .same_definition(licence_type) =>
                    {
                        return Err(abort(StoreError::Conflict))
                    }
                    _ => {}
                }
                types.insert(code, record.as_slice())?;
                versions.insert(version_key.as_slice(), record.as_slice())?;
                append(log, nodes, entry)
            })
            .map_err(tx_error)?;
        Ok(self.logged(index))
    }

    fn licence_types(&self) -> Result<Vec<LicenceType>, StoreError> {
        Self::all(&self.types, "licence type")
    }

    fn licence_type_versions(&self, code: &TypeCode) -> Result<Vec<LicenceType>, StoreError> {
        self.type_versions
            .scan_prefix(code.as_str())
            .values()
            .map(|v| decode("licence type", &v.map_err(backend)?))
            .collect()
    }

    fn put_crl(&self, issuer: &[u8], der: &[u8]) -> Result<Durable, StoreError> {
        let _writing = self.writing();
        self.crls.insert(issuer, der).map_err(backend)?;
        Ok(self.durable())
    }

    fn crls(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.crls
            .iter()
            .values()
            .map(|v| v.map(|v| v.to_vec()).map_err(backend))
            .collect()
    }
}

impl LicenceStore for SledStore {
    fn next_serial(&self) -> Result<u64, StoreError> {
        // sled persists the generator ahead of use, so an id is never handed out twice.
        Ok(self.serial_floor + self.db.generate_id().map_err(backend)?)
    }

    fn record_intent(&self, intent: &Intent) -> Result<Durable, StoreError> {
        let _writing = self.writing();
        self.intents
            .insert(intent.id.as_str(), encode(intent)?)
            .map_err(backend)?;
        Ok(self.durable())
    }

    fn pending_intents(&self) -> Result<Vec<Intent>, StoreError> {
        Self::all(&self.intents, "intent")
    }

    fn abandon_intent(&self, id: &LicenceId) -> Result<Durable, StoreError> {
        let _writing = self.writing();
        (&self.intents, &self.abandoned)
            .transaction(|(intents, abandoned)| {
                if let Some(v) = intents.remove(id.as_str())? {
                    abandoned.insert(id.as_str(), v)?;
                }
                Ok(())
            })
            .map_err(tx_error)?;
        Ok(self.durable())
    }

    fn commit_licence(&self, c: &LicenceCommit, entry: &[u8]) -> Result<Logged, StoreError> {
        let _writing = self.writing();
        let encoded = EncodedCommit::new(c)?;
        let _log = self.lock_log();
        let index = self
            .licence_trees()
            .transaction(|views| write_commit(views, &encoded, entry)?.map_err(abort))
            .map_err(tx_error)?;
        Ok(self.logged(index))
    }

    fn record_intents(&self, intents: &[Intent]) -> Result<Vec<Durable>, StoreError> {
        let _writing = self.writing();
        let mut batch = sled::Batch::default();
        for intent in intents {
            batch.insert(intent.id.as_str(), encode(intent)?);
        }
        self.intents.apply_batch(batch).map_err(backend)?;
        Ok(vec![self.durable()])
    }

    fn commit_licences(&self, commits: &[(LicenceCommit, Vec<u8>)]) -> Vec<Result<Logged, StoreError>> {
        let _writing = self.writing();
        // In the commits' order; the ones that cannot be encoded are answered at once.
        let mut results: Vec<Option<Result<Logged, StoreError>>> = Vec::with_capacity(commits.len());
        let mut encoded = Vec::with_capacity(commits.len());
        for (i, (c, entry)) in commits.iter().enumerate() {
            match EncodedCommit::new(c) {
                Ok(e) => {
                    encoded.push((i, e, entry));
                    results.push(None);
                }
                Err(e) => results.push(Some(Err(e))),
            }
        }
        let _log = self.lock_log();
        let written = self.licence_trees().transaction(|views| {
            encoded
                .iter()
                .map(|(i, e, entry)| Ok((*i, write_commit(views, e, entry)?)))
                .collect::<ConflictableTransactionResult<Vec<_>, StoreError>>()
        });
        match written {
            Ok(outcomes) => {
                for (i, outcome) in outcomes {
                    results[i] = Some(outcome.map(|index| self.logged(index)));
                }
            }
            Err(e) => {
                let e = tx_error(e);
                for (i, _, _) in &encoded {
                    results[*i] = Some(Err(e.clone()));
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(StoreError::Backend("a commit went unanswered".to_owned()))))
            .collect()
    }

    fn licence(&self, id: &LicenceId) -> Result<Option<StoredLicence>, StoreError> {
        let Some(state) = self.licence_state(id)? else {
            return Ok(None);
        };
        let signed = self
            .licences
            .get(id.as_str())
            .map_err(backend)?
            .ok_or_else(|| StoreError::Corrupt(format!("licence {id} has a status but no signed form")))?;
        Ok(Some(StoredLicence {
            signed: packed::unpack(&signed)?,
            document_sha256: state.document_sha256,
            status: state.status,
        }))
    }

    fn licence_state(&self, id: &LicenceId) -> Result<Option<LicenceState>, StoreError> {
        let Some(status) = self.status.get(id.as_str()).map_err(backend)? else {
            return Ok(None);
        };
        let corrupt = || StoreError::Corrupt(format!("licence {id} has no well-formed digest"));
        let digest = self.digests.get(id.as_str()).map_err(backend)?.ok_or_else(corrupt)?;
        Ok(Some(LicenceState {
            document_sha256: digest.as_ref().try_into().map_err(|_| corrupt())?,
            status: decode("status", &status)?,
        }))
    }

    fn update_status(
        &self,
        id: &LicenceId,
        expected: &StatusHistory,
        new: &StatusHistory,
        entry: &[u8],
    ) -> Result<Logged, StoreError> {
        let _writing = self.writing();
        self.swap_with_entry(&self.status, id.as_str(), &encode(expected)?, &encode(new)?, entry)
    }

    fn number_holder(&self, id: &LicenceId, number: &str) -> Result<Option<String>, StoreError> {
        self.numbers
            .get(crate::number_key(id, number))
            .map_err(backend)?
            .map(|v| String::from_utf8(v.to_vec()).map_err(|_| StoreError::Corrupt("licence number".to_owned())))
            .transpose()
    }

    fn current_version(&self, lineage: &str) -> Result<Option<LicenceId>, StoreError> {
        self.heads
            .get(lineage)
            .map_err(backend)?
            .map(|v| {
                let text = std::str::from_utf8(&v).map_err(|_| StoreError::Corrupt("head".to_owned()))?;
                LicenceId::parse(text).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .transpose()
    }

    fn current_versions_under(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<LicenceId>, StoreError> {
        let from = match after {
            Some(after) => std::ops::Bound::Excluded(after.as_bytes().to_vec()),
            None => std::ops::Bound::Included(prefix.as_bytes().to_vec()),
        };
        let mut out = Vec::new();
        for pair in self.heads.range::<Vec<u8>, _>((from, std::ops::Bound::Unbounded)) {
            let (key, value) = pair.map_err(backend)?;
            if !key.starts_with(prefix.as_bytes()) || out.len() >= limit {
                break;
            }
            let text = std::str::from_utf8(&value).map_err(|_| StoreError::Corrupt("head".to_owned()))?;
            out.push(LicenceId::parse(text).map_err(|e| StoreError::Corrupt(e.to_string()))?);
        }
        Ok(out)
    }

    fn licences_of_holder(
        &self,
        code_type: HolderCodeType,
        code: &str,
        type_code: Option<&TypeCode>,
    ) -> Result<Vec<LicenceId>, StoreError> {
        let prefix = holder_key(code_type, code);
        let mut out = Vec::new();
        for key in self.holders.scan_prefix(&prefix).keys() {
            let key = key.map_err(backend)?;
            let text =
                std::str::from_utf8(&key[prefix.len()..]).map_err(|_| StoreError::Corrupt("holder".to_owned()))?;
            let id = LicenceId::parse(text).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if type_code.is_none_or(|t| t == id.type_code()) {
                out.push(id);
            }
        }
        Ok(out)
    }
}

impl LicenceFileStore for SledStore {
    fn put_licence_file(&self, id: &LicenceId, file: &[u8]) -> Result<Durable, StoreError> {
        let _writing = self.writing();
        // The first file kept stays.
        let _ = self
            .licence_files
            .compare_and_swap(id.as_str(), None as Option<&[u8]>, Some(file))
            .map_err(backend)?;
        Ok(self.durable())
    }

    fn licence_file(&self, id: &LicenceId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .licence_files
            .get(id.as_str())
            .map_err(backend)?
            .map(|v| v.to_vec()))
    }
}

impl SealStore for SledStore {
    fn put_seal(&self, seal: &StoredSeal, entry: &[u8]) -> Result<Logged, StoreError> {
        let _writing = self.writing();
        let key = seal.record.es_id.as_str();
        let (record, status) = (encode(&seal.record)?, encode(&seal.status)?);
        let _log = self.lock_log();
        let index = (
            &self.seals,
            &self.seal_der,
            &self.seal_status,
            &self.log,
            &self.log_nodes,
        )
            .transaction(|(records, ders, statuses, log, nodes)| {
                if records.get(key)?.is_some() {
                    return Err(abort(StoreError::Conflict));
                }
                records.insert(key, record.as_slice())?;
                ders.insert(key, seal.der.as_slice())?;
                statuses.insert(key, status.as_slice())?;
                append(log, nodes, entry)
            })
            .map_err(tx_error)?;
        Ok(self.logged(index))
    }

    fn seal(&self, es_id: &str) -> Result<Option<StoredSeal>, StoreError> {
        let Some(record) = self.seals.get(es_id).map_err(backend)? else {
            return Ok(None);
        };
        let corrupt = |what: &str| StoreError::Corrupt(format!("seal {es_id} has no {what}"));
        let der = self
            .seal_der
            .get(es_id)
            .map_err(backend)?
            .ok_or_else(|| corrupt("DER"))?;
        let status = self
            .seal_status
            .get(es_id)
            .map_err(backend)?
            .ok_or_else(|| corrupt("status"))?;
        Ok(Some(StoredSeal {
            record: decode("seal", &record)?,
            der: der.to_vec(),
            status: decode("seal status", &status)?,
        }))
    }

    fn update_seal_status(
        &self,
        es_id: &str,
        expected: &SealHistory,
        new: &SealHistory,
        entry: &[u8],
    ) -> Result<Logged, StoreError> {
        let _writing = self.writing();
        self.swap_with_entry(&self.seal_status, es_id, &encode(expected)?, &encode(new)?, entry)
    }

    fn seals(&self) -> Result<Vec<StoredSeal>, StoreError> {
        let mut out = Vec::new();
        for key in self.seals.iter().keys() {
            let key = key.map_err(backend)?;
            let es_id = std::str::from_utf8(&key).map_err(|_| StoreError::Corrupt("an esID".to_owned()))?;
            out.extend(self.seal(es_id)?);
        }
        Ok(out)
    }
}

impl SledStore {
    /// Indexes what a database written by an earlier build holds but did not index: each
    /// licence type as its version, and, once, every licence's number (the first lineage to
    /// carry a number keeps it).
    pub(super) fn index_earlier_data(&self) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for t in Self::all::<LicenceType>(&self.types, "licence type")? {
            let key = type_version_key(&t.code, t.version);
            if !self.type_versions.contains_key(&key).map_err(backend)? {
                self.type_versions.insert(key, encode(&t)?).map_err(backend)?;
            }
        }
        if !self.numbers.is_empty() || self.licences.is_empty() {
            return Ok(());
        }
        let mut seen = std::collections::HashSet::new();
        for item in self.licences.iter() {
            let (key, signed) = item.map_err(backend)?;
            let id = std::str::from_utf8(&key)
                .ok()
                .and_then(|k| LicenceId::parse(k).ok())
                .ok_or_else(|| StoreError::Corrupt("licence key".to_owned()))?;
            if let Some(number) = crate::number_of(&packed::unpack(&signed)?) {
                let number_key = crate::number_key(&id, &number);
                if seen.insert(number_key.clone()) {
                    batch.insert(number_key.as_bytes(), id.lineage().as_bytes());
                }
            }
        }
        self.numbers.apply_batch(batch).map_err(backend)
    }

    /// Creates or replaces `tree[key]` and appends `entry` to the log, atomically.
    fn put_logged(&self, tree: &sled::Tree, key: &str, value: &[u8], entry: &[u8]) -> Result<Logged, StoreError> {
        let _log = self.lock_log();
        let index = (tree, &self.log, &self.log_nodes)
            .transaction(|(tree, log, nodes)| {
                tree.insert(key, value)?;
                append(log, nodes, entry)
            })
            .map_err(tx_error)?;
        Ok(self.logged(index))
    }
}

/// The trees a licence commit writes, in the order of [`LicenceViews`].
type LicenceTrees<'a> = (
    &'a sled::Tree,
    &'a sled::Tree,
    &'a sled::Tree,
    &'a sled::Tree,
    &'a sled::Tree,
    &'a sled::Tree,
    &'a sled::Tree,
    &'a sled::Tree,
    &'a sled::Tree,
);

/// Licences, statuses, intents, heads, holders, digests, numbers, log and log nodes, inside a
/// transaction.
type LicenceViews = (
    TransactionalTree,
    TransactionalTree,
    TransactionalTree,
    TransactionalTree,
    TransactionalTree,
    TransactionalTree,
    TransactionalTree,
    TransactionalTree,
    TransactionalTree,
);

impl SledStore {
    fn licence_trees(&self) -> LicenceTrees<'_> {
        (
            &self.licences,
            &self.status,
            &self.intents,
            &self.heads,
            &self.holders,
            &self.digests,
            &self.numbers,
            &self.log,
            &self.log_nodes,
        )
    }
}

/// A licence commit's values, encoded once (a transaction may run more than once).
struct EncodedCommit<'a> {
    commit: &'a LicenceCommit,
    signed: Vec<u8>,
    status: Vec<u8>,
    supersedes: Option<(&'a LicenceId, Vec<u8>, Vec<u8>)>,
    holder: Vec<u8>,
    number_key: String,
    lineage: String,
}

impl<'a> EncodedCommit<'a> {
    fn new(c: &'a LicenceCommit) -> Result<Self, StoreError> {
        let supersedes = match &c.supersedes {
            Some((id, old, new)) => Some((id, encode(old)?, encode(new)?)),
            None => None,
        };
        let mut holder = holder_key(c.holder.0, &c.holder.1);
        holder.extend_from_slice(c.id.as_str().as_bytes());
        Ok(Self {
            commit: c,
            signed: packed::pack_licence(&c.signed),
            status: encode(&c.status)?,
            supersedes,
            holder,
            number_key: crate::number_key(&c.id, &c.number),
            lineage: c.id.lineage(),
        })
    }
}

/// Writes one licence commit inside a transaction and appends its entry; or, writing nothing,
/// says why it is refused (the licence exists, its number is another lineage's, or the version
/// it supersedes changed).
fn write_commit(
    views: &LicenceViews,
    e: &EncodedCommit<'_>,
    entry: &[u8],
) -> ConflictableTransactionResult<Result<LeafIndex, StoreError>, StoreError> {
    let (licences, statuses, intents, heads, holders, digests, numbers, log, nodes) = views;
    let c = e.commit;
    if licences.get(c.id.as_str())?.is_some() {
        return Ok(Err(StoreError::Conflict));
    }
    let reserved = match numbers.get(e.number_key.as_bytes())? {
        Some(holder) if holder != e.lineage.as_bytes() => {
            return Ok(Err(StoreError::Taken(format!("licence number {}", c.number))))
        }
        Some(_) => true,
        None => false,
    };
    if let Some((old_id, expected, _)) = &e.supersedes {
        if statuses.get(old_id.as_str())?.as_deref() != Some(expected.as_slice()) {
            return Ok(Err(StoreError::Conflict));
        }
    }
    if !reserved {
        numbers.insert(e.number_key.as_bytes(), e.lineage.as_bytes())?;
    }
    if let Some((old_id, _, new)) = &e.supersedes {
        statuses.insert(old_id.as_str(), new.as_slice())?;
    }
    licences.insert(c.id.as_str(), e.signed.as_slice())?;
    digests.insert(c.id.as_str(), &c.document_sha256[..])?;
    statuses.insert(c.id.as_str(), e.status.as_slice())?;
    intents.remove(c.id.as_str())?;
    heads.insert(c.id.lineage().as_bytes(), c.id.as_str().as_bytes())?;
    holders.insert(e.holder.as_slice(), &[])?;
    append(log, nodes, entry).map(Ok)
}
