//! The C side of GM/T 0018-2012: the standard's structures and return codes, and the library's
//! functions called through pointers found by name. All of this crate's unsafe code is here.
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::path::Path;

/// `ECCref_MAX_LEN`: bytes per number in the ECC structures (`ECCref_MAX_BITS` 512).
pub const ECC_REF_MAX_LEN: usize = 64;

/// `ECCrefPublicKey`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct EccRefPublicKey {
    /// The key's size in bits.
    pub bits: u32,
    /// x, big-endian, right-aligned.
    pub x: [u8; ECC_REF_MAX_LEN],
    /// y, big-endian, right-aligned.
    pub y: [u8; ECC_REF_MAX_LEN],
}

/// `ECCSignature`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct EccSignature {
    /// r, big-endian, right-aligned.
    pub r: [u8; ECC_REF_MAX_LEN],
    /// s, big-endian, right-aligned.
    pub s: [u8; ECC_REF_MAX_LEN],
}

/// The return codes of Appendix A used here (`SDR_*`).
pub mod code {
    /// Success.
    pub const OK: u32 = 0;
    const BASE: u32 = 0x0100_0000;
    /// Unknown error.
    pub const UNKNOWN: u32 = BASE + 0x01;
    /// Function not supported.
    pub const NOT_SUPPORTED: u32 = BASE + 0x02;
    /// Communication with the device failed.
    pub const COMM_FAIL: u32 = BASE + 0x03;
    /// The hardware failed.
    pub const HARD_FAIL: u32 = BASE + 0x04;
    /// The device could not be opened.
    pub const OPEN_DEVICE: u32 = BASE + 0x05;
    /// The session could not be opened (or is not open).
    pub const OPEN_SESSION: u32 = BASE + 0x06;
    /// No permission (a wrong password, or a key not unlocked).
    pub const PERMISSION_DENIED: u32 = BASE + 0x07;
    /// No such key.
    pub const KEY_NOT_EXIST: u32 = BASE + 0x08;
    /// Algorithm not supported.
    pub const ALG_NOT_SUPPORTED: u32 = BASE + 0x09;
    /// A private-key operation failed.
    pub const PRIVATE_KEY_OPERATION: u32 = BASE + 0x0C;
    /// Signing failed.
    pub const SIGN_FAILED: u32 = BASE + 0x0D;
    /// A key of the wrong type.
    pub const KEY_TYPE: u32 = BASE + 0x14;
    /// The private key's access right was not granted (a wrong password).
    pub const PRIVATE_KEY_RIGHT: u32 = BASE + 0x18;
    /// An input argument is wrong.
    pub const IN_ARGUMENT: u32 = BASE + 0x1D;
    /// An output argument is wrong.
    pub const OUT_ARGUMENT: u32 = BASE + 0x1E;
}

/// What an `SDR_*` code means, for messages.
pub fn describe(value: u32) -> &'static str {
    match value {
        code::OK => "success",
        code::UNKNOWN => "unknown error",
        code::NOT_SUPPORTED => "not supported",
        code::COMM_FAIL => "communication with the device failed",
        code::HARD_FAIL => "the device hardware failed",
        code::OPEN_DEVICE => "the device cannot be opened",
        code::OPEN_SESSION => "no such session",
        code::PERMISSION_DENIED => "permission denied (wrong password, or the key is locked)",
        code::KEY_NOT_EXIST => "no such key",
        code::ALG_NOT_SUPPORTED => "algorithm not supported",
        code::PRIVATE_KEY_OPERATION => "the private-key operation failed",
        code::SIGN_FAILED => "signing failed",
        code::KEY_TYPE => "a key of the wrong type",
        code::PRIVATE_KEY_RIGHT => "access to the private key refused (a wrong password?)",
        code::IN_ARGUMENT => "a bad input argument",
        code::OUT_ARGUMENT => "a bad output argument",
        _ => "a vendor-specific error",
    }
}

/// A device or session handle: the library's opaque pointer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Handle(pub(crate) *mut c_void);

// SAFETY: a handle is an opaque token the library hands out; GM/T 0018 lets the device handle be
// used from any thread, and `Session` (the owner of a session handle) is not `Sync`, so a session
// handle is only ever used by one thread at a time.
unsafe impl Send for Handle {}
// SAFETY: as above; sharing the token shares no memory of ours.
unsafe impl Sync for Handle {}

type OpenDevice = unsafe extern "C" fn(*mut *mut c_void) -> u32;
type CloseHandle = unsafe extern "C" fn(*mut c_void) -> u32;
type OpenSession = unsafe extern "C" fn(*mut c_void, *mut *mut c_void) -> u32;
type GetPrivateKeyAccessRight = unsafe extern "C" fn(*mut c_void, u32, *const u8, u32) -> u32;
type ExportSignPublicKeyEcc = unsafe extern "C" fn(*mut c_void, u32, *mut EccRefPublicKey) -> u32;
type InternalSignEcc = unsafe extern "C" fn(*mut c_void, u32, *const u8, u32, *mut EccSignature) -> u32;

