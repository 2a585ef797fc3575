//! The use-record writer: group commit for use records, through the store's journal.
//!
//! Every lookup and verification by a department writes a use record that must be durable
//! before the answer. Callers queue their records; one journal thread takes everything queued
//! (up to [`MAX_BATCH`]), gives the records their ids, appends them to the store's journal (one
//! write, one data sync) and answers every caller in the batch; while it syncs, the next batch
//! gathers. A commit thread then records what was journaled in the store — indexes, and one log
//! entry committing to every record since the previous commit — at most every
//! [`COMMIT_INTERVAL`], so under load the database transaction and its flush are rare.
//! Frontends of one shared database each run these threads: a journal write that finds higher
//! ids written by another frontend renumbers its batch past them, and a commit records whatever
//! any frontend journaled, so every record is covered by exactly one log entry.
//! (Measured with benches/load.sh on 2 cores: a database transaction and flush per batch held
//! departments' verifications at 7.0k/s, with the journal 10.6k/s; records written without
//! waiting made batches of one or two records and cost more than they saved.)

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use zhengyin_model::licence::format_time;
use zhengyin_model::UseRecord;
use zhengyin_store::{Store, StoreError};

use crate::log::SigningHalt;
use crate::metrics::{seconds_between, EngineMetrics};
use crate::{log, EngineError};

/// Most records in one journal write.
pub const MAX_BATCH: usize = 4096;

/// The longest a journal write waits for more records to join its batch (only under load).
const MAX_GATHER: Duration = Duration::from_millis(1);

/// The least time between two commits of journaled records to the store (a lone record is
/// committed at once). Its log entry follows the answer by about this much under load.
pub const COMMIT_INTERVAL: Duration = Duration::from_millis(200);

struct Job {
    records: Vec<UseRecord>,
    /// How many records it brought (its answer has as many ids).
    count: usize,
    done: tokio::sync::oneshot::Sender<Result<Vec<String>, StoreError>>,
}

/// What the commit thread receives: journaled records, or a request to answer once everything
/// received before it is committed.
enum ToCommit {
    Records(Vec<UseRecord>),
    Settle(tokio::sync::oneshot::Sender<Result<(), StoreError>>),
}

/// The queue in front of the journal thread (which ends, and with it the commit thread once it
/// has committed everything, when the recorder is dropped).
pub(crate) struct UseRecorder {
    queue: mpsc::Sender<Job>,
    commits: mpsc::Sender<ToCommit>,
}

fn stopped() -> EngineError {
    EngineError::Store(StoreError::Backend("the use-record writer stopped".to_owned()))
}

impl UseRecorder {
    /// Records what a crash left journaled, then starts the threads over `store`. Ids continue
    /// above the last one stored or journaled, whatever the clock says.
    /// While `halt` is set, nothing is committed: records stay journaled (durable), and are
    /// committed with their log entry once signing resumes.
    pub(crate) fn start(
        store: Arc<dyn Store>,
        halt: Arc<SigningHalt>,
        metrics: Arc<EngineMetrics>,
    ) -> Result<Self, EngineError> {
        if halt.why().is_none() {
            commit(store.as_ref())?;
        }
        let last = last_id(store.as_ref())?;
        let spawn = |name: &str, work: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(work)
                .map(drop)
                .map_err(|e| EngineError::Store(StoreError::Backend(format!("starting {name}: {e}"))))
        };
        let (commits, to_commit) = mpsc::channel::<ToCommit>();
        let committer = Arc::clone(&store);
        let commit_metrics = Arc::clone(&metrics);
        spawn(
            "zhengyin-use-commit",
            Box::new(move || commit_batches(committer.as_ref(), &to_commit, &halt, &commit_metrics)),
        )?;
        let (queue, jobs) = mpsc::channel::<Job>();
        let forward = commits.clone();
        spawn(
            "zhengyin-use-records",
            Box::new(move || journal_batches(store.as_ref(), &jobs, &forward, last, &metrics)),
        )?;
        Ok(Self { queue, commits })
    }

    /// Queues `records` (their ids are given here, in writing order) and returns their ids once
    /// they are durable (or the write failed: nothing of them is then acknowledged).
    pub(crate) async fn record(&self, records: Vec<UseRecord>) -> Result<Vec<String>, EngineError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let (done, answer) = tokio::sync::oneshot::channel();
        let count = records.len();
        self.queue.send(Job { records, count, done }).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?.map_err(EngineError::Store)
    }

    /// Returns once every record acknowledged before the call is committed to the store, with
    /// its log entry.
    pub(crate) async fn settle(&self) -> Result<(), EngineError> {
        let (done, answer) = tokio::sync::oneshot::channel();
        self.commits.send(ToCommit::Settle(done)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?.map_err(EngineError::Store)
    }
}

