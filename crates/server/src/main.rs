//! `zhengyin`: the electronic-licence trust service.
//!
//! - `zhengyin serve [--config FILE | --demo] [--database URL]` runs the HTTP API on the
//!   embedded sled store, or as one frontend of a cluster over PostgreSQL.
//! - `zhengyin migrate --database URL` brings a PostgreSQL database's schema up to date.
//! - `zhengyin verify LICENCE.json --anchors ROOTS.pem --certs CHAIN.pem` verifies a licence
//!   offline (signature, format, certificate chain at signing time; no status).
//! - `zhengyin audit --url URL --key KEY --state FILE` checks a node's signature log;
//!   `zhengyin log export --url URL --out DIR` and `zhengyin audit --offline DIR --key KEY` do the
//!   same on an exported bundle.
//!
//! - `zhengyin holder-token --holder CODE` mints a demo holder token (identity-platform JWT).
//!
//! - `zhengyin sync status --url URL` lists the sources a node aggregates (exit 1 if one is
//!   stopped by an incident).
//!
//! - `zhengyin seal inspect FILE` / `zhengyin seal verify FILE --anchors ROOTS.pem` read and
//!   verify e-seals and sealed signatures offline.
//!
//! This binary is the only place that knows configuration files, paths and `anyhow`.

#[macro_use]
mod output;

mod audit;
mod config;
mod data;
mod demo;
mod import;
mod mark;
mod notify;
mod seal;
mod sync;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use zhengyin_crypto::{FileKey, TrustAnchors};
use zhengyin_engine::{Engine, Keyring, LogConfig, SealMaker, SystemClock, SystemRandom};
use zhengyin_http::{AppState, HttpConfig, Tokens};
use zhengyin_model::Verdict;
use zhengyin_store::{Backup, PgStore, SledStore, Store};

use crate::config::Config;

