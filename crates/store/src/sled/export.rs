//! Every record of a sled store as [`Item`]s, for moving a node to PostgreSQL.

use super::*;
use crate::copy::{Item, TableSize};

/// Reads a tree's values as `T`, in key order, handing each to `emit`.
fn each<T: DeserializeOwned>(
    tree: &sled::Tree,
    what: &str,
    emit: &mut dyn FnMut(T) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    for value in tree.iter().values() {
        emit(decode(what, &value.map_err(backend)?)?)?;
    }
    Ok(())
}

fn text(bytes: &[u8], what: &str) -> Result<String, StoreError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| StoreError::Corrupt(format!("{what} is not UTF-8")))
}

fn licence_id(bytes: &[u8]) -> Result<LicenceId, StoreError> {
    LicenceId::parse(&text(bytes, "a licence id")?).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl SledStore {
    /// Hands every record to `emit`, writes held back meanwhile (one consistent state): the
    /// registry first, then licences and what refers to them, use records, sync state, and the
    /// log entries in order with the checkpoints last.
    pub fn export(&self, emit: &mut dyn FnMut(Item) -> Result<(), StoreError>) -> Result<(), StoreError> {
        let _quiet = self.writes.write().unwrap_or_else(|p| p.into_inner());
        emit(Item::Serial(self.next_serial()?))?;
        each(&self.authorities, "authority", &mut |a| emit(Item::Authority(a)))?;
        each(&self.types, "licence type", &mut |t| emit(Item::LicenceType(t)))?;
        each(&self.type_versions, "licence type version", &mut |t| {
            emit(Item::LicenceTypeVersion(t))
        })?;
        for pair in self.crls.iter() {
            let (issuer, der) = pair.map_err(backend)?;
            emit(Item::Crl {
                issuer: issuer.to_vec(),
                der: der.to_vec(),
            })?;
        }
        each(&self.intents, "intent", &mut |i| emit(Item::Intent(i, false)))?;
        each(&self.abandoned, "intent", &mut |i| emit(Item::Intent(i, true)))?;
        self.export_licences(emit)?;
        for pair in self.numbers.iter() {
            let (key, lineage) = pair.map_err(backend)?;
            emit(Item::Number {
                key: text(&key, "a licence number key")?,
                lineage: text(&lineage, "a lineage")?,
            })?;
        }
        for seal in self.seals()? {
            emit(Item::Seal(seal))?;
        }
        for pair in self.licence_files.iter() {
            let (id, file) = pair.map_err(backend)?;
            emit(Item::LicenceFile {
                id: licence_id(&id)?,
                file: file.to_vec(),
            })?;
        }
        each(&self.objections, "objection", &mut |o| emit(Item::Objection(o)))?;
        for pair in self.evidence.iter() {
            let (sha256, bytes) = pair.map_err(backend)?;
            emit(Item::Evidence {
                sha256: sha256
                    .as_ref()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("an evidence key".to_owned()))?,
                bytes: bytes.to_vec(),
            })?;
        }
        each(&self.notifications, "notification", &mut |n| {
            emit(Item::Notification(n))
        })?;
        each(&self.outbox, "delivery", &mut |d| emit(Item::Delivery(d)))?;
        each(&self.service_items, "service item", &mut |s| emit(Item::ServiceItem(s)))?;
        each(&self.grants, "grant", &mut |g| emit(Item::Grant(g)))?;
        each(&self.authorisations, "authorisation", &mut |a| {
            emit(Item::Authorisation(a))
        })?;
        each(&self.api_tokens, "API token", &mut |t| emit(Item::ApiToken(t)))?;
        each(&self.presentations, "presentation", &mut |p| {
            emit(Item::Presentation(p))
        })?;
        for chunk in self.uses.iter().values() {
            let records: Vec<UseRecord> = decode("use records", &crate::packed::unpack(&chunk.map_err(backend)?)?)?;
            for record in records {
                emit(Item::UseRecord(record, true))?;
            }
        }
        for record in self.uses_pending.read().unwrap_or_else(|p| p.into_inner()).iter() {
            emit(Item::UseRecord(record.clone(), false))?;
        }
        each(&self.sync_cursors, "sync cursor", &mut |c| emit(Item::SyncCursor(c)))?;
        each(&self.sync_incidents, "sync incident", &mut |i| emit(Item::Incident(i)))?;
        let size = self.log_size()?.0;
        for entry in self.log.range(entry_key(0)..entry_key(size)).values() {
            emit(Item::LogEntry(packed::unpack(&entry.map_err(backend)?)?))?;
        }
        for pair in self.checkpoints.iter() {
            let (size, note) = pair.map_err(backend)?;
            emit(Item::Checkpoint {
                size: read_u64(&size)?,
                note: text(&note, "a checkpoint")?,
            })?;
        }
        Ok(())
    }

    /// Licences through the holder index (which names each licence's holder), then the heads.
    fn export_licences(&self, emit: &mut dyn FnMut(Item) -> Result<(), StoreError>) -> Result<(), StoreError> {
        let mut count = 0usize;
        for key in self.holders.iter().keys() {
            let key = key.map_err(backend)?;
            let split = key
                .iter()
                .position(|b| *b == 0)
                .ok_or_else(|| StoreError::Corrupt("a holder index key".to_owned()))?;
            let holder = text(&key[..split], "a holder")?;
            let (code_type, code) = holder
                .split_once(':')
                .ok_or_else(|| StoreError::Corrupt(format!("holder {holder}")))?;
            let code_type = HolderCodeType::parse(code_type).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let id = licence_id(&key[split + 1..])?;
            let signed = self
                .licences
                .get(id.as_str())
                .map_err(backend)?
                .ok_or_else(|| StoreError::Corrupt(format!("licence {id} indexed but absent")))?;
            let digest = self
                .digests
                .get(id.as_str())
                .map_err(backend)?
                .ok_or_else(|| StoreError::Corrupt(format!("licence {id} has no digest")))?;
            let status = self
                .status
                .get(id.as_str())
                .map_err(backend)?
                .map(|s| decode("status", &s))
                .transpose()?;
            emit(Item::Licence {
                document_sha256: digest
                    .as_ref()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt(format!("licence {id} digest")))?,
                id,
                signed: packed::unpack(&signed)?,
                status,
                holder: (code_type, code.to_owned()),
            })?;
            count += 1;
        }
        if count != self.licences.len() {
            return Err(StoreError::Corrupt(format!(
                "{} licences, {count} in the holder index",
                self.licences.len()
            )));
        }
        for pair in self.heads.iter() {
            let (lineage, id) = pair.map_err(backend)?;
            emit(Item::Head {
                lineage: text(&lineage, "a lineage")?,
                id: licence_id(&id)?,
            })?;
        }
        Ok(())
    }
}

impl SledStore {
    /// Every tree with its records and the bytes of their keys and values: where the data goes
    /// (the folder on disk holds more: sled's log keeps older versions until it compacts them).
    pub fn tree_sizes(&self) -> Result<Vec<TableSize>, StoreError> {
        let mut sizes = Vec::new();
        for name in self.db.tree_names() {
            let tree = self.db.open_tree(&name).map_err(backend)?;
            let (mut records, mut bytes) = (0u64, 0u64);
            for pair in tree.iter() {
                let (k, v) = pair.map_err(backend)?;
                records += 1;
                bytes += (k.len() + v.len()) as u64;
            }
            sizes.push(TableSize {
                name: String::from_utf8_lossy(&name).into_owned(),
                records,
                bytes,
            });
        }
        Ok(sizes)
    }
}
