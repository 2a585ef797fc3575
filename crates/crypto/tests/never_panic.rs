//! Parsers of untrusted input never panic: arbitrary bytes and mutations of real inputs go into
//! every parser of this crate (a stable-toolchain stand-in for fuzz targets).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use zhengyin_crypto::key::sm2_der_to_raw;
use zhengyin_crypto::suite::decode_proof_value;
use zhengyin_crypto::{pem, Certificate, FileKey, PublicKey};

fn real_certificates() -> Vec<Vec<u8>> {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../keys-example");
    [
        "authority-sm2.pem",
        "authority-rsa2048.pem",
        "authority-ed25519.pem",
        "issuing-ca.pem",
    ]
    .iter()
    .map(|f| {
        Certificate::all_from_pem(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap()[0]
            .der()
            .to_vec()
    })
    .collect()
}

proptest! {
    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Certificate::from_der(&bytes);
        let _ = PublicKey::from_spki_der(&bytes);
        let _ = FileKey::from_pkcs8_der(&bytes);
        let _ = sm2_der_to_raw(&bytes);
        let text = String::from_utf8_lossy(&bytes);
        let _ = pem::decode_all(&text);
        let _ = decode_proof_value(&text);
    }

    #[test]
    fn mutated_certificates(which in 0usize..4, edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8), cut in any::<usize>()) {
        let certs = real_certificates();
        let mut der = certs[which % certs.len()].clone();
        for (pos, byte) in edits {
            let i = pos % der.len();
            der[i] = byte;
        }
        let _ = Certificate::from_der(&der);
        let _ = Certificate::from_der(&der[..cut % der.len()]);
    }
}
