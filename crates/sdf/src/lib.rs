//! GM/T 0018-2012 (密码设备应用接口, "SDF") as safe Rust: the few calls an SM2 signer needs.
//!
//! A vendor's device library (a `.so` named in the configuration) is loaded at run time. A
//! [`Device`] and its [`Session`]s wrap the library's handles and close them when dropped. Bound
//! are only: open and close the device and sessions, get the access right to an internal private
//! key (its password), export the public half of an internal signing key, and sign a digest with
//! it (`SDF_InternalSign_ECC`). The private key never leaves the device.
//!
//! The data structures are the standard's ([`abi`]): `ECCrefPublicKey` and `ECCSignature` with
//! 64-byte (`ECCref_MAX_BITS` = 512) big-endian numbers, right-aligned. Some vendors' headers
//! shrink them to 32 bytes; such a library needs a shim to the standard layout.
//!
//! What it is not: no hashing (SM2's `e = SM3(Z‖M)` is the caller's), no key formats, no pool —
//! `zhengyin-keys` builds the signer on top. The workspace's only unsafe code for devices lives
//! in this crate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub mod abi;

use abi::{EccRefPublicKey, EccSignature};

/// Why an SDF call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdfError {
    /// The library does not load, or lacks a function.
    #[error("SDF library {}: {why}", path.display())]
    Load {
        /// The library's path.
        path: PathBuf,
        /// What went wrong.
        why: String,
    },
    /// A call returned an error code.
    #[error("{call}: {} (0x{code:08X})", abi::describe(*code))]
    Call {
        /// The function called.
        call: &'static str,
        /// The `SDR_*` code it returned.
        code: u32,
    },
    /// A call succeeded with an answer that makes no sense (e.g. a key of the wrong size).
    #[error("{call}: {why}")]
    Malformed {
        /// The function called.
        call: &'static str,
        /// What is wrong with the answer.
        why: &'static str,
    },
}

impl SdfError {
    /// The `SDR_*` code of a failed call.
    pub fn code(&self) -> Option<u32> {
        match self {
            Self::Call { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// A loaded device library.
pub struct Library {
    path: PathBuf,
    functions: abi::Functions,
}

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Library").field("path", &self.path).finish()
    }
}

impl Library {
    /// Loads the library at `path` and finds the functions used here.
    pub fn load(path: &Path) -> Result<Arc<Self>, SdfError> {
        let functions = abi::Functions::load(path).map_err(|why| SdfError::Load {
            path: path.to_owned(),
            why,
        })?;
        Ok(Arc::new(Self {
            path: path.to_owned(),
            functions,
        }))
    }

    /// The library's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// An open device (`SDF_OpenDevice`), closed when the last session and reference are gone.
#[derive(Debug)]
pub struct Device {
    library: Arc<Library>,
    handle: abi::Handle,
}

impl Device {
    /// Opens the device.
    pub fn open(library: &Arc<Library>) -> Result<Arc<Self>, SdfError> {
        let handle = library.functions.open_device()?;
        Ok(Arc::new(Self {
            library: library.clone(),
            handle,
        }))
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        // A device that fails to close is being dropped anyway; nothing to do with the code.
        let _ = self.library.functions.close_device(self.handle);
    }
}

/// A session on a device (`SDF_OpenSession`): one operation at a time, so it is `Send` but
/// not `Sync`; closed when dropped.
#[derive(Debug)]
pub struct Session {
    device: Arc<Device>,
    handle: abi::Handle,
    _not_sync: std::marker::PhantomData<std::cell::Cell<()>>,
}

impl Session {
    /// Opens a session.
    pub fn open(device: &Arc<Device>) -> Result<Self, SdfError> {
        let handle = device.library.functions.open_session(device.handle)?;
        Ok(Self {
            device: device.clone(),
            handle,
            _not_sync: std::marker::PhantomData,
        })
    }

    fn functions(&self) -> &abi::Functions {
        &self.device.library.functions
    }

    /// Unlocks internal private key `index` for this session with its password
    /// (`SDF_GetPrivateKeyAccessRight`).
    pub fn unlock_private_key(&self, index: u32, password: &[u8]) -> Result<(), SdfError> {
        self.functions()
            .get_private_key_access_right(self.handle, index, password)
    }

    /// The public half of internal signing key `index` (`SDF_ExportSignPublicKey_ECC`), as the
    /// SEC1 uncompressed point `04‖x‖y` of a 256-bit curve.
    pub fn sign_public_key(&self, index: u32) -> Result<[u8; 65], SdfError> {
        const CALL: &str = "SDF_ExportSignPublicKey_ECC";
        let key: EccRefPublicKey = self.functions().export_sign_public_key_ecc(self.handle, index)?;
        if key.bits != 256 {
            return Err(SdfError::Malformed {
                call: CALL,
                why: "not a 256-bit key",
            });
        }
        let mut point = [0u8; 65];
        point[0] = 4;
        point[1..33].copy_from_slice(right_aligned(&key.x, CALL)?);
        point[33..].copy_from_slice(right_aligned(&key.y, CALL)?);
        Ok(point)
    }

    /// Signs the 32-byte `digest` (SM2's `e`) with internal key `index`
    /// (`SDF_InternalSign_ECC`); the signature is the raw `r‖s`.
    pub fn sign_digest(&self, index: u32, digest: &[u8; 32]) -> Result<[u8; 64], SdfError> {
        const CALL: &str = "SDF_InternalSign_ECC";
        let signature: EccSignature = self.functions().internal_sign_ecc(self.handle, index, digest)?;
        let mut raw = [0u8; 64];
        raw[..32].copy_from_slice(right_aligned(&signature.r, CALL)?);
        raw[32..].copy_from_slice(right_aligned(&signature.s, CALL)?);
        Ok(raw)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // As for the device: the session is gone either way.
        let _ = self.functions().close_session(self.handle);
    }
}

/// The last 32 bytes of a 64-byte field, whose first 32 must be zero.
fn right_aligned<'a>(field: &'a [u8; abi::ECC_REF_MAX_LEN], call: &'static str) -> Result<&'a [u8], SdfError> {
    let (high, low) = field.split_at(abi::ECC_REF_MAX_LEN - 32);
    if high.iter().any(|&b| b != 0) {
        return Err(SdfError::Malformed {
            call,
            why: "a number wider than 256 bits",
        });
    }
    Ok(low)
}
