//! The use-record writer: group commit for use records.
//!
//! Every lookup and verification by a department writes a use record that must be durable
//! before the answer. Written one by one, each is a transaction, a turn at the log's lock and a
//! wait for a flush — the writes, not the signatures, would bound the hot path. Instead callers
//! queue their records; one writer thread takes everything queued (up to [`MAX_BATCH`]), writes
//! it as one atomic store write with one log entry committing to every record in it, waits for
//! that write to be durable, and then answers every caller in the batch. While it waits, the next
//! batch gathers. (Measured with benches/load.sh: not waiting, and letting each caller wait
//! instead, made batches of one or two records and cost more than it saved; writing the next batch
//! while the previous one flushes made batches half as large and lost a third of the rate.)

use std::sync::mpsc;
use std::sync::Arc;

use serde_json::json;
use zhengyin_model::licence::format_time;
use zhengyin_model::UseRecord;
use zhengyin_store::{Store, StoreError};

use crate::{log, EngineError};

/// Most records in one write.
pub const MAX_BATCH: usize = 4096;

/// Records with their commitments (SHA-256 of each record's RFC 8785 form).
type Committed = Vec<(UseRecord, [u8; 32])>;

struct Job {
    records: Vec<UseRecord>,
    done: tokio::sync::oneshot::Sender<Result<Vec<String>, StoreError>>,
}

/// The queue in front of the writer thread (which ends when the recorder is dropped).
pub(crate) struct UseRecorder {
    queue: mpsc::Sender<Job>,
}

impl UseRecorder {
    /// Starts the writer thread over `store`. Ids continue above the last one stored, whatever
    /// the clock says.
    pub(crate) fn start(store: Arc<dyn Store>) -> Result<Self, EngineError> {
        let last = match store.last_use_record()? {
            Some(id) => id
                .strip_prefix("UR")
                .and_then(|hex| u64::from_str_radix(hex, 16).ok())
                .ok_or_else(|| StoreError::Corrupt(format!("use record id {id}")))?,
            None => 0,
        };
        let (queue, jobs) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("zhengyin-use-records".to_owned())
            .spawn(move || write_batches(store.as_ref(), &jobs, last))
            .map_err(|e| EngineError::Store(StoreError::Backend(format!("starting the use-record writer: {e}"))))?;
        Ok(Self { queue })
    }

    /// Queues `records` (their ids are given here, in writing order) and returns their ids once
    /// they are durable (or the write failed: nothing of them is then acknowledged).
    pub(crate) async fn record(&self, records: Vec<UseRecord>) -> Result<Vec<String>, EngineError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let stopped = || EngineError::Store(StoreError::Backend("the use-record writer stopped".to_owned()));
        let (done, answer) = tokio::sync::oneshot::channel();
        self.queue.send(Job { records, done }).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?.map_err(EngineError::Store)
    }
}

/// The one log entry of a batch: its size, first and last id, and SHA-256 over the records'
/// commitments in id order.
fn batch_entry(committed: &Committed) -> Vec<u8> {
    let mut ordered: Vec<&(UseRecord, [u8; 32])> = committed.iter().collect();
    ordered.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    let concatenated: Vec<u8> = ordered.iter().flat_map(|(_, c)| c.iter().copied()).collect();
    let (first, last) = (ordered.first().map(|(r, _)| r), ordered.last().map(|(r, _)| r));
    log::entry(json!({
        "event": "licence.used",
        "count": ordered.len(),
        "first": first.map(|r| r.id.as_str()),
        "last": last.map(|r| r.id.as_str()),
        "records_sha256": zhengyin_crypto::hash::sha256_hex(&concatenated),
        "time": last.map(|r| format_time(r.time)),
    }))
}

/// A record's id: `UR` and 16 hex digits of its time in nanoseconds, moved past the previous id,
/// so that ids are unique and grow in writing order.
fn next_id(last: &mut u64, record: &UseRecord) -> String {
    let nanos = u64::try_from(record.time.unix_timestamp_nanos()).unwrap_or(0);
    *last = nanos.max(last.saturating_add(1));
    format!("UR{last:016x}")
}

fn write_batches(store: &dyn Store, jobs: &mpsc::Receiver<Job>, mut last: u64) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        let mut count = batch[0].records.len();
        while count < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => {
                    count += job.records.len();
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        let mut committed: Committed = Vec::with_capacity(count);
        let mut ids_per_job = Vec::with_capacity(batch.len());
        for job in &mut batch {
            let mut ids = Vec::with_capacity(job.records.len());
            for mut record in std::mem::take(&mut job.records) {
                record.id = next_id(&mut last, &record);
                ids.push(record.id.clone());
                let commitment = crate::access::commitment_bytes(&record);
                committed.push((record, commitment));
            }
            ids_per_job.push(ids);
        }
        let entry = batch_entry(&committed);
        let records: Vec<UseRecord> = committed.into_iter().map(|(record, _)| record).collect();
        let result = store
            .record_uses(&records, &entry)
            .and_then(|logged| logged.durable.wait());
        if let Err(e) = &result {
            tracing::error!(error = %e, records = records.len(), "writing use records failed");
        }
        for (job, ids) in batch.into_iter().zip(ids_per_job) {
            // A caller that gave up waiting needs no answer.
            let _ = job.done.send(result.clone().map(|()| ids));
        }
    }
}
