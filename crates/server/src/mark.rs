//! The checkpoint mark: the largest checkpoint this node has published, kept in a file outside
//! its data (by default beside the data folder, `<data_dir>.checkpoint`), so that restoring the
//! data from an older copy does not roll it back too.
//!
//! At start the engine checks that the log reaches the mark ([`LogConfig::published`]); every
//! second the server moves the mark up to the newest checkpoint in the store and, when the
//! store's checkpoint is older than the mark (a database restored under a running frontend),
//! checks again. The node's sync peers and witnesses hold its checkpoints too, and refuse a log
//! that does not extend them; the mark makes the node itself refuse to sign instead of forking.
//!
//! The mark follows the store: a checkpoint is stored (durably) first and marked next, so a
//! crash in between leaves a store ahead of its mark, which the next start moves up.
//!
//! [`LogConfig::published`]: zhengyin_engine::LogConfig::published

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use zhengyin_engine::Engine;

/// The mark file and what it holds.
pub struct CheckpointMark {
    path: PathBuf,
    note: Option<String>,
    size: u64,
}

/// The tree size a checkpoint note states (its second line).
fn size_of(note: &str) -> Option<u64> {
    note.lines().nth(1)?.parse().ok()
}

impl CheckpointMark {
    /// Reads the mark at `path` (none yet is a node that never published).
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let note = match std::fs::read_to_string(path) {
            Ok(note) => Some(note),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("reading the checkpoint mark {}", path.display())),
        };
        let size = match &note {
            Some(n) => {
                size_of(n).with_context(|| format!("the checkpoint mark {} is not a checkpoint", path.display()))?
            }
            None => 0,
        };
        Ok(Self {
            path: path.to_owned(),
            note,
            size,
        })
    }

    /// The marked checkpoint note.
    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    /// The marked tree size (0 when none).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Marks `note` if it is larger than the mark: written to a new file, synced, and renamed
    /// over the old one, so a crash leaves the old mark or the new, never half of one.
    pub fn advance(&mut self, note: &str) -> anyhow::Result<()> {
        let size = size_of(note).context("not a checkpoint note")?;
        if size <= self.size && self.note.is_some() {
            return Ok(());
        }
        let write = || -> std::io::Result<()> {
            let staging = self.path.with_extension("checkpoint-new");
            let mut file = std::fs::File::create(&staging)?;
            file.write_all(note.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&staging, &self.path)?;
            if let Some(folder) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::File::open(folder)?.sync_all()?;
            }
            Ok(())
        };
        write().with_context(|| format!("writing the checkpoint mark {}", self.path.display()))?;
        self.note = Some(note.to_owned());
        self.size = size;
        Ok(())
    }
}

/// Publishes a checkpoint every second while the log grows (the maximum merge delay), and
/// keeps the mark in step with the store.
pub async fn publish_checkpoints(engine: Arc<Engine>, mut mark: CheckpointMark) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = engine.publish_checkpoint().await {
            tracing::error!(error = %e, "publishing a checkpoint failed");
        }
        keep(&engine, &mut mark);
    }
}

/// Moves the mark up to the store's newest checkpoint (this frontend's or, in a cluster,
/// another's), and checks the log against the mark when the store's checkpoint is older than it
/// or signing is halted: signing halts, or resumes once the log reaches the mark again.
pub fn keep(engine: &Engine, mark: &mut CheckpointMark) {
    let stored = match engine.latest_checkpoint() {
        Ok(latest) => latest,
        Err(e) => {
            tracing::warn!(error = %e, "reading the latest checkpoint failed");
            return;
        }
    };
    let stored_size = stored.as_ref().map_or(0, |(size, _)| size.0);
    if let Some((_, note)) = stored.as_ref().filter(|_| stored_size > mark.size()) {
        if engine.signing_halted().is_none() {
            if let Err(e) = mark.advance(note) {
                tracing::error!(error = %format!("{e:#}"), "the checkpoint mark could not be written");
            }
        }
    }
    if let Some(note) = mark.note() {
        if stored_size < mark.size() || engine.signing_halted().is_some() {
            let was_halted = engine.signing_halted().is_some();
            match engine.check_published(note) {
                Err(why) if !was_halted => tracing::error!(%why, "signing halted"),
                Ok(()) if was_halted => {
                    tracing::warn!("the log reaches the published checkpoint again: signing resumed")
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn moves_only_up_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.checkpoint");
        let mut mark = CheckpointMark::open(&path).unwrap();
        assert_eq!((mark.size(), mark.note()), (0, None));
        mark.advance("origin\n5\nroot=\n\n— sig\n").unwrap();
        mark.advance("origin\n3\nroot=\n\n— sig\n").unwrap();
        assert_eq!(mark.size(), 5);
        let again = CheckpointMark::open(&path).unwrap();
        assert_eq!(again.size(), 5);
        assert_eq!(again.note(), Some("origin\n5\nroot=\n\n— sig\n"));
        assert!(mark.advance("not a note").is_err());
        std::fs::write(&path, "garbage").unwrap();
        assert!(CheckpointMark::open(&path).is_err());
    }
}
