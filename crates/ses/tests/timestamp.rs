//! RFC 3161 time-stamp tokens made by OpenSSL (tests/vectors/tsa/README.md): the token over the
//! signature value of an ofdrw v4 signature verifies, and in a v5 signature the `timestamp` step
//! passes and fixes the signing time; anything changed is refused, never a panic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{cert, root};
use time::macros::datetime;
use zhengyin_ses::timestamp::{parse_token, verify_token, Digest, TimestampError};

fn vector(name: &str) -> Vec<u8> {
    std::fs::read(root().join("tests/vectors/tsa").join(name)).unwrap()
}

#[test]
fn an_openssl_token_verifies_over_the_data_it_stamps() {
    let token = vector("token-p256-sha256.tsr");
    let data = vector("signature-value-v4.bin");
    let parsed = parse_token(&token).unwrap();
    assert_eq!(parsed.gen_time, datetime!(2026-12-01 18:20:40 UTC));
    assert_eq!(parsed.imprint_algorithm, Digest::Sha256);
    assert_eq!(
        parsed.certificates.len(),
        1,
        "the TSA certificate travels with the token"
    );
    let (time, tsa) = verify_token(&token, &data, &[]).unwrap();
    assert_eq!(time, parsed.gen_time);
    assert_eq!(tsa.der(), cert("tsa-p256.pem").der());
}

#[test]
fn other_data_another_certificate_or_a_changed_byte_are_refused() {
    let token = vector("token-p256-sha256.tsr");
    let data = vector("signature-value-v4.bin");
    let mut other = data.clone();
    other[0] ^= 1;
    assert_eq!(verify_token(&token, &other, &[]).unwrap_err(), TimestampError::Imprint);

    // Every single-byte change: refused (or unreadable), never accepted, never a panic.
    let mut accepted = Vec::new();
    for i in 0..token.len() {
        let mut t = token.clone();
        t[i] ^= 0x01;
        if verify_token(&t, &data, &[]).is_ok() {
            accepted.push(i);
        }
    }
    // Also the bytes outside what the TSA signed (versions, the digest algorithm set, algorithm
    // parameters, the certificates): each is checked.
    assert!(accepted.is_empty(), "changed bytes accepted at {accepted:?}");
    for len in 0..token.len() {
        assert!(verify_token(&token[..len], &data, &[]).is_err(), "truncated at {len}");
    }
}

#[test]
fn a_certificate_without_the_time_stamping_usage_cannot_stand_in() {
    // The token names its TSA certificate by hash: an authority certificate given instead is
    // never taken for it.
    let token = vector("token-p256-sha256.tsr");
    let data = vector("signature-value-v4.bin");
    let mut stripped = parse_token(&token).unwrap();
    stripped.certificates.clear();
    assert_eq!(
        stripped.verify(&data, &[cert("authority-p256.pem")]).unwrap_err(),
        TimestampError::NoCertificate
    );
    assert!(
        stripped.verify(&data, &[cert("tsa-p256.pem")]).is_ok(),
        "given separately: found"
    );
    assert!(!cert("authority-p256.pem").is_time_stamping_only());
    assert!(cert("tsa-p256.pem").is_time_stamping_only());
}
