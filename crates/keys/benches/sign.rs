//! Signing with a key in a file vs the same algorithm in a PKCS#11 device (SoftHSM2), one
//! signature at a time: what an HSM costs per licence, before any network between node and HSM.
//! `cargo bench -p zhengyin-keys` (SoftHSM2 installed: scripts/test-deps.sh).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Command;

use criterion::{criterion_group, criterion_main, Criterion};
use zhengyin_crypto::Algorithm;
use zhengyin_keys::KeyLocator;

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::create_dir(&tokens).unwrap();
    let conf = dir.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!("directories.tokendir = {}\nlog.level = ERROR\n", tokens.display()),
    )
    .unwrap();
    std::fs::write(dir.path().join("pin"), "56781234\n").unwrap();
    std::env::set_var("SOFTHSM2_CONF", &conf);
    let out = Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            "bench",
            "--so-pin",
            "10203040",
            "--pin",
            "56781234",
        ])
        .output()
        .expect("softhsm2-util (scripts/test-deps.sh installs it)");
    assert!(out.status.success());
    let module = [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .expect("SoftHSM2");
    let message = [7u8; 120]; // about a licence's hash data
    let mut group = c.benchmark_group("sign");
    for (name, algorithm, file) in [
        ("ed25519", Algorithm::Ed25519, Some("authority-ed25519.key")),
        ("p256", Algorithm::EcdsaP256, Some("authority-p256.key")),
        ("rsa", Algorithm::Rsa, Some("authority-rsa2048.key")), // 3072 bits in the device, 2048 in the file
    ] {
        let uri = format!(
            "pkcs11:token=bench;object={name}?module-path={module}&pin-source=file:{}",
            dir.path().join("pin").display()
        );
        let hsm = KeyLocator::parse(&uri).unwrap().generate(algorithm).unwrap();
        group.bench_function(format!("{name}/softhsm2"), |b| b.iter(|| hsm.sign(&message).unwrap()));
        if let Some(file) = file {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../keys-example/").to_owned() + file;
            let key = KeyLocator::File(path.into()).open().unwrap();
            group.bench_function(format!("{name}/file"), |b| b.iter(|| key.sign(&message).unwrap()));
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
