//! The cluster backend: PostgreSQL (or an engine that speaks its protocol), shared by any
//! number of `zhengyin` processes. One file per concern's trait; this one holds the connection
//! pool, the bridge from the synchronous traits to the asynchronous client, and the helpers the
//! concerns share.
//!
//! - **Durable at COMMIT.** A write returns once its transaction has committed (with
//!   `synchronous_commit` on, the server's default), so its [`Durable`] is already resolved.
//! - **Group commit.** Writes that append to the log are gathered into one transaction with the
//!   others queued meanwhile, each in a savepoint, and committed once (`batch.rs`).
//! - **One log sequencer at a time.** Every transaction that appends to the log takes the
//!   `log_head` row lock as its last statement before COMMIT (see `log.rs`): indices are
//!   contiguous across every frontend and after any crash, and the lock is held only for the
//!   append and the COMMIT.
//! - **Compare-and-swap** is an `UPDATE … WHERE key = $1 AND record = $expected`: the server
//!   re-checks the condition on the row it locks, so two frontends never both win.
//! - **The bridge.** The store traits are synchronous; the client is tokio-postgres on a small
//!   runtime of the store's own. A call hands its work to that runtime and waits; on a
//!   multi-threaded tokio runtime it waits in `block_in_place`, so the caller's other tasks move
//!   to another worker meanwhile.

mod access;
mod batch;
mod health;
mod import;
mod leases;
mod licences;
mod log;
mod objections;
pub mod schema;
mod sessions;
mod sync;
mod uses;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use deadpool_postgres::{Object, Pool, Runtime, Transaction};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use zhengyin_model::HolderCodeType;

pub use schema::{Migrated, SCHEMA_VERSION};

use crate::{Durable, LeafIndex, Logged, StoreError};

