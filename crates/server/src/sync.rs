//! Pulling the sources this node aggregates, over HTTP: one task per source, each with its own
//! back-off, so one source's failure never stops the others. The checks are the engine's
//! (`zhengyin_engine::sync`); this module only moves bytes and keeps time.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use zhengyin_engine::sync::{Feed, FeedError, SyncError, SyncObject, SyncSource};
use zhengyin_engine::{Engine, Lease, MAX_ENTRIES_PER_PAGE};
use zhengyin_model::{LicenceType, TypeCode};
use zhengyin_tlog::{Hash, NoteVerifier};

/// Largest answer read from a source, bytes (a page of 1000 licences is a few MB).
const MAX_ANSWER: usize = 64 << 20;

/// Longest wait between failed rounds.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How often a source that stopped answering is probed while its back-off runs (±25 %).
pub(crate) const PROBE_INTERVAL: Duration = Duration::from_millis(250);

/// A source's HTTP API, read with a node token.
pub struct HttpFeed {
    client: reqwest::Client,
    base: reqwest::Url,
    token: String,
}

impl HttpFeed {
    /// A feed of the node at `base` (e.g. `http://127.0.0.1:8081`).
    pub fn new(base: &str, token: String) -> anyhow::Result<Self> {
        let base = reqwest::Url::parse(base).with_context(|| format!("source URL {base}"))?;
        anyhow::ensure!(
            matches!(base.scheme(), "http" | "https"),
            "source URL {base}: http or https"
        );
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .context("building the sync client")?;
        Ok(Self { client, base, token })
    }

