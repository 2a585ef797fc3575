//! A stand-in GM/T 0018 device library for tests: the SDF calls Zhengyin uses, over software
//! SM2 keys, so the SDF signer is tested without a 密码机.
//!
//! The "device" is a folder named by `ZHENGYIN_SDF_STANDIN_DIR` when the device is opened:
//! internal key `N` is `key-N.pem` (a PKCS#8 SM2 private key) unlocked by the password in
//! `key-N.password`. While a file `unplugged` exists in the folder, every call fails with
//! `SDR_COMMFAIL` and all sessions are forgotten, as when a device restarts.
//!
//! What it is not: a device. Keys are files, nothing is constant-time, and only the calls in
//! `zhengyin-sdf` exist. It is never loaded by the service except in tests.

use std::collections::{HashMap, HashSet};
use std::ffi::c_void;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use sm2::elliptic_curve::sec1::ToEncodedPoint as _;
use sm2::pkcs8::DecodePrivateKey as _;
use zhengyin_sdf::abi::{code, EccRefPublicKey, EccSignature, ECC_REF_MAX_LEN};

/// The one device: its folder and open sessions (each with the keys it unlocked).
struct Device {
    dir: PathBuf,
    sessions: HashMap<usize, HashSet<u32>>,
    next: usize,
}

static DEVICE: Mutex<Option<Device>> = Mutex::new(None);

/// Runs `f` on the open device, unless it is unplugged (then it forgets every session).
fn with_device(f: impl FnOnce(&mut Device) -> u32) -> u32 {
    let mut guard = DEVICE.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(device) = guard.as_mut() else {
        return code::OPEN_DEVICE;
    };
    if device.dir.join("unplugged").exists() {
        device.sessions.clear();
        return code::COMM_FAIL;
    }
    f(device)
}

fn secret_key(device: &Device, index: u32) -> Option<sm2::SecretKey> {
    let pem = std::fs::read_to_string(device.dir.join(format!("key-{index}.pem"))).ok()?;
    sm2::SecretKey::from_pkcs8_pem(&pem).ok()
}

/// Right-aligns a 32-byte number in a field of the standard's width.
fn field(bytes: &[u8]) -> [u8; ECC_REF_MAX_LEN] {
    let mut out = [0u8; ECC_REF_MAX_LEN];
    if let Some(tail) = out.get_mut(ECC_REF_MAX_LEN.saturating_sub(bytes.len())..) {
        if tail.len() == bytes.len() {
            tail.copy_from_slice(bytes);
        }
    }
    out
}

/// `SDF_OpenDevice`.
///
/// # Safety
/// `device` is null or points to a place for one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SDF_OpenDevice(device: *mut *mut c_void) -> u32 {
    let Some(dir) = std::env::var_os("ZHENGYIN_SDF_STANDIN_DIR").map(PathBuf::from) else {
        return code::OPEN_DEVICE;
    };
    if !dir.is_dir() || device.is_null() {
        return code::OPEN_DEVICE;
    }
    let mut guard = DEVICE.lock().unwrap_or_else(PoisonError::into_inner);
    guard.get_or_insert_with(|| Device {
        dir,
        sessions: HashMap::new(),
        next: 1,
    });
    // SAFETY: checked non-null above; the caller gives a place for one pointer.
    unsafe { *device = std::ptr::without_provenance_mut(0xde71ce) };
    code::OK
}

/// `SDF_CloseDevice`.
///
/// # Safety
/// None beyond the standard's: the handle is opaque here.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SDF_CloseDevice(_device: *mut c_void) -> u32 {
    code::OK
}

/// `SDF_OpenSession`.
///
/// # Safety
/// `session` is null or points to a place for one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SDF_OpenSession(_device: *mut c_void, session: *mut *mut c_void) -> u32 {
    if session.is_null() {
        return code::OUT_ARGUMENT;
    }
    with_device(|device| {
        let id = device.next;
        device.next += 1;
        device.sessions.insert(id, HashSet::new());
        // SAFETY: checked non-null above; the caller gives a place for one pointer.
        unsafe { *session = std::ptr::without_provenance_mut(id) };
        code::OK
    })
}