/// Connections per process: enough for the frontend's concurrent requests to pipeline, few
/// enough that many frontends fit in the server's `max_connections` (100 by default).
const POOL_SIZE: usize = 16;
/// How long a request waits for a connection, or to connect, before it is refused (503).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A PostgreSQL database shared by the frontends of one node.
pub struct PgStore {
    pool: Pool,
    /// The queue of logged writes (group commit, see `batch.rs`).
    appenders: tokio::sync::mpsc::UnboundedSender<batch::Job>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`), brings the schema up to
    /// date and checks it. Fails at once, writing nothing, when the database cannot be reached,
    /// refuses the credentials, holds another application's tables or a newer schema.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let store = Self::connect(url)?;
        store.run(|mut client| async move { schema::migrate(&mut client, SCHEMA_VERSION).await })?;
        store.run(|client| async move { schema::check(&client).await })?;
        Ok(store)
    }

    /// Applies the migrations this build knows to the database at `url`.
    pub fn migrate(url: &str) -> Result<Migrated, StoreError> {
        Self::migrate_to(url, SCHEMA_VERSION)
    }

    /// Applies the migrations up to schema version `target` only: an upgrade staged in steps
    /// (and the tests of each step). A node opens only a database at [`SCHEMA_VERSION`].
    pub fn migrate_to(url: &str, target: i32) -> Result<Migrated, StoreError> {
        Self::connect(url)?.run(move |mut client| async move { schema::migrate(&mut client, target).await })
    }

    fn connect(url: &str) -> Result<Self, StoreError> {
        let mut pg: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Schema(format!("database URL: {e}")))?;
        pg.connect_timeout(CONNECT_TIMEOUT)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .application_name("zhengyin");
        let manager = deadpool_postgres::Manager::from_config(
            pg,
            tokio_postgres::NoTls,
            deadpool_postgres::ManagerConfig {
                recycling_method: deadpool_postgres::RecyclingMethod::Fast,
            },
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("zhengyin-pg")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Backend(format!("database runtime: {e}")))?;
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Backend(format!("database pool: {e}")))?;
        Ok(Self {
            appenders: batch::start(&runtime, &pool),
            pool,
            runtime: Some(runtime),
        })
    }

    /// Runs `work` with a pooled connection on the store's runtime and waits for its answer.
    fn run<T, F, Fut>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Object) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let Some(runtime) = &self.runtime else {
            return Err(StoreError::Backend("the database store is closed".to_owned()));
        };
        let pool = self.pool.clone();
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let result = match pool.get().await {
                Ok(client) => work(client).await,
                Err(e) => Err(StoreError::Backend(format!("database connection: {}", pool_error(&e)))),
            };
            // The caller may have gone (a dropped request); nothing to tell then.
            let _ = answer.send(result);
        });
        wait(&answered)
    }

    /// Runs `work` and appends `entries` to the log in one transaction, shared with the other
    /// logged writes queued meanwhile; answers the index of its first entry once committed.
    fn logged<F>(&self, entries: Vec<Vec<u8>>, work: F) -> Result<Logged, StoreError>
    where
        F: for<'t, 'c> FnOnce(&'t Transaction<'c>) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 't>>
            + Send
            + 'static,
    {
        let answered = self.enqueue_logged(entries, Box::new(work))?;
        logged_when(&answered)
    }

    /// Queues a logged write for the appenders without waiting: writes queued together share
    /// transactions. Its answer comes on the returned channel (see [`logged_when`]).
    fn enqueue_logged(&self, entries: Vec<Vec<u8>>, work: batch::Work) -> Result<Answer, StoreError> {
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        self.appenders
            .send(batch::Job { work, entries, answer })
            .map_err(|_| StoreError::Backend("the database store is closed".to_owned()))?;
        Ok(answered)
    }

    /// Runs `upsert` (a keyed `INSERT … ON CONFLICT … DO UPDATE` of `$1` key, `$2` record) and
    /// appends `entry`, in one logged transaction.
    fn upsert_logged(
        &self,
        upsert: &'static str,
        key: String,
        record: Vec<u8>,
        entry: &[u8],
    ) -> Result<Logged, StoreError> {
        self.logged(vec![entry.to_vec()], move |tx| {
            Box::pin(async move {
                tx_execute(tx, upsert, &[&key, &record]).await?;
                Ok(())
            })
        })
    }

    /// Runs `work` and answers once it has committed.
    fn committed<F, Fut>(&self, work: F) -> Result<Durable, StoreError>
    where
        F: FnOnce(Object) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), StoreError>> + Send + 'static,
    {
        self.run(work)?;
        Ok(Durable::committed())
    }

    /// Runs one statement with `params` on its own (autocommit) and answers once committed.
    fn write(&self, sql: &'static str, params: Vec<Param>) -> Result<Durable, StoreError> {
        self.committed(move |client| async move {
            let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
            query(&client, sql, &refs).await?;
            Ok(())
        })
    }

    /// Every row of `sql` (no parameters), each decoded from its first column.
    fn all<T: DeserializeOwned + Send + 'static>(
        &self,
        what: &'static str,
        sql: &'static str,
    ) -> Result<Vec<T>, StoreError> {
        self.run(move |client| async move {
            let rows = query(&client, sql, &[]).await?;
            rows.iter().map(|row| decode(what, &bytes(row, 0)?)).collect()
        })
    }

    /// The record of `sql` with one text parameter, decoded.
    fn one<T: DeserializeOwned + Send + 'static>(
        &self,
        what: &'static str,
        sql: &'static str,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        let key = key.to_owned();
        self.run(move |client| async move {
            query(&client, sql, &[&key])
                .await?
                .first()
                .map(|row| decode(what, &bytes(row, 0)?))
                .transpose()
        })
    }
}

impl PgStore {
    /// Compare-and-swap of one column with a log entry, in one transaction.
    fn swap_logged(
        &self,
        target: (&'static str, &'static str, &'static str),
        key: &str,
        expected: Vec<u8>,
        new: Vec<u8>,
        entry: &[u8],
    ) -> Result<Logged, StoreError> {
        let (key, entry) = (key.to_owned(), entry.to_vec());
        self.logged(vec![entry], move |tx| {
            Box::pin(async move {
                swap(tx, target, &key, &expected, &new).await?;
                Ok(())
            })
        })
    }

    /// Inserts a new row (its key must be free: [`StoreError::Conflict`] otherwise) with a log
    /// entry, in one transaction.
    fn insert_logged(
        &self,
        sql: &'static str,
        values: Vec<String>,
        record: Vec<u8>,
        entry: &[u8],
    ) -> Result<Logged, StoreError> {
        let entry = entry.to_vec();
        self.logged(vec![entry], move |tx| {
            Box::pin(async move {
                let mut params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
                params.push(&record);
                insert_new(tx, sql, &params).await?;
                Ok(())
            })
        })
    }
}

/// Waits for a task on the store's runtime to answer; on a multi-threaded tokio runtime, in
/// `block_in_place`, so the caller's other tasks move to another worker meanwhile.
/// Where a queued logged write's answer comes.
type Answer = std::sync::mpsc::Receiver<Result<LeafIndex, StoreError>>;

/// Waits for a queued logged write: committed (durable) once answered.
fn logged_when(answered: &Answer) -> Result<Logged, StoreError> {
    Ok(Logged {
        durable: Durable::committed(),
        index: wait(answered)?,
    })
}

pub(super) fn wait<T>(answered: &std::sync::mpsc::Receiver<Result<T, StoreError>>) -> Result<T, StoreError> {
    let wait = || {
        answered
            .recv()
            .unwrap_or_else(|_| Err(StoreError::Backend("database task ended".to_owned())))
    };
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(wait)
        }
        _ => wait(),
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // May be dropped on an async thread, where a blocking shutdown is not allowed.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// An owned statement parameter, for work handed to the store's runtime.
type Param = Box<dyn ToSql + Send + Sync>;

/// A client error as a store error: a lost or refused connection is `Backend` (503 upstream).
pub(super) fn db(e: tokio_postgres::Error) -> StoreError {
    StoreError::Backend(format!("database: {}", schema::describe(&e)))
}

fn pool_error(e: &deadpool_postgres::PoolError) -> String {
    match e {
        deadpool_postgres::PoolError::Backend(e) => schema::describe(e),
        other => other.to_string(),
    }
}

/// Whether `e` is a unique-key violation (SQLSTATE 23505).
fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
}

/// Runs a statement (prepared once per connection) on a connection.
async fn query(client: &Object, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, StoreError> {
    let statement = client.prepare_cached(sql).await.map_err(db)?;
    client.query(&statement, params).await.map_err(db)
}

/// Runs a statement (prepared once per connection) in a transaction; answers the rows.
async fn tx_query(tx: &Transaction<'_>, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, StoreError> {
    let statement = tx.prepare_cached(sql).await.map_err(db)?;
    tx.query(&statement, params).await.map_err(db)
}

/// Runs a statement (prepared once per connection) in a transaction; answers the rows changed.
async fn tx_execute(tx: &Transaction<'_>, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, StoreError> {
    let statement = tx.prepare_cached(sql).await.map_err(db)?;
    tx.execute(&statement, params).await.map_err(db)
}

/// Inserts a row whose key must be new: [`StoreError::Conflict`] if it is taken.
async fn insert_new(tx: &Transaction<'_>, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<(), StoreError> {
    let statement = tx.prepare_cached(sql).await.map_err(db)?;
    match tx.execute(&statement, params).await {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict),
        Err(e) => Err(db(e)),
    }
}

/// Replaces `table.record` where `key_column = key` if it still equals `expected`:
/// [`StoreError::NotFound`] if there is no such row, [`StoreError::Conflict`] if it differs.
async fn swap(
    tx: &Transaction<'_>,
    (table, key_column, column): (&str, &str, &str),
    key: &str,
    expected: &[u8],
    new: &[u8],
) -> Result<(), StoreError> {
    let update = format!("UPDATE {table} SET {column} = $1 WHERE {key_column} = $2 AND {column} = $3");
    if tx_execute(tx, &update, &[&new, &key, &expected]).await? == 1 {
        return Ok(());
    }
    let exists = format!("SELECT 1 FROM {table} WHERE {key_column} = $1");
    if tx_query(tx, &exists, &[&key]).await?.is_empty() {
        Err(StoreError::NotFound)
    } else {
        Err(StoreError::Conflict)
    }
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| StoreError::Backend(e.to_string()))
}

fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// Column `i` of `row` as bytes.
fn bytes(row: &Row, i: usize) -> Result<Vec<u8>, StoreError> {
    row.try_get(i)
        .map_err(|e| StoreError::Corrupt(format!("column {i}: {e}")))
}

/// Column `i` of `row`, of any type the client decodes.
fn column<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, i: usize) -> Result<T, StoreError> {
    row.try_get(i)
        .map_err(|e| StoreError::Corrupt(format!("column {i}: {e}")))
}

/// The holder column: code type and code.
fn holder_key(code_type: HolderCodeType, code: &str) -> String {
    format!("{}:{code}", code_type.as_str())
}
