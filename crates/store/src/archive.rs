//! Backup archives: one file that holds every record of a store, checked end to end.
//!
//! Layout: the line `zhengyin-backup 1\n`, then frames — kind (1 byte), key length (u32,
//! big-endian), key, value length (u32, big-endian), value — and last an [`Frame::End`] frame
//! whose value is the SHA-256 of every byte before it. A reader refuses a wrong first line, a
//! truncated file, a wrong digest, and anything after the end, so a damaged archive is never
//! restored in part.

use std::io::{Read, Write};

use sha2::{Digest, Sha256};

use crate::StoreError;

const MAGIC: &[u8] = b"zhengyin-backup 1\n";
/// Keys and values larger than this are not ours: refuse rather than allocate.
const MAX_FIELD: u32 = 64 << 20;

const BACKEND: u8 = 1;
const TREE: u8 = 2;
const RECORD: u8 = 3;
const JOURNALED: u8 = 4;
const SERIAL: u8 = 5;
const END: u8 = 0;

/// One frame of an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    /// The backend that wrote it (`sled`): first, once.
    Backend(String),
    /// The records that follow belong to this tree (or table).
    Tree(String),
    /// A key and its value.
    Record(Vec<u8>, Vec<u8>),
    /// A use record journaled but not yet recorded (JSON).
    Journaled(Vec<u8>),
    /// The next serial the store would have handed out.
    Serial(u64),
}

fn damaged(why: impl std::fmt::Display) -> StoreError {
    StoreError::Archive(why.to_string())
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Archive(e.to_string())
}

/// Writes an archive, hashing as it goes.
pub(crate) struct ArchiveWriter<W: Write> {
    out: W,
    digest: Sha256,
    records: u64,
}

impl<W: Write> ArchiveWriter<W> {
    pub(crate) fn new(out: W, backend: &str) -> Result<Self, StoreError> {
        let mut w = Self {
            out,
            digest: Sha256::new(),
            records: 0,
        };
        w.bytes(MAGIC)?;
        w.frame(BACKEND, backend.as_bytes(), &[])?;
        Ok(w)
    }

    fn bytes(&mut self, b: &[u8]) -> Result<(), StoreError> {
        self.digest.update(b);
        self.out.write_all(b).map_err(io)
    }

    fn frame(&mut self, kind: u8, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let len = |b: &[u8]| u32::try_from(b.len()).ok().filter(|n| *n <= MAX_FIELD);
        let (Some(k), Some(v)) = (len(key), len(value)) else {
            return Err(damaged("a record is too large to archive"));
        };
        self.bytes(&[kind])?;
        self.bytes(&k.to_be_bytes())?;
        self.bytes(key)?;
        self.bytes(&v.to_be_bytes())?;
        self.bytes(value)
    }

    pub(crate) fn write(&mut self, frame: &Frame) -> Result<(), StoreError> {
        match frame {
            Frame::Backend(name) => self.frame(BACKEND, name.as_bytes(), &[]),
            Frame::Tree(name) => self.frame(TREE, name.as_bytes(), &[]),
            Frame::Record(k, v) => {
                self.records += 1;
                self.frame(RECORD, k, v)
            }
            Frame::Journaled(v) => {
                self.records += 1;
                self.frame(JOURNALED, &[], v)
            }
            Frame::Serial(n) => self.frame(SERIAL, &[], &n.to_be_bytes()),
        }
    }

    /// Writes the end frame and flushes; returns the number of records and the digest.
    pub(crate) fn finish(mut self) -> Result<(u64, [u8; 32]), StoreError> {
        let digest: [u8; 32] = self.digest.clone().finalize().into();
        self.frame(END, &[], &digest)?;
        self.out.flush().map_err(io)?;
        Ok((self.records, digest))
    }
}

/// Reads an archive frame by frame; the digest is checked when the end frame is reached.
pub(crate) struct ArchiveReader<R: Read> {
    input: R,
    digest: Sha256,
    ended: Option<[u8; 32]>,
}

