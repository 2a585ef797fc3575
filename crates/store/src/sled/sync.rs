//! Applying verified pages of a source's log on sled.

use super::*;

impl SyncStore for SledStore {
    fn apply_sync(&self, apply: &SyncApply) -> Result<Durable, StoreError> {
        let _writing = self.writing();
        let expected = apply.expected.as_ref().map(encode).transpose()?;
        let cursor = encode(&apply.cursor)?;
        let authorities = apply
            .authorities
            .iter()
            .map(|a| Ok((a.uscc.as_str(), encode(a)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let statuses = apply
            .statuses
            .iter()
            .map(|(id, history)| Ok((id.as_str(), encode(history)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let seals = apply
            .seals
            .iter()
            .map(|seal| Ok((seal.record.es_id.as_str(), encode(&seal.record)?, seal.der.as_slice())))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let seal_statuses = apply
            .seal_statuses
            .iter()
            .map(|(es_id, history)| Ok((es_id.as_str(), encode(history)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let packed_licences: Vec<Vec<u8>> = apply.licences.iter().map(|l| packed::pack_licence(&l.signed)).collect();
        let incidents = apply
            .incidents
            .iter()
            .map(|i| Ok((i.id.as_str(), encode(i)?, i.pending())))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let trees = [
            &self.sync_cursors,
            &self.authorities,
            &self.licences,
            &self.digests,
            &self.holders,
            &self.heads,
            &self.status,
            &self.seals,
            &self.seal_der,
            &self.seal_status,
            &self.log,
            &self.log_nodes,
            &self.sync_incidents,
            &self.sync_incidents_open,
        ]
        .map(sled::Tree::clone);
        let _log = self.lock_log();
        trees
            .as_slice()
            .transaction(|views| {
                let [cursors, authority_view, licences, digests, holders, heads, status, seal_records, seal_ders, seal_status, log, nodes, incident_view, open_view] =
                    views.as_slice()
                else {
                    return Err(abort(StoreError::Backend("transaction views".to_owned())));
                };
                let origin = apply.cursor.origin.as_str();
                if cursors.get(origin)?.as_deref() != expected.as_deref() {
                    return Err(abort(StoreError::Conflict));
                }
                for (uscc, value) in &authorities {
                    authority_view.insert(*uscc, value.as_slice())?;
                }
                for (l, stored) in apply.licences.iter().zip(&packed_licences) {
                    let id = l.id.as_str();
                    match licences.get(id)? {
                        Some(held) if packed::unpack(&held).map_err(abort)? != l.signed => {
                            return Err(abort(StoreError::Conflict))
                        }
                        Some(_) => continue,
                        None => {}
                    }
                    licences.insert(id, stored.as_slice())?;
                    digests.insert(id, &l.document_sha256[..])?;
                    let mut holder = holder_key(l.holder.0, &l.holder.1);
                    holder.extend_from_slice(id.as_bytes());
                    holders.insert(holder, &[][..])?;
                    // Versions of a lineage differ only in their version digits: later sorts higher.
                    let lineage = l.id.lineage();
                    if heads
                        .get(lineage.as_bytes())?
                        .is_none_or(|head| head.as_ref() < id.as_bytes())
                    {
                        heads.insert(lineage.as_bytes(), id.as_bytes())?;
                    }
                }
                for (id, history) in &statuses {
                    status.insert(*id, history.as_slice())?;
                }
                for (es_id, record, der) in &seals {
                    match seal_ders.get(*es_id)? {
                        Some(held) if held.as_ref() != *der => return Err(abort(StoreError::Conflict)),
                        Some(_) => continue,
                        None => {}
                    }
                    seal_records.insert(*es_id, record.as_slice())?;
                    seal_ders.insert(*es_id, *der)?;
                }
                for (es_id, history) in &seal_statuses {
                    seal_status.insert(*es_id, history.as_slice())?;
                }
                for entry in &apply.entries {
                    append(log, nodes, entry)?;
                }
                for (id, record, pending) in &incidents {
                    incident_view.insert(*id, record.as_slice())?;
                    match pending {
                        true => open_view.insert(*id, &[][..])?,
                        false => open_view.remove(*id)?,
                    };
                }
                cursors.insert(origin, cursor.as_slice())?;
                Ok(())
            })
            .map_err(tx_error)?;
        Ok(self.durable())
    }

    fn sync_cursors(&self) -> Result<Vec<SyncCursor>, StoreError> {
        Self::all(&self.sync_cursors, "sync cursor")
    }

    fn put_incident(&self, incident: &SyncIncident) -> Result<Durable, StoreError> {
        let _writing = self.writing();
        let (id, record) = (incident.id.as_bytes(), encode(incident)?);
        (&self.sync_incidents, &self.sync_incidents_open)
            .transaction(|(incidents, open)| {
                incidents.insert(id, record.as_slice())?;
                match incident.pending() {
                    true => open.insert(id, &[][..])?,
                    false => open.remove(id)?,
                };
                Ok(())
            })
            .map_err(tx_error)?;
        Ok(self.durable())
    }

    fn incident(&self, id: &str) -> Result<Option<SyncIncident>, StoreError> {
        Self::get(&self.sync_incidents, "sync incident", id)
    }

    fn incidents_page(
        &self,
        open_only: bool,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SyncIncident>, StoreError> {
        let index = if open_only {
            &self.sync_incidents_open
        } else {
            &self.sync_incidents
        };
        Self::listed(index, &[], &self.sync_incidents, "sync incident", (after, None, limit))
    }
}

/// The `meta` key set once the open incidents are indexed (a folder of an earlier build has none).
const OPEN_INCIDENTS_INDEXED: &[u8] = b"open_incidents_indexed";

impl SledStore {
    /// Indexes the open incidents of a folder written before they were indexed, once.
    pub(super) fn index_earlier_incidents(&self) -> Result<(), StoreError> {
        let meta = self.db.open_tree(META).map_err(backend)?;
        if meta.contains_key(OPEN_INCIDENTS_INDEXED).map_err(backend)? {
            return Ok(());
        }
        let mut open = sled::Batch::default();
        for value in self.sync_incidents.iter().values() {
            let incident: SyncIncident = decode("sync incident", &value.map_err(backend)?)?;
            if incident.pending() {
                open.insert(incident.id.as_bytes(), &[][..]);
            }
        }
        self.sync_incidents_open.apply_batch(open).map_err(backend)?;
        meta.insert(OPEN_INCIDENTS_INDEXED, &[][..]).map_err(backend)?;
        Ok(())
    }
}
