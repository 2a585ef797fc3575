//! Trust lists (互通互认) at the edges: `zhengyin trust-list sign|verify` for the scheme operator
//! and for whoever checks a list by hand, and the task that keeps a node's list current and
//! follows the other regions' logs it names. The checks are the engine's
//! (`zhengyin_engine::trust_list`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use zhengyin_crypto::{FileKey, PublicKey};
use zhengyin_engine::trust_list::{RecognisedLog, TrustList};
use zhengyin_engine::Engine;
use zhengyin_model::licence::format_time;

use crate::exit::{self, input};
use crate::sync::{self, HttpFeed, Pace};

/// `zhengyin trust-list …`
#[derive(clap::Subcommand)]
pub(crate) enum Command {
    /// Sign a trust list (JSON, `format` zhengyin/trust-list/v1) with the scheme operator's key;
    /// prints the JWS (or writes it to --out). The list is checked first: anchors, log keys,
    /// URLs, nothing listed twice.
    Sign {
        /// The list, JSON.
        list: PathBuf,
        /// The operator's private key (PKCS#8 PEM).
        #[arg(long)]
        key: PathBuf,
        /// Where to write the signed list [default: stdout].
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check a signed trust list as a node would: the operator's signature, the contents, not
    /// expired, and not older than --held. Prints what it vouches for; exit 1 if refused.
    Verify {
        /// The signed list (JWS).
        file: PathBuf,
        /// The operator's public key (PEM, PUBLIC KEY).
        #[arg(long)]
        key: PathBuf,
        /// The list held so far (JWS, same operator): an older sequence is refused.
        #[arg(long)]
        held: Option<PathBuf>,
    },
}

/// Runs a `trust-list` subcommand.
pub(crate) fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Sign { list, key, out } => {
            let list: TrustList = serde_json::from_slice(&exit::read(&list)?)
                .map_err(|e| input(format!("{}: not a trust list: {e}", list.display())))?;
            let key = FileKey::from_pem_file(&key).map_err(|e| input(format!("{}: {e}", key.display())))?;
            let signed = list.sign(&key).map_err(input)?;
            match out {
                Some(path) => std::fs::write(&path, format!("{signed}\n"))
                    .map_err(|e| input(format!("writing {}: {e}", path.display())))?,
                None => say!("{signed}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify { file, key, held } => {
            let key = exit::read_public_key(&key)?;
            let held = match held {
                Some(path) => Some(
                    TrustList::open(&exit::read_text(&path)?, &key, None, None)
                        .map_err(|e| input(format!("{}: {e}", path.display())))?,
                ),
                None => None,
            };
            let now = time::OffsetDateTime::now_utc();
            match TrustList::open(&exit::read_text(&file)?, &key, held.as_ref(), Some(now)) {
                Ok(list) => {
                    say!(
                        "{}: {}, issued {}, next update {}",
                        file.display(),
                        list.label(),
                        format_time(list.issued),
                        format_time(list.next_update)
                    );
                    for r in &list.regions {
                        let origins: Vec<&str> = r.logs.iter().map(|l| l.origin.as_str()).collect();
                        say!(
                            "  region {} {}: {} authorities, {} licence types, logs {}",
                            r.region,
                            r.name,
                            r.authorities.len(),
                            r.licence_types.len(),
                            origins.join(", ")
                        );
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    say!("{}: refused: {e}", file.display());
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}

/// Where a node gets its trust list and how it follows the regions in it.
pub(crate) struct Follow {
    /// The node publishing the list.
    pub publisher: HttpFeed,
    /// The operator's key.
    pub key: PublicKey,
    /// The node token sent to the regions' nodes.
    pub token: String,
    /// How often the list is fetched again.
    pub refresh: Duration,
    /// Where the held list is kept across restarts.
    pub held_file: PathBuf,
    /// How the regions' logs are pulled.
    pub pace: Pace,
}

/// A region's log being followed: what it was started with, and how to stop it.
struct Running {
    fingerprint: String,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Keeps this node's trust list current — fetched at once, then every `refresh` (every probe
/// interval while none is held) — and follows each other region's logs it names as a sync
/// source; a log a newer list drops or changes is left, and followed again as the list now says.
/// A list that fails its checks is refused and logged (operators see why in `/v1/sync/sources`);
/// the one held stays.
pub(crate) async fn follow(engine: Arc<Engine>, f: Follow) {
    if let Ok(kept) = std::fs::read_to_string(&f.held_file) {
        if let Err(e) = engine.restore_trust_list(&kept, &f.key) {
            tracing::error!(file = %f.held_file.display(), error = %e, "the trust list kept from before was refused");
        }
    }
    let mut running: BTreeMap<String, Running> = BTreeMap::new();
    loop {
        let wait = match f.publisher.get("/v1/federation/trust-list").await {
            Ok(body) => {
                let signed = String::from_utf8_lossy(&body);
                let before = engine.trust_list().map(|l| l.sequence);
                match engine.adopt_trust_list(&signed, &f.key) {
                    Ok(view) if before != Some(view.sequence) => keep(&engine, &f.held_file),
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "the published trust list was refused"),
                }
                f.refresh
            }
            Err(e) => {
                tracing::warn!(error = %e, "fetching the trust list failed");
                f.refresh
            }
        };
        reconcile(&engine, &f, &mut running).await;
        let wait = if engine.trust_list().is_none() {
            sync::PROBE_INTERVAL
        } else {
            wait
        };
        tokio::time::sleep(sync::jittered(wait)).await;
    }
}

/// Writes the held list where the next start finds it (a temporary file renamed over it).
fn keep(engine: &Engine, file: &Path) {
    let Some(signed) = engine.trust_list_signed() else {
        return;
    };
    let tmp = file.with_extension("tmp");
    let written = std::fs::write(&tmp, format!("{signed}\n")).and_then(|()| std::fs::rename(&tmp, file));
    if let Err(e) = written {
        tracing::error!(file = %file.display(), error = %e, "keeping the trust list failed");
    }
}

/// Starts following the logs the held list names that are not followed yet (or not as it now
/// says) and stops the others.
async fn reconcile(engine: &Arc<Engine>, f: &Follow, running: &mut BTreeMap<String, Running>) {
    let wanted: BTreeMap<String, RecognisedLog> = engine
        .recognised_sources()
        .into_iter()
        .map(|log| (log.source.origin.clone(), log))
        .collect();
    let stale: Vec<String> = running
        .iter()
        .filter(|(origin, r)| wanted.get(*origin).is_none_or(|w| fingerprint(w) != r.fingerprint))
        .map(|(origin, _)| origin.clone())
        .collect();
    for origin in stale {
        if let Some(r) = running.remove(&origin) {
            tracing::info!(%origin, "leaving a region's log the trust list no longer names as followed");
            let _ = r.stop.send(true);
            let _ = r.task.await;
        }
    }
    for (origin, log) in wanted {
        if running.contains_key(&origin) {
            continue;
        }
        let feed = match HttpFeed::new(&log.url, f.token.clone()) {
            Ok(feed) => feed,
            Err(e) => {
                tracing::error!(%origin, error = %e, "a log of the trust list cannot be followed");
                continue;
            }
        };
        tracing::info!(%origin, url = %log.url, "following another region's log through the trust list");
        let fingerprint = fingerprint(&log);
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(sync::follow(Arc::clone(engine), log.source, feed, f.pace, Some(rx)));
        running.insert(
            origin,
            Running {
                fingerprint,
                stop,
                task,
            },
        );
    }
}

/// What, when it changes, makes a log be followed afresh.
fn fingerprint(log: &RecognisedLog) -> String {
    let anchors: Vec<String> = log.source.anchors.certificates().iter().map(|c| c.id()).collect();
    format!(
        "{} {} {:?} {:?}",
        log.url,
        log.source.verifier.encode(),
        anchors,
        log.source.recognition
    )
}
