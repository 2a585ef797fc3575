//! A node's data as a whole: `zhengyin backup` and `zhengyin restore` (the embedded store's
//! backups), `zhengyin store copy` (moving a node from the embedded store to PostgreSQL) and
//! `zhengyin store stats` (where the bytes go).
//!
//! A running node is backed up through its API (`GET /v1/backup`, an operator's token): the
//! node holds writes back while it writes the archive, so the backup is one consistent state,
//! and reads go on. A stopped node's folder can be backed up directly. Either way the archive
//! lands in a `.partial` file, is read back and checked (its SHA-256 end frame), and only then
//! takes its name. A PostgreSQL cluster is backed up with the database's own tools.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use zhengyin_store::{BackupSummary, PgStore, SledStore};

/// Where a backup comes from.
pub enum Source {
    /// A running node's base URL and an operator token.
    Node { url: String, token: String },
    /// A stopped node's data folder.
    Folder(PathBuf),
}

fn describe(summary: &BackupSummary) -> String {
    format!(
        "{} records, signature log of {} entries, SHA-256 {}",
        summary.records,
        summary.log_size,
        hex::encode(summary.sha256)
    )
}

/// Writes a backup of `source` to `out` (which must not exist yet).
pub fn backup(source: Source, out: &Path) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        !out.exists(),
        "{} exists already: choose a new name (a backup never overwrites one)",
        out.display()
    );
    let mut name = out.file_name().context("--out names no file")?.to_os_string();
    name.push(".partial");
    let partial = out.with_file_name(name);
    let written = write(source, &partial).and_then(|()| -> anyhow::Result<BackupSummary> {
        let file = std::fs::File::open(&partial)?;
        let summary = SledStore::check_backup(std::io::BufReader::new(file)).context("checking the backup")?;
        std::fs::rename(&partial, out).with_context(|| format!("naming {}", out.display()))?;
        Ok(summary)
    });
    match written {
        Ok(summary) => {
            say!("backup written to {}: {}", out.display(), describe(&summary));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

fn write(source: Source, partial: &Path) -> anyhow::Result<()> {
    let file = std::fs::File::create(partial).with_context(|| format!("creating {}", partial.display()))?;
    let mut out = std::io::BufWriter::new(file);
    match source {
        Source::Folder(dir) => {
            anyhow::ensure!(dir.is_dir(), "{} is not a data folder", dir.display());
            let store = SledStore::open(&dir).with_context(|| {
                format!(
                    "opening {} (if its node is running, back it up through the node with --url)",
                    dir.display()
                )
            })?;
            store.backup(&mut out)?;
        }
        Source::Node { url, token } => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(download(&url, &token, &mut out))?;
        }
    }
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(())
}

async fn download(url: &str, token: &str, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    let endpoint = reqwest::Url::parse(url)
        .and_then(|u| u.join("/v1/backup"))
        .with_context(|| format!("URL {url}"))?;
    let mut response = reqwest::Client::new()
        .get(endpoint)
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| format!("reaching {url}"))?;
    if !response.status().is_success() {
        let status = response.status();
        let problem: serde_json::Value = response.json().await.unwrap_or_default();
        anyhow::bail!(
            "the node refused ({status}): {}",
            problem["detail"].as_str().unwrap_or("no detail")
        );
    }
    while let Some(chunk) = response.chunk().await.context("downloading the backup")? {
        out.write_all(&chunk)?;
    }
    Ok(())
}

/// Restores the backup `from` into the new data folder `data_dir`.
pub fn restore(from: &Path, data_dir: &Path) -> anyhow::Result<ExitCode> {
    let file = std::fs::File::open(from).with_context(|| format!("opening {}", from.display()))?;
    let summary = SledStore::restore(std::io::BufReader::new(file), data_dir)
        .with_context(|| format!("restoring {} into {}", from.display(), data_dir.display()))?;
    say!("restored into {}: {}", data_dir.display(), describe(&summary));
    say!(
        "start the node on it; if it published a checkpoint after this backup was taken, it signs nothing until \
         its log reaches that checkpoint again (see /readyz)"
    );
    Ok(ExitCode::SUCCESS)
}

/// Copies a stopped node's embedded store (`sled:DIR`) into a new PostgreSQL database, then
/// checks both sides agree.
pub fn copy(from: &str, to: &str) -> anyhow::Result<ExitCode> {
    let dir = from
        .strip_prefix("sled:")
        .with_context(|| format!("--from {from}: give the embedded store as sled:DIR (the node's data folder)"))?;
    anyhow::ensure!(
        to.starts_with("postgres://") || to.starts_with("postgresql://"),
        "--to: give the database as postgres://user:password@host:port/database"
    );
    let source = SledStore::open(Path::new(dir))
        .with_context(|| format!("opening {dir} (stop its node first: the copy must see it whole)"))?;
    let target = PgStore::open(to).context("opening the target database")?;
    let summary = zhengyin_store::copy::copy(&source, &target).context("copying")?;
    say!(
        "copied {} records into the database; checked on both sides: the signature log ({} entries, root {}), \
         the latest checkpoint, the registry, objections and sync cursors",
        summary.records,
        summary.log_size,
        hex::encode(summary.root)
    );
    Ok(ExitCode::SUCCESS)
}

/// Prints each tree (or table) with its records and bytes, and the bytes per licence.
pub fn stats(data_dir: Option<&Path>, database: Option<&str>) -> anyhow::Result<ExitCode> {
    let (sizes, on_disk) = match (data_dir, database) {
        (Some(dir), _) => {
            let store =
                SledStore::open(dir).with_context(|| format!("opening {} (stop its node first)", dir.display()))?;
            (store.tree_sizes()?, Some(folder_bytes(dir)?))
        }
        (None, Some(url)) => (PgStore::open(url).context("opening the database")?.table_sizes()?, None),
        (None, None) => anyhow::bail!("give --data-dir (the embedded store) or --database"),
    };
    let licences = sizes
        .iter()
        .find(|t| t.name == "licences")
        .map_or(0, |t| t.records)
        .max(1);
    say!(
        "{:<36} {:>12} {:>14} {:>12}",
        "tree or table",
        "records",
        "bytes",
        "per licence"
    );
    let mut total = 0;
    for t in &sizes {
        total += t.bytes;
        say!(
            "{:<36} {:>12} {:>14} {:>12}",
            t.name,
            t.records,
            t.bytes,
            t.bytes / licences
        );
    }
    say!("{:<36} {:>12} {:>14} {:>12}", "total", "", total, total / licences);
    if let Some(bytes) = on_disk {
        say!(
            "{:<36} {:>12} {:>14} {:>12}",
            "on disk (the folder)",
            "",
            bytes,
            bytes / licences
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn folder_bytes(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            folder_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}
