//! SM2 signing keys in a GM/T 0018 device (密码机, "SDF"), named by an `sdf:` URI.
//!
//! `sdf:index=1?module-path=/opt/vendor/lib/libsdf.so&pin-source=file:/etc/zhengyin/sdf.pin`
//!
//! `index` is the device's internal signing key (made and numbered with the vendor's tools);
//! the query names the vendor library and where the key's access password (私钥使用授权码) is
//! read from, as in a PKCS#11 URI: `file:PATH` or `env:NAME`, never the password itself.
//!
//! A signing computes `e = SM3(Z‖M)` here (Z from the key's public half and the default user
//! ID) and has the device sign `e` with `SDF_InternalSign_ECC`; the signature is checked against
//! the public key before it leaves. Sessions are pooled one per core, each unlocked with the
//! password once. When the device stops answering, the signing fails with
//! [`CryptoError::Unavailable`] after one recovery attempt (the device reopened, at most once a
//! second), and the next signing opens fresh sessions.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;
use zhengyin_crypto::{Algorithm, CryptoError, PublicKey, Signer};
use zhengyin_sdf::abi::code;
use zhengyin_sdf::{Device, Library, SdfError, Session};

use crate::pool::Pool;
use crate::uri::{attribute_refused, attributes, PinSource};
use crate::KeyError;

/// The shortest time between two reopenings of the device.
const REOPEN_INTERVAL: Duration = Duration::from_secs(1);

/// A parsed `sdf:` URI.
#[derive(Clone, PartialEq, Eq)]
pub struct SdfUri {
    text: String,
    /// The internal signing key's index.
    pub index: u32,
    /// The vendor library.
    pub module: PathBuf,
    /// Where the key's access password is read from.
    pub pin: PinSource,
}

impl fmt::Debug for SdfUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Display for SdfUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl SdfUri {
    /// Parses an `sdf:` URI.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let bad = |why: String| KeyError::Uri {
            uri: text.to_owned(),
            why,
        };
        let rest = text
            .strip_prefix("sdf:")
            .ok_or_else(|| bad("does not start with sdf:".to_owned()))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (mut index, mut module, mut pin) = (None, None, None);
        for attribute in attributes(path, query).map_err(bad)? {
            let value = attribute.text().map_err(bad)?;
            match (attribute.name, attribute.in_query) {
                ("index", false) => {
                    index = Some(value.parse().map_err(|_| bad("index is not a number".to_owned()))?);
                }
                ("module-path", true) => module = Some(PathBuf::from(value)),
                ("pin-source", true) => pin = Some(PinSource::parse(&value).map_err(bad)?),
                (name, in_query) => attribute_refused(name, in_query).map_err(bad)?,
            }
        }
        Ok(Self {
            text: text.to_owned(),
            index: index.ok_or_else(|| bad("names no key (index=…)".to_owned()))?,
            module: module.ok_or_else(|| bad("names no library (module-path=…)".to_owned()))?,
            pin: pin.ok_or_else(|| bad("no pin-source (pin-source=file:PATH or env:NAME)".to_owned()))?,
        })
    }

    /// The same URI with a relative library path and password file taken relative to `base`.
    pub fn rebased(mut self, base: &Path) -> Self {
        self.module = base.join(&self.module);
        self.pin = self.pin.rebased(base);
        self
    }
}

/// An SM2 key inside a GM/T 0018 device.
pub struct SdfKey {
    uri: SdfUri,
    library: Arc<Library>,
    password: Zeroizing<String>,
    device: RwLock<Connection>,
    sessions: Pool<Session>,
    public: PublicKey,
}

impl fmt::Debug for SdfKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SdfKey").field("uri", &self.uri).finish()
    }
}

/// The open device, and which opening of it this is (sessions of an older one are void).
struct Connection {
    device: Option<Arc<Device>>,
    generation: u64,
    last_reopen: Option<Instant>,
}

/// Why a signing failed: `Lost` is worth reopening the device, the others are not.
enum Failure {
    Lost(SdfError),
    Refused(SdfError),
}

impl SdfKey {
    /// Opens the key a URI names: loads the library, opens the device and a session, unlocks the
    /// key with its password and reads its public half. Every failure says which step, for the
    /// operator at start-up.
    pub fn open(uri: &SdfUri) -> Result<Self, KeyError> {
        let name = uri.to_string();
        let library = Library::load(&uri.module).map_err(|e| KeyError::Module {
            kind: "SDF library",
            module: uri.module.display().to_string(),
            why: match e {
                SdfError::Load { why, .. } => why,
                other => other.to_string(),
            },
        })?;
        let password = uri.pin.read().map_err(|why| KeyError::Pin { uri: name.clone(), why })?;
        let device = Device::open(&library).map_err(|e| KeyError::NoToken {
            uri: name.clone(),
            why: e.to_string(),
        })?;
        let session = Session::open(&device).map_err(|e| KeyError::Device {
            uri: name.clone(),
            why: e.to_string(),
        })?;
        let point = session.sign_public_key(uri.index).map_err(|e| KeyError::NoKey {
            uri: name.clone(),
            why: e.to_string(),
        })?;
        session
            .unlock_private_key(uri.index, password.as_bytes())
            .map_err(|e| KeyError::Pin {
                uri: name.clone(),
                why: e.to_string(),
            })?;
        let public = PublicKey::from_ec_point(Algorithm::Sm2, &point).map_err(|e| KeyError::Unsupported {
            uri: name,
            why: format!("the device's public key is not an SM2 point: {e}"),
        })?;
        let key = Self {
            uri: uri.clone(),
            library,
            password,
            device: RwLock::new(Connection {
                device: Some(device),
                generation: 0,
                last_reopen: None,
            }),
            sessions: Pool::per_core(0),
            public,
        };
        key.sessions.adopt(0, session);
        Ok(key)
    }

