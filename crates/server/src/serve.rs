//! `zhengyin serve`: the configuration (file or demo) with the command line's overrides, the
//! store, the engine and the HTTP API wired together, and the background tasks (checkpoint
//! publication and its mark, sync, webhook delivery, following a shared database) that run
//! beside it until a shutdown signal.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use zhengyin_crypto::{FileKey, TrustAnchors};
use zhengyin_engine::{Engine, Keyring, LogConfig, SealMaker, SystemClock, SystemRandom};
use zhengyin_http::{AppState, HttpConfig, Tokens};
use zhengyin_store::{Backup, PgStore, SledStore, Store};

use crate::config::{self, Config};
use crate::{demo, logging, mark, notify, redacted, sync};

/// How the server logs.
#[derive(clap::Args)]
pub(crate) struct LogOptions {
    /// Log lines as JSON objects or as text [default: json when stdout is not a terminal, text
    /// when it is].
    #[arg(long, value_enum)]
    log_format: Option<logging::LogFormat>,
    /// The level of Zhengyin's own log lines (error, warn, info, debug, trace); other crates log
    /// at warn. RUST_LOG, when set, replaces this filter.
    #[arg(long, default_value = "info", env = "ZHENGYIN_LOG_LEVEL")]
    log_level: tracing::Level,
}

