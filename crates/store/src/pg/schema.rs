//! The PostgreSQL schema, versioned: each migration is applied once, in order, in its own
//! transaction, and recorded in `zhengyin_migrations`. A node refuses a database whose schema is
//! newer than the migrations it knows, and a database that holds another application's tables.
//!
//! The SQL keeps to what PostgreSQL-protocol engines share: plain tables, B-tree indexes,
//! `BYTEA`/`TEXT`/`BIGINT`, sequences, `INSERT … ON CONFLICT`, `SELECT … FOR UPDATE` and
//! transactional DDL. Keys that are ordered or compared (`id > $1`) are `COLLATE "C"`, so that
//! their order is the order of their bytes, as in the sled backend.

use deadpool_postgres::Object;

use super::db;
use crate::StoreError;

/// The migrations, in order: (version, name, SQL). Never edit one that has shipped: add another.
pub(super) const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "initial schema", INITIAL),
    (2, "leases", LEASES),
    (3, "licence type versions and licence numbers", CATALOGUE_VERSIONS),
    (4, "health probe", HEALTH_PROBE),
    (5, "objection and incident listings", LISTINGS),
    (6, "licence files", LICENCE_FILES),
    (7, "sign-in sessions", SESSIONS),
];

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i32 = 7;

/// The pages' sign-in sessions (`SessionStore`), by the SHA-256 of their cookie's secret; they
/// end at `expires` (Unix seconds, the engine's clock).
const SESSIONS: &str = r#"
CREATE TABLE sessions (
    key BYTEA PRIMARY KEY,
    record BYTEA NOT NULL,
    expires BIGINT NOT NULL
);
CREATE INDEX sessions_by_end ON sessions (expires);
"#;

/// The sealed OFD file of each licence version.
const LICENCE_FILES: &str = r#"
CREATE TABLE licence_files (
    id TEXT COLLATE "C" PRIMARY KEY,
    file BYTEA NOT NULL
);
"#;

/// The columns objections are listed by (objector, the licence's issuer, whether open) and
/// whether a sync incident is open, filled for the records already held by [`index_listings`]
/// in the same transaction.
const LISTINGS: &str = r#"
ALTER TABLE objections ADD COLUMN objector TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE objections ADD COLUMN issuer TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE objections ADD COLUMN open BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX objections_by_objector ON objections (objector, id);
CREATE INDEX objections_by_issuer ON objections (issuer, id);
CREATE INDEX objections_open ON objections (open, id);
ALTER TABLE sync_incidents ADD COLUMN open BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX sync_incidents_open ON sync_incidents (open, id);
"#;

/// One row, rewritten by each readiness check to show the database takes a durable write.
const HEALTH_PROBE: &str = r#"
CREATE TABLE health_probe (
    id SMALLINT PRIMARY KEY CHECK (id = 1),
    written TIMESTAMPTZ NOT NULL
);
"#;

/// Every version of every licence type (the types held so far become their version 1), and the
/// licence numbers reserved per (type, issuer): filled by [`index_numbers`] in the same
/// transaction, since the number is inside the signed licence.
const CATALOGUE_VERSIONS: &str = r#"
CREATE TABLE licence_type_versions (
    code TEXT COLLATE "C" NOT NULL,
    version INTEGER NOT NULL,
    record BYTEA NOT NULL,
    PRIMARY KEY (code, version)
);
INSERT INTO licence_type_versions (code, version, record) SELECT code, 1, record FROM licence_types;
CREATE TABLE licence_numbers (
    key TEXT COLLATE "C" PRIMARY KEY,
    lineage TEXT COLLATE "C" NOT NULL
);
"#;

/// Leases (`LeaseStore`); their ends are the database's clock, the one clock every frontend shares.
const LEASES: &str = r#"
CREATE TABLE leases (
    name TEXT COLLATE "C" PRIMARY KEY,
    holder TEXT NOT NULL,
    expires TIMESTAMPTZ NOT NULL
);
"#;

