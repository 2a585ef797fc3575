//! Use records on sled: the journal, chunked records and their indexes.

use super::*;

impl UseStore for SledStore {
    fn record_uses(&self, records: &[UseRecord], entry: &[u8]) -> Result<Logged, StoreError> {
        let mut sorted: Vec<&UseRecord> = records.iter().collect();
        sorted.sort_by(|a, b| a.id.cmp(&b.id));
        if sorted.windows(2).any(|w| w[0].id == w[1].id) {
            return Err(StoreError::Conflict);
        }
        let (Some(first), Some(last)) = (sorted.first(), sorted.last()) else {
            return self.append_log(entry);
        };
        let _writing = self.writing();
        let (first_id, last_id) = (first.id.clone(), last.id.clone());
        // Stored in chunks, each keyed by its first id: sled copies a node on every change, so
        // its values must stay small.
        let mut chunks = Vec::new();
        let mut departments = std::collections::BTreeSet::new();
        let mut holders = std::collections::BTreeSet::new();
        for chunk in sorted.chunks(USE_CHUNK) {
            let Some(chunk_key) = chunk.first().map(|r| r.id.as_str()) else {
                continue;
            };
            for r in chunk {
                departments.insert(concat(&department_key(&r.department), chunk_key));
                if let Some(h) = &r.holder {
                    holders.insert(concat(&holder_key(h.code_type, &h.code), chunk_key));
                }
            }
            chunks.push((chunk_key.as_bytes(), crate::packed::pack_use_records(&encode(&chunk)?)));
        }
        let _one_writer = self.uses_writer.lock().unwrap_or_else(|p| p.into_inner());
        // Ids only grow: a write at or below the last stored id would overwrite or interleave.
        let above_stored = |stored: Option<&[u8]>| stored.is_none_or(|s| s < first_id.as_bytes());
        if !above_stored(self.uses_meta.get(LAST_USE).map_err(backend)?.as_deref()) {
            return Err(StoreError::Conflict);
        }
        // The records and their indexes first, outside any transaction: a sled transaction stops
        // every reader of every tree while it commits, and these writes are large. Written again
        // they are the same (a chunk is keyed by its first id), so a commit cut short by a crash
        // is completed from the journal at the next start; readers skip records they also find
        // pending.
        for (key, value) in &chunks {
            self.uses.insert(*key, value.as_slice()).map_err(backend)?;
        }
        for (index, keys) in [
            (&self.uses_by_department, &departments),
            (&self.uses_by_holder, &holders),
        ] {
            for key in keys {
                index.insert(key.as_slice(), &[][..]).map_err(backend)?;
            }
        }
        // Then the log entry and the new last id, atomically.
        let _log = self.lock_log();
        let index = (&self.log, &self.log_nodes, &self.uses_meta)
            .transaction(|(log, nodes, meta)| {
                if !above_stored(meta.get(LAST_USE)?.as_deref()) {
                    return Err(abort(StoreError::Conflict));
                }
                meta.insert(LAST_USE, last_id.as_bytes())?;
                append(log, nodes, entry)
            })
            .map_err(tx_error)?;
        let mut journal = self.journal_state();
        if journal.last.as_ref().is_none_or(|l| *l < last_id) {
            journal.last = Some(last_id.clone());
        }
        // Readers look at the pending records before the trees: now they find these in the trees.
        self.uses_pending
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|r| r.id > last_id);
        drop(journal);
        Ok(self.logged(index))
    }

    fn journal_uses(&self, records: &[UseRecord]) -> Result<(), StoreError> {
        let _writing = self.writing();
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return Ok(());
        };
        let mut journal = self.journal_state();
        let ascending = records.windows(2).all(|w| w[0].id < w[1].id);
        if !ascending || journal.last.as_ref().is_some_and(|l| first.id <= *l) {
            return Err(StoreError::Conflict);
        }
        if let Some(segments) = journal.segments.as_mut() {
            segments.append(records)?;
        }
        journal.last = Some(last.id.clone());
        self.uses_pending
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(records);
        Ok(())
    }

    fn journaled_uses(&self) -> Result<Vec<UseRecord>, StoreError> {
        Ok(self.uses_pending.read().unwrap_or_else(|p| p.into_inner()).clone())
    }

    fn release_journal(&self, through: &str) -> Result<(), StoreError> {
        let _writing = self.writing();
        match self.journal_state().segments.as_mut() {
            Some(segments) => segments.release(through),
            None => Ok(()),
        }
    }

    fn last_use_record(&self) -> Result<Option<String>, StoreError> {
        Ok(self.journal_state().last.clone())
    }

    fn use_records(&self, q: &UseQuery) -> Result<Vec<UseRecord>, StoreError> {
        // Pending first: a record committed meanwhile is then found in the trees, never missed.
        let pending: Vec<UseRecord> = self
            .uses_pending
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|r| q.admits(r))
            .cloned()
            .collect();
        let mut out = self.stored_uses(q)?;
        let newest = out.last().map(|r| r.id.clone());
        out.extend(
            pending
                .into_iter()
                .filter(|r| newest.as_ref().is_none_or(|n| r.id > *n)),
        );
        out.truncate(q.limit);
        Ok(out)
    }
}
