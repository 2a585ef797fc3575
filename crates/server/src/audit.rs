//! `zhengyin audit`: checks a node's signature log without trusting the node.
//!
//! 1. Fetch the latest checkpoint and check its signature against the configured log key.
//! 2. Compare with the last checkpoint this auditor accepted (the state file): the size may not
//!    shrink; the same size with another root is equivocation; a larger size must be shown to
//!    extend the old tree.
//! 3. Read the new entries, check each is a log event, and recompute the root from the kept
//!    frontier: it must equal the checkpoint's. A rewritten or removed entry shows here.
//! 4. Save the new state.
//!
//! The log comes from a running node (`--url`, consistency shown by an RFC 9162 proof) or from a
//! bundle exported from one (`zhengyin log export`, audited with `--offline DIR`, consistency
//! shown by recomputing the old root from the bundle's first entries). A bundle is
//! `checkpoint.txt` (the signed note) and `entries.txt` (every entry up to the checkpoint's size,
//! one standard-base64 line each, in order).
//!
//! Entries carry hashes of the signed licences, never the licences (they hold personal data), so
//! licence signatures are checked when a licence is presented, against its entry's hash.

use std::path::Path;

use anyhow::Context as _;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use zhengyin_tlog::{
    leaf_hash, open_checkpoint, verify_consistency, Checkpoint, Frontier, Hash, NoteVerifier, TreeSize,
};

/// What the auditor keeps between runs.
#[derive(Debug, Serialize, Deserialize)]
struct State {
    origin: String,
    size: u64,
    root: String,
    frontier: Vec<String>,
    checkpoint: String,
}

/// How an audit ended.
pub enum Outcome {
    /// The log is consistent with everything seen before.
    Ok(String),
    /// The log misbehaved; the message says exactly how.
    Failed(String),
}

fn decode_hash(text: &str) -> anyhow::Result<Hash> {
    B64.decode(text)
        .ok()
        .and_then(|v| v.try_into().ok())
        .context("a hash is not 32 bytes of base64")
}

/// A node's API.
pub struct Client {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Client {
    /// A client for the node at `url` with a bearer token.
    pub fn new(url: &str, token: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            url: url.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        }
    }

    async fn get(&self, path: &str) -> anyhow::Result<reqwest::Response> {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        if !r.status().is_success() {
            anyhow::bail!("GET {path}: {} {}", r.status(), r.text().await.unwrap_or_default());
        }
        Ok(r)
    }

    async fn json(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        self.get(path)
            .await?
            .json()
            .await
            .with_context(|| format!("GET {path}: not JSON"))
    }
}

/// Where the audited log comes from.
pub enum Source {
    /// A running node.
    Node(Client),
    /// An exported bundle: the checkpoint note and every entry up to its size.
    Bundle {
        /// The signed checkpoint note.
        note: String,
        /// The entries, in order.
        entries: Vec<Vec<u8>>,
    },
}

const BUNDLE_CHECKPOINT: &str = "checkpoint.txt";
const BUNDLE_ENTRIES: &str = "entries.txt";

