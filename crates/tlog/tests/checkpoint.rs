//! Signed checkpoints: round trip, and every way a note can be wrong.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use zhengyin_crypto::{FileKey, Signer};
use zhengyin_tlog::{open_checkpoint, sign_checkpoint, Checkpoint, NoteVerifier, TreeSize};

fn key(seed: u8) -> FileKey {
    let mut der = hex::decode("302e020100300506032b657004220420").unwrap();
    der.extend_from_slice(&[seed; 32]);
    FileKey::from_pkcs8_der(&der).unwrap()
}

fn checkpoint(size: u64) -> Checkpoint {
    Checkpoint {
        origin: "zhengyin.example/city-log".to_owned(),
        size: TreeSize(size),
        root: [7; 32],
    }
}

#[test]
fn round_trip_and_verifier_strings() {
    let k = key(1);
    let note = sign_checkpoint(&checkpoint(42), "zhengyin.example/city-log", &k).unwrap();
    assert!(note.starts_with("zhengyin.example/city-log\n42\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n\n\u{2014} zhengyin.example/city-log "));
    let verifier = NoteVerifier::new("zhengyin.example/city-log", k.public_key().clone()).unwrap();
    let parsed = NoteVerifier::parse(&verifier.encode()).unwrap();
    assert_eq!(open_checkpoint(&note, &parsed).unwrap(), checkpoint(42));
}

#[test]
fn wrong_notes_are_refused() {
    let k = key(1);
    let name = "zhengyin.example/city-log";
    let verifier = NoteVerifier::new(name, k.public_key().clone()).unwrap();
    let note = sign_checkpoint(&checkpoint(42), name, &k).unwrap();
    // Signed by another key under the same name.
    let other = sign_checkpoint(&checkpoint(42), name, &key(2)).unwrap();
    assert!(open_checkpoint(&other, &verifier).is_err());
    // The body changed after signing.
    assert!(open_checkpoint(&note.replacen("\n42\n", "\n43\n", 1), &verifier).is_err());
    // Every single-byte change either breaks the format or the signature.
    for i in 0..note.len() {
        let mut bytes = note.clone().into_bytes();
        bytes[i] ^= 0x01;
        if let Ok(text) = String::from_utf8(bytes) {
            assert!(open_checkpoint(&text, &verifier).is_err(), "byte {i}");
        }
    }
    for bad in [
        "",
        "x\n",
        "zhengyin.example/city-log\n42\n",
        "a\n01\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n\n\u{2014} a AAAA\n",
    ] {
        assert!(open_checkpoint(bad, &verifier).is_err(), "{bad:?}");
    }
    // Another signer's line is ignored, ours must still be there.
    let foreign = note.replace(&format!("\u{2014} {name}"), "\u{2014} someone.else");
    assert!(open_checkpoint(&foreign, &verifier).is_err());
    let cosigned = format!("{note}\u{2014} someone.else AAAAAAAA\n");
    assert_eq!(open_checkpoint(&cosigned, &verifier).unwrap(), checkpoint(42));
    // Verifier strings.
    for bad in ["", "name", "name+00000000+AQ==", &verifier.encode().replace("+", "-")] {
        assert!(NoteVerifier::parse(bad).is_err(), "{bad}");
    }
    // Notes are Ed25519 only.
    let p256 = FileKey::from_pem_file(
        &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../keys-example/authority-p256.key"),
    )
    .unwrap();
    assert!(sign_checkpoint(&checkpoint(1), name, &p256).is_err());
}

proptest::proptest! {
    #[test]
    fn note_parsers_never_panic(text in "\\PC{0,300}", blank in "[a-z/.0-9\n—+ ]{0,120}") {
        let k = key(3);
        let verifier = NoteVerifier::new("n", k.public_key().clone()).unwrap();
        for t in [&text, &blank] {
            let _ = open_checkpoint(t, &verifier);
            let _ = NoteVerifier::parse(t);
            let _ = Checkpoint::parse_body(t);
        }
    }
}
