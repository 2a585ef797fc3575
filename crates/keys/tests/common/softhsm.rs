//! A SoftHSM2 token folder for tests: its configuration, PIN files (`pin`, `wrong-pin`) and
//! tokens made with `softhsm2-util` (scripts/test-deps.sh installs SoftHSM2). Shared by the
//! keys crate's tests and the node's (tests/hsm.rs).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub const SO_PIN: &str = "10203040";
pub const PIN: &str = "56781234";

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

/// Tokens kept in `dir`, configured by `dir/softhsm2.conf`.
pub struct Tokens {
    pub dir: PathBuf,
    pub conf: PathBuf,
    pub module: PathBuf,
}

impl Tokens {
    /// Writes the configuration and PIN files in `dir` and initialises a token per label.
    pub fn create(dir: &Path, labels: &[&str]) -> Self {
        std::fs::create_dir_all(dir.join("tokens")).unwrap();
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.join("tokens").display()
            ),
        )
        .unwrap();
        std::fs::write(dir.join("pin"), format!("{PIN}\n")).unwrap();
        std::fs::write(dir.join("wrong-pin"), "00000000\n").unwrap();
        for label in labels {
            let out = Command::new("softhsm2-util")
                .env("SOFTHSM2_CONF", &conf)
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
        Self {
            dir: dir.to_owned(),
            conf,
            module: module_path(),
        }
    }

    /// A URI for `object` in `token`, the PIN read from the file `pin` in the folder.
    pub fn uri(&self, token: &str, object: &str, pin: &str) -> String {
        format!(
            "pkcs11:token={token};object={object}?module-path={}&pin-source=file:{}",
            self.module.display(),
            self.dir.join(pin).display()
        )
    }

    /// The token's own folder (SoftHSM2 keeps one per token, named by a UUID).
    pub fn token_dir(&self, label: &str) -> PathBuf {
        for entry in std::fs::read_dir(self.dir.join("tokens")).unwrap() {
            let path = entry.unwrap().path();
            let object = std::fs::read(path.join("token.object")).unwrap_or_default();
            if object.windows(label.len()).any(|w| w == label.as_bytes()) {
                return path;
            }
        }
        panic!("no token {label}");
    }
}