const INITIAL: &str = r#"
CREATE TABLE authorities (
    uscc TEXT COLLATE "C" PRIMARY KEY,
    record BYTEA NOT NULL
);
CREATE TABLE licence_types (
    code TEXT COLLATE "C" PRIMARY KEY,
    record BYTEA NOT NULL
);
CREATE TABLE crls (
    issuer BYTEA PRIMARY KEY,
    der BYTEA NOT NULL
);
CREATE SEQUENCE licence_serials;
CREATE TABLE intents (
    id TEXT COLLATE "C" PRIMARY KEY,
    record BYTEA NOT NULL,
    abandoned BOOLEAN NOT NULL
);
-- status is NULL only for a replicated licence whose status has not arrived yet.
CREATE TABLE licences (
    id TEXT COLLATE "C" PRIMARY KEY,
    holder TEXT COLLATE "C" NOT NULL,
    signed BYTEA NOT NULL,
    document_sha256 BYTEA NOT NULL,
    status BYTEA
);
CREATE INDEX licences_by_holder ON licences (holder, id);
CREATE TABLE licence_heads (
    lineage TEXT COLLATE "C" PRIMARY KEY,
    id TEXT COLLATE "C" NOT NULL
);
CREATE TABLE seals (
    es_id TEXT COLLATE "C" PRIMARY KEY,
    record BYTEA NOT NULL,
    der BYTEA NOT NULL,
    status BYTEA
);
CREATE TABLE objections (
    id TEXT COLLATE "C" PRIMARY KEY,
    licence TEXT COLLATE "C" NOT NULL,
    record BYTEA NOT NULL
);
CREATE INDEX objections_by_licence ON objections (licence, id);
CREATE TABLE evidence (
    sha256 BYTEA PRIMARY KEY,
    bytes BYTEA NOT NULL
);
CREATE TABLE notifications (
    id TEXT COLLATE "C" PRIMARY KEY,
    recipient TEXT COLLATE "C" NOT NULL,
    record BYTEA NOT NULL
);
CREATE INDEX notifications_by_recipient ON notifications (recipient, id);
-- next_attempt: Unix time in nanoseconds.
CREATE TABLE outbox (
    id TEXT COLLATE "C" PRIMARY KEY,
    next_attempt BIGINT NOT NULL,
    record BYTEA NOT NULL
);
CREATE INDEX outbox_by_next_attempt ON outbox (next_attempt);
CREATE TABLE service_items (
    code TEXT COLLATE "C" PRIMARY KEY,
    record BYTEA NOT NULL
);
CREATE TABLE grants (
    id TEXT COLLATE "C" PRIMARY KEY,
    record BYTEA NOT NULL
);
CREATE TABLE authorisations (
    id TEXT COLLATE "C" PRIMARY KEY,
    holder TEXT COLLATE "C" NOT NULL,
    record BYTEA NOT NULL
);
CREATE INDEX authorisations_by_holder ON authorisations (holder, id);
CREATE TABLE api_tokens (
    id TEXT COLLATE "C" PRIMARY KEY,
    record BYTEA NOT NULL
);
CREATE TABLE presentations (
    id TEXT COLLATE "C" PRIMARY KEY,
    record BYTEA NOT NULL
);
-- recorded: FALSE while journaled (durable, visible, no log entry yet).
CREATE TABLE use_records (
    id TEXT COLLATE "C" PRIMARY KEY,
    holder TEXT COLLATE "C",
    department TEXT COLLATE "C" NOT NULL,
    recorded BOOLEAN NOT NULL,
    record BYTEA NOT NULL
);
CREATE INDEX use_records_by_holder ON use_records (holder, id);
CREATE INDEX use_records_by_department ON use_records (department, id);
CREATE INDEX use_records_by_state ON use_records (recorded, id);
-- Row 1: the highest use record id journaled; its lock orders journal writes. Row 2: its lock
-- makes one recording (records flagged with their log entry) at a time.
CREATE TABLE use_head (
    one SMALLINT PRIMARY KEY,
    last_id TEXT COLLATE "C"
);
INSERT INTO use_head (one, last_id) VALUES (1, NULL), (2, NULL);
CREATE TABLE sync_cursors (
    origin TEXT COLLATE "C" PRIMARY KEY,
    record BYTEA NOT NULL
);
CREATE TABLE sync_incidents (
    id TEXT COLLATE "C" PRIMARY KEY,
    record BYTEA NOT NULL
);
-- The log's sequencer: one row whose lock every append takes last, just before COMMIT. It holds
-- the size and the frontier (the perfect-subtree roots, 32 bytes each, largest first).
CREATE TABLE log_head (
    one SMALLINT PRIMARY KEY,
    size BIGINT NOT NULL,
    frontier BYTEA NOT NULL
);
INSERT INTO log_head (one, size, frontier) VALUES (1, 0, '\x');
CREATE TABLE log_entries (
    idx BIGINT PRIMARY KEY,
    leaf_hash BYTEA NOT NULL,
    entry BYTEA NOT NULL
);
CREATE INDEX log_entries_by_leaf_hash ON log_entries (leaf_hash, idx);
CREATE TABLE log_nodes (
    level SMALLINT NOT NULL,
    idx BIGINT NOT NULL,
    hash BYTEA NOT NULL,
    PRIMARY KEY (level, idx)
);
CREATE TABLE checkpoints (
    size BIGINT PRIMARY KEY,
    note TEXT NOT NULL
);
"#;