/// Settings given on the command line win over the configuration file.
#[derive(clap::Args)]
pub(crate) struct Overrides {
    /// The signature log's origin (this node's name in checkpoints and to upstream nodes)
    /// [default: the configuration's `log_origin`; zhengyin.example/demo with --demo].
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
    /// With --demo: follow the ownership map of the demo node at URL whose log origin is ORIGIN,
    /// as `ORIGIN=URL`. Its log key and node token are the example ones.
    #[arg(long)]
    upstream: Option<DemoSource>,
    /// With --demo: recognise other regions by the trust list the node at URL publishes, signed
    /// with the example operator key (keys-example/trust-list-ed25519.pub.pem); their nodes are
    /// read with the example node token.
    #[arg(long)]
    trust_list: Option<String>,
    /// Publish the signed trust list in FILE at GET /v1/federation/trust-list (read at every
    /// request) [default: the configuration's `publish_trust_list`].
    #[arg(long)]
    publish_trust_list: Option<PathBuf>,
    /// How old a source's data may be before its licences' status is stale, seconds
    /// [default: 300, or the configuration's].
    #[arg(long)]
    max_staleness_seconds: Option<i64>,
    /// Entries per page when pulling a source, 1 to 1000 [default: 1000, or the configuration's].
    #[arg(long)]
    sync_page_size: Option<u64>,
    /// Listen address [default: 127.0.0.1:8080, or the configuration's].
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Database folder of the embedded store [default: data, or the configuration's].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Run as a frontend of a cluster over this PostgreSQL database instead of the embedded
    /// store: postgres://user:password@host:port/database (or set ZHENGYIN_DATABASE).
    #[arg(long, env = "ZHENGYIN_DATABASE", hide_env_values = true)]
    database: Option<String>,
    /// Entries in the verified-signature cache, 0 = off [default: 100000, or the configuration's].
    #[arg(long)]
    signature_cache: Option<usize>,
    /// Licences whose parse and canonical hashes are remembered, 0 = off [default: 4096, or the
    /// configuration's].
    #[arg(long)]
    prepared_cache: Option<usize>,
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

pub(crate) fn serve(
    config_path: Option<PathBuf>,
    demo: bool,
    keys_dir: &Path,
    overrides: Overrides,
    log: &LogOptions,
) -> anyhow::Result<ExitCode> {
    let _log = logging::init(log.log_format, log.log_level)?;
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
    if let Some(n) = overrides.prepared_cache {
        config.prepared_cache = n;
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
        demo || (overrides.sources.is_empty()
            && overrides.demo_authorities.is_none()
            && overrides.upstream.is_none()
            && overrides.trust_list.is_none()),
        "--source, --upstream, --trust-list and --demo-authorities go with --demo; a configuration file lists \
         [[sync.sources]], [federation] and [trust_list]"
    );
    if let Some(file) = overrides.publish_trust_list {
        config.publish_trust_list = Some(file);
    }
    let mut trust_list = match &config.trust_list {
        Some(t) => {
            let token = std::fs::read_to_string(&t.token_file)
                .with_context(|| format!("reading {}", t.token_file.display()))?;
            Some((t.clone(), token.trim().to_owned()))
        }
        None => None,
    };
    let mut upstream = match &config.federation {
        Some(f) => {
            let token = std::fs::read_to_string(&f.token_file)
                .with_context(|| format!("reading {}", f.token_file.display()))?;
            Some((f.clone(), token.trim().to_owned()))
        }
        None => None,
    };
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
        if let Some(u) = &overrides.upstream {
            let verifier =
                zhengyin_tlog::NoteVerifier::new(&u.origin, zhengyin_crypto::Signer::public_key(&log_key).clone())
                    .map_err(|e| anyhow::anyhow!("--upstream {}: {e}", u.origin))?;
            let federation = config::FederationConfig {
                upstream_url: u.url.clone(),
                upstream_key: verifier.encode(),
                token_file: PathBuf::new(),
                refresh_seconds: 1,
            };
            upstream = Some((federation, "demo-node".to_owned()));
        }
        if let Some(url) = &overrides.trust_list {
            let list = config::TrustListConfig {
                url: url.clone(),
                key: keys_dir.join("trust-list-ed25519.pub.pem"),
                token_file: PathBuf::new(),
                refresh_seconds: 1,
            };
            trust_list = Some((list, "demo-node".to_owned()));
        }
    }
    let demo = demo.then(|| demo::DemoSettings {
        keys_dir: keys_dir.to_owned(),
        authorities: overrides.demo_authorities.unwrap_or_default(),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(config, sources, upstream, trust_list, demo))?;
    Ok(ExitCode::SUCCESS)
}

/// Opens a private key named in the configuration (a PEM file or a `pkcs11:` URI): an error
/// names `what` it is for and which part failed (module, PIN, token, key).
/// How the pages sign holders in: the configured identity platform, whose endpoints may be
/// paths on this node (the demo platform, then played by this node with its EXAMPLE key and
/// reached for the code exchange at `address`, where it listens).
fn pages_config(config: &Config, address: std::net::SocketAddr) -> anyhow::Result<zhengyin_pages::PagesConfig> {
    let mut pages = zhengyin_pages::PagesConfig::default();
    let Some(identity) = &config.identity else {
        return Ok(pages);
    };
    if let Some(key) = &identity.demo_platform_key {
        let signer = open_key("the demo identity platform's key", key)?;
        pages.demo_identity = Some(Arc::new(zhengyin_pages::DemoIdentity::new(
            signer,
            crate::demo::holders(),
        )));
    }
    if let Some(sign_in) = &identity.sign_in {
        let token_url = if sign_in.token_url.starts_with('/') {
            // This node itself: over loopback when it listens on every address.
            let host = match address.ip() {
                std::net::IpAddr::V4(ip) if ip.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
                std::net::IpAddr::V6(ip) if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
                ip => ip,
            };
            format!(
                "http://{}{}",
                std::net::SocketAddr::new(host, address.port()),
                sign_in.token_url
            )
        } else {
            sign_in.token_url.clone()
        };
        let client_secret = match &sign_in.client_secret_file {
            Some(file) => Some(
                std::fs::read_to_string(file)
                    .with_context(|| format!("reading the sign-in client secret {}", file.display()))?
                    .trim()
                    .to_owned(),
            ),
            None => None,
        };
        pages.sign_in = Some(zhengyin_pages::SignInConfig {
            authorize_url: sign_in.authorize_url.clone(),
            token_url,
            client_id: sign_in.client_id.clone(),
            client_secret,
            redirect_url: sign_in.redirect_url.clone(),
        });
    }
    Ok(pages)
}

fn open_key(what: &str, name: &str) -> anyhow::Result<Arc<dyn zhengyin_crypto::Signer>> {
    zhengyin_keys::KeyLocator::parse(name)
        .and_then(|locator| locator.open())
        .with_context(|| format!("loading {what}"))
}

/// Refuses to start when an authority key is not the subject key of the certificate it is
/// configured with (a wrong object in the HSM, or a key of another algorithm).
fn check_certificate(key: &dyn zhengyin_crypto::Signer, name: &str, certificate: &Path) -> anyhow::Result<()> {
    let pem = std::fs::read_to_string(certificate).with_context(|| format!("reading {}", certificate.display()))?;
    let certificate_key = zhengyin_crypto::Certificate::all_from_pem(&pem)
        .ok()
        .and_then(|certs| certs.into_iter().next())
        .with_context(|| format!("{}: no certificate", certificate.display()))?
        .public_key()
        .cloned()
        .with_context(|| format!("{}: its public key", certificate.display()))?;
    let key_algorithm = key.algorithm();
    anyhow::ensure!(
        certificate_key.algorithm() == key_algorithm,
        "key {name} is {key_algorithm:?} but certificate {} is for a {:?} key",
        certificate.display(),
        certificate_key.algorithm()
    );
    anyhow::ensure!(
        certificate_key.id() == key.public_key().id(),
        "key {name} does not match certificate {} (another key of the same algorithm)",
        certificate.display()
    );
    Ok(())
}

/// A source to follow: its configuration, the node token, its anchors (PEM).
type Source = (config::SourceConfig, String, String);

/// The upstream node: its configuration and the node token.
type Upstream = (config::FederationConfig, String);

/// The trust list followed: its configuration and the node token for the regions' nodes.
type FollowedList = (config::TrustListConfig, String);

async fn run(
    config: Config,
    sources: Vec<Source>,
    upstream: Option<Upstream>,
    trust_list: Option<FollowedList>,
    demo: Option<demo::DemoSettings>,
) -> anyhow::Result<()> {
    let mut anchors_pem = std::fs::read_to_string(&config.trust_anchors)
        .with_context(|| format!("reading trust anchors {}", config.trust_anchors.display()))?;
    // A node with no anchor of its own would answer INDETERMINATE to everything it issues.
    if TrustAnchors::from_pem(&anchors_pem).map_or(true, |a| a.certificates().is_empty()) {
        anyhow::bail!("trust anchors {} hold no certificate", config.trust_anchors.display());
    }
    // Replicated licences are verified here too: their sources' anchors join this node's.
    for (_, _, pem) in &sources {
        anchors_pem.push('\n');
        anchors_pem.push_str(pem);
    }
    let anchors = TrustAnchors::from_pem(&anchors_pem).context("parsing trust anchors")?;
    let mut keyring = Keyring::default();
    for entry in &config.keys {
        let key = open_key("an authority key", entry.key())?;
        if let config::AuthorityKey::WithCertificate { certificate, .. } = entry {
            check_certificate(&*key, entry.key(), certificate)?;
        }
        keyring.add(key);
    }
    let log_key = open_key("the log key", &config.log_key)?;
    let mut mark = mark::CheckpointMark::open(&config.checkpoint_mark())?;
    let log = LogConfig {
        origin: config.log_origin.clone(),
        signer: log_key,
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
    .with_prepared_cache(config.prepared_cache)
    .with_calendar(config.calendar.clone())
    .context("the working-day calendar")?;
    if let Some(maker) = &config.seal_maker {
        let key = open_key("the seal-maker key", &maker.key)?;
        let mut chain = String::new();
        for path in &maker.certificates {
            chain += &std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        }
        let maker =
            SealMaker::new(&chain, key, engine.anchors(), time::OffsetDateTime::now_utc()).context("the seal maker")?;
        engine = engine.with_seal_maker(maker);
    }
    match &config.licence_font {
        Some(font) => {
            let bytes = std::fs::read(&font.file).with_context(|| format!("reading {}", font.file.display()))?;
            let loaded = zhengyin_engine::Font::parse(bytes, font.face)
                .with_context(|| format!("the licence font {} (face {})", font.file.display(), font.face))?;
            tracing::info!(family = loaded.family(), file = %font.file.display(), "licence files embed their font");
            engine = engine.with_licence_font(loaded);
        }
        None => tracing::info!("no licence_font: licence files name 宋体 and readers substitute a font"),
    }
    if let Some(key) = &config.token_key {
        engine = engine.with_token_key(open_key("the token key", key)?);
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
            recognition: None,
        };
        engine.watch_source(&source);
        tokio::spawn(sync::follow(Arc::clone(&engine), source, feed, pace, None));
    }
    if let Some((federation, token)) = upstream {
        let key = zhengyin_tlog::NoteVerifier::parse(&federation.upstream_key)
            .map_err(|e| anyhow::anyhow!("the upstream node's log key: {e}"))?;
        let feed = sync::HttpFeed::new(&federation.upstream_url, token)?;
        tracing::info!(url = %federation.upstream_url, "following the upstream node's ownership map");
        let refresh = std::time::Duration::from_secs(federation.refresh_seconds.max(1));
        tokio::spawn(sync::follow_ownership(Arc::clone(&engine), feed, key, refresh));
    }
    if let Some((list, token)) = trust_list {
        let key = crate::exit::read_public_key(&list.key).context("the trust list operator's key")?;
        let follow = crate::trust_list::Follow {
            publisher: sync::HttpFeed::new(&list.url, token.clone())?,
            key,
            token,
            refresh: std::time::Duration::from_secs(list.refresh_seconds.max(1)),
            held_file: config.held_trust_list(),
            pace,
        };
        tracing::info!(url = %list.url, "following a trust list");
        tokio::spawn(crate::trust_list::follow(Arc::clone(&engine), follow));
    }
    let tokens = Tokens::from_config(&config.tokens)?;
    let mut state = AppState::new(Arc::clone(&engine), tokens)?;
    if let Some(file) = &config.publish_trust_list {
        anyhow::ensure!(
            file.is_file(),
            "the trust list to publish, {}, is not a file",
            file.display()
        );
        state = state.with_published_trust_list(file.clone());
    }
    if let Some(store) = backups {
        state = state.with_backups(store);
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let address = listener.local_addr()?;
    state = state.with_pages(pages_config(&config, address)?);
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
