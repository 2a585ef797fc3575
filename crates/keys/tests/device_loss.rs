//! A device that goes away mid-burst (its token directory moved out from under SoftHSM2, the
//! way a network HSM's sessions die): signing fails with `Unavailable`, never with a wrong
//! signature, and works again once the device is back, with no restart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use zhengyin_crypto::{Algorithm, CryptoError, Signer};
use zhengyin_keys::KeyLocator;

#[test]
fn signing_recovers_after_the_device_comes_back() {
    let hsm = common::softhsm(&["vanishing"]);
    let key: Arc<dyn Signer> = KeyLocator::parse(&hsm.uri("vanishing", "sign"))
        .unwrap()
        .generate(Algorithm::Ed25519)
        .unwrap();
    key.sign(b"before").unwrap();

    let token = hsm.token_dir("vanishing");
    let away = hsm.dir.path().join("away");
    std::fs::rename(&token, &away).unwrap();
    match key.sign(b"while away") {
        Err(CryptoError::Unavailable(why)) => assert!(why.contains("pkcs11:token=vanishing"), "{why}"),
        other => panic!("signed with the device away: {other:?}"),
    }
    std::fs::rename(&away, &token).unwrap();

    common::sign_once_back(&*key, b"after");
}
