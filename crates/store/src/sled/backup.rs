//! Backups of a sled store while it serves, and restoring one into a new data folder.
//!
//! A backup holds every tree byte for byte, the use records still in the journal and the serial
//! counter. It is taken with writes held back (reads go on), so it is one consistent state: no
//! licence without its log entry, no log entry without its record.

use std::io::{Read, Write};
use std::path::Path;

use super::*;
use crate::archive::{ArchiveReader, ArchiveWriter, Frame};
use crate::{Backup, BackupSummary};

/// The backend name in the archive.
const BACKEND: &str = "sled";
/// How far a restored store's serials start past the archived counter: room for the serials
/// handed out after the backup was taken, so that no identifier is handed out twice.
const SERIAL_MARGIN: u64 = 1 << 24;
/// Records written to a tree at once while restoring.
const RESTORE_BATCH: usize = 10_000;

fn damaged(why: &str) -> StoreError {
    StoreError::Archive(why.to_string())
}

fn other_backend(name: &str) -> StoreError {
    StoreError::Backend(format!(
        "this is a backup of a {name} store; restore it with that backend's tools"
    ))
}

impl SledStore {
    /// Writes a backup of everything to `out`; writes wait until it is done.
    pub fn backup(&self, out: impl Write) -> Result<BackupSummary, StoreError> {
        let _quiet = self.writes.write().unwrap_or_else(|p| p.into_inner());
        let mut archive = ArchiveWriter::new(out, BACKEND)?;
        archive.write(&Frame::Serial(self.next_serial()?))?;
        for name in self.db.tree_names() {
            let tree = self.db.open_tree(&name).map_err(backend)?;
            let name = String::from_utf8(name.to_vec()).map_err(|_| StoreError::Corrupt("a tree name".to_owned()))?;
            archive.write(&Frame::Tree(name))?;
            for pair in tree.iter() {
                let (key, value) = pair.map_err(backend)?;
                archive.write(&Frame::Record(key.to_vec(), value.to_vec()))?;
            }
        }
        for record in self.uses_pending.read().unwrap_or_else(|p| p.into_inner()).iter() {
            archive.write(&Frame::Journaled(encode(record)?))?;
        }
        let log_size = self.log_size()?.0;
        let (records, sha256) = archive.finish()?;
        Ok(BackupSummary {
            records,
            log_size,
            sha256,
        })
    }

    /// Reads a backup through and checks it — frames, digest, backend — without restoring it.
    pub fn check_backup(input: impl Read) -> Result<BackupSummary, StoreError> {
        let (mut archive, backend_name) = ArchiveReader::open(input)?;
        if backend_name != BACKEND {
            return Err(other_backend(&backend_name));
        }
        let (mut in_log, mut log_size, mut records) = (false, 0, 0u64);
        while let Some(frame) = archive.next()? {
            match frame {
                Frame::Tree(name) => in_log = name == "log",
                Frame::Record(key, value) => {
                    records += 1;
                    if in_log && key == LOG_SIZE {
                        log_size = read_u64(&value)?;
                    }
                }
                Frame::Journaled(_) => records += 1,
                Frame::Serial(_) | Frame::Backend(_) => {}
            }
        }
        let sha256 = archive.digest().ok_or_else(|| damaged("no end"))?;
        Ok(BackupSummary {
            records,
            log_size,
            sha256,
        })
    }

    /// Restores a backup into `path`, which must not exist or be empty. Nothing is left at
    /// `path` unless the whole archive was read and its digest checked.
    pub fn restore(input: impl Read, path: &Path) -> Result<BackupSummary, StoreError> {
        let refuse = |why: String| Err(StoreError::Backend(why));
        if let Ok(mut entries) = std::fs::read_dir(path) {
            if entries.next().is_some() {
                return refuse(format!("{} is not empty: restore into a new folder", path.display()));
            }
        }
        let Some(name) = path.file_name() else {
            return refuse(format!("{} names no folder", path.display()));
        };
        let staging = path.with_file_name(format!(".{}.restoring", name.to_string_lossy()));
        let _ = std::fs::remove_dir_all(&staging);
        match restore_into(input, &staging) {
            Ok(summary) => {
                let _ = std::fs::remove_dir(path);
                std::fs::rename(&staging, path).map_err(backend)?;
                Ok(summary)
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&staging);
                Err(e)
            }
        }
    }
}

impl Backup for SledStore {
    fn backup(&self, out: &mut dyn Write) -> Result<BackupSummary, StoreError> {
        SledStore::backup(self, out)
    }
}