    /// The URI the key was opened by.
    pub fn uri(&self) -> &SdfUri {
        &self.uri
    }

    fn connection(&self) -> (u64, Option<Arc<Device>>) {
        let connection = self.device.read().unwrap_or_else(PoisonError::into_inner);
        (connection.generation, connection.device.clone())
    }

    /// A new session with the key unlocked.
    fn open_session(&self, device: &Arc<Device>) -> Result<Session, Failure> {
        let session = Session::open(device).map_err(classify)?;
        session
            .unlock_private_key(self.uri.index, self.password.as_bytes())
            .map_err(classify)?;
        Ok(session)
    }

    fn sign_once(&self, generation: u64, device: Option<Arc<Device>>, digest: &[u8; 32]) -> Result<[u8; 64], Failure> {
        let device = device.ok_or(Failure::Lost(SdfError::Call {
            call: "SDF_OpenDevice",
            code: code::OPEN_DEVICE,
        }))?;
        let session = self.sessions.check_out(generation, || self.open_session(&device))?;
        match session.sign_digest(self.uri.index, digest) {
            Ok(signature) => {
                self.sessions.check_in(generation, Some(session));
                Ok(signature)
            }
            Err(e) => {
                let failure = classify(e);
                // A session that failed for the device's sake is not reused.
                let keep = matches!(failure, Failure::Refused(_)).then_some(session);
                self.sessions.check_in(generation, keep);
                Err(failure)
            }
        }
    }

    /// Opens the device afresh after `seen` failed, unless another signing already did, or the
    /// last time was under [`REOPEN_INTERVAL`] ago.
    fn reopen(&self, seen: u64) {
        let mut connection = self.device.write().unwrap_or_else(PoisonError::into_inner);
        if connection.generation != seen || connection.last_reopen.is_some_and(|t| t.elapsed() < REOPEN_INTERVAL) {
            return;
        }
        self.sessions.clear();
        connection.device = None;
        // A device still down is reported by the next signing.
        connection.device = Device::open(&self.library).ok();
        connection.generation += 1;
        connection.last_reopen = Some(Instant::now());
    }
}

/// Codes that mean the device or its sessions went away.
fn classify(e: SdfError) -> Failure {
    match e.code() {
        Some(
            code::PERMISSION_DENIED
            | code::PRIVATE_KEY_RIGHT
            | code::KEY_NOT_EXIST
            | code::KEY_TYPE
            | code::ALG_NOT_SUPPORTED
            | code::NOT_SUPPORTED
            | code::IN_ARGUMENT
            | code::OUT_ARGUMENT,
        )
        | None => Failure::Refused(e),
        Some(_) => Failure::Lost(e),
    }
}

impl Signer for SdfKey {
    fn algorithm(&self) -> Algorithm {
        Algorithm::Sm2
    }

    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let unavailable = |why: String| CryptoError::Unavailable(format!("{}: {why}", self.uri));
        let digest = self
            .public
            .sm2_digest(message)
            .ok_or_else(|| unavailable("not an SM2 key".to_owned()))?;
        for attempt in 0..2 {
            let (generation, device) = self.connection();
            match self.sign_once(generation, device, &digest) {
                Ok(signature) => {
                    self.public
                        .verify(self.scheme(), message, &signature)
                        .map_err(|_| unavailable("the device's signature does not verify".to_owned()))?;
                    return Ok(signature.to_vec());
                }
                Err(Failure::Lost(_)) if attempt == 0 => self.reopen(generation),
                Err(Failure::Lost(e) | Failure::Refused(e)) => return Err(unavailable(e.to_string())),
            }
        }
        Err(unavailable("no session".to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_parse_and_bad_ones_say_why() {
        let uri = SdfUri::parse("sdf:index=3?module-path=lib/libsdf.so&pin-source=env:SDF_PIN").unwrap();
        assert_eq!(uri.index, 3);
        assert_eq!(uri.pin, PinSource::Env("SDF_PIN".to_owned()));
        let rebased = uri.rebased(Path::new("/etc/zhengyin"));
        assert_eq!(rebased.module, PathBuf::from("/etc/zhengyin/lib/libsdf.so"));
        for (text, why) in [
            ("sdf:?module-path=m&pin-source=env:P", "index="),
            ("sdf:index=one?module-path=m&pin-source=env:P", "not a number"),
            ("sdf:index=1?pin-source=env:P", "module-path"),
            ("sdf:index=1?module-path=m", "pin-source"),
            ("sdf:index=1?module-path=m&pin-value=12345678", "never sits"),
            ("sdf:index=1;slot=2?module-path=m&pin-source=env:P", "unknown attribute"),
            ("sdf:index=1;index=2?module-path=m&pin-source=env:P", "twice"),
        ] {
            let error = SdfUri::parse(text).unwrap_err().to_string();
            assert!(error.contains(why), "{text}: {error}");
        }
    }
}