/// The one log entry of a commit: its size, first and last id, and SHA-256 over the records'
/// commitments (SHA-256 of each record's RFC 8785 form) in id order.
fn commit_entry(records: &[UseRecord]) -> Vec<u8> {
    let mut ordered: Vec<&UseRecord> = records.iter().collect();
    ordered.sort_by(|a, b| a.id.cmp(&b.id));
    let concatenated: Vec<u8> = ordered.iter().flat_map(crate::access::commitment_bytes).collect();
    let (first, last) = (ordered.first(), ordered.last());
    log::entry(json!({
        "event": "licence.used",
        "count": ordered.len(),
        "first": first.map(|r| r.id.as_str()),
        "last": last.map(|r| r.id.as_str()),
        "records_sha256": zhengyin_crypto::hash::sha256_hex(&concatenated),
        "time": last.map(|r| format_time(r.time)),
    }))
}

/// The number in the highest use record id stored or journaled (0 when there is none).
fn last_id(store: &dyn Store) -> Result<u64, StoreError> {
    match store.last_use_record()? {
        Some(id) => id
            .strip_prefix("UR")
            .and_then(|hex| u64::from_str_radix(hex, 16).ok())
            .ok_or_else(|| StoreError::Corrupt(format!("use record id {id}"))),
        None => Ok(0),
    }
}

/// How often a halted commit thread looks again whether signing resumed.
const HALTED_RETRY: Duration = Duration::from_secs(1);

/// Attempts at a journal write or a commit that another frontend of the same database got to
/// first ([`StoreError::Conflict`]), each after reading the store again.
const ATTEMPTS: usize = 8;

fn now_nanos() -> u64 {
    u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos()).unwrap_or(0)
}