    pub(crate) async fn get(&self, path: &str) -> Result<Vec<u8>, FeedError> {
        let url = self.base.join(path).map_err(|e| FeedError(e.to_string()))?;
        let mut response = self
            .client
            .get(url)
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| FeedError(format!("{path}: {e}")))?;
        if !response.status().is_success() {
            return Err(FeedError(format!("{path}: HTTP {}", response.status())));
        }
        if response.content_length().is_some_and(|n| n > MAX_ANSWER as u64) {
            return Err(FeedError(format!("{path}: answer larger than {MAX_ANSWER} bytes")));
        }
        let mut body = Vec::with_capacity(response.content_length().map_or(0, |n| n as usize));
        while let Some(chunk) = response.chunk().await.map_err(|e| FeedError(format!("{path}: {e}")))? {
            if body.len() + chunk.len() > MAX_ANSWER {
                return Err(FeedError(format!("{path}: answer larger than {MAX_ANSWER} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, FeedError> {
        serde_json::from_slice(&self.get(path).await?).map_err(|e| FeedError(format!("{path}: {e}")))
    }
}

fn hashes(proof: Vec<String>) -> Result<Vec<Hash>, FeedError> {
    proof
        .iter()
        .map(|h| {
            B64.decode(h)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| FeedError("a proof hash is not 32 bytes of base64".into()))
        })
        .collect()
}

#[derive(serde::Deserialize)]
struct Proof {
    proof: Vec<String>,
}

#[derive(serde::Deserialize)]
struct Entries {
    entries: Vec<String>,
}

#[derive(serde::Deserialize)]
struct Objects {
    objects: Vec<SyncObject>,
}

impl Feed for HttpFeed {
    async fn checkpoint(&self) -> Result<String, FeedError> {
        String::from_utf8(self.get("/v1/log/checkpoint").await?).map_err(|_| FeedError("checkpoint: not UTF-8".into()))
    }

    async fn consistency(&self, first: u64, second: u64) -> Result<Vec<Hash>, FeedError> {
        let p: Proof = self
            .get_json(&format!("/v1/log/proof/consistency?first={first}&second={second}"))
            .await?;
        hashes(p.proof)
    }

    async fn inclusion(&self, index: u64, size: u64) -> Result<Vec<Hash>, FeedError> {
        let p: Proof = self
            .get_json(&format!("/v1/log/proof/inclusion?index={index}&size={size}"))
            .await?;
        hashes(p.proof)
    }

    async fn entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, FeedError> {
        let e: Entries = self
            .get_json(&format!("/v1/log/entries?start={start}&end={end}"))
            .await?;
        e.entries
            .iter()
            .map(|e| B64.decode(e).map_err(|_| FeedError("an entry is not base64".into())))
            .collect()
    }

    async fn objects(&self, start: u64, end: u64) -> Result<Vec<SyncObject>, FeedError> {
        let o: Objects = self
            .get_json(&format!("/v1/sync/objects?start={start}&end={end}"))
            .await?;
        Ok(o.objects)
    }

    async fn licence_type(&self, code: &TypeCode) -> Result<LicenceType, FeedError> {
        self.get_json(&format!("/v1/licence-types/{code}")).await
    }
}

/// How long a frontend's hold on following a source lasts unless renewed (every round renews it).
pub const SYNC_LEASE_TIME: Duration = Duration::from_secs(10);

/// How often and how much to pull.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Wait between rounds when all is well.
    pub poll: Duration,
    /// Entries per page.
    pub page: u64,
}

/// Follows one source forever: a round every `poll`, backing off (doubling up to 30 s) while the
/// source is unreachable or this node fails — but a source that stopped answering is probed
/// meanwhile (see [`back_off`]) and followed again as soon as it answers; an incident stops the
/// source until an operator resolves it (checked every round, at the normal pace).
///
/// Of the frontends of a shared database, the one holding the source's lease follows it; the
/// others wait, and take over when that one stops renewing it (within [`SYNC_LEASE_TIME`]).
///
/// A source followed through a trust list is given `stop`: it is left (between rounds) when
/// that turns true, as when a newer list drops or changes it.
pub async fn follow(
    engine: Arc<Engine>,
    source: SyncSource,
    feed: HttpFeed,
    pace: Pace,
    mut stop: Option<watch::Receiver<bool>>,
) {
    engine.watch_source(&source);
    let page = pace.page.clamp(1, MAX_ENTRIES_PER_PAGE);
    let lease = Lease::new(&format!("sync {}", source.origin), SYNC_LEASE_TIME);
    let mut backoff = pace.poll;
    loop {
        match engine.hold(&lease) {
            Ok(true) => {}
            Ok(false) => {
                if pause(tokio::time::sleep(pace.poll), &mut stop).await {
                    return;
                }
                continue;
            }
            Err(e) => {
                tracing::warn!(origin = %source.origin, error = %e, "taking the sync lease failed");
                if pause(tokio::time::sleep(pace.poll.max(Duration::from_secs(1))), &mut stop).await {
                    return;
                }
                continue;
            }
        }
        let wait = match engine.sync_round(&source, &feed, page).await {
            Ok(outcome) => {
                if outcome.applied > 0 {
                    tracing::info!(origin = %source.origin, applied = outcome.applied, size = outcome.size, "synced");
                }
                backoff = pace.poll;
                pace.poll
            }
            Err(SyncError::Halted(_)) => pace.poll,
            Err(SyncError::Incident(incident)) => {
                tracing::error!(origin = %source.origin, incident = %incident.id, "source stopped by an incident");
                pace.poll
            }
            Err(e) => {
                tracing::warn!(origin = %source.origin, error = %e, retry_in_ms = backoff.as_millis() as u64, "sync round failed");
                let wait = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                let stopped = if matches!(e, SyncError::Feed(_)) {
                    pause(back_off(&feed, wait), &mut stop).await
                } else {
                    pause(tokio::time::sleep(wait), &mut stop).await
                };
                if stopped {
                    return;
                }
                continue;
            }
        };
        if pause(tokio::time::sleep(wait), &mut stop).await {
            return;
        }
    }
}

/// Waits for `wait`, or until `stop` turns true: whether it did.
async fn pause(wait: impl std::future::Future<Output = ()>, stop: &mut Option<watch::Receiver<bool>>) -> bool {
    let stopped = async {
        let told = match stop {
            Some(rx) => rx.wait_for(|s| *s).await.is_ok(),
            None => false,
        };
        // No stop signal, or its sender is gone: never.
        if !told {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = wait => false,
        () = stopped => true,
    }
}

/// Waits `wait` after a round the source failed. Probes it at once with the cheapest request
/// (its checkpoint): if it answers, what failed was a page of it, and the whole back-off is kept
/// for the expensive round. If it does not, it is down: probed again every [`PROBE_INTERVAL`]
/// (jittered, so a province's probes of many cities spread out) until it answers, and followed
/// again at once — a city back from an outage is caught up within a probe, whatever the
/// back-off had grown to.
async fn back_off(feed: &HttpFeed, wait: Duration) {
    let deadline = tokio::time::Instant::now() + wait;
    let mut first = true;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return;
        }
        let answered = matches!(tokio::time::timeout(left, feed.checkpoint()).await, Ok(Ok(_)));
        match (answered, first) {
            (true, true) => return tokio::time::sleep_until(deadline).await,
            (true, false) => return,
            (false, _) => first = false,
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        tokio::time::sleep(jittered(PROBE_INTERVAL).min(left)).await;
    }
}

/// Keeps this node's copy of the upstream node's ownership map current: fetched at once, then
/// every `refresh`, and every [`PROBE_INTERVAL`] while none is held yet. A map that fails its
/// checks (signature, publisher, an older version) is refused and logged; the one held stays.
pub async fn follow_ownership(engine: Arc<Engine>, upstream: HttpFeed, key: NoteVerifier, refresh: Duration) {
    loop {
        let wait = match upstream.get("/v1/federation/ownership").await {
            Ok(body) => match std::str::from_utf8(&body) {
                Ok(note) => match engine.adopt_ownership_map(note, &key) {
                    Ok(view) => {
                        tracing::debug!(publisher = %view.publisher, version = view.version, "ownership map held");
                        refresh
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "the upstream node's ownership map was refused");
                        refresh
                    }
                },
                Err(_) => {
                    tracing::error!("the upstream node's ownership map is not UTF-8");
                    refresh
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "fetching the upstream node's ownership map failed");
                if engine.ownership().is_none() {
                    PROBE_INTERVAL
                } else {
                    refresh
                }
            }
        };
        tokio::time::sleep(jittered(wait)).await;
    }
}

/// `d`, give or take a quarter, from the clock's nanoseconds.
pub(crate) fn jittered(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    d.mul_f64(0.75 + f64::from(nanos % 1000) / 2000.0)
}