fn restore_into(input: impl Read, dir: &Path) -> Result<BackupSummary, StoreError> {
    let (mut archive, backend_name) = ArchiveReader::open(input)?;
    if backend_name != BACKEND {
        return Err(other_backend(&backend_name));
    }
    let db = sled::Config::new().path(dir).open().map_err(backend)?;
    let (mut tree, mut batch, mut pending) = (None::<sled::Tree>, sled::Batch::default(), 0);
    let (mut serial, mut journaled, mut records) = (None, Vec::new(), 0u64);
    let apply = |tree: &Option<sled::Tree>, batch: &mut sled::Batch| match tree {
        Some(t) => t.apply_batch(std::mem::take(batch)).map_err(backend),
        None => Ok(()),
    };
    while let Some(frame) = archive.next()? {
        match frame {
            Frame::Tree(name) => {
                apply(&tree, &mut batch)?;
                pending = 0;
                tree = Some(db.open_tree(name).map_err(backend)?);
            }
            Frame::Record(key, value) => {
                if tree.is_none() {
                    return Err(damaged("a record before any tree"));
                }
                batch.insert(key, value);
                records += 1;
                pending += 1;
                if pending == RESTORE_BATCH {
                    apply(&tree, &mut batch)?;
                    pending = 0;
                }
            }
            Frame::Journaled(bytes) => {
                journaled.push(decode::<UseRecord>("journaled use record", &bytes)?);
                records += 1;
            }
            Frame::Serial(n) => serial = Some(n),
            Frame::Backend(_) => return Err(damaged("a second backend frame")),
        }
    }
    apply(&tree, &mut batch)?;
    let sha256 = archive.digest().ok_or_else(|| damaged("no end"))?;
    let serial = serial.ok_or_else(|| damaged("no serial"))?;
    let floor = serial
        .checked_add(SERIAL_MARGIN)
        .ok_or_else(|| damaged("serial out of range"))?;
    db.open_tree(META)
        .and_then(|meta| meta.insert(SERIAL_FLOOR, &floor.to_be_bytes()))
        .map_err(backend)?;
    let log_size = match db.open_tree("log").and_then(|log| log.get(LOG_SIZE)).map_err(backend)? {
        Some(v) => read_u64(&v)?,
        None => 0,
    };
    db.flush().map_err(backend)?;
    drop(db);
    let (mut journal, _) = Journal::open(&dir.join(USE_JOURNAL))?;
    if !journaled.is_empty() {
        journal.append(&journaled)?;
    }
    Ok(BackupSummary {
        records,
        log_size,
        sha256,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A tree's name and its pairs, in order.
    type Contents = (Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>);

    /// Every tree but `meta`.
    fn contents(store: &SledStore) -> Vec<Contents> {
        let mut names = store.db.tree_names();
        names.sort();
        names
            .into_iter()
            .filter(|n| n.as_ref() != META.as_bytes())
            .map(|name| {
                let tree = store.db.open_tree(&name).unwrap();
                let pairs = tree.iter().map(|p| p.unwrap()).map(|(k, v)| (k.to_vec(), v.to_vec()));
                (name.to_vec(), pairs.collect())
            })
            .collect()
    }

    #[test]
    fn a_restored_store_holds_every_record_and_hands_out_no_serial_again() {
        let dir = tempfile::tempdir().unwrap();
        let source = SledStore::open(&dir.path().join("source")).unwrap();
        // The contract leaves every kind of record behind, use records still journaled included.
        crate::contract::run(&source).unwrap();
        let unrecorded = |n| {
            let mut record = crate::contract::numbered_use(n).unwrap();
            record.id = format!("UZ{n}");
            record
        };
        let (a, b) = (unrecorded(1), unrecorded(2));
        assert!(a.id > source.last_use_record().unwrap().unwrap());
        source.journal_uses(&[a, b]).unwrap();
        let journaled = source.journaled_uses().unwrap();
        assert!(!journaled.is_empty());
        let serial = source.next_serial().unwrap();
        let mut archive = Vec::new();
        let written = source.backup(&mut archive).unwrap();
        assert_eq!(written.log_size, source.log_size().unwrap().0);

        let target = dir.path().join("restored");
        let read = SledStore::restore(archive.as_slice(), &target).unwrap();
        assert_eq!(read, written);
        let restored = SledStore::open(&target).unwrap();
        assert_eq!(contents(&restored), contents(&source));
        assert_eq!(restored.journaled_uses().unwrap(), journaled);
        assert_eq!(restored.last_use_record().unwrap(), source.last_use_record().unwrap());
        assert!(restored.next_serial().unwrap() > serial + SERIAL_MARGIN / 2);

        // Restoring over data is refused; a damaged archive leaves nothing behind.
        assert!(SledStore::restore(archive.as_slice(), &target).is_err());
        let mut damaged = archive.clone();
        let middle = damaged.len() / 2;
        damaged[middle] ^= 0x20;
        let elsewhere = dir.path().join("damaged");
        assert!(SledStore::restore(damaged.as_slice(), &elsewhere).is_err());
        assert!(!elsewhere.exists());
        assert!(SledStore::restore(&archive[..archive.len() - 1], &elsewhere).is_err());
        assert!(!elsewhere.exists());
    }
}
