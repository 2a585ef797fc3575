//! `zhengyin`: the electronic-licence trust service.
//!
//! - `zhengyin serve [--config FILE | --demo] [--database URL]` runs the HTTP API on the
//!   embedded sled store, or as one frontend of a cluster over PostgreSQL.
//! - `zhengyin migrate --database URL` brings a PostgreSQL database's schema up to date.
//! - `zhengyin verify licence|copy|seal|ofd FILE --anchors ROOTS.pem [--chain CERTS.pem]`
//!   verifies offline (signature, format, certificate chain at signing time, CRLs; no status).
//! - `zhengyin audit --url URL --key KEY --state FILE` checks a node's signature log;
//!   `zhengyin log export --url URL --out DIR` and `zhengyin audit --offline DIR --key KEY` do the
//!   same on an exported bundle.
//!
//! - `zhengyin holder-token --holder CODE` mints a demo holder token (identity-platform JWT).
//!
//! - `zhengyin sync status --url URL` lists the sources a node aggregates (exit 1 if one is
//!   stopped by an incident).
//!
//! - `zhengyin trust-list sign LIST.json --key KEY` and `zhengyin trust-list verify FILE --key
//!   PUB [--held FILE]` sign and check trust lists (互通互认).
//!
//! - `zhengyin seal inspect FILE` reads e-seals, sealed signatures and an OFD document's
//!   signatures; `zhengyin ofd seal FILE --seal SEAL.esl --key KEY --certificate CERT.pem --at X,Y
//!   --out OUT.ofd` seals an OFD document.
//! - `zhengyin keys generate|csr` makes keys (in a file or an HSM) and certificate requests.
//! - `zhengyin completions SHELL` and `zhengyin man` print completions and the manual page.
//!
//! Exit statuses are the same for every subcommand (see [`exit`]).
//!
//! This binary is the only place that knows configuration files, paths and `anyhow`.

#[macro_use]
mod output;

mod audit;
mod config;
mod data;
mod demo;
mod exit;
mod import;
mod keys;
mod logging;
mod mark;
mod notify;
mod ofd;
mod seal;
mod serve;
mod sync;
mod trust_list;
mod verify;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use zhengyin_crypto::FileKey;
use zhengyin_store::PgStore;

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
        overrides: Box<serve::Overrides>,
        #[command(flatten)]
        log: serve::LogOptions,
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
        /// Where the last accepted checkpoint and the log's frontier are kept between runs (each
        /// audit then also proves the log consistent with the last one). Without it nothing is
        /// written, and each audit starts afresh.
        #[arg(long)]
        state: Option<PathBuf>,
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
        token: Option<String>,
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
    /// OFD documents: `zhengyin ofd seal` seals one offline.
    Ofd {
        #[command(subcommand)]
        command: ofd::Command,
    },
    /// Signature-log tools.
    Log {
        #[command(subcommand)]
        command: LogCommand,
    },
    /// Make keys (in an HSM or a file) and certificate requests: `zhengyin keys generate`.
    Keys {
        #[command(subcommand)]
        command: keys::Command,
    },
    /// Sign or check a trust list (互通互认): `zhengyin trust-list sign|verify`.
    TrustList {
        #[command(subcommand)]
        command: trust_list::Command,
    },
    /// Sync between nodes.
    Sync {
        #[command(subcommand)]
        command: SyncCommand,
    },
    /// Print a shell completion script: `source <(zhengyin completions bash)`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `zhengyin man > zhengyin.1 && man ./zhengyin.1`.
    Man,
    /// Mint a holder token as an identity platform would (demos and tests; real tokens come
    /// from the unified identity platform). Prints the token.
    HolderToken {
        /// The identity platform's private key (PKCS#8 PEM) [default:
        /// <KEYS_DIR>/identity-platform-ed25519.key].
        #[arg(long)]
        key: Option<PathBuf>,
        /// Folder of the example keys, for the default --key.
        #[arg(long, default_value = "keys-example")]
        keys_dir: PathBuf,
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
    /// Verify a licence, an annotated copy, a seal or sealed signature, or an OFD document,
    /// offline: `zhengyin verify licence|copy|seal|ofd FILE`. (The old spelling `zhengyin verify
    /// FILE --certs CHAIN` still works for a release.)
    #[command(args_conflicts_with_subcommands = true)]
    Verify {
        #[command(subcommand)]
        kind: Option<verify::Kind>,
        /// Old spelling: `verify FILE` is `verify licence FILE` (or `verify copy FILE`).
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
        /// Old spelling of `verify copy --token-key`.
        #[arg(long, hide = true)]
        token_key: Option<PathBuf>,
        #[command(flatten)]
        inputs: verify::Inputs,
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
        token: Option<String>,
        /// How to print the sources.
        #[arg(long, value_enum, default_value = "text")]
        format: verify::Format,
    },
}

