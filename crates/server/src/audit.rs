//! `zhengyin audit`: checks a node's signature log without trusting the node.
//!
//! 1. Fetch the latest checkpoint and check its signature against the configured log key.
//! 2. Compare with the last checkpoint this auditor accepted (the state file): the size may not
//!    shrink; the same size with another root is equivocation; a larger size must come with a
//!    consistency proof from the old one.
//! 3. Download the new entries, check each is a log event, and recompute the root from the kept
//!    frontier: it must equal the checkpoint's. A rewritten or removed entry shows here.
//! 4. Save the new state.
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

struct Client {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Client {
    async fn get(&self, path: &str) -> anyhow::Result<reqwest::Response> {
        let r = self
            .http
            .get(format!("{}{path}", self.url.trim_end_matches('/')))
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

/// Runs one audit against the node at `url`.
pub async fn audit(url: &str, token: &str, key: &str, state_path: &Path) -> anyhow::Result<Outcome> {
    let verifier = NoteVerifier::parse(key).context("the log key is not a verifier key string")?;
    let client = Client {
        http: reqwest::Client::new(),
        url: url.to_owned(),
        token: token.to_owned(),
    };
    let note = client.get("/v1/log/checkpoint").await?.text().await?;
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
    let previous: Option<State> = match std::fs::read(state_path) {
        Ok(bytes) => Some(serde_json::from_slice(&bytes).context("the state file is not an audit state")?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).context("reading the state file"),
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
            let path = format!(
                "/v1/log/proof/consistency?first={}&second={}",
                prev.size, checkpoint.size.0
            );
            let proof = client.json(&path).await?;
            let proof: Vec<Hash> = proof["proof"]
                .as_array()
                .context("consistency proof missing")?
                .iter()
                .map(|h| decode_hash(h.as_str().unwrap_or_default()))
                .collect::<anyhow::Result<_>>()?;
            if let Err(e) = verify_consistency(
                TreeSize(prev.size),
                checkpoint.size,
                &proof,
                &prev_root,
                &checkpoint.root,
            ) {
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
        let page = client
            .json(&format!("/v1/log/entries?start={from}&end={}", checkpoint.size.0))
            .await?;
        let entries = page["entries"].as_array().context("entries missing")?;
        if entries.is_empty() {
            return Ok(Outcome::Failed(format!(
                "the log serves no entry {from} below its checkpoint size"
            )));
        }
        for (i, e) in entries.iter().enumerate() {
            let bytes = B64
                .decode(e.as_str().unwrap_or_default())
                .context("an entry is not base64")?;
            let event = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v["event"].as_str().map(str::to_owned));
            let Some(event) = event else {
                return Ok(Outcome::Failed(format!("entry {} is not a log event", from + i as u64)));
            };
            *events.entry(event).or_default() += 1;
            frontier.push(leaf_hash(&bytes));
        }
    }
    if frontier.root() != checkpoint.root {
        return Ok(Outcome::Failed(format!(
            "entries {start}..{} do not hash to the signed root: an entry was rewritten or removed",
            checkpoint.size.0
        )));
    }
    save(state_path, &checkpoint, &frontier, &note)?;
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
