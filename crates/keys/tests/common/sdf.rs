//! The stand-in GM/T 0018 device (crates/sdf-standin), built once into a target directory of
//! its own (the test's own cargo holds the workspace's), with its key folder set for this process
//! and the processes it starts. Shared by zhengyin-keys' tests and the suite's (tests/hsm.rs).
#![allow(dead_code)] // each test binary uses part of it

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use zhengyin_crypto::{Algorithm, FileKey};

pub const PASSWORD: &str = "11111111";

pub struct StandIn {
    pub dir: tempfile::TempDir,
    pub library: PathBuf,
}

impl StandIn {
    /// The `sdf:` URI of internal key `index`, with its password read from `password_file`
    /// (a file in the device folder: `password`, or `wrong-password`).
    pub fn uri(&self, index: u32, password_file: &str) -> String {
        format!(
            "sdf:index={index}?module-path={}&pin-source=file:{}",
            self.library.display(),
            self.dir.path().join(password_file).display()
        )
    }

    /// The PEM file behind internal key `index`.
    pub fn key_file(&self, index: u32) -> PathBuf {
        self.dir.path().join(format!("key-{index}.pem"))
    }

    /// Makes the device stop answering (`true`) or answer again.
    pub fn unplug(&self, unplugged: bool) {
        let flag = self.dir.path().join("unplugged");
        if unplugged {
            std::fs::write(flag, b"").unwrap();
        } else {
            std::fs::remove_file(flag).unwrap();
        }
    }
}

/// Builds the stand-in library and returns its path.
pub fn library() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"))
                .ancestors()
                .find(|dir| dir.join("crates/sdf-standin").is_dir())
                .expect("the workspace holding crates/sdf-standin")
                .to_owned();
            let target = root.join("target/sdf-standin");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
            let status = Command::new(cargo)
                .args(["build", "--quiet", "-p", "zhengyin-sdf-standin", "--target-dir"])
                .arg(&target)
                .current_dir(&root)
                .status()
                .unwrap();
            assert!(status.success(), "building the stand-in SDF library failed");
            target.join("debug/libzhengyin_sdf_standin.so")
        })
        .clone()
}

/// The process's stand-in device with SM2 keys 1 to `keys` (the first call decides).
pub fn standin(keys: u32) -> &'static StandIn {
    static DEVICE: OnceLock<StandIn> = OnceLock::new();
    DEVICE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        for index in 1..=keys {
            let (_, pem) = FileKey::generate(Algorithm::Sm2).unwrap();
            std::fs::write(dir.path().join(format!("key-{index}.pem")), pem.as_bytes()).unwrap();
            std::fs::write(dir.path().join(format!("key-{index}.password")), PASSWORD).unwrap();
        }
        std::fs::write(dir.path().join("password"), format!("{PASSWORD}\n")).unwrap();
        std::fs::write(dir.path().join("wrong-password"), "22222222\n").unwrap();
        // Read by the library when the device is opened, here and in child processes.
        std::env::set_var("ZHENGYIN_SDF_STANDIN_DIR", dir.path());
        StandIn {
            dir,
            library: library(),
        }
    })
}
