//! SoftHSM2 for the tests: a token directory of this process's own, tokens made with
//! `softhsm2-util` before the module is first loaded (scripts/test-deps.sh installs SoftHSM2).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::OnceLock;

pub mod softhsm;

#[allow(unused_imports)]
pub use softhsm::{module_path, PIN};

/// The process's SoftHSM2 with its own token folder.
pub struct SoftHsm {
    /// Removed with the process's last use.
    pub dir: tempfile::TempDir,
    pub tokens: softhsm::Tokens,
    pub module: PathBuf,
}

/// The process's SoftHSM2, with `labels` as initialised tokens (the first call decides).
pub fn softhsm(labels: &[&str]) -> &'static SoftHsm {
    static HSM: OnceLock<SoftHsm> = OnceLock::new();
    HSM.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let tokens = softhsm::Tokens::create(dir.path(), labels);
        // Set before the module is loaded in this process: SoftHSM2 reads it at C_Initialize.
        std::env::set_var("SOFTHSM2_CONF", &tokens.conf);
        SoftHsm {
            module: tokens.module.clone(),
            dir,
            tokens,
        }
    })
}

impl SoftHsm {
    /// A URI for `object` in `token`, the PIN read from the test's PIN file.
    pub fn uri(&self, token: &str, object: &str) -> String {
        self.tokens.uri(token, object, "pin")
    }

    /// The token's directory (SoftHSM2 keeps one per token).
    pub fn token_dir(&self, label: &str) -> PathBuf {
        self.tokens.token_dir(label)
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
