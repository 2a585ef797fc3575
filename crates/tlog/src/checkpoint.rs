//! Signed checkpoints: the C2SP `tlog-checkpoint` body inside a C2SP `signed-note`.
//!
//! # Format
//!
//! ```text
//! zhengyin.example/city-log      <- origin: the log's name
//! 1024                           <- tree size, decimal
//! bsO1Jw3KcjD4k1JWm1K7h+1rhbWGSRUUjN3YdxKBrGA=   <- root hash, standard base64
//!                                <- blank line: end of the body
//! — zhengyin.example/city-log Qe9D0xg1…          <- one signature line per signer
//! ```
//!
//! A signature line is `— <key name> <base64(key hash ‖ signature)>` (an em dash, U+2014). For
//! Ed25519 keys the key hash is the first 4 bytes of SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key),
//! and the signature is Ed25519 over the body text, final newline included. Verifiers are given as
//! `<name>+<hex key hash>+<base64(0x01 ‖ public key)>`. Signature lines of other keys are ignored;
//! a line that names our key and hash but does not verify makes the whole note invalid.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use zhengyin_crypto::{hash, Algorithm, PublicKey, SignatureScheme, Signer};

use crate::tree::{Hash, TreeSize};

/// Largest note accepted, in bytes.
pub const MAX_NOTE_LEN: usize = 1 << 16;

/// Signature type byte of Ed25519 note keys.
const ED25519_TYPE: u8 = 0x01;

/// Why a note or checkpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    /// Not a well-formed note or checkpoint.
    #[error("malformed: {0}")]
    Malformed(&'static str),
    /// A verifier key string is malformed.
    #[error("malformed verifier key")]
    BadKey,
    /// No signature by the expected key, or one that does not verify.
    #[error("no valid signature by {0}")]
    BadSignature(String),
    /// The signer cannot sign notes (notes are Ed25519).
    #[error("note signing needs an Ed25519 key")]
    WrongKeyType,
    /// The key did not sign (its device may be away).
    #[error("signing the note: {0}")]
    Signing(zhengyin_crypto::CryptoError),
}

/// A checkpoint: a log's signed statement of its size and root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line.
    pub origin: String,
    /// The tree size.
    pub size: TreeSize,
    /// The root hash at that size.
    pub root: Hash,
}

impl Checkpoint {
    /// The note body: origin, size and root, each ending in a newline.
    pub fn body(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.size.0, B64.encode(self.root))
    }

    /// Parses a note body (extension lines after the root are allowed and ignored).
    pub fn parse_body(body: &str) -> Result<Self, NoteError> {
        let mut lines = body
            .strip_suffix('\n')
            .ok_or(NoteError::Malformed("body must end in a newline"))?
            .split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or(NoteError::Malformed("no origin"))?;
        let size = lines.next().ok_or(NoteError::Malformed("no size"))?;
        let canonical_size =
            !size.is_empty() && size.bytes().all(|b| b.is_ascii_digit()) && (size == "0" || !size.starts_with('0'));
        let size: u64 = size
            .parse()
            .ok()
            .filter(|_| canonical_size)
            .ok_or(NoteError::Malformed("bad size"))?;
        let root = lines.next().ok_or(NoteError::Malformed("no root"))?;
        let root: Hash = B64
            .decode(root)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or(NoteError::Malformed("root must be 32 bytes of base64"))?;
        if lines.any(str::is_empty) {
            return Err(NoteError::Malformed("empty line in the body"));
        }
        Ok(Self {
            origin: origin.to_owned(),
            size: TreeSize(size),
            root,
        })
    }
}

fn key_hash(name: &str, key: &[u8; 32]) -> [u8; 4] {
    let mut buf = Vec::with_capacity(name.len() + 34);
    buf.extend_from_slice(name.as_bytes());
    buf.push(b'\n');
    buf.push(ED25519_TYPE);
    buf.extend_from_slice(key);
    let h = hash::sha256(&buf);
    [h[0], h[1], h[2], h[3]]
}

fn check_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.contains(['+', ' ', '\n']) || name.chars().any(char::is_control) {
        return Err(NoteError::BadKey);
    }
    Ok(())
}

/// A key that verifies notes.
#[derive(Debug, Clone)]
pub struct NoteVerifier {
    name: String,
    hash: [u8; 4],
    key: PublicKey,
}

impl NoteVerifier {
    /// A verifier for `key` under `name`.
    pub fn new(name: &str, key: PublicKey) -> Result<Self, NoteError> {
        check_name(name)?;
        let raw = key.ed25519_bytes().ok_or(NoteError::WrongKeyType)?;
        Ok(Self {
            name: name.to_owned(),
            hash: key_hash(name, &raw),
            key,
        })
    }

