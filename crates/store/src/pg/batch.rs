//! Group commit on PostgreSQL: the writes that append to the log, gathered into one transaction.
//!
//! Every logged write must hold the log's sequencer row (`log_head`) from its append to its
//! COMMIT, so one transaction per write makes appends strictly serial, each paying its round
//! trips and a WAL flush inside the lock (measured: 88 % of busy backends waiting on that row
//! lock during issuance, ~560 licences/s). Here a few appender tasks per process each take every
//! write queued, run them in one transaction — each inside a SAVEPOINT, so that a write refused
//! (a compare-and-swap that lost, a taken key) is undone alone — append all their entries at once
//! and COMMIT once. A write's answer waits for that COMMIT.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use deadpool_postgres::{Pool, Transaction};
use tokio::sync::{mpsc, Mutex};

use super::log::append;
use super::{db, pool_error};
use crate::{LeafIndex, StoreError};

/// A write's statements, run inside the batch's transaction.
pub(super) type Work = Box<
    dyn for<'t, 'c> FnOnce(&'t Transaction<'c>) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 't>>
        + Send,
>;

/// Most writes in one transaction.
const MAX_BATCH: usize = 256;
/// Appender tasks per process: while one commits, another gathers and runs the next batch.
pub(super) const APPENDERS: usize = 2;

/// A queued write: its statements, its log entries, and where its answer goes.
pub(super) struct Job {
    pub work: Work,
    pub entries: Vec<Vec<u8>>,
    pub answer: std::sync::mpsc::SyncSender<Result<LeafIndex, StoreError>>,
}

/// Starts the appenders on the store's runtime; answers the queue they serve.
pub(super) fn start(runtime: &tokio::runtime::Runtime, pool: &Pool) -> mpsc::UnboundedSender<Job> {
    let (queue, jobs) = mpsc::unbounded_channel::<Job>();
    let jobs = Arc::new(Mutex::new(jobs));
    for _ in 0..APPENDERS {
        runtime.spawn(appender(pool.clone(), Arc::clone(&jobs)));
    }
    queue
}

async fn appender(pool: Pool, jobs: Arc<Mutex<mpsc::UnboundedReceiver<Job>>>) {
    loop {
        let batch = {
            let mut jobs = jobs.lock().await;
            let Some(first) = jobs.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            batch
        };
        let answers: Vec<_> = batch.iter().map(|job| job.answer.clone()).collect();
        let results = run(&pool, batch).await;
        for (answer, result) in answers.into_iter().zip(results) {
            // A caller that gave up needs no answer.
            let _ = answer.send(result);
        }
    }
}

/// Runs a batch in one transaction; one result per job, in order.
async fn run(pool: &Pool, batch: Vec<Job>) -> Vec<Result<LeafIndex, StoreError>> {
    let count = batch.len();
    let failed = |e: StoreError| (0..count).map(|_| Err(e.clone())).collect();
    let mut client = match pool.get().await {
        Ok(client) => client,
        Err(e) => return failed(StoreError::Backend(format!("database connection: {}", pool_error(&e)))),
    };
    let tx = match client.transaction().await {
        Ok(tx) => tx,
        Err(e) => return failed(db(e)),
    };
    // Per job: its position among the batch's entries, or why it was refused.
    let mut outcomes: Vec<Result<u64, StoreError>> = Vec::with_capacity(count);
    let mut entries: Vec<Vec<u8>> = Vec::new();
    for job in batch {
        match run_one(&tx, job.work, count > 1).await {
            Ok(()) => {
                outcomes.push(Ok(entries.len() as u64));
                entries.extend(job.entries);
            }
            Err(Refused::Job(e)) => outcomes.push(Err(e)),
            Err(Refused::Batch(e)) => return failed(e),
        }
    }
    if entries.is_empty() {
        // Every job refused: nothing to append or commit.
        return outcomes.into_iter().map(|o| o.map(LeafIndex)).collect();
    }
    let first = match append(&tx, &entries).await {
        Ok(first) => first,
        Err(e) => return failed(e),
    };
    if let Err(e) = tx.commit().await {
        return failed(db(e));
    }
    outcomes
        .into_iter()
        .map(|o| o.map(|position| LeafIndex(first.0 + position)))
        .collect()
}

/// Why a job did not go in.
enum Refused {
    /// The job itself was refused; the rest of the batch goes on.
    Job(StoreError),
    /// The transaction failed: the whole batch is refused.
    Batch(StoreError),
}

/// Runs one job, inside a savepoint when it shares the transaction.
async fn run_one(tx: &Transaction<'_>, work: Work, shared: bool) -> Result<(), Refused> {
    if !shared {
        return work(tx).await.map_err(Refused::Job);
    }
    tx.batch_execute("SAVEPOINT job")
        .await
        .map_err(|e| Refused::Batch(db(e)))?;
    let result = work(tx).await;
    let end = if result.is_ok() {
        "RELEASE SAVEPOINT job"
    } else {
        "ROLLBACK TO SAVEPOINT job; RELEASE SAVEPOINT job"
    };
    tx.batch_execute(end).await.map_err(|e| Refused::Batch(db(e)))?;
    result.map_err(Refused::Job)
}