#[derive(Subcommand)]
enum SealCommand {
    /// Print a seal (.esl), a sealed signature (SignedValue.dat) or each signature of an OFD
    /// document as readable text (nothing is verified: `zhengyin verify seal|ofd` does that).
    Inspect {
        /// The DER file, or the OFD document.
        file: PathBuf,
    },
    /// The old spelling of `zhengyin verify seal` and `zhengyin verify ofd` (kept for a release).
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
        token: Option<String>,
        /// The folder to write the bundle to.
        #[arg(long)]
        out: PathBuf,
    },
}

/// `cmd` and every subcommand under it, with the exit statuses in their `--help`.
fn with_exit_statuses(cmd: clap::Command) -> clap::Command {
    cmd.after_help(exit::EXIT_STATUSES).mut_subcommands(with_exit_statuses)
}

fn main() -> ExitCode {
    let matches = with_exit_statuses(Cli::command()).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let result = match cli.command {
        Command::Serve {
            config,
            demo,
            keys_dir,
            overrides,
            log,
        } => serve::serve(config, demo, &keys_dir, *overrides, &log).map_err(exit::as_input),
        Command::Migrate { database } => migrate(&database),
        Command::TrustList { command } => trust_list::run(command),
        Command::Keys { command } => keys::run(command),
        Command::Ofd { command } => ofd::run(command),
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut with_exit_statuses(Cli::command()), "zhengyin", &mut out);
            say_raw!("{}", String::from_utf8_lossy(&out));
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            let mut out = Vec::new();
            clap_mangen::Man::new(with_exit_statuses(Cli::command()))
                .render(&mut out)
                .context("rendering the manual page")
                .map(|()| {
                    say_raw!("{}", String::from_utf8_lossy(&out));
                    ExitCode::SUCCESS
                })
        }
        Command::Verify {
            kind,
            file,
            token_key,
            inputs,
        } => match (kind, file) {
            (Some(kind), _) => verify::run(&kind, &inputs),
            (None, Some(file)) => verify::legacy(&file, token_key.as_deref(), &inputs),
            (None, None) => Err(exit::input(
                "say what to verify: zhengyin verify licence|copy|seal|ofd FILE",
            )),
        },
        Command::HolderToken {
            key,
            keys_dir,
            holder,
            holder_type,
            issuer,
            audience,
            ttl,
        } => {
            let key = key.unwrap_or_else(|| keys_dir.join("identity-platform-ed25519.key"));
            holder_token(&key, &holder, &holder_type, &issuer, &audience, ttl).map_err(exit::as_input)
        }
        Command::Audit {
            url,
            offline,
            key,
            token,
            state,
        } => run_audit(url, offline, &key, token, state.as_deref()),
        Command::Import {
            file,
            url,
            token,
            batch,
        } => required_token(token).and_then(|token| import(&file, &url, &token, usize::from(batch))),
        Command::Log {
            command: LogCommand::Export { url, token, out },
        } => required_token(token).and_then(|token| export_log(&url, &token, &out)),
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
            command: SyncCommand::Status { url, token, format },
        } => required_token(token).and_then(|token| sync_status(&url, &token, format)),
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
        } => verify::run(
            &if std::fs::read(&file).is_ok_and(|b| b.starts_with(b"PK\x03\x04")) {
                verify::Kind::Ofd { file }
            } else {
                verify::Kind::Seal { file, data }
            },
            &verify::Inputs {
                anchors: Some(anchors),
                chain: intermediates,
                crls,
                at,
                format: verify::Format::Json,
            },
        ),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("zhengyin: {e:#}");
            exit::for_error(&e)
        }
    }
}