/// Records everything journaled in the store — by this process or, on a shared database, by any
/// frontend — with one log entry, durably, and lets the journal drop it. When another frontend
/// records some of them first, reads the journal again.
fn commit(store: &dyn Store) -> Result<(), StoreError> {
    for _ in 0..ATTEMPTS {
        let records = store.journaled_uses()?;
        let Some(last) = records.last() else {
            return Ok(());
        };
        match store.record_uses(&records, &commit_entry(&records)) {
            Ok(logged) => {
                logged.durable.wait()?;
                return store.release_journal(&last.id);
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Conflict)
}

/// A record's id: `UR` and 16 hex digits of its time in nanoseconds, moved past the previous id,
/// so that ids are unique and grow in writing order.
fn next_id(last: &mut u64, record: &UseRecord) -> String {
    let nanos = u64::try_from(record.time.unix_timestamp_nanos()).unwrap_or(0);
    *last = nanos.max(last.saturating_add(1));
    format!("UR{last:016x}")
}

fn journal_batches(
    store: &dyn Store,
    jobs: &mpsc::Receiver<Job>,
    commits: &mpsc::Sender<ToCommit>,
    mut last: u64,
    metrics: &EngineMetrics,
) {
    // How long the last write took, when its batch was gathered from several callers.
    let mut busy: Option<Duration> = None;
    while let Ok(first) = jobs.recv() {
        if let Some(last_write) = busy {
            // Under load, let the batch gather for about as long as a write takes: half the
            // syncs for the same records, for at most one write's time more of latency.
            std::thread::sleep(last_write.min(MAX_GATHER));
        }
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
        let mut records: Vec<UseRecord> = batch
            .iter_mut()
            .flat_map(|job| std::mem::take(&mut job.records))
            .collect();
        let mut result = Err(StoreError::Conflict);
        for _ in 0..ATTEMPTS {
            for record in &mut records {
                record.id = next_id(&mut last, record);
            }
            let started = Instant::now();
            result = store.journal_uses(&records);
            let took = started.elapsed();
            metrics.use_journal_write_seconds.observe(took.as_secs_f64());
            busy = (batch.len() > 1).then_some(took);
            if result != Err(StoreError::Conflict) {
                break;
            }
            // Another frontend of the same database wrote higher ids meanwhile: go past them,
            // and past now, so that its batches gathered meanwhile do not overtake this one again.
            match last_id(store) {
                Ok(stored) => last = last.max(stored).max(now_nanos()),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        let mut ids = records.iter().map(|r| r.id.clone());
        let ids_per_job: Vec<Vec<String>> = batch.iter().map(|job| ids.by_ref().take(job.count).collect()).collect();
        match &result {
            // Before the answers: a settle asked for after an answer finds these committed.
            Ok(()) => {
                metrics.use_records_written.inc_by(records.len() as u64);
                let _ = commits.send(ToCommit::Records(records));
            }
            Err(e) => tracing::error!(error = %e, records = records.len(), "journaling use records failed"),
        }
        for (job, ids) in batch.into_iter().zip(ids_per_job) {
            // A caller that gave up waiting needs no answer.
            let _ = job.done.send(result.clone().map(|()| ids));
        }
    }
}

/// Commits what was journaled: everything received at once, then rests [`COMMIT_INTERVAL`] from
/// the start of that commit. A failed commit is retried; its records stay journaled meanwhile.
/// Ends when the journal thread and the recorder are gone and everything is committed.
fn commit_batches(store: &dyn Store, inbox: &mpsc::Receiver<ToCommit>, halt: &SigningHalt, metrics: &EngineMetrics) {
    let mut pending: Vec<UseRecord> = Vec::new();
    let mut settles = Vec::new();
    let mut open = true;
    let take = |message: ToCommit, pending: &mut Vec<UseRecord>, settles: &mut Vec<_>| match message {
        ToCommit::Records(records) => pending.extend(records),
        ToCommit::Settle(done) => settles.push(done),
    };
    while open || !pending.is_empty() {
        if pending.is_empty() {
            match inbox.recv() {
                Ok(message) => take(message, &mut pending, &mut settles),
                Err(_) => return,
            }
        }
        loop {
            match inbox.try_recv() {
                Ok(message) => take(message, &mut pending, &mut settles),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        let started = Instant::now();
        let committing = !pending.is_empty();
        if let Some(why) = halt.why() {
            for done in settles.drain(..) {
                let _ = done.send(Err(StoreError::Backend(format!("use records stay journaled: {why}"))));
            }
            if !open {
                return;
            }
            std::thread::sleep(HALTED_RETRY);
            continue;
        }
        let result = commit(store);
        match &result {
            Ok(()) => {
                if let Some(oldest) = pending.iter().map(|r| r.time).min() {
                    let lag = seconds_between(oldest, time::OffsetDateTime::now_utc());
                    metrics.use_commit_lag_seconds.observe(lag);
                }
                pending.clear();
            }
            Err(e) => tracing::error!(error = %e, records = pending.len(), "committing use records failed"),
        }
        for done in settles.drain(..) {
            let _ = done.send(result.clone());
        }
        if result.is_err() && !open {
            // Shutting down with a failing store: the journal keeps them for the next start.
            return;
        }
        if committing {
            std::thread::sleep(COMMIT_INTERVAL.saturating_sub(started.elapsed()));
        }
    }
}