/// `SDF_CloseSession`.
///
/// # Safety
/// None: the handle is opaque here.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SDF_CloseSession(session: *mut c_void) -> u32 {
    let mut guard = DEVICE.lock().unwrap_or_else(PoisonError::into_inner);
    match guard.as_mut().and_then(|d| d.sessions.remove(&session.addr())) {
        Some(_) => code::OK,
        None => code::OPEN_SESSION,
    }
}

/// `SDF_GetPrivateKeyAccessRight`.
///
/// # Safety
/// `password` points to `length` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SDF_GetPrivateKeyAccessRight(
    session: *mut c_void,
    index: u32,
    password: *const u8,
    length: u32,
) -> u32 {
    if password.is_null() {
        return code::IN_ARGUMENT;
    }
    // SAFETY: the caller gives `length` readable bytes at `password`.
    let given = unsafe { std::slice::from_raw_parts(password, length as usize) };
    with_device(|device| {
        let Ok(expected) = std::fs::read(device.dir.join(format!("key-{index}.password"))) else {
            return code::KEY_NOT_EXIST;
        };
        if given != expected.trim_ascii_end() {
            return code::PRIVATE_KEY_RIGHT;
        }
        match device.sessions.get_mut(&session.addr()) {
            Some(unlocked) => {
                unlocked.insert(index);
                code::OK
            }
            None => code::OPEN_SESSION,
        }
    })
}

/// `SDF_ExportSignPublicKey_ECC`.
///
/// # Safety
/// `key` is null or points to a writable `ECCrefPublicKey`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SDF_ExportSignPublicKey_ECC(
    session: *mut c_void,
    index: u32,
    key: *mut EccRefPublicKey,
) -> u32 {
    if key.is_null() {
        return code::OUT_ARGUMENT;
    }
    with_device(|device| {
        if !device.sessions.contains_key(&session.addr()) {
            return code::OPEN_SESSION;
        }
        let Some(secret) = secret_key(device, index) else {
            return code::KEY_NOT_EXIST;
        };
        let point = secret.public_key().to_encoded_point(false);
        let (Some(x), Some(y)) = (point.x(), point.y()) else {
            return code::UNKNOWN;
        };
        let public = EccRefPublicKey {
            bits: 256,
            x: field(x),
            y: field(y),
        };
        // SAFETY: checked non-null; the caller gives a writable ECCrefPublicKey.
        unsafe { key.write(public) };
        code::OK
    })
}

/// `SDF_InternalSign_ECC`: signs the digest given (SM2's `e`) with internal key `index`, which
/// this session must have unlocked.
///
/// # Safety
/// `data` points to `length` readable bytes; `signature` to a writable `ECCSignature`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SDF_InternalSign_ECC(
    session: *mut c_void,
    index: u32,
    data: *const u8,
    length: u32,
    signature: *mut EccSignature,
) -> u32 {
    use sm2::dsa::signature::hazmat::PrehashSigner as _;
    if data.is_null() || length != 32 {
        return code::IN_ARGUMENT;
    }
    if signature.is_null() {
        return code::OUT_ARGUMENT;
    }
    // SAFETY: the caller gives `length` (32) readable bytes at `data`.
    let digest = unsafe { std::slice::from_raw_parts(data, 32) };
    with_device(|device| {
        match device.sessions.get(&session.addr()) {
            None => return code::OPEN_SESSION,
            Some(unlocked) if !unlocked.contains(&index) => return code::PERMISSION_DENIED,
            Some(_) => {}
        }
        let Some(secret) = secret_key(device, index) else {
            return code::KEY_NOT_EXIST;
        };
        // The user ID only enters Z, which the caller has hashed into the digest already.
        let Ok(key) = sm2::dsa::SigningKey::new("1234567812345678", &secret) else {
            return code::PRIVATE_KEY_OPERATION;
        };
        let Ok(made) = key.sign_prehash(digest) else {
            return code::SIGN_FAILED;
        };
        let bytes = made.to_bytes();
        let (r, s) = bytes.split_at(32);
        // SAFETY: checked non-null; the caller gives a writable ECCSignature.
        unsafe {
            signature.write(EccSignature {
                r: field(r),
                s: field(s),
            })
        };
        code::OK
    })
}
