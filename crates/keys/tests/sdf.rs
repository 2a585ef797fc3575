//! SM2 keys in a GM/T 0018 device, through the stand-in library: signatures made inside the
//! device verify under the key's own public half (and only for the message signed), from many
//! threads at once; a wrong password, a missing key, a library that is not an SDF one, and a
//! missing password source are refused at opening with the reason.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::sdf::standin;
use zhengyin_crypto::{Algorithm, FileKey, SignatureScheme, Signer};
use zhengyin_keys::{KeyError, KeyLocator};

fn open(uri: &str) -> Result<Arc<dyn Signer>, KeyError> {
    KeyLocator::parse(uri)?.open()
}

#[test]
fn sm2_signatures_made_in_the_device_verify_under_its_key() {
    let device = standin(3);
    let key = open(&device.uri(1, "password")).unwrap();
    assert_eq!(key.algorithm(), Algorithm::Sm2);
    // The public half the device exports is the key's.
    let file = FileKey::from_pem_file(&device.key_file(1)).unwrap();
    assert_eq!(key.public_key().spki_der(), file.public_key().spki_der());

    let signature = key.sign(b"licence bytes").unwrap();
    let public = key.public_key();
    public
        .verify(SignatureScheme::Sm2Sm3Raw, b"licence bytes", &signature)
        .unwrap();
    assert!(public
        .verify(SignatureScheme::Sm2Sm3Raw, b"licence byteS", &signature)
        .is_err());
    // Another key of the same device is another key.
    let other = open(&device.uri(2, "password")).unwrap();
    assert!(other
        .public_key()
        .verify(SignatureScheme::Sm2Sm3Raw, b"licence bytes", &signature)
        .is_err());

    // Concurrent signings share the session pool.
    std::thread::scope(|scope| {
        for thread in 0..8 {
            let key = key.clone();
            scope.spawn(move || {
                for n in 0..25 {
                    let message = format!("{thread}-{n}");
                    let signature = key.sign(message.as_bytes()).unwrap();
                    key.public_key()
                        .verify(SignatureScheme::Sm2Sm3Raw, message.as_bytes(), &signature)
                        .unwrap();
                }
            });
        }
    });
}

#[test]
fn bad_device_keys_are_refused_at_opening_with_the_reason() {
    let device = standin(3);
    let refused = |uri: String| match open(&uri) {
        Ok(_) => panic!("{uri} opened"),
        Err(e) => e,
    };
    let e = refused(device.uri(1, "wrong-password"));
    assert!(matches!(e, KeyError::Pin { .. }), "{e}");
    assert!(e.to_string().contains("access to the private key refused"), "{e}");
    let e = refused(device.uri(9, "password"));
    assert!(matches!(e, KeyError::NoKey { .. }), "{e}");
    assert!(e.to_string().contains("no such key"), "{e}");
    let e = refused(device.uri(1, "no-such-file"));
    assert!(matches!(e, KeyError::Pin { .. }), "{e}");
    let e = refused(format!(
        "sdf:index=1?module-path={}/libnothing.so&pin-source=env:X",
        device.dir.path().display()
    ));
    assert!(matches!(e, KeyError::Module { .. }), "{e}");
    // A library that loads but is no SDF library.
    let e = refused(format!(
        "sdf:index=1?module-path={}&pin-source=env:X",
        common::module_path().display()
    ));
    assert!(e.to_string().contains("has no SDF_OpenDevice"), "{e}");
    // Keys in the device are made with its own tools.
    let e = KeyLocator::parse(&device.uri(3, "password"))
        .unwrap()
        .generate(Algorithm::Sm2)
        .map(|_| ())
        .unwrap_err();
    assert!(e.to_string().contains("device's own tools"), "{e}");
}