// The request path allocates many small objects on two or more threads at once; mimalloc's
// per-thread heaps cost less there than glibc's arenas (measured in benches/load.sh).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "zhengyin", version, about = "Electronic licence and e-seal trust service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API.
    Serve {
        /// Configuration file (TOML).
        #[arg(long, conflicts_with = "demo", required_unless_present = "demo")]
        config: Option<PathBuf>,
        /// Use the EXAMPLE keys in keys-example/ and print EXAMPLE tokens. Never in production.
        #[arg(long)]
        demo: bool,
        /// Folder of the example keys (with --demo).
        #[arg(long, default_value = "keys-example")]
        keys_dir: PathBuf,
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Create or upgrade the schema of a cluster's PostgreSQL database (`serve --database`
    /// does it too at start). Exit 0 when the schema is current.
    Migrate {
        /// The database's URL, postgres://user:password@host:port/database (or set
        /// ZHENGYIN_DATABASE, which keeps the password out of the process list).
        #[arg(long, env = "ZHENGYIN_DATABASE", hide_env_values = true)]
        database: String,
    },
    /// Audit a node's signature log: checkpoint signature, consistency with the last audit,
    /// and every new entry hashed into the signed root. Exit 0 OK, 1 the log misbehaved.
    Audit {
        /// The node's base URL, e.g. http://127.0.0.1:8080.
        #[arg(long, required_unless_present = "offline", conflicts_with = "offline")]
        url: Option<String>,
        /// Audit an exported bundle (see `zhengyin log export`) instead of a running node.
        #[arg(long)]
        offline: Option<PathBuf>,
        /// The log's verifier key (`<origin>+<hash>+<key>`), obtained out of band.
        #[arg(long)]
        key: String,
        /// An auditor token (or set ZHENGYIN_TOKEN); needed with --url.
        #[arg(long, env = "ZHENGYIN_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Where the last accepted checkpoint and the log's frontier are kept between runs.
        #[arg(long, default_value = "zhengyin-audit.json")]
        state: PathBuf,
    },
    /// Issue a file of existing licences (存量证照电子化) through a node's bulk issuance: one issue
    /// request (JSON) per line. Resumable: `<FILE>.progress` records the lines done, and a run
    /// starts after them without issuing any line twice; refused lines go to
    /// `<FILE>.refused.jsonl` with their reasons. Exit 0 all issued, 1 some refused.
    Import {
        /// The issue requests, one JSON object per line.
        file: PathBuf,
        /// The node's base URL, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        url: String,
        /// The issuing authority's token (or set ZHENGYIN_TOKEN).
        #[arg(long, env = "ZHENGYIN_TOKEN", hide_env_values = true)]
        token: String,
        /// Lines per request (the node takes at most 1,000).
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u16).range(1..=1000))]
        batch: u16,
    },
    /// Back up a node on the embedded store: a running one through its API (--url, an operator
    /// token; writes wait while it is taken, reads go on), or a stopped one's --data-dir. The
    /// archive is checked before it takes its name. (A PostgreSQL cluster is backed up with
    /// pg_dump or pg_basebackup.) Exit 0 when the backup is whole.
    Backup {
        /// The node's base URL, e.g. http://127.0.0.1:8080.
        #[arg(long, required_unless_present = "data_dir", conflicts_with = "data_dir")]
        url: Option<String>,
        /// An operator token (or set ZHENGYIN_TOKEN); needed with --url.
        #[arg(long, env = "ZHENGYIN_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// A stopped node's data folder.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The archive to write (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Restore a backup into a new data folder (refused if the folder holds anything, or if the
    /// archive is damaged or truncated). A node started on it that had published a checkpoint
    /// after the backup signs nothing until its log reaches that checkpoint again.
    Restore {
        /// The archive (from `zhengyin backup`).
        #[arg(long)]
        from: PathBuf,
        /// The new data folder.
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Store tools.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// E-seal tools (GB/T 38540 / GM/T 0031), offline.
    Seal {
        #[command(subcommand)]
        command: SealCommand,
    },
    /// Signature-log tools.
    Log {
        #[command(subcommand)]
        command: LogCommand,
    },
    /// Sync between nodes.
    Sync {
        #[command(subcommand)]
        command: SyncCommand,
    },
    /// Mint a holder token as an identity platform would (demos and tests; real tokens come
    /// from the unified identity platform). Prints the token.
    HolderToken {
        /// The identity platform's private key (PKCS#8 PEM).
        #[arg(long, default_value = "keys-example/identity-platform-ed25519.key")]
        key: PathBuf,
        /// The holder code (USCC or citizen ID).
        #[arg(long)]
        holder: String,
        /// `001` USCC or `111` citizen ID.
        #[arg(long, default_value = "001")]
        holder_type: String,
        /// The token's `iss`.
        #[arg(long, default_value = config::DEMO_IDENTITY_ISSUER)]
        issuer: String,
        /// The token's `aud`.
        #[arg(long, default_value = "zhengyin")]
        audience: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: i64,
    },
    /// Verify a licence offline: signature, format and certificate chain at signing time.
    Verify {
        /// The licence JSON file.
        licence: PathBuf,
        /// PEM file of trust anchors.
        #[arg(long)]
        anchors: PathBuf,
        /// PEM file: the signing certificate followed by its intermediates (repeatable).
        #[arg(long, required = true)]
        certs: Vec<PathBuf>,
        /// For an annotated copy (加注件): the issuing node's token public key (PEM, from
        /// `GET /v1/token-key`).
        #[arg(long)]
        token_key: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Move a stopped node from the embedded store to PostgreSQL: copies every record into a new
    /// database (migrated here; refused if it holds data), in one transaction, then checks the
    /// signature log's size and root and the records read back on both sides. Exit 0 when they
    /// agree.
    Copy {
        /// The node's data folder, as sled:DIR.
        #[arg(long)]
        from: String,
        /// The new database, postgres://user:password@host:port/database (or set
        /// ZHENGYIN_DATABASE, which keeps the password out of the process list).
        #[arg(long, env = "ZHENGYIN_DATABASE", hide_env_values = true)]
        to: String,
    },
    /// Where a stopped node's bytes go: each tree (embedded store) or table (PostgreSQL) with
    /// its records and bytes, and the bytes per licence.
    Stats {
        /// The node's data folder.
        #[arg(long, required_unless_present = "database", conflicts_with = "database")]
        data_dir: Option<PathBuf>,
        /// The database (or set ZHENGYIN_DATABASE).
        #[arg(long, env = "ZHENGYIN_DATABASE", hide_env_values = true)]
        database: Option<String>,
    },
}

#[derive(Subcommand)]
enum SyncCommand {
    /// Each source's state at an aggregating node: checkpoint, lag, errors, incidents. Exit 0
    /// when every source syncs, 1 when one is stopped by an incident.
    Status {
        /// The aggregating node's base URL.
        #[arg(long)]
        url: String,
        /// An operator token (or set ZHENGYIN_TOKEN).
        #[arg(long, env = "ZHENGYIN_TOKEN", hide_env_values = true)]
        token: String,
    },
}

/// Settings given on the command line win over the configuration file.
#[derive(clap::Args)]
struct Overrides {
    /// The signature log's origin (this node's name in checkpoints and to upstream nodes).
    #[arg(long)]
    origin: Option<String>,
    /// With --demo: which example authorities this node registers, comma-separated from
    /// ed25519,p256,rsa2048,sm2 (default all), or `none` for a node that only aggregates.
    #[arg(long, value_delimiter = ',')]
    demo_authorities: Option<Vec<String>>,
    /// With --demo: aggregate the demo node at URL whose log origin is ORIGIN, as `ORIGIN=URL`
    /// (repeatable). Its log key, trust anchors and node token are the example ones.
    #[arg(long = "source")]
    sources: Vec<DemoSource>,
    /// How old a source's data may be before its licences' status is stale, seconds.
    #[arg(long)]
    max_staleness_seconds: Option<i64>,
    /// Entries per page when pulling a source (1 to 1000).
    #[arg(long)]
    sync_page_size: Option<u64>,
    /// Listen address.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Database folder (the embedded store).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Run as a frontend of a cluster over this PostgreSQL database instead of the embedded
    /// store: postgres://user:password@host:port/database (or set ZHENGYIN_DATABASE).
    #[arg(long, env = "ZHENGYIN_DATABASE", hide_env_values = true)]
    database: Option<String>,
    /// Entries in the verified-signature cache (0 = off).
    #[arg(long)]
    signature_cache: Option<usize>,
    /// How long a client may take to send request headers, or stay idle between requests, ms
    /// [default: 10000].
    #[arg(long)]
    header_read_timeout_ms: Option<u64>,
    /// How long a client may take to send a request body, ms [default: 30000].
    #[arg(long)]
    body_read_timeout_ms: Option<u64>,
    /// The most connections open at once [default: 4096].
    #[arg(long)]
    max_connections: Option<usize>,
    /// A department's webhook for objection notifications, `DEPARTMENT=URL` (repeatable; adds to
    /// the configuration's `[[webhooks]]`).
    #[arg(long = "webhook")]
    webhooks: Vec<config::WebhookConfig>,
}

#[derive(Subcommand)]
enum SealCommand {
    /// Print a seal (.esl) or a sealed signature (SignedValue.dat) as readable text.
    Inspect {
        /// The DER file.
        file: PathBuf,
    },
    /// Verify a seal, a sealed signature or an OFD document offline (GB/T 38540 §7.3 steps). Exit 0 when no step
    /// failed (offline the seal's registry status is unknown: at best INDETERMINATE), 1 INVALID.
    Verify {
        /// The DER file.
        file: PathBuf,
        /// PEM file of trust anchors.
        #[arg(long)]
        anchors: PathBuf,
        /// PEM file(s) of intermediate CA certificates.
        #[arg(long)]
        intermediates: Vec<PathBuf>,
        /// The protected data (for OFD: the Signature.xml); its SM3 must equal dataHash.
        #[arg(long)]
        data: Option<PathBuf>,
        /// A CRL (PEM or DER) of a CA on the path, to check revocation (repeatable).
        #[arg(long = "crl")]
        crls: Vec<PathBuf>,
        /// Evaluate at this time (RFC 3339) instead of now.
        #[arg(long, value_parser = parse_time)]
        at: Option<time::OffsetDateTime>,
    },
}

/// `ORIGIN=URL` of a demo source.
#[derive(Clone)]
struct DemoSource {
    origin: String,
    url: String,
}

impl std::str::FromStr for DemoSource {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (origin, url) = s.split_once('=').ok_or("expected ORIGIN=URL")?;
        Ok(Self {
            origin: origin.to_owned(),
            url: url.to_owned(),
        })
    }
}

fn parse_time(text: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).map_err(|e| e.to_string())
}

