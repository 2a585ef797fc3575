//! `zhengyin import`: converts existing licences (存量证照电子化) by sending a file of issue
//! requests, one JSON object per line, to a node's bulk issuance (`POST /v1/licences/batch`).
//!
//! Resumable: after each batch is answered, the number of lines done is written (atomically) to
//! a progress file beside the input, and a new run starts after them. A batch interrupted after
//! it was sent but before its answer was recorded is sent again; its licences already issued are
//! then refused as `licence.number_taken` (numbers are unique per type and issuer), so no line is
//! ever issued twice. Refused lines are written with their reasons to `<file>.refused.jsonl`.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{json, Value};

/// How a run ended.
#[derive(Debug, Default)]
pub struct Summary {
    /// Lines issued by this run.
    pub issued: usize,
    /// Lines refused by this run (with their reasons in the refused file).
    pub refused: usize,
    /// Of those, refused as `licence.number_taken`: issued before (an interrupted run) or a number
    /// used twice.
    pub taken: usize,
    /// Lines done by earlier runs, skipped.
    pub skipped: usize,
}

/// Where the import keeps its state, beside the input.
struct Files {
    progress: PathBuf,
    refused: PathBuf,
}

impl Files {
    fn beside(input: &Path) -> Files {
        let with = |suffix: &str| {
            let mut name = input.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        };
        Files {
            progress: with(".progress"),
            refused: with(".refused.jsonl"),
        }
    }

    fn done(&self) -> anyhow::Result<usize> {
        match std::fs::read_to_string(&self.progress) {
            Ok(text) => {
                let state: Value = serde_json::from_str(&text)
                    .with_context(|| format!("{} is not an import progress file", self.progress.display()))?;
                state["done"]
                    .as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .with_context(|| format!("{} has no line count", self.progress.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e).with_context(|| format!("reading {}", self.progress.display())),
        }
    }

    /// Records `done` lines durably: a crash leaves the old count or the new one, never neither.
    fn record(&self, done: usize) -> anyhow::Result<()> {
        let tmp = self.progress.with_extension("progress.tmp");
        let mut file = std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        file.write_all(json!({ "done": done }).to_string().as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, &self.progress).with_context(|| format!("writing {}", self.progress.display()))
    }
}

/// Imports `input` into the node at `url` as the authority whose token is `token`, `batch`
/// lines per request.
pub async fn run(input: &Path, url: &str, token: &str, batch: usize) -> anyhow::Result<Summary> {
    let files = Files::beside(input);
    let lines: Vec<String> =
        std::io::BufReader::new(std::fs::File::open(input).with_context(|| format!("opening {}", input.display()))?)
            .lines()
            .collect::<Result<_, _>>()
            .with_context(|| format!("reading {}", input.display()))?;
    let done = files.done()?.min(lines.len());
    let mut summary = Summary {
        skipped: done,
        ..Summary::default()
    };
    let mut refused_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&files.refused)
        .with_context(|| format!("opening {}", files.refused.display()))?;
    let bar = indicatif::ProgressBar::new(lines.len() as u64).with_position(done as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} lines, {per_sec}, {eta} left")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let http = reqwest::Client::new();
    let endpoint = format!("{}/v1/licences/batch", url.trim_end_matches('/'));
    let mut refuse = |line: usize, code: &str, detail: &str, summary: &mut Summary| -> anyhow::Result<()> {
        summary.refused += 1;
        if code == "licence.number_taken" {
            summary.taken += 1;
        }
        writeln!(
            refused_file,
            "{}",
            json!({"line": line, "code": code, "detail": detail})
        )?;
        Ok(())
    };
    let mut start = done;
    while start < lines.len() {
        let end = lines.len().min(start + batch.max(1));
        // Lines that are not JSON objects are refused here; the others go to the node.
        let mut sent = Vec::new();
        for (i, line) in lines.iter().enumerate().take(end).skip(start) {
            match serde_json::from_str::<Value>(line) {
                Ok(request @ Value::Object(_)) => sent.push((i + 1, request)),
                Ok(_) => refuse(
                    i + 1,
                    "import.not_an_object",
                    "the line is not a JSON object",
                    &mut summary,
                )?,
                Err(e) => refuse(i + 1, "import.malformed_json", &e.to_string(), &mut summary)?,
            }
        }
        if !sent.is_empty() {
            let body = json!({ "licences": sent.iter().map(|(_, r)| r).collect::<Vec<_>>() });
            let response = http
                .post(&endpoint)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .with_context(|| format!("sending lines {}–{end} to {endpoint}", start + 1))?;
            let status = response.status();
            let answer: Value = response.json().await.unwrap_or(Value::Null);
            let results = answer["results"].as_array().filter(|r| r.len() == sent.len());
            let Some(results) = results else {
                anyhow::bail!(
                    "the node refused lines {}–{end} ({status}): {}",
                    start + 1,
                    answer["detail"].as_str().unwrap_or("no problem details")
                );
            };
            for ((line, _), result) in sent.iter().zip(results) {
                match result["code"].as_str() {
                    None => summary.issued += 1,
                    Some(code) => refuse(*line, code, result["detail"].as_str().unwrap_or_default(), &mut summary)?,
                }
            }
        }
        files.record(end)?;
        bar.set_position(end as u64);
        start = end;
    }
    bar.finish_and_clear();
    Ok(summary)
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} issued, {} refused", self.issued, self.refused)?;
        if self.taken > 0 {
            write!(
                f,
                " ({} as licence.number_taken: issued before this run, or a number used twice)",
                self.taken
            )?;
        }
        if self.skipped > 0 {
            write!(f, "; {} lines done by an earlier run skipped", self.skipped)?;
        }
        Ok(())
    }
}
