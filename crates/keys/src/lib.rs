//! Where Zhengyin's private keys live, and how a [`Signer`] is had from each.
//!
//! A key is named by a [`KeyLocator`]: a PKCS#8 PEM file (the demo, small deployments), a
//! PKCS#11 URI (RFC 7512) naming a key in a hardware security module ([`pkcs11`]), or an `sdf:`
//! URI naming an SM2 key in a GM/T 0018 device (密码机, [`sdf`]); the private half of a device
//! key never leaves the device. The engine signs through [`Signer`] and cannot tell them
//! apart; a device that drops its sessions makes signing fail with
//! [`zhengyin_crypto::CryptoError::Unavailable`] until it is back, and never blocks for long.
//!
//! What it is not: it holds no key material of its own (files are parsed by `zhengyin-crypto`),
//! and knows nothing of licences, authorities or configuration files.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use zhengyin_crypto::{Algorithm, CryptoError, FileKey, Signer};

pub mod pkcs11;
mod pool;
pub mod sdf;
pub mod uri;

pub use pkcs11::Pkcs11Key;
pub use sdf::{SdfKey, SdfUri};
pub use uri::Pkcs11Uri;

/// Where one private key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLocator {
    /// A PKCS#8 PEM file.
    File(PathBuf),
    /// A key in a PKCS#11 token.
    Pkcs11(Box<Pkcs11Uri>),
    /// An SM2 key in a GM/T 0018 device.
    Sdf(Box<SdfUri>),
}

impl KeyLocator {
    /// Whether `text` names a key in a device (a `pkcs11:` or `sdf:` URI) rather than a file.
    pub fn is_device(text: &str) -> bool {
        text.starts_with("pkcs11:") || text.starts_with("sdf:")
    }

    /// `pkcs11:…` is a PKCS#11 URI, `sdf:…` a GM/T 0018 key; anything else is a file path.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        if text.starts_with("pkcs11:") {
            Pkcs11Uri::parse(text).map(|uri| Self::Pkcs11(Box::new(uri)))
        } else if text.starts_with("sdf:") {
            SdfUri::parse(text).map(|uri| Self::Sdf(Box::new(uri)))
        } else if text.is_empty() {
            Err(KeyError::Uri {
                uri: String::new(),
                why: "an empty key name".to_owned(),
            })
        } else {
            Ok(Self::File(PathBuf::from(text)))
        }
    }

    /// Relative paths (the file, a module path, a PIN file) taken relative to `base`.
    pub fn rebased(self, base: &Path) -> Self {
        match self {
            Self::File(path) => Self::File(base.join(path)),
            Self::Pkcs11(uri) => Self::Pkcs11(Box::new(uri.rebased(base))),
            Self::Sdf(uri) => Self::Sdf(Box::new(uri.rebased(base))),
        }
    }

    /// Opens the key: reads the file, or logs in to the device and finds the key.
    pub fn open(&self) -> Result<Arc<dyn Signer>, KeyError> {
        Ok(match self {
            Self::File(path) => Arc::new(FileKey::from_pem_file(path).map_err(|error| KeyError::File {
                path: path.clone(),
                error,
            })?),
            Self::Pkcs11(uri) => Arc::new(Pkcs11Key::open(uri)?),
            Self::Sdf(uri) => Arc::new(SdfKey::open(uri)?),
        })
    }

    /// Makes a new key where the locator says — a PEM file (refusing to overwrite one) or a key
    /// pair in the device — and opens it.
    pub fn generate(&self, algorithm: Algorithm) -> Result<Arc<dyn Signer>, KeyError> {
        match self {
            Self::File(path) => {
                let file = |error: CryptoError| KeyError::File {
                    path: path.clone(),
                    error,
                };
                let (key, pem) = FileKey::generate(algorithm).map_err(file)?;
                write_new_private(path, pem.as_bytes()).map_err(|e| file(CryptoError::Io(e.to_string())))?;
                Ok(Arc::new(key))
            }
            Self::Pkcs11(uri) => Ok(Arc::new(Pkcs11Key::generate(uri, algorithm)?)),
            Self::Sdf(uri) => Err(KeyError::Unsupported {
                uri: uri.to_string(),
                why: "keys in a GM/T 0018 device are made with the device's own tools; name the key by \
                      index= and make its certificate request with `zhengyin keys csr`"
                    .to_owned(),
            }),
        }
    }
}

impl fmt::Display for KeyLocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Pkcs11(uri) => write!(f, "{uri}"),
            Self::Sdf(uri) => write!(f, "{uri}"),
        }
    }
}

/// Creates `path` readable by its owner only, failing if it exists.
fn write_new_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Why a key could not be opened or made. Each names the key, for the operator at start-up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A key URI (`pkcs11:`, `sdf:`) that does not parse or says too little.
    #[error("key {uri}: {why}")]
    Uri {
        /// The URI as written.
        uri: String,
        /// What is wrong with it.
        why: String,
    },
    /// A key file that cannot be read or parsed.
    #[error("key file {}: {error}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        error: CryptoError,
    },
    /// The device library (PKCS#11 module, SDF library) does not load or initialise.
    #[error("{kind} {module}: {why}")]
    Module {
        /// "PKCS#11 module" or "SDF library".
        kind: &'static str,
        /// The module's path or name.
        module: String,
        /// What went wrong.
        why: String,
    },
    /// The PIN cannot be read, or the token refuses it.
    #[error("key {uri}: PIN: {why}")]
    Pin {
        /// The key's URI.
        uri: String,
        /// What went wrong.
        why: String,
    },
    /// No token (or more than one) matches.
    #[error("key {uri}: token: {why}")]
    NoToken {
        /// The key's URI.
        uri: String,
        /// What went wrong.
        why: String,
    },
    /// No private key (or more than one) matches in the token.
    #[error("key {uri}: {why}")]
    NoKey {
        /// The key's URI.
        uri: String,
        /// What went wrong.
        why: String,
    },
    /// A key the URI names exists already (when generating).
    #[error("key {uri}: a private key by that name exists already")]
    Exists {
        /// The key's URI.
        uri: String,
    },
    /// A key of a kind this service does not sign with through this device.
    #[error("key {uri}: {why}")]
    Unsupported {
        /// The key's URI.
        uri: String,
        /// What is unsupported.
        why: String,
    },
    /// The device failed an operation.
    #[error("key {uri}: {why}")]
    Device {
        /// The key's URI.
        uri: String,
        /// What went wrong.
        why: String,
    },
}
