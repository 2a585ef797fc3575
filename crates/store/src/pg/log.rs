//! The signature log on PostgreSQL: entries, the tree's complete-subtree hashes, checkpoints,
//! and the one sequencer row.

use deadpool_postgres::Transaction;
use zhengyin_tlog::Frontier;

use super::{bytes, column, query, tx_execute, tx_query, PgStore};
use crate::{packed, Durable, Hash, LeafIndex, LogStore, Logged, NodeId, StoreError, TreeSize};

/// Appends `entries` to the log inside `tx`; answers the first one's index. Call it last in a
/// transaction: it locks the sequencer row, which every other appender then waits for until
/// this transaction ends, so the lock is held for no more than the append and the COMMIT.
pub(super) async fn append(tx: &Transaction<'_>, entries: &[Vec<u8>]) -> Result<LeafIndex, StoreError> {
    let rows = tx_query(tx, "SELECT size, frontier FROM log_head WHERE one = 1 FOR UPDATE", &[]).await?;
    let row = rows
        .first()
        .ok_or_else(|| StoreError::Corrupt("log head missing".to_owned()))?;
    let size = u64::try_from(column::<i64>(row, 0)?).map_err(|_| StoreError::Corrupt("log size".to_owned()))?;
    let packed = bytes(row, 1)?;
    let hashes = packed
        .chunks(32)
        .map(|c| Hash::try_from(c).map_err(|_| StoreError::Corrupt("log frontier".to_owned())))
        .collect::<Result<Vec<_>, _>>()?;
    let mut frontier = Frontier::from_parts(TreeSize(size), hashes)
        .ok_or_else(|| StoreError::Corrupt("log frontier does not match its size".to_owned()))?;
    let first = LeafIndex(size);
    // Every row in two statements, whatever the number of entries: the sequencer row is held
    // for two round trips, not one per entry and node.
    let (mut indexes, mut leaves) = (Vec::with_capacity(entries.len()), Vec::with_capacity(entries.len()));
    let stored: Vec<Vec<u8>> = entries.iter().map(|e| packed::pack_log_entry(e)).collect();
    let (mut levels, mut node_indexes, mut node_hashes) = (Vec::new(), Vec::new(), Vec::new());
    for entry in entries {
        indexes.push(signed(frontier.size().0)?);
        let leaf = zhengyin_tlog::leaf_hash(entry);
        leaves.push(leaf.to_vec());
        for (node, hash) in frontier.push_nodes(leaf) {
            levels.push(i16::from(node.level));
            node_indexes.push(signed(node.index)?);
            node_hashes.push(hash.to_vec());
        }
    }
    tx_execute(
        tx,
        "INSERT INTO log_entries (idx, leaf_hash, entry) \
         SELECT * FROM UNNEST($1::BIGINT[], $2::BYTEA[], $3::BYTEA[])",
        &[&indexes, &leaves, &stored],
    )
    .await?;
    if !levels.is_empty() {
        tx_execute(
            tx,
            "INSERT INTO log_nodes (level, idx, hash) SELECT * FROM UNNEST($1::SMALLINT[], $2::BIGINT[], $3::BYTEA[])",
            &[&levels, &node_indexes, &node_hashes],
        )
        .await?;
    }
    let packed: Vec<u8> = frontier.hashes().concat();
    tx_execute(
        tx,
        "UPDATE log_head SET size = $1, frontier = $2 WHERE one = 1",
        &[&signed(frontier.size().0)?, &packed],
    )
    .await?;
    Ok(first)
}

/// A log position as the database's BIGINT.
pub(super) fn signed(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Backend(format!("log position {n} out of range")))
}

impl LogStore for PgStore {
    fn append_log(&self, entry: &[u8]) -> Result<Logged, StoreError> {
        let entry = entry.to_vec();
        self.logged(vec![entry], move |_tx| Box::pin(async move { Ok(()) }))
    }

    fn log_size(&self) -> Result<TreeSize, StoreError> {
        self.run(|client| async move {
            let rows = query(&client, "SELECT size FROM log_head WHERE one = 1", &[]).await?;
            let size = rows.first().map(|row| column::<i64>(row, 0)).transpose()?.unwrap_or(0);
            Ok(TreeSize(
                u64::try_from(size).map_err(|_| StoreError::Corrupt("log size".to_owned()))?,
            ))
        })
    }

    fn log_entries(&self, start: LeafIndex, end: LeafIndex) -> Result<Vec<Vec<u8>>, StoreError> {
        if start.0 >= end.0 {
            return Ok(Vec::new());
        }
        let (start, end) = (signed(start.0)?, signed(end.0)?);
        self.run(move |client| async move {
            query(
                &client,
                "SELECT entry FROM log_entries WHERE idx >= $1 AND idx < $2 ORDER BY idx",
                &[&start, &end],
            )
            .await?
            .iter()
            .map(|row| packed::unpack(&bytes(row, 0)?))
            .collect()
        })
    }

    fn log_index_of(&self, leaf_hash: &Hash) -> Result<Option<LeafIndex>, StoreError> {
        let hash = leaf_hash.to_vec();
        self.run(move |client| async move {
            // The same entry appended twice keeps its first index.
            let rows = query(
                &client,
                "SELECT idx FROM log_entries WHERE leaf_hash = $1 ORDER BY idx LIMIT 1",
                &[&hash],
            )
            .await?;
            rows.first()
                .map(|row| {
                    let i = column::<i64>(row, 0)?;
                    u64::try_from(i)
                        .map(LeafIndex)
                        .map_err(|_| StoreError::Corrupt("log index".to_owned()))
                })
                .transpose()
        })
    }

    fn log_node(&self, node: NodeId) -> Result<Hash, StoreError> {
        let (level, index) = (i16::from(node.level), signed(node.index)?);
        self.run(move |client| async move {
            let rows = query(
                &client,
                "SELECT hash FROM log_nodes WHERE level = $1 AND idx = $2",
                &[&level, &index],
            )
            .await?;
            let hash = rows
                .first()
                .map(|row| bytes(row, 0))
                .transpose()?
                .ok_or_else(|| StoreError::Corrupt(format!("log node {node:?}")))?;
            Hash::try_from(hash.as_slice()).map_err(|_| StoreError::Corrupt("log node".to_owned()))
        })
    }

    fn put_checkpoint(&self, size: TreeSize, note: &str) -> Result<Durable, StoreError> {
        self.write(
            "INSERT INTO checkpoints (size, note) VALUES ($1, $2) ON CONFLICT (size) DO UPDATE SET note = EXCLUDED.note",
            vec![Box::new(signed(size.0)?), Box::new(note.to_owned())],
        )
    }

    fn recent_checkpoints(&self, limit: usize) -> Result<Vec<(TreeSize, String)>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |client| async move {
            let rows = query(
                &client,
                "SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT $1",
                &[&limit],
            )
            .await?;
            rows.iter()
                .map(|row| {
                    let size = u64::try_from(column::<i64>(row, 0)?)
                        .map_err(|_| StoreError::Corrupt("checkpoint size".to_owned()))?;
                    Ok((TreeSize(size), column::<String>(row, 1)?))
                })
                .collect()
        })
    }
}