/// The token given with --token or ZHENGYIN_TOKEN (shown as optional in usage lines, since the
/// variable serves as well).
fn required_token(token: Option<String>) -> anyhow::Result<String> {
    token.ok_or_else(|| exit::input("give a token: --token TOKEN, or set ZHENGYIN_TOKEN"))
}

/// A database URL without its password (never logged nor printed).
pub(crate) fn redacted(url: &str) -> String {
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
    if !key.exists() {
        anyhow::bail!(
            "{} does not exist: give --key, or --keys-dir with the example keys (keys-example/ in the repository)",
            key.display()
        );
    }
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
            nonce: None,
        },
    )?;
    say!("{token}");
    Ok(ExitCode::SUCCESS)
}

fn run_audit(
    url: Option<String>,
    offline: Option<PathBuf>,
    key: &str,
    token: Option<String>,
    state: Option<&Path>,
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
            if state.is_none() {
                say!("(no --state: nothing kept, so the next audit cannot check consistency with this one)");
            }
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

fn sync_status(url: &str, token: &str, format: verify::Format) -> anyhow::Result<ExitCode> {
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
    let halted = sources.iter().any(|s| s["state"] == "halted");
    let exit = if halted { ExitCode::from(1) } else { ExitCode::SUCCESS };
    if format == verify::Format::Json {
        say!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(exit);
    }
    if sources.is_empty() {
        say!("this node aggregates no source");
    }
    for s in &sources {
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
            listed(&s["open_incidents"], "INCIDENTS") + &listed(&s["conflicts"], "conflicts")
        );
    }
    if let Some(map) = answer["ownership"].as_object() {
        say!(
            "ownership map of {}: version {}, issued {}, {} authorities",
            map["publisher"].as_str().unwrap_or("?"),
            map["version"],
            map["issued"].as_str().unwrap_or("?"),
            map["authorities"]
        );
    }
    if let Some(list) = answer["trust_list"].as_object() {
        let regions = list["regions"]
            .as_object()
            .map(|r| r.keys().cloned().collect::<Vec<_>>());
        say!(
            "trust list of {}: sequence {}, next update {}{}, regions {}{}",
            list["scheme_operator"].as_str().unwrap_or("?"),
            list["sequence"],
            list["next_update"].as_str().unwrap_or("?"),
            if list["expired"] == true { " (EXPIRED)" } else { "" },
            regions.unwrap_or_default().join(", "),
            list["refused"]
                .as_str()
                .map(|r| format!("  last refused: {r}"))
                .unwrap_or_default()
        );
    }
    Ok(exit)
}

/// `  LABEL a, b` for a non-empty list of ids, nothing otherwise.
fn listed(ids: &serde_json::Value, label: &str) -> String {
    match ids.as_array() {
        Some(ids) if !ids.is_empty() => format!(
            "  {label} {}",
            ids.iter().filter_map(|i| i.as_str()).collect::<Vec<_>>().join(", ")
        ),
        _ => String::new(),
    }
}

fn export_log(url: &str, token: &str, out: &Path) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let size = runtime.block_on(audit::export(audit::Client::new(url, token), out))?;
    say!("exported {size} entries and the checkpoint to {}", out.display());
    Ok(ExitCode::SUCCESS)
}