/// What a migration ([`crate::PgStore::migrate`]) found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// The schema version before.
    pub from: i32,
    /// The schema version now.
    pub to: i32,
}

/// Brings the schema up to [`SCHEMA_VERSION`]. Refuses a newer schema and a database that holds
/// tables but no Zhengyin schema. Safe to run from several processes at once: the migration
/// table's row lock lets one apply while the others wait and then find nothing to do.
pub(super) async fn migrate(client: &mut Object, target: i32) -> Result<Migrated, StoreError> {
    ensure_ours(client).await?;
    let tx = client.transaction().await.map_err(db)?;
    // Serialises migrating processes (a row lock, not an engine-specific advisory lock).
    tx.query(
        "SELECT version FROM zhengyin_migrations WHERE version = 0 FOR UPDATE",
        &[],
    )
    .await
    .map_err(db)?;
    let from = current_version(&tx).await?;
    check_known(from)?;
    for (version, name, sql) in MIGRATIONS.iter().filter(|(v, _, _)| *v > from && *v <= target) {
        tx.batch_execute(sql)
            .await
            .map_err(|e| StoreError::Backend(format!("migration {version} ({name}): {}", describe(&e))))?;
        match version {
            3 => index_numbers(&tx).await?,
            5 => index_listings(&tx).await?,
            _ => {}
        }
        tx.execute(
            "INSERT INTO zhengyin_migrations (version, name) VALUES ($1, $2)",
            &[version, name],
        )
        .await
        .map_err(db)?;
    }
    tx.commit().await.map_err(db)?;
    Ok(Migrated {
        from,
        to: target.min(SCHEMA_VERSION).max(from),
    })
}

