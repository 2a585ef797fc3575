//! SoftHSM2 for the tests: a token directory of this process's own, tokens made with
//! `softhsm2-util` before the module is first loaded (scripts/test-deps.sh installs SoftHSM2).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub const SO_PIN: &str = "10203040";
pub const PIN: &str = "56781234";

pub struct SoftHsm {
    pub dir: tempfile::TempDir,
    pub module: PathBuf,
}

/// The module's usual places on Debian.
pub fn module_path() -> PathBuf {
    for candidate in [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    ] {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    panic!("SoftHSM2 is not installed: run scripts/test-deps.sh");
}

/// The process's SoftHSM2, with `labels` as initialised tokens (the first call decides).
pub fn softhsm(labels: &[&str]) -> &'static SoftHsm {
    static HSM: OnceLock<SoftHsm> = OnceLock::new();
    HSM.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tokens")).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.path().join("tokens").display()
            ),
        )
        .unwrap();
        std::fs::write(dir.path().join("pin"), format!("{PIN}\n")).unwrap();
        std::fs::write(dir.path().join("wrong-pin"), "00000000\n").unwrap();
        // Set before the module is loaded in this process: SoftHSM2 reads it at C_Initialize.
        std::env::set_var("SOFTHSM2_CONF", &conf);
        for label in labels {
            init_token(&conf, label);
        }
        SoftHsm {
            dir,
            module: module_path(),
        }
    })
}

pub fn init_token(conf: &Path, label: &str) {
    let out = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", conf)
        .args([
            "--init-token",
            "--free",
            "--label",
            label,
            "--so-pin",
            SO_PIN,
            "--pin",
            PIN,
        ])
        .output()
        .expect("softhsm2-util (scripts/test-deps.sh installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

impl SoftHsm {
    /// A URI for `object` in `token`, the PIN read from the test's PIN file.
    pub fn uri(&self, token: &str, object: &str) -> String {
        format!(
            "pkcs11:token={token};object={object}?module-path={}&pin-source=file:{}",
            self.module.display(),
            self.dir.path().join("pin").display()
        )
    }

    /// The token's directory (SoftHSM2 keeps one per token).
    pub fn token_dir(&self, label: &str) -> PathBuf {
        for entry in std::fs::read_dir(self.dir.path().join("tokens")).unwrap() {
            let path = entry.unwrap().path();
            let object = std::fs::read(path.join("token.object")).unwrap_or_default();
            if object.windows(label.len()).any(|w| w == label.as_bytes()) {
                return path;
            }
        }
        panic!("no token {label}");
    }
}

pub mod sdf;

/// Signs `message` until the device is back (`Unavailable` until then; recovery is tried at most
/// once a second, so give it 10 s) and checks the signature.
pub fn sign_once_back(key: &dyn zhengyin_crypto::Signer, message: &[u8]) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let signature = loop {
        match key.sign(message) {
            Ok(signature) => break signature,
            Err(zhengyin_crypto::CryptoError::Unavailable(_)) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(200))
            }
            Err(e) => panic!("no recovery: {e}"),
        }
    };
    key.public_key().verify(key.scheme(), message, &signature).unwrap();
}