#[derive(Subcommand)]
enum LogCommand {
    /// Export a node's log (latest checkpoint and every entry) for `zhengyin audit --offline`.
    Export {
        /// The node's base URL.
        #[arg(long)]
        url: String,
        /// An auditor token (or set ZHENGYIN_TOKEN).
        #[arg(long, env = "ZHENGYIN_TOKEN", hide_env_values = true)]
        token: String,
        /// The folder to write the bundle to.
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve {
            config,
            demo,
            keys_dir,
            overrides,
        } => serve(config, demo, &keys_dir, overrides),
        Command::Migrate { database } => migrate(&database),
        Command::Verify {
            licence,
            anchors,
            certs,
            token_key,
        } => verify(&licence, &anchors, &certs, token_key.as_deref()),
        Command::HolderToken {
            key,
            holder,
            holder_type,
            issuer,
            audience,
            ttl,
        } => holder_token(&key, &holder, &holder_type, &issuer, &audience, ttl),
        Command::Audit {
            url,
            offline,
            key,
            token,
            state,
        } => run_audit(url, offline, &key, token, &state),
        Command::Import {
            file,
            url,
            token,
            batch,
        } => import(&file, &url, &token, usize::from(batch)),
        Command::Log {
            command: LogCommand::Export { url, token, out },
        } => export_log(&url, &token, &out),
        Command::Backup {
            url,
            token,
            data_dir,
            out,
        } => match (url, token, data_dir) {
            (Some(url), Some(token), _) => data::backup(data::Source::Node { url, token }, &out),
            (Some(_), None, _) => Err(anyhow::anyhow!(
                "--url needs an operator token: --token or ZHENGYIN_TOKEN"
            )),
            (None, _, Some(dir)) => data::backup(data::Source::Folder(dir), &out),
            (None, _, None) => Err(anyhow::anyhow!(
                "give --url (a running node) or --data-dir (a stopped one)"
            )),
        },
        Command::Restore { from, data_dir } => data::restore(&from, &data_dir),
        Command::Store {
            command: StoreCommand::Copy { from, to },
        } => data::copy(&from, &to),
        Command::Store {
            command: StoreCommand::Stats { data_dir, database },
        } => data::stats(data_dir.as_deref(), database.as_deref()),
        Command::Sync {
            command: SyncCommand::Status { url, token },
        } => sync_status(&url, &token),
        Command::Seal {
            command: SealCommand::Inspect { file },
        } => seal::inspect(&file),
        Command::Seal {
            command:
                SealCommand::Verify {
                    file,
                    anchors,
                    intermediates,
                    data,
                    at,
                    crls,
                },
        } => seal::verify(seal::VerifyArgs {
            file,
            anchors,
            intermediates,
            data,
            at,
            crls,
        }),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("zhengyin: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Keeps a frontend of a shared database in step with the others, every
/// [`zhengyin_engine::FOLLOW_INTERVAL`]; a database that is away is retried at the next tick.
async fn follow_store(state: AppState) {
    let mut tick = tokio::time::interval(zhengyin_engine::FOLLOW_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = state.follow_store().await {
            tracing::warn!(error = %e, "following the shared database failed; retrying");
        }
    }
}

/// What serves `GET /v1/backup`.
type OnlineBackup = Arc<dyn Backup>;

/// The store the configuration names — a cluster's PostgreSQL database, or the embedded one —
/// and its online backup (the embedded store's; a database has its own tools).
fn open_store(config: &Config) -> anyhow::Result<(Arc<dyn Store>, Option<OnlineBackup>)> {
    Ok(match &config.database {
        Some(url) => (
            Arc::new(PgStore::open(url).with_context(|| format!("opening the database {}", redacted(url)))?),
            None,
        ),
        None => {
            std::fs::create_dir_all(&config.data_dir)
                .with_context(|| format!("creating {}", config.data_dir.display()))?;
            let store = Arc::new(
                SledStore::open_with_cache(&config.data_dir, config.cache_mb << 20).context("opening the database")?,
            );
            (store.clone(), Some(store))
        }
    })
}

/// Where the data is, for the log: a database URL without its password, or the folder.
fn where_data_lives(config: &Config) -> String {
    match &config.database {
        Some(url) => redacted(url),
        None => config.data_dir.display().to_string(),
    }
}

/// A database URL without its password (never logged nor printed).
fn redacted(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "(a database URL that does not parse)".to_owned(),
    }
}

fn migrate(url: &str) -> anyhow::Result<ExitCode> {
    let done = PgStore::migrate(url).with_context(|| format!("migrating {}", redacted(url)))?;
    if done.from == done.to {
        say!("schema version {}: already current", done.to);
    } else {
        say!("schema version {} -> {}", done.from, done.to);
    }
    Ok(ExitCode::SUCCESS)
}

fn holder_token(
    key: &Path,
    holder: &str,
    holder_type: &str,
    issuer: &str,
    audience: &str,
    ttl: i64,
) -> anyhow::Result<ExitCode> {
    use zhengyin_engine::identity::{mint_holder_token, HolderTokenClaims};
    let key = FileKey::from_pem_file(key).with_context(|| format!("loading {}", key.display()))?;
    let code_type = zhengyin_model::HolderCodeType::parse(holder_type)?;
    code_type.check_code(holder)?;
    anyhow::ensure!(ttl > 0, "--ttl must be positive");
    let holder = zhengyin_model::HolderRef {
        code_type,
        code: holder.to_owned(),
    };
    let token = mint_holder_token(
        &key,
        &HolderTokenClaims {
            issuer,
            audience,
            holder: &holder,
            issued_at: time::OffsetDateTime::now_utc(),
            lifetime: time::Duration::seconds(ttl),
        },
    )?;
    say!("{token}");
    Ok(ExitCode::SUCCESS)
}

fn serve(config_path: Option<PathBuf>, demo: bool, keys_dir: &Path, overrides: Overrides) -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let mut config = match &config_path {
        Some(path) => Config::load(path)?,
        None => Config::demo(keys_dir),
    };
    if let Some(l) = overrides.listen {
        config.listen = l;
    }
    if let Some(d) = overrides.data_dir {
        config.data_dir = d;
    }
    if let Some(url) = overrides.database {
        config.database = Some(url);
    }
    if let Some(n) = overrides.signature_cache {
        config.signature_cache = n;
    }
    if let Some(ms) = overrides.header_read_timeout_ms {
        config.header_read_timeout_ms = ms;
    }
    if let Some(ms) = overrides.body_read_timeout_ms {
        config.body_read_timeout_ms = ms;
    }
    if let Some(n) = overrides.max_connections {
        config.max_connections = n;
    }
    if let Some(origin) = overrides.origin {
        config.log_origin = origin;
    }
    if let Some(seconds) = overrides.max_staleness_seconds {
        config.sync.max_staleness_seconds = seconds;
    }
    if let Some(page) = overrides.sync_page_size {
        config.sync.page_size = page;
    }
    config.webhooks.extend(overrides.webhooks);
    anyhow::ensure!(
        demo || (overrides.sources.is_empty() && overrides.demo_authorities.is_none()),
        "--source and --demo-authorities go with --demo; a configuration file lists [[sync.sources]]"
    );
    let mut sources = Vec::new();
    for source in &config.sync.sources {
        let token = std::fs::read_to_string(&source.token_file)
            .with_context(|| format!("reading the token of {}", source.origin))?;
        let anchors = std::fs::read_to_string(&source.trust_anchors)
            .with_context(|| format!("reading the trust anchors of {}", source.origin))?;
        sources.push((source.clone(), token.trim().to_owned(), anchors));
    }
    if demo {
        let log_key = FileKey::from_pem_file(&keys_dir.join("log-ed25519.key")).context("the example log key")?;
        let anchors = std::fs::read_to_string(keys_dir.join("root-ca.pem")).context("the example root")?;
        for s in &overrides.sources {
            let verifier =
                zhengyin_tlog::NoteVerifier::new(&s.origin, zhengyin_crypto::Signer::public_key(&log_key).clone())
                    .map_err(|e| anyhow::anyhow!("--source {}: {e}", s.origin))?;
            let source = config::SourceConfig {
                origin: s.origin.clone(),
                url: s.url.clone(),
                log_key: verifier.encode(),
                trust_anchors: keys_dir.join("root-ca.pem"),
                token_file: PathBuf::new(),
            };
            sources.push((source, "demo-node".to_owned(), anchors.clone()));
        }
    }
    let demo = demo.then(|| demo::DemoSettings {
        keys_dir: keys_dir.to_owned(),
        authorities: overrides.demo_authorities.unwrap_or_default(),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(config, sources, demo))?;
    Ok(ExitCode::SUCCESS)
}

/// A source to follow: its configuration, the node token, its anchors (PEM).
type Source = (config::SourceConfig, String, String);

async fn run(config: Config, sources: Vec<Source>, demo: Option<demo::DemoSettings>) -> anyhow::Result<()> {
    let mut anchors_pem = std::fs::read_to_string(&config.trust_anchors)
        .with_context(|| format!("reading trust anchors {}", config.trust_anchors.display()))?;
    // Replicated licences are verified here too: their sources' anchors join this node's.
    for (_, _, pem) in &sources {
        anchors_pem.push('\n');
        anchors_pem.push_str(pem);
    }
    let anchors = TrustAnchors::from_pem(&anchors_pem).context("parsing trust anchors")?;
    let mut keyring = Keyring::default();
    for path in &config.keys {
        let key = FileKey::from_pem_file(path).with_context(|| format!("loading key {}", path.display()))?;
        keyring.add(Arc::new(key));
    }
    let log_key = FileKey::from_pem_file(&config.log_key)
        .with_context(|| format!("loading the log key {}", config.log_key.display()))?;
    let mut mark = mark::CheckpointMark::open(&config.checkpoint_mark())?;
    let log = LogConfig {
        origin: config.log_origin.clone(),
        signer: Arc::new(log_key),
        published: mark.note().map(str::to_owned),
    };
    let (store, backups) = open_store(&config)?;
    let mut engine = Engine::new(
        store,
        Arc::new(SystemClock),
        Arc::new(SystemRandom),
        anchors,
        keyring,
        log,
    )
    .await?
    .with_signature_cache(config.signature_cache)
    .with_calendar(config.calendar.clone())
    .context("the working-day calendar")?;
    if let Some(maker) = &config.seal_maker {
        let key = FileKey::from_pem_file(&maker.key)
            .with_context(|| format!("loading the seal-maker key {}", maker.key.display()))?;
        let mut chain = String::new();
        for path in &maker.certificates {
            chain += &std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        }
        let maker = SealMaker::new(&chain, Arc::new(key), engine.anchors(), time::OffsetDateTime::now_utc())
            .context("the seal maker")?;
        engine = engine.with_seal_maker(maker);
    }
    if let Some(path) = &config.token_key {
        let key = FileKey::from_pem_file(path).with_context(|| format!("loading the token key {}", path.display()))?;
        engine = engine.with_token_key(Arc::new(key));
    }
    let mut webhooks = std::collections::HashMap::new();
    for hook in &config.webhooks {
        let url = reqwest::Url::parse(&hook.url).with_context(|| format!("webhook of {}", hook.department))?;
        anyhow::ensure!(
            matches!(url.scheme(), "http" | "https"),
            "webhook of {}: an http or https URL",
            hook.department
        );
        webhooks.insert(hook.department.clone(), hook.url.clone());
    }
    engine = engine
        .with_webhooks(webhooks)
        .with_evidence_limit(config.evidence_limit);
    if let Some(identity) = &config.identity {
        engine = engine.with_identity(identity.load().context("the identity platforms")?);
    }
    engine = engine.with_max_staleness(time::Duration::seconds(config.sync.max_staleness_seconds.max(1)));
    let engine = Arc::new(engine);
    if let Some(why) = engine.signing_halted() {
        eprintln!(
            "WARNING: this node signs nothing: {why} (The published checkpoint is remembered in {}; delete that \
             file only for a node no one else has seen, such as a demo whose data folder was removed.)",
            config.checkpoint_mark().display()
        );
    }
    if let Some(demo) = &demo {
        if engine.signing_halted().is_none() {
            demo::seed(&engine, demo).await?;
        }
        eprintln!(
            "WARNING: demo mode. The keys in {} and these tokens are EXAMPLES ONLY:",
            demo.keys_dir.display()
        );
        for (token, role) in demo::token_table() {
            eprintln!("  {token:<26} {}", serde_json::to_string(&role).unwrap_or_default());
        }
    }
    engine
        .publish_checkpoint()
        .await
        .context("publishing the first checkpoint")?;
    mark::keep(&engine, &mut mark);
    eprintln!(
        "signature log {}: verifier key {}",
        config.log_origin,
        engine.log_verifier()?
    );
    tokio::spawn(mark::publish_checkpoints(Arc::clone(&engine), mark));
    tokio::spawn(notify::deliver(Arc::clone(&engine)));
    let pace = sync::Pace {
        poll: std::time::Duration::from_millis(config.sync.poll_interval_ms.max(10)),
        page: config.sync.page_size,
    };
    for (source, token, anchors) in sources {
        let verifier = zhengyin_tlog::NoteVerifier::parse(&source.log_key)
            .map_err(|e| anyhow::anyhow!("the log key of {}: {e}", source.origin))?;
        let anchors = TrustAnchors::from_pem(&anchors).with_context(|| format!("the anchors of {}", source.origin))?;
        anyhow::ensure!(
            !anchors.certificates().is_empty(),
            "the anchors of {} hold no certificate",
            source.origin
        );
        let feed = sync::HttpFeed::new(&source.url, token)?;
        tracing::info!(origin = %source.origin, url = %source.url, "following a source");
        let source = zhengyin_engine::sync::SyncSource {
            origin: source.origin,
            verifier,
            anchors,
        };
        engine.watch_source(&source.origin);
        tokio::spawn(sync::follow(Arc::clone(&engine), source, feed, pace));
    }
    let tokens = Tokens::from_config(&config.tokens)?;
    let mut state = AppState::new(Arc::clone(&engine), tokens)?;
    if let Some(store) = backups {
        state = state.with_backups(store);
    }
    if config.database.is_some() {
        tokio::spawn(follow_store(state.clone()));
    }
    let app = zhengyin_http::app(
        state,
        HttpConfig {
            body_limit: config.body_limit,
            batch_limit: config.batch_limit,
            batch_body_limit: config.batch_body_limit,
            body_read_timeout: config.serve_limits().body_read_timeout,
        },
    );
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, data = %where_data_lives(&config), "zhengyin listening");
    // One machine-readable line on stdout, for scripts and tests that start the server on port 0.
    say!("zhengyin listening on http://{address}");
    zhengyin_http::serve(listener, app, config.serve_limits(), shutdown_signal()).await;
    // Journaled use records would be committed at the next start anyway; doing it now leaves
    // the log complete while the node is down.
    if let Err(e) = engine.settle_use_records().await {
        tracing::error!(error = %e, "committing use records at shutdown failed");
    }
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

fn run_audit(
    url: Option<String>,
    offline: Option<PathBuf>,
    key: &str,
    token: Option<String>,
    state: &Path,
) -> anyhow::Result<ExitCode> {
    let source = match (url, offline) {
        (Some(url), None) => {
            let token = token.context("--url needs an auditor token (--token or ZHENGYIN_TOKEN)")?;
            audit::Source::Node(audit::Client::new(&url, &token))
        }
        (None, Some(dir)) => audit::Source::bundle(&dir)?,
        _ => anyhow::bail!("give exactly one of --url and --offline"),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    match runtime.block_on(audit::audit(&source, key, state))? {
        audit::Outcome::Ok(summary) => {
            say!("{summary}");
            Ok(ExitCode::SUCCESS)
        }
        audit::Outcome::Failed(problem) => {
            say!("FAIL: {problem}");
            Ok(ExitCode::from(1))
        }
    }
}

fn import(file: &Path, url: &str, token: &str, batch: usize) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let summary = runtime.block_on(import::run(file, url, token, batch))?;
    say!("{summary}");
    Ok(if summary.refused == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn sync_status(url: &str, token: &str) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let answer: serde_json::Value = runtime.block_on(async {
        let base = reqwest::Url::parse(url).with_context(|| format!("URL {url}"))?;
        let response = reqwest::Client::new()
            .get(base.join("/v1/sync/sources")?)
            .bearer_auth(token)
            .send()
            .await
            .with_context(|| format!("reaching {url}"))?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.context("reading the answer")?;
        anyhow::ensure!(
            status.is_success(),
            "{status}: {}",
            body["detail"].as_str().unwrap_or_default()
        );
        Ok::<_, anyhow::Error>(body)
    })?;
    let sources = answer["sources"].as_array().cloned().unwrap_or_default();
    if sources.is_empty() {
        say!("this node aggregates no source");
    }
    let mut halted = false;
    for s in &sources {
        halted |= s["state"] == "halted";
        say!(
            "{}  {}  checkpoint {}  applied {}  behind {} entries / {} s  errors {}{}{}",
            s["origin"].as_str().unwrap_or("?"),
            s["state"].as_str().unwrap_or("?"),
            s["checkpoint_size"],
            s["applied"],
            s["lag_entries"],
            s["lag_seconds"].as_i64().map_or("?".to_owned(), |n| n.to_string()),
            s["consecutive_errors"],
            s["last_error"]
                .as_str()
                .map(|e| format!("  last: {e}"))
                .unwrap_or_default(),
            match s["open_incidents"].as_array() {
                Some(open) if !open.is_empty() => format!("  INCIDENTS {open:?}"),
                _ => String::new(),
            }
        );
    }
    Ok(if halted { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn export_log(url: &str, token: &str, out: &Path) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let size = runtime.block_on(audit::export(audit::Client::new(url, token), out))?;
    say!("exported {size} entries and the checkpoint to {}", out.display());
    Ok(ExitCode::SUCCESS)
}

fn verify(licence: &Path, anchors: &Path, certs: &[PathBuf], token_key: Option<&Path>) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(licence).with_context(|| format!("reading {}", licence.display()))?;
    let anchors_pem = std::fs::read_to_string(anchors).with_context(|| format!("reading {}", anchors.display()))?;
    let roots = TrustAnchors::from_pem(&anchors_pem).context("parsing trust anchors")?;
    if roots.certificates().is_empty() {
        anyhow::bail!("{} holds no certificate", anchors.display());
    }
    let chains = certs
        .iter()
        .map(|p| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let now = time::OffsetDateTime::now_utc();
    let is_copy = serde_json::from_slice::<serde_json::Value>(&bytes)
        .is_ok_and(|v| v["type"] == zhengyin_engine::annotated::ANNOTATED_COPY);
    let report = if is_copy {
        let key = match token_key {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                let der = zhengyin_crypto::pem::decode_label(&text, "PUBLIC KEY")
                    .ok()
                    .and_then(|blocks| blocks.into_iter().next())
                    .with_context(|| format!("{}: no PUBLIC KEY block", path.display()))?;
                Some(zhengyin_crypto::PublicKey::from_spki_der(&der).context("the token key")?)
            }
            None => None,
        };
        let mut inner_error = None;
        let report = zhengyin_engine::annotated::verify_annotated_copy(&bytes, key.as_ref(), now, |licence| {
            zhengyin_engine::verify_offline(licence, roots, &chains, now, None).unwrap_or_else(|e| {
                inner_error = Some(e.to_string());
                zhengyin_model::ReportBuilder::new(&["licence"]).finish(now)
            })
        });
        if let Some(e) = inner_error {
            anyhow::bail!("the licence inside: {e}");
        }
        report
    } else {
        zhengyin_engine::verify_offline(&bytes, roots, &chains, now, None)?
    };
    say!("{}", serde_json::to_string_pretty(&report)?);
    // Offline the status is unknown, so the best verdict is INDETERMINATE; exit 0 means
    // "no check failed", 1 means INVALID.
    Ok(if report.verdict == Verdict::Invalid {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
