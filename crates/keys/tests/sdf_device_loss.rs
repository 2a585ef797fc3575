//! A GM/T 0018 device that stops answering (the stand-in's `unplugged` switch, as when a 密码机
//! restarts): signing fails with `Unavailable`, never with a wrong signature, and works again
//! once the device answers, with no restart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::sdf::standin;
use zhengyin_crypto::CryptoError;
use zhengyin_keys::KeyLocator;

#[test]
fn signing_recovers_after_the_device_answers_again() {
    let device = standin(1);
    let key = KeyLocator::parse(&device.uri(1, "password")).unwrap().open().unwrap();
    key.sign(b"before").unwrap();

    device.unplug(true);
    for _ in 0..3 {
        match key.sign(b"while away") {
            Err(CryptoError::Unavailable(why)) => {
                assert!(why.contains("sdf:index=1"), "{why}");
                assert!(why.contains("communication"), "{why}");
            }
            other => panic!("signed with the device away: {other:?}"),
        }
    }
    device.unplug(false);

    common::sign_once_back(&*key, b"after");
}