/// Reserves the number of every licence already stored for its lineage (the first lineage, in
/// identifier order, to carry a number keeps it), a page at a time.
async fn index_numbers(tx: &tokio_postgres::Transaction<'_>) -> Result<(), StoreError> {
    let mut after = String::new();
    loop {
        let rows = tx
            .query(
                "SELECT id, signed FROM licences WHERE id > $1 ORDER BY id LIMIT 1000",
                &[&after],
            )
            .await
            .map_err(db)?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = last.get(0);
        for row in &rows {
            let id: String = row.get(0);
            let id = zhengyin_model::LicenceId::parse(&id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let Some(number) = crate::number_of(&crate::packed::unpack(row.get::<_, &[u8]>(1))?) else {
                continue;
            };
            tx.execute(
                "INSERT INTO licence_numbers (key, lineage) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                &[&crate::number_key(&id, &number), &id.lineage()],
            )
            .await
            .map_err(db)?;
        }
    }
}

/// Sets the listing columns of every objection and incident already stored, from its record.
async fn index_listings(tx: &tokio_postgres::Transaction<'_>) -> Result<(), StoreError> {
    for row in tx
        .query("SELECT id, record FROM sync_incidents", &[])
        .await
        .map_err(db)?
    {
        let incident: zhengyin_model::SyncIncident = super::decode("sync incident", row.get::<_, &[u8]>(1))?;
        tx.execute(
            "UPDATE sync_incidents SET open = $2 WHERE id = $1",
            &[&incident.id, &incident.pending()],
        )
        .await
        .map_err(db)?;
    }
    index_objections(tx).await
}

/// Sets the listing columns of every objection already stored, from its record, a page at a time.
async fn index_objections(tx: &tokio_postgres::Transaction<'_>) -> Result<(), StoreError> {
    let mut after = String::new();
    loop {
        let rows = tx
            .query(
                "SELECT id, record FROM objections WHERE id > $1 ORDER BY id LIMIT 1000",
                &[&after],
            )
            .await
            .map_err(db)?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = last.get(0);
        for row in &rows {
            let o: zhengyin_model::Objection = super::decode("objection", row.get::<_, &[u8]>(1))?;
            tx.execute(
                "UPDATE objections SET objector = $2, issuer = $3, open = $4 WHERE id = $1",
                &[
                    &o.id,
                    &o.objector,
                    &o.licence.issuer().as_str(),
                    &o.workflow.state().is_open(),
                ],
            )
            .await
            .map_err(db)?;
        }
    }
}

/// Checks, without changing anything, that the schema is the one this build knows.
pub(super) async fn check(client: &Object) -> Result<(), StoreError> {
    let exists = client
        .query_opt(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() \
             AND table_name = 'zhengyin_migrations'",
            &[],
        )
        .await
        .map_err(db)?
        .is_some();
    if !exists {
        return Err(StoreError::Schema(
            "the database has no Zhengyin schema: run `zhengyin migrate --database URL`".to_owned(),
        ));
    }
    let version = client
        .query_one("SELECT MAX(version) FROM zhengyin_migrations", &[])
        .await
        .map_err(db)?
        .get::<_, Option<i32>>(0)
        .unwrap_or(0);
    check_known(version)?;
    if version < SCHEMA_VERSION {
        return Err(StoreError::Schema(format!(
            "the database schema is at version {version}, this build needs {SCHEMA_VERSION}: run `zhengyin migrate`"
        )));
    }
    Ok(())
}

fn check_known(version: i32) -> Result<(), StoreError> {
    if version > SCHEMA_VERSION {
        return Err(StoreError::Schema(format!(
            "the database schema is at version {version}, newer than this build knows ({SCHEMA_VERSION}): \
             run a newer zhengyin"
        )));
    }
    Ok(())
}

async fn current_version(tx: &deadpool_postgres::Transaction<'_>) -> Result<i32, StoreError> {
    Ok(tx
        .query_one("SELECT MAX(version) FROM zhengyin_migrations", &[])
        .await
        .map_err(db)?
        .get::<_, Option<i32>>(0)
        .unwrap_or(0))
}

/// Creates the migration table in an empty database; refuses one that holds other tables.
async fn ensure_ours(client: &Object) -> Result<(), StoreError> {
    let tables: Vec<String> = client
        .query(
            "SELECT table_name::TEXT FROM information_schema.tables WHERE table_schema = current_schema()",
            &[],
        )
        .await
        .map_err(db)?
        .iter()
        .map(|row| row.get(0))
        .collect();
    if tables.iter().any(|t| t == "zhengyin_migrations") {
        return Ok(());
    }
    if !tables.is_empty() {
        let mut shown = tables.clone();
        shown.sort();
        shown.truncate(5);
        return Err(StoreError::Schema(format!(
            "the database holds tables of another application ({}) and no Zhengyin schema: \
             give Zhengyin a database of its own",
            shown.join(", ")
        )));
    }
    // Two processes may race here: the loser's CREATE fails, and it finds the table on retry.
    let create = "CREATE TABLE IF NOT EXISTS zhengyin_migrations (
            version INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP
        );
        INSERT INTO zhengyin_migrations (version, name) VALUES (0, 'migration lock') ON CONFLICT DO NOTHING;";
    if client.batch_execute(create).await.is_err() {
        client.batch_execute(create).await.map_err(db)?;
    }
    Ok(())
}

/// An error's text with the server's detail, for messages an operator reads.
pub(super) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{} ({})", d.message(), d.code().code()),
        None => e.to_string(),
    }
}