    /// Parses `<name>+<hex key hash>+<base64(0x01 ‖ key)>`.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let mut parts = text.trim().splitn(3, '+');
        let (Some(name), Some(hash_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::BadKey);
        };
        let raw = B64.decode(key_b64).map_err(|_| NoteError::BadKey)?;
        let (&kind, key) = raw.split_first().ok_or(NoteError::BadKey)?;
        let key: [u8; 32] = key.try_into().map_err(|_| NoteError::BadKey)?;
        if kind != ED25519_TYPE {
            return Err(NoteError::BadKey);
        }
        let verifier = Self::new(
            name,
            PublicKey::from_ed25519_bytes(&key).map_err(|_| NoteError::BadKey)?,
        )?;
        if hash_hex.len() != 8 || hex_lower(&verifier.hash) != hash_hex {
            return Err(NoteError::BadKey);
        }
        Ok(verifier)
    }

    /// The verifier key string.
    pub fn encode(&self) -> String {
        let mut raw = vec![ED25519_TYPE];
        raw.extend_from_slice(&self.key.ed25519_bytes().unwrap_or_default());
        format!("{}+{}+{}", self.name, hex_lower(&self.hash), B64.encode(raw))
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Signs a checkpoint as a note under `name` with an Ed25519 signer.
pub fn sign_checkpoint(checkpoint: &Checkpoint, name: &str, signer: &dyn Signer) -> Result<String, NoteError> {
    sign_note(&checkpoint.body(), name, signer)
}

/// Signs any note body (text ending in a newline, no blank line) under `name` with an Ed25519
/// signer. Bodies of other kinds must not parse as a checkpoint (start them with a line naming
/// their kind), so one key can sign both without one being taken for the other.
pub fn sign_note(body: &str, name: &str, signer: &dyn Signer) -> Result<String, NoteError> {
    check_name(name)?;
    if !body.ends_with('\n') || body.contains("\n\n") || body.starts_with('\n') {
        return Err(NoteError::Malformed(
            "a body is non-empty lines, each ending in a newline",
        ));
    }
    if signer.algorithm() != Algorithm::Ed25519 {
        return Err(NoteError::WrongKeyType);
    }
    let key = signer.public_key().ed25519_bytes().ok_or(NoteError::WrongKeyType)?;
    let signature = signer.sign(body.as_bytes()).map_err(NoteError::Signing)?;
    let mut blob = key_hash(name, &key).to_vec();
    blob.extend_from_slice(&signature);
    Ok(format!("{body}\n\u{2014} {name} {}\n", B64.encode(blob)))
}

/// Verifies a signed checkpoint note against `verifier` and parses its body.
pub fn open_checkpoint(note: &str, verifier: &NoteVerifier) -> Result<Checkpoint, NoteError> {
    Checkpoint::parse_body(open_note(note, verifier)?)
}

/// Verifies a signed note against `verifier`: its body (final newline included).
pub fn open_note<'a>(note: &'a str, verifier: &NoteVerifier) -> Result<&'a str, NoteError> {
    if note.len() > MAX_NOTE_LEN {
        return Err(NoteError::Malformed("note too large"));
    }
    if note.chars().any(|c| c.is_control() && c != '\n') {
        return Err(NoteError::Malformed("control characters"));
    }
    let split = note.rfind("\n\n").ok_or(NoteError::Malformed("no signature block"))?;
    let (body, signatures) = (&note[..split + 1], &note[split + 2..]);
    let signatures = signatures
        .strip_suffix('\n')
        .ok_or(NoteError::Malformed("must end in a newline"))?;
    let mut verified = false;
    for line in signatures.split('\n') {
        let rest = line
            .strip_prefix("\u{2014} ")
            .ok_or(NoteError::Malformed("bad signature line"))?;
        let (name, b64) = rest
            .rsplit_once(' ')
            .ok_or(NoteError::Malformed("bad signature line"))?;
        let blob = B64
            .decode(b64)
            .map_err(|_| NoteError::Malformed("signature is not base64"))?;
        if blob.len() < 4 {
            return Err(NoteError::Malformed("signature too short"));
        }
        if name != verifier.name || blob[..4] != verifier.hash {
            continue; // someone else's signature
        }
        verifier
            .key
            .verify(SignatureScheme::Ed25519, body.as_bytes(), &blob[4..])
            .map_err(|_| NoteError::BadSignature(verifier.name.clone()))?;
        verified = true;
    }
    if !verified {
        return Err(NoteError::BadSignature(verifier.name.clone()));
    }
    Ok(body)
}