impl Source {
    /// Reads an exported bundle.
    pub fn bundle(dir: &Path) -> anyhow::Result<Self> {
        let note = std::fs::read_to_string(dir.join(BUNDLE_CHECKPOINT)).context("reading checkpoint.txt")?;
        let entries = std::fs::read_to_string(dir.join(BUNDLE_ENTRIES))
            .context("reading entries.txt")?
            .lines()
            .enumerate()
            .map(|(i, line)| {
                B64.decode(line)
                    .with_context(|| format!("entries.txt line {} is not base64", i + 1))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self::Bundle { note, entries })
    }

    async fn checkpoint(&self) -> anyhow::Result<String> {
        match self {
            Self::Node(client) => Ok(client.get("/v1/log/checkpoint").await?.text().await?),
            Self::Bundle { note, .. } => Ok(note.clone()),
        }
    }

    /// Entries from `start`, up to `end` at most (a node serves them in pages).
    async fn entries(&self, start: u64, end: u64) -> anyhow::Result<Vec<Vec<u8>>> {
        match self {
            Self::Node(client) => client.json(&format!("/v1/log/entries?start={start}&end={end}")).await?["entries"]
                .as_array()
                .context("entries missing")?
                .iter()
                .map(|e| {
                    B64.decode(e.as_str().unwrap_or_default())
                        .context("an entry is not base64")
                })
                .collect(),
            Self::Bundle { entries, .. } => {
                let end = usize::try_from(end).unwrap_or(usize::MAX).min(entries.len());
                let start = usize::try_from(start).unwrap_or(usize::MAX);
                Ok(entries.get(start..end).map(<[_]>::to_vec).unwrap_or_default())
            }
        }
    }

    /// Whether the tree of `first` entries with `first_root` is a prefix of the checkpoint's.
    async fn extends(
        &self,
        first: u64,
        first_root: &Hash,
        checkpoint: &Checkpoint,
    ) -> anyhow::Result<Result<(), String>> {
        match self {
            Self::Node(client) => {
                let path = format!("/v1/log/proof/consistency?first={first}&second={}", checkpoint.size.0);
                let proof: Vec<Hash> = client.json(&path).await?["proof"]
                    .as_array()
                    .context("consistency proof missing")?
                    .iter()
                    .map(|h| decode_hash(h.as_str().unwrap_or_default()))
                    .collect::<anyhow::Result<_>>()?;
                Ok(
                    verify_consistency(TreeSize(first), checkpoint.size, &proof, first_root, &checkpoint.root)
                        .map_err(|e| e.to_string()),
                )
            }
            Self::Bundle { entries, .. } => {
                let mut prefix = Frontier::default();
                entries
                    .iter()
                    .take(usize::try_from(first).unwrap_or(usize::MAX))
                    .for_each(|e| prefix.push(leaf_hash(e)));
                if prefix.size().0 == first && &prefix.root() == first_root {
                    Ok(Ok(()))
                } else {
                    Ok(Err(
                        "the bundle's first entries do not hash to the root seen before".to_owned()
                    ))
                }
            }
        }
    }
}

/// Writes a bundle of a node's log: its latest checkpoint and every entry up to it.
pub async fn export(client: Client, dir: &Path) -> anyhow::Result<u64> {
    let source = Source::Node(client);
    let note = source.checkpoint().await?;
    let size: u64 = note
        .lines()
        .nth(1)
        .and_then(|l| l.parse().ok())
        .context("the checkpoint has no size line")?;
    let mut lines = String::new();
    let mut next = 0;
    while next < size {
        let page = source.entries(next, size).await?;
        if page.is_empty() {
            anyhow::bail!("the node serves no entry {next} below its checkpoint size {size}");
        }
        for e in &page {
            lines.push_str(&B64.encode(e));
            lines.push('\n');
        }
        next += page.len() as u64;
    }
    std::fs::create_dir_all(dir).context("creating the bundle folder")?;
    std::fs::write(dir.join(BUNDLE_ENTRIES), lines).context("writing entries.txt")?;
    std::fs::write(dir.join(BUNDLE_CHECKPOINT), note).context("writing checkpoint.txt")?;
    Ok(size)
}

/// Runs one audit of the log from `source`, from the state kept at `state_path` (a first audit
/// when there is none) and keeping the new state there; without a path, nothing is kept.
pub async fn audit(source: &Source, key: &str, state_path: Option<&Path>) -> anyhow::Result<Outcome> {
    let verifier = NoteVerifier::parse(key).context("the log key is not a verifier key string")?;
    let note = source.checkpoint().await?;
    let checkpoint = match open_checkpoint(&note, &verifier) {
        Ok(c) => c,
        Err(e) => {
            return Ok(Outcome::Failed(format!(
                "the checkpoint does not verify with the log key: {e}"
            )))
        }
    };
    if checkpoint.origin != verifier.name() {
        return Ok(Outcome::Failed(format!(
            "the checkpoint is for origin {}, not {}",
            checkpoint.origin,
            verifier.name()
        )));
    }
    let previous: Option<State> = match state_path.map(std::fs::read) {
        None => None,
        Some(Ok(bytes)) => Some(
            serde_json::from_slice(&bytes)
                .map_err(|e| crate::exit::input(format!("the state file is not an audit state: {e}")))?,
        ),
        Some(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => None,
        Some(Err(e)) => return Err(e).context("reading the state file"),
    };
    let mut frontier = Frontier::default();
    if let Some(prev) = &previous {
        if prev.origin != checkpoint.origin {
            anyhow::bail!("the state file is for log {}, not {}", prev.origin, checkpoint.origin);
        }
        let prev_root = decode_hash(&prev.root)?;
        if checkpoint.size.0 < prev.size {
            return Ok(Outcome::Failed(format!(
                "the log went backwards: size {} was accepted before, the checkpoint now says {}",
                prev.size, checkpoint.size.0
            )));
        }
        if checkpoint.size.0 == prev.size && checkpoint.root != prev_root {
            return Ok(Outcome::Failed(format!(
                "equivocation: two signed checkpoints for size {} with different roots:\n{}\n{}",
                prev.size, prev.checkpoint, note
            )));
        }
        if checkpoint.size.0 > prev.size {
            if let Err(e) = source.extends(prev.size, &prev_root, &checkpoint).await? {
                return Ok(Outcome::Failed(format!(
                    "the log is not an extension of the one seen before (fork or rewrite): {e}:\n{}\n{}",
                    prev.checkpoint, note
                )));
            }
        }
        let hashes = prev
            .frontier
            .iter()
            .map(|h| decode_hash(h))
            .collect::<anyhow::Result<_>>()?;
        frontier = Frontier::from_parts(TreeSize(prev.size), hashes).context("the state file's frontier is damaged")?;
    }
    let start = frontier.size().0;
    let mut events = std::collections::BTreeMap::<String, u64>::new();
    while frontier.size().0 < checkpoint.size.0 {
        let from = frontier.size().0;
        let entries = source.entries(from, checkpoint.size.0).await?;
        if entries.is_empty() {
            return Ok(Outcome::Failed(format!(
                "the log serves no entry {from} below its checkpoint size"
            )));
        }
        for (i, bytes) in entries.iter().enumerate() {
            let event = serde_json::from_slice::<serde_json::Value>(bytes)
                .ok()
                .and_then(|v| v["event"].as_str().map(str::to_owned));
            let Some(event) = event else {
                return Ok(Outcome::Failed(format!("entry {} is not a log event", from + i as u64)));
            };
            *events.entry(event).or_default() += 1;
            frontier.push(leaf_hash(bytes));
        }
    }
    if frontier.root() != checkpoint.root {
        return Ok(Outcome::Failed(format!(
            "entries {start}..{} do not hash to the signed root: an entry was rewritten or removed",
            checkpoint.size.0
        )));
    }
    if let Some(path) = state_path {
        save(path, &checkpoint, &frontier, &note)?;
    }
    let counts: Vec<String> = events.iter().map(|(k, v)| format!("{v} {k}")).collect();
    Ok(Outcome::Ok(format!(
        "OK: log {} at size {}, root {}; {} new entries checked{}",
        checkpoint.origin,
        checkpoint.size.0,
        B64.encode(checkpoint.root),
        checkpoint.size.0 - start,
        if counts.is_empty() {
            String::new()
        } else {
            format!(" ({})", counts.join(", "))
        }
    )))
}

fn save(path: &Path, checkpoint: &Checkpoint, frontier: &Frontier, note: &str) -> anyhow::Result<()> {
    let state = State {
        origin: checkpoint.origin.clone(),
        size: checkpoint.size.0,
        root: B64.encode(checkpoint.root),
        frontier: frontier.hashes().iter().map(|h| B64.encode(h)).collect(),
        checkpoint: note.to_owned(),
    };
    // Write then rename, so a crash never leaves a half-written state.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&state)?).context("writing the state file")?;
    std::fs::rename(&tmp, path).context("replacing the state file")?;
    Ok(())
}