/// The library and the functions found in it. The pointers stay valid as long as `_library`
/// (the library is unloaded only when this is dropped).
pub(crate) struct Functions {
    open_device: OpenDevice,
    close_device: CloseHandle,
    open_session: OpenSession,
    close_session: CloseHandle,
    get_private_key_access_right: GetPrivateKeyAccessRight,
    export_sign_public_key_ecc: ExportSignPublicKeyEcc,
    internal_sign_ecc: InternalSignEcc,
    _library: libloading::Library,
}

fn check(call: &'static str, value: u32) -> Result<(), crate::SdfError> {
    if value == code::OK {
        Ok(())
    } else {
        Err(crate::SdfError::Call { call, code: value })
    }
}

impl Functions {
    pub(crate) fn load(path: &Path) -> Result<Self, String> {
        // SAFETY: loading runs the library's initialisers; the library is the device vendor's,
        // named by the operator for exactly this purpose.
        let library = unsafe { libloading::Library::new(path) }.map_err(|e| e.to_string())?;
        fn find<T: Copy>(library: &libloading::Library, name: &str) -> Result<T, String> {
            // SAFETY: T is the function type GM/T 0018 gives this name; the pointer is kept only
            // beside the library that holds it (see `Functions`).
            unsafe { library.get::<T>(name.as_bytes()) }
                .map(|symbol| *symbol)
                .map_err(|_| format!("the library has no {name}"))
        }
        Ok(Self {
            open_device: find(&library, "SDF_OpenDevice")?,
            close_device: find(&library, "SDF_CloseDevice")?,
            open_session: find(&library, "SDF_OpenSession")?,
            close_session: find(&library, "SDF_CloseSession")?,
            get_private_key_access_right: find(&library, "SDF_GetPrivateKeyAccessRight")?,
            export_sign_public_key_ecc: find(&library, "SDF_ExportSignPublicKey_ECC")?,
            internal_sign_ecc: find(&library, "SDF_InternalSign_ECC")?,
            _library: library,
        })
    }

    pub(crate) fn open_device(&self) -> Result<Handle, crate::SdfError> {
        let mut handle = std::ptr::null_mut();
        // SAFETY: the function writes one pointer to the place given.
        check("SDF_OpenDevice", unsafe { (self.open_device)(&mut handle) })?;
        Ok(Handle(handle))
    }

    pub(crate) fn close_device(&self, device: Handle) -> Result<(), crate::SdfError> {
        // SAFETY: the handle came from SDF_OpenDevice and is closed once (by Device's drop).
        check("SDF_CloseDevice", unsafe { (self.close_device)(device.0) })
    }

    pub(crate) fn open_session(&self, device: Handle) -> Result<Handle, crate::SdfError> {
        let mut handle = std::ptr::null_mut();
        // SAFETY: an open device's handle, and one pointer's place to write.
        check("SDF_OpenSession", unsafe { (self.open_session)(device.0, &mut handle) })?;
        Ok(Handle(handle))
    }

    pub(crate) fn close_session(&self, session: Handle) -> Result<(), crate::SdfError> {
        // SAFETY: the handle came from SDF_OpenSession and is closed once (by Session's drop).
        check("SDF_CloseSession", unsafe { (self.close_session)(session.0) })
    }

    pub(crate) fn get_private_key_access_right(
        &self,
        session: Handle,
        index: u32,
        password: &[u8],
    ) -> Result<(), crate::SdfError> {
        let length = u32::try_from(password.len()).map_err(|_| crate::SdfError::Malformed {
            call: "SDF_GetPrivateKeyAccessRight",
            why: "the password is too long",
        })?;
        // SAFETY: the function reads `length` bytes of the password, which are there.
        check("SDF_GetPrivateKeyAccessRight", unsafe {
            (self.get_private_key_access_right)(session.0, index, password.as_ptr(), length)
        })
    }

    pub(crate) fn export_sign_public_key_ecc(
        &self,
        session: Handle,
        index: u32,
    ) -> Result<EccRefPublicKey, crate::SdfError> {
        let mut key = EccRefPublicKey {
            bits: 0,
            x: [0; ECC_REF_MAX_LEN],
            y: [0; ECC_REF_MAX_LEN],
        };
        // SAFETY: the function fills one ECCrefPublicKey, which `key` is (repr(C), the standard's
        // layout).
        check("SDF_ExportSignPublicKey_ECC", unsafe {
            (self.export_sign_public_key_ecc)(session.0, index, &mut key)
        })?;
        Ok(key)
    }

    pub(crate) fn internal_sign_ecc(
        &self,
        session: Handle,
        index: u32,
        digest: &[u8; 32],
    ) -> Result<EccSignature, crate::SdfError> {
        let mut signature = EccSignature {
            r: [0; ECC_REF_MAX_LEN],
            s: [0; ECC_REF_MAX_LEN],
        };
        // SAFETY: the function reads the 32 digest bytes given and fills one ECCSignature.
        check("SDF_InternalSign_ECC", unsafe {
            (self.internal_sign_ecc)(session.0, index, digest.as_ptr(), 32, &mut signature)
        })?;
        Ok(signature)
    }
}
