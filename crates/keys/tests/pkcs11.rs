//! Keys in a PKCS#11 device (SoftHSM2): made there, opened by URI, signing Ed25519, P-256 and
//! RSA that verify under the public key the device shows; concurrent signing through the pool;
//! and every start-up failure named: wrong PIN, no PIN, no token, no key, a key made twice.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use zhengyin_crypto::{Algorithm, Signer};
use zhengyin_keys::{KeyError, KeyLocator, Pkcs11Key, Pkcs11Uri};

const TOKENS: &[&str] = &["authority-a", "authority-b", "log", "errors"];

fn hsm() -> &'static common::SoftHsm {
    common::softhsm(TOKENS)
}

fn locator(text: &str) -> KeyLocator {
    KeyLocator::parse(text).unwrap()
}

#[test]
fn keys_made_in_the_device_sign_what_their_public_keys_verify() {
    let hsm = hsm();
    for (object, algorithm) in [
        ("sign-ed25519", Algorithm::Ed25519),
        ("sign-p256", Algorithm::EcdsaP256),
        ("sign-rsa", Algorithm::Rsa),
    ] {
        let made = locator(&hsm.uri("authority-a", object)).generate(algorithm).unwrap();
        assert_eq!(made.algorithm(), algorithm);
        // Opened afresh by its URI, it is the same key.
        let opened = locator(&hsm.uri("authority-a", object)).open().unwrap();
        assert_eq!(opened.public_key().id(), made.public_key().id());
        let message = format!("licence hash data for {object}");
        let signature = opened.sign(message.as_bytes()).unwrap();
        opened
            .public_key()
            .verify(opened.scheme(), message.as_bytes(), &signature)
            .unwrap();
        // The signature is over this message, not any other.
        assert!(opened
            .public_key()
            .verify(opened.scheme(), b"another", &signature)
            .is_err());
    }
}

#[test]
fn many_threads_sign_at_once_through_the_pool() {
    let hsm = hsm();
    let key: Arc<dyn Signer> = locator(&hsm.uri("authority-b", "busy"))
        .generate(Algorithm::EcdsaP256)
        .unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let key = key.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    let message = format!("{t}-{i}");
                    let signature = key.sign(message.as_bytes()).unwrap();
                    key.public_key()
                        .verify(key.scheme(), message.as_bytes(), &signature)
                        .unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}

#[test]
fn start_up_failures_say_which_part_failed() {
    let hsm = hsm();
    locator(&hsm.uri("errors", "present"))
        .generate(Algorithm::Ed25519)
        .unwrap();
    let module = hsm.module.display().to_string();
    let pin = hsm.dir.path().join("pin").display().to_string();
    let wrong_pin = hsm.dir.path().join("wrong-pin").display().to_string();
    let cases = [
        (
            format!("pkcs11:token=errors;object=present?module-path={module}&pin-source=file:{wrong_pin}"),
            "PIN: C_Login: PinIncorrect",
        ),
        (
            format!("pkcs11:token=errors;object=present?module-path={module}&pin-source=file:/nonexistent/pin"),
            "PIN: reading /nonexistent/pin",
        ),
        (
            format!("pkcs11:token=errors;object=present?module-path={module}&pin-source=env:ZHENGYIN_TEST_NO_SUCH_PIN"),
            "the environment has no ZHENGYIN_TEST_NO_SUCH_PIN",
        ),
        (
            format!("pkcs11:token=errors;object=present?module-path={module}"),
            "no pin-source",
        ),
        (
            format!("pkcs11:token=no-such-token;object=present?module-path={module}&pin-source=file:{pin}"),
            "token: no token matches",
        ),
        (
            format!("pkcs11:token=errors;object=absent?module-path={module}&pin-source=file:{pin}"),
            "no private key matches",
        ),
        (
            format!("pkcs11:token=errors;object=present?module-path=/nonexistent/libpkcs11.so&pin-source=file:{pin}"),
            "PKCS#11 module /nonexistent/libpkcs11.so",
        ),
    ];
    for (uri, expected) in cases {
        let error = locator(&uri).open().map(|_| ()).unwrap_err().to_string();
        assert!(
            error.contains(expected),
            "{uri}\n  gave: {error}\n  expected: {expected}"
        );
        assert!(!error.contains(common::PIN), "the PIN leaked: {error}");
    }
    // Making a key whose name is taken is refused, and the first key is untouched.
    let again = locator(&hsm.uri("errors", "present")).generate(Algorithm::EcdsaP256);
    assert!(matches!(again, Err(KeyError::Exists { .. })), "{:?}", again.err());
    let kept = Pkcs11Key::open(&Pkcs11Uri::parse(&hsm.uri("errors", "present")).unwrap()).unwrap();
    assert_eq!(kept.algorithm(), Algorithm::Ed25519);
    // SM2 is not made through PKCS#11 (no standard mechanism).
    let sm2 = locator(&hsm.uri("errors", "sm2")).generate(Algorithm::Sm2);
    assert!(matches!(sm2, Err(KeyError::Unsupported { .. })), "{:?}", sm2.err());
}

#[test]
fn the_pin_may_come_from_the_environment() {
    let hsm = hsm();
    locator(&hsm.uri("log", "checkpoints"))
        .generate(Algorithm::Ed25519)
        .unwrap();
    std::env::set_var("ZHENGYIN_TEST_LOG_PIN", common::PIN);
    let uri = format!(
        "pkcs11:token=log;object=checkpoints?module-path={}&pin-source=env:ZHENGYIN_TEST_LOG_PIN",
        hsm.module.display()
    );
    let key = locator(&uri).open().unwrap();
    let signature = key.sign(b"checkpoint").unwrap();
    key.public_key()
        .verify(key.scheme(), b"checkpoint", &signature)
        .unwrap();
}

#[test]
fn file_keys_are_made_private_and_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    for (name, algorithm) in [
        ("a.key", Algorithm::Ed25519),
        ("b.key", Algorithm::EcdsaP256),
        ("c.key", Algorithm::Sm2),
    ] {
        let path = dir.path().join(name);
        let made = KeyLocator::File(path.clone()).generate(algorithm).unwrap();
        let opened = KeyLocator::File(path.clone()).open().unwrap();
        assert_eq!(made.public_key().id(), opened.public_key().id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert!(KeyLocator::File(path).generate(algorithm).is_err(), "overwrote {name}");
    }
}
