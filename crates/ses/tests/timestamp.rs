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

/// DER length octets.
fn length(n: usize) -> Vec<u8> {
    match n {
        0..=0x7f => vec![n as u8],
        0x80..=0xff => vec![0x81, n as u8],
        _ => vec![0x82, (n >> 8) as u8, n as u8],
    }
}

/// `signature` (a DER SEQUENCE) with `[0] EXPLICIT BIT STRING token` appended: the v5 form.
fn with_timestamp(signature: &[u8], token: &[u8]) -> Vec<u8> {
    // The outer SEQUENCE's contents: skip its tag and length.
    let skip = if signature[1] & 0x80 == 0 {
        2
    } else {
        2 + usize::from(signature[1] & 0x7f)
    };
    let mut bits = vec![0x03];
    bits.extend(length(token.len() + 1));
    bits.push(0);
    bits.extend_from_slice(token);
    let mut explicit = vec![0xa0];
    explicit.extend(length(bits.len()));
    explicit.extend(bits);
    let mut body = signature[skip..].to_vec();
    body.extend(explicit);
    let mut out = vec![0x30];
    out.extend(length(body.len()));
    out.extend(body);
    out
}

fn step(report: &zhengyin_model::VerificationReport) -> (zhengyin_model::Outcome, String) {
    let c = report
        .checks
        .iter()
        .find(|c| c.code == "timestamp")
        .expect("a timestamp step");
    (c.outcome, c.message.clone())
}

#[test]
fn a_v5_signature_with_a_token_over_its_value_passes_the_timestamp_step() {
    use zhengyin_model::Outcome;
    use zhengyin_ses::verify::{verify_signature, Protected, SealStatus};
    let token = vector("token-p256-sha256.tsr");
    let v5 = with_timestamp(&common::sample("SignedValueV4.dat"), &token);
    let parsed = zhengyin_ses::parse_signature(&v5).unwrap();
    assert_eq!(parsed.timestamp, Some(token.as_slice()));
    let ctx = common::registry(SealStatus::Active);
    let now = datetime!(2026-12-02 00:00 UTC);
    let report = verify_signature(&ctx, &v5, Protected::Absent, now);
    let (outcome, message) = step(&report);
    assert_eq!(outcome, Outcome::Passed, "{message}");
    assert!(message.contains("2026-12-01T18:20:40Z"), "{message}");
    // The signer's own signature is untouched by the appended timestamp.
    assert_eq!(
        report
            .checks
            .iter()
            .find(|c| c.code == "signer_signature")
            .unwrap()
            .outcome,
        Outcome::Passed
    );

    // The same token on another signature: its imprint is not that signature's value.
    let elsewhere = with_timestamp(&common::sample("SignedValueV5.dat"), &token);
    let report = verify_signature(&ctx, &elsewhere, Protected::Absent, now);
    assert_eq!(step(&report).0, Outcome::Failed, "{:?}", step(&report));
    assert_eq!(report.verdict, zhengyin_model::Verdict::Invalid);

    // Without the example root the TSA is unknown: in doubt, not failed.
    let mut strangers = common::registry(SealStatus::Active);
    strangers.anchors = zhengyin_crypto::TrustAnchors::default();
    assert_eq!(
        step(&verify_signature(&strangers, &v5, Protected::Absent, now)).0,
        Outcome::Indeterminate
    );
}

#[test]
fn the_placeholder_timestamp_of_the_ofdrw_v5_seal_is_reported_unreadable() {
    use zhengyin_model::Outcome;
    let ctx = common::registry(zhengyin_ses::verify::SealStatus::Active);
    let report =
        zhengyin_ses::verify::verify_seal(&ctx, &common::sample("UserV5_ts.esl"), datetime!(2026-12-02 00:00 UTC));
    let (outcome, message) = step(&report);
    assert_eq!(outcome, Outcome::Indeterminate, "{message}");
    assert!(message.contains("cannot be read"), "{message}");
}
