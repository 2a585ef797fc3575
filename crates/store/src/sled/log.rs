//! The signature log on sled.

use super::*;

impl LogStore for SledStore {
    fn append_log(&self, entry: &[u8]) -> Result<Logged, StoreError> {
        let _writing = self.writing();
        let _log = self.lock_log();
        let index = (&self.log, &self.log_nodes)
            .transaction(|(log, nodes)| append(log, nodes, entry))
            .map_err(tx_error)?;
        Ok(self.logged(index))
    }

    fn log_size(&self) -> Result<TreeSize, StoreError> {
        match self.log.get(LOG_SIZE).map_err(backend)? {
            Some(v) => Ok(TreeSize(read_u64(&v)?)),
            None => Ok(TreeSize(0)),
        }
    }

    fn log_entries(&self, start: LeafIndex, end: LeafIndex) -> Result<Vec<Vec<u8>>, StoreError> {
        if start.0 >= end.0 {
            return Ok(Vec::new());
        }
        self.log
            .range(entry_key(start.0)..entry_key(end.0))
            .values()
            .map(|v| packed::unpack(&v.map_err(backend)?))
            .collect()
    }

    fn log_index_of(&self, leaf_hash: &Hash) -> Result<Option<LeafIndex>, StoreError> {
        self.log
            .get(hash_key(leaf_hash))
            .map_err(backend)?
            .map(|v| read_u64(&v).map(LeafIndex))
            .transpose()
    }

    fn log_node(&self, node: NodeId) -> Result<Hash, StoreError> {
        let v = self
            .log_nodes
            .get(node_key(node))
            .map_err(backend)?
            .ok_or_else(|| StoreError::Corrupt(format!("log node {node:?}")))?;
        v.as_ref()
            .try_into()
            .map_err(|_| StoreError::Corrupt("log node".to_owned()))
    }

    fn put_checkpoint(&self, size: TreeSize, note: &str) -> Result<Durable, StoreError> {
        let _writing = self.writing();
        self.checkpoints
            .insert(size.0.to_be_bytes(), note.as_bytes())
            .map_err(backend)?;
        Ok(self.durable())
    }

    fn recent_checkpoints(&self, limit: usize) -> Result<Vec<(TreeSize, String)>, StoreError> {
        self.checkpoints
            .iter()
            .rev()
            .take(limit)
            .map(|pair| {
                let (k, v) = pair.map_err(backend)?;
                let note = String::from_utf8(v.to_vec()).map_err(|_| StoreError::Corrupt("checkpoint".to_owned()))?;
                Ok((TreeSize(read_u64(&k)?), note))
            })
            .collect()
    }
}
