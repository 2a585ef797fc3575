//! The real seals and signatures made by ofdrw (see tests/vectors/README.md), and a third-party
//! seal with vendor quirks.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::sample;

use zhengyin_ses::format::CertList;
use zhengyin_ses::{parse_seal, parse_signature, Quirk, Version};

#[test]
fn every_seal_sample_parses_with_its_version() {
    for (file, version, name) in [
        ("UserV1.esl", Version::V1, "OFDRW测试用印章"),
        ("UserV4.esl", Version::V4, "OFD R&W 测试用印章"),
        ("UserV5.esl", Version::V5, "OFD R&W V5测试用印章"),
        ("UserV5_ts.esl", Version::V5, "OFD R&W V5测试用印章"),
    ] {
        let bytes = sample(file);
        let seal = parse_seal(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(seal.version, version, "{file}");
        assert_eq!(seal.info.property.name, name);
        assert_eq!(seal.info.picture.kind, "PNG");
        assert_eq!((seal.info.picture.width, seal.info.picture.height), (40, 40));
        assert!(matches!(&seal.info.property.cert_list, CertList::Certificates(c) if c.len() == 1));
        assert_eq!(seal.quirks, vec![], "{file}");
        assert_eq!(seal.timestamp.is_some(), file == "UserV5_ts.esl");
    }
}

#[test]
fn the_third_party_seal_parses_with_its_quirks() {
    let bytes = sample("SESealData.DER");
    let seal = parse_seal(&bytes).unwrap();
    assert_eq!(seal.version, Version::V4);
    assert_eq!(seal.info.header.vendor_id, "Vid HebeiGede");
    assert_eq!(seal.info.picture.kind, "GIF");
    assert_eq!(seal.info.extensions.len(), 3);
    assert!(seal.quirks.contains(&Quirk::ExplicitDefaultCritical));
}

#[test]
fn every_signature_sample_parses() {
    for file in ["SignedValueV4.dat", "SignedValueV5.dat"] {
        let bytes = sample(file);
        let sig = parse_signature(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(sig.to_sign.property_info, "/Doc_0/Signs/Sign_0/Signature.xml");
        assert_eq!(sig.to_sign.data_hash.len(), 32);
    }
}

use time::macros::datetime;
use zhengyin_crypto::TrustAnchors;
use zhengyin_model::{Outcome, Verdict, VerificationReport};
use zhengyin_ses::verify::{verify_seal, verify_signature, Offline, Protected};

const NOW: time::OffsetDateTime = datetime!(2026-11-22 08:00 UTC);

fn outcome(report: &VerificationReport, code: &str) -> Outcome {
    report
        .checks
        .iter()
        .find(|c| c.code == code)
        .unwrap_or_else(|| panic!("no {code} in {report:#?}"))
        .outcome
}

/// The ofdrw test certificates assert keyCertSign with cA FALSE, which RFC 5280 §4.2.1.3 forbids:
/// their signatures verify, but no report on them can be VALID.
fn assert_certificate_refused(report: &VerificationReport, code: &str) {
    let check = report.checks.iter().find(|c| c.code == code).unwrap();
    assert_eq!(check.outcome, Outcome::Failed, "{report:#?}");
    assert!(check.message.contains("key usage"), "{}", check.message);
}

fn offline_anchors() -> TrustAnchors {
    // The OFD R&W test CA is not published with the samples: every path is unknown.
    TrustAnchors::new(Vec::new())
}

#[test]
fn the_ofdrw_seals_maker_signatures_verify() {
    let anchors = offline_anchors();
    let ctx = Offline {
        anchors: &anchors,
        intermediates: &[],
        crls: &[],
    };
    for file in ["UserV1.esl", "UserV4.esl", "UserV5.esl", "UserV5_ts.esl"] {
        let bytes = sample(file);
        let at = parse_seal(&bytes).unwrap().info.property.valid_start;
        let report = verify_seal(&ctx, &bytes, at);
        assert_eq!(outcome(&report, "structure"), Outcome::Passed, "{file}");
        assert_eq!(
            outcome(&report, "seal_signature"),
            Outcome::Passed,
            "{file}: {report:#?}"
        );
        assert_eq!(outcome(&report, "seal_validity"), Outcome::Passed, "{file}");
        assert_certificate_refused(&report, "maker_certificate");
        assert_eq!(outcome(&report, "seal_status"), Outcome::Indeterminate, "{file}");
        assert_eq!(report.verdict, Verdict::Invalid, "{file}");
        // Evaluated now, the v1 and v4 seals (valid 2020–2022) have expired.
        let later = verify_seal(&ctx, &bytes, NOW);
        let expired = !file.starts_with("UserV5");
        assert_eq!(outcome(&later, "seal_validity") == Outcome::Failed, expired, "{file}");
    }
}

#[test]
fn the_third_party_seal_parses_but_its_maker_signature_fails() {
    let anchors = offline_anchors();
    let ctx = Offline {
        anchors: &anchors,
        intermediates: &[],
        crls: &[],
    };
    let report = verify_seal(&ctx, &sample("SESealData.DER"), datetime!(2020-12-01 00:00 UTC));
    assert_eq!(outcome(&report, "structure"), Outcome::Passed);
    assert_eq!(outcome(&report, "seal_signature"), Outcome::Failed, "{report:#?}");
    assert_eq!(report.verdict, Verdict::Invalid);
    assert!(report
        .checks
        .iter()
        .any(|c| c.code == "quirk" && c.message.contains("critical")));
}

#[test]
fn the_ofdrw_signatures_verify_and_a_changed_byte_never_does() {
    let anchors = offline_anchors();
    let ctx = Offline {
        anchors: &anchors,
        intermediates: &[],
        crls: &[],
    };
    for file in ["SignedValueV4.dat", "SignedValueV5.dat"] {
        let bytes = sample(file);
        let parsed = parse_signature(&bytes).unwrap();
        let data_hash: [u8; 32] = parsed.to_sign.data_hash.try_into().unwrap();
        let report = verify_signature(&ctx, &bytes, Protected::Sm3(data_hash), NOW);
        for code in [
            "structure",
            "signer_signature",
            "signing_time",
            "signer_in_seal",
            "seal_signature",
            "data_hash",
        ] {
            assert_eq!(outcome(&report, code), Outcome::Passed, "{file} {code}: {report:#?}");
        }
        assert_certificate_refused(&report, "signer_certificate");
        assert_eq!(report.verdict, Verdict::Invalid, "{file}");
        let mut other = data_hash;
        other[0] ^= 1;
        let report = verify_signature(&ctx, &bytes, Protected::Sm3(other), NOW);
        assert_eq!(outcome(&report, "data_hash"), Outcome::Failed);
        assert_eq!(report.verdict, Verdict::Invalid);
        let report = verify_signature(&ctx, &bytes, Protected::Absent, NOW);
        assert_eq!(outcome(&report, "data_hash"), Outcome::Indeterminate);

        // Bytes flipped all over the file: some signature, the seal's list or the structure must
        // catch each one (whatever the certificate policy says).
        for i in (0..bytes.len()).step_by(17) {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            let report = verify_signature(&ctx, &bad, Protected::Sm3(data_hash), NOW);
            assert_eq!(report.verdict, Verdict::Invalid, "byte {i}");
            let caught = ["structure", "signer_signature", "seal_signature", "signer_in_seal"]
                .iter()
                .any(|code| {
                    report
                        .checks
                        .iter()
                        .any(|c| c.code == *code && c.outcome != Outcome::Passed)
                });
            assert!(caught, "byte {i} changed and every signature still passes: {report:#?}");
        }
    }
}

#[test]
fn truncated_garbage_and_nested_input_are_errors_never_panics() {
    let bytes = sample("SignedValueV4.dat");
    for len in 0..bytes.len() {
        assert!(parse_signature(&bytes[..len]).is_err(), "prefix of {len} bytes");
        assert!(parse_seal(&bytes[..len]).is_err());
    }
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(parse_signature(&trailing).is_err(), "trailing data");
    // A length larger than the input, a wrong outer tag, and a nesting bomb.
    assert!(parse_seal(&[0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x02, 0x01]).is_err());
    assert!(parse_seal(&[0x31, 0x00]).is_err());
    let mut bomb = Vec::new();
    for _ in 0..100_000 {
        bomb.extend_from_slice(&[0x30, 0x80]);
    }
    assert!(parse_seal(&bomb).is_err());
    let mut nested = vec![0x30u8, 0x00];
    for _ in 0..60 {
        let mut outer = vec![0x30, 0x82];
        outer.extend_from_slice(&u16::try_from(nested.len()).unwrap().to_be_bytes());
        outer.extend(nested);
        nested = outer;
        if nested.len() > 60_000 {
            break;
        }
    }
    assert!(parse_seal(&nested).is_err());
    // A seal where a signature is expected, and the reverse.
    assert!(parse_signature(&sample("UserV4.esl")).is_err());
    assert!(parse_seal(&bytes).is_err());
}

#[test]
fn a_malformed_value_is_placed_by_its_byte_in_the_file() {
    // The seal's name, a UTF8String three SEQUENCEs deep (SESeal, SES_SealInfo,
    // SES_ESPropertyInfo), made a BOOLEAN: the error names that byte of the file, in a seal
    // file and in a signature file that carries the seal.
    for (file, name) in [
        ("UserV4.esl", "OFD R&W 测试用印章"),
        ("SignedValueV4.dat", "OFD R&W 测试用印章"),
    ] {
        let mut bytes = sample(file);
        let name = name.as_bytes();
        let tag = bytes.windows(name.len()).position(|w| w == name).unwrap() - 2;
        assert_eq!((bytes[tag], usize::from(bytes[tag + 1])), (0x0C, name.len()), "{file}");
        bytes[tag] = 0x01;
        let error = if file.ends_with(".esl") {
            parse_seal(&bytes).err()
        } else {
            parse_signature(&bytes).err()
        }
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            error.contains(&format!("at byte {tag}")),
            "{file}: {error} (the tag is at {tag})"
        );
    }
}