impl<R: Read> ArchiveReader<R> {
    /// Checks the first line and reads the backend's name.
    pub(crate) fn open(input: R) -> Result<(Self, String), StoreError> {
        let mut r = Self {
            input,
            digest: Sha256::new(),
            ended: None,
        };
        let mut magic = [0; MAGIC.len()];
        r.exact(&mut magic)
            .map_err(|_| damaged("not a Zhengyin backup (too short)"))?;
        if magic != MAGIC {
            return Err(damaged(
                "not a Zhengyin backup, or of a version this build does not read",
            ));
        }
        match r.next()? {
            Some(Frame::Backend(name)) => Ok((r, name)),
            _ => Err(damaged("no backend frame")),
        }
    }

    fn exact(&mut self, buf: &mut [u8]) -> Result<(), StoreError> {
        self.input.read_exact(buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => damaged("truncated"),
            _ => io(e),
        })?;
        self.digest.update(&buf[..]);
        Ok(())
    }

    fn field(&mut self) -> Result<Vec<u8>, StoreError> {
        let mut len = [0; 4];
        self.exact(&mut len)?;
        let len = u32::from_be_bytes(len);
        if len > MAX_FIELD {
            return Err(damaged("a field longer than any record"));
        }
        let mut buf = vec![0; len as usize];
        self.exact(&mut buf)?;
        Ok(buf)
    }

    /// The next frame, or `None` at a verified end.
    pub(crate) fn next(&mut self) -> Result<Option<Frame>, StoreError> {
        if self.ended.is_some() {
            return Ok(None);
        }
        let before: [u8; 32] = self.digest.clone().finalize().into();
        let mut kind = [0];
        self.exact(&mut kind)?;
        let key = self.field()?;
        let value = self.field()?;
        let text = |b: Vec<u8>| String::from_utf8(b).map_err(|_| damaged("a name is not UTF-8"));
        let frame = match kind[0] {
            END => {
                if value != before {
                    return Err(damaged("its SHA-256 does not match: the file is damaged"));
                }
                let mut extra = [0];
                if self.input.read(&mut extra).map_err(io)? != 0 {
                    return Err(damaged("bytes after the end"));
                }
                self.ended = Some(before);
                return Ok(None);
            }
            BACKEND => Frame::Backend(text(key)?),
            TREE => Frame::Tree(text(key)?),
            RECORD => Frame::Record(key, value),
            JOURNALED => Frame::Journaled(value),
            SERIAL => Frame::Serial(u64::from_be_bytes(
                value.try_into().map_err(|_| damaged("a serial is 8 bytes"))?,
            )),
            other => return Err(damaged(format!("unknown frame kind {other}"))),
        };
        Ok(Some(frame))
    }

    /// The digest, once the end was reached.
    pub(crate) fn digest(&self) -> Option<[u8; 32]> {
        self.ended
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn sample() -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = ArchiveWriter::new(&mut out, "sled").unwrap();
        w.write(&Frame::Tree("licences".into())).unwrap();
        w.write(&Frame::Record(b"k".to_vec(), b"v".to_vec())).unwrap();
        w.write(&Frame::Journaled(b"{}".to_vec())).unwrap();
        w.write(&Frame::Serial(42)).unwrap();
        let (records, _) = w.finish().unwrap();
        assert_eq!(records, 2);
        out
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<Frame>, StoreError> {
        let (mut r, backend) = ArchiveReader::open(bytes)?;
        let mut frames = vec![Frame::Backend(backend)];
        while let Some(f) = r.next()? {
            frames.push(f);
        }
        assert!(r.digest().is_some());
        Ok(frames)
    }

    #[test]
    fn reads_back_what_was_written() {
        let frames = read_all(&sample()).unwrap();
        assert_eq!(
            frames,
            vec![
                Frame::Backend("sled".into()),
                Frame::Tree("licences".into()),
                Frame::Record(b"k".to_vec(), b"v".to_vec()),
                Frame::Journaled(b"{}".to_vec()),
                Frame::Serial(42),
            ]
        );
    }

    #[test]
    fn refuses_every_flipped_byte_truncation_and_trailing_bytes() {
        let good = sample();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            assert!(read_all(&bad).is_err(), "a flipped byte at {i} went unnoticed");
        }
        for len in 0..good.len() {
            assert!(read_all(&good[..len]).is_err(), "truncation to {len} went unnoticed");
        }
        let mut longer = good.clone();
        longer.push(0);
        assert!(read_all(&longer).is_err());
    }
}
