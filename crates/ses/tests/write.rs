//! Writing seals and signatures: round trips byte for byte, a seal made and applied here verifies
//! here (every step) and in OpenSSL 3, and each way of breaking it is reported.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{cert, key, our_seal, registry, sample, sequence, tlv, Registry, ES_ID, PNG};

use std::path::Path;

use time::macros::datetime;
use time::OffsetDateTime;
use zhengyin_crypto::{hash, TrustAnchors};
use zhengyin_model::{Outcome, Verdict, VerificationReport};
use zhengyin_ses::format::SealPicture;
use zhengyin_ses::verify::{verify_seal, verify_signature, Protected, SealStatus};
use zhengyin_ses::write::{
    apply_seal, encode_seal, encode_seal_info, encode_signature, encode_to_sign, make_seal, NewSeal,
};
use zhengyin_ses::{parse_seal, parse_signature, Version};

#[test]
fn the_ofdrw_v4_and_v5_structures_re_encode_to_their_bytes() {
    for file in ["UserV4.esl", "UserV5.esl", "UserV5_ts.esl"] {
        let bytes = sample(file);
        let seal = parse_seal(&bytes).unwrap();
        assert_eq!(encode_seal_info(&seal.info).unwrap(), seal.info.raw, "{file}");
        let again = encode_seal(
            seal.info.raw,
            seal.maker_certificate,
            &seal.algorithm,
            seal.signature,
            seal.timestamp,
        )
        .unwrap();
        assert_eq!(again, bytes, "{file}");
    }
    for file in ["SignedValueV4.dat", "SignedValueV5.dat"] {
        let bytes = sample(file);
        let sig = parse_signature(&bytes).unwrap();
        let t = &sig.to_sign;
        let tbs = encode_to_sign(
            t.version,
            t.seal.raw,
            t.time,
            t.data_hash,
            t.property_info,
            &t.extensions,
        )
        .unwrap();
        assert_eq!(tbs, t.raw, "{file}");
        let again = encode_signature(
            &tbs,
            sig.signer_certificate,
            &sig.algorithm,
            sig.signature,
            sig.timestamp,
        )
        .unwrap();
        assert_eq!(again, bytes, "{file}");
    }
}

fn check(report: &VerificationReport, code: &str) -> Outcome {
    report.checks.iter().find(|c| c.code == code).unwrap().outcome
}

const DOCUMENT: &[u8] = b"<ofd:Signature>an example Signature.xml</ofd:Signature>";
const SIGNED_AT: OffsetDateTime = datetime!(2026-06-01 09:30 UTC);
const NOW: OffsetDateTime = datetime!(2026-11-22 08:00 UTC);

fn sealed(seal: &[u8], at: OffsetDateTime, signer_key: &str, signer_cert: &str) -> Vec<u8> {
    apply_seal(
        seal,
        at,
        &hash::sm3(DOCUMENT),
        "/Doc_0/Signs/Sign_0/Signature.xml",
        cert(signer_cert).der(),
        &key(signer_key),
    )
    .unwrap()
}

#[test]
fn a_seal_made_and_applied_here_verifies_at_every_step() {
    let seal = our_seal();
    let parsed = parse_seal(&seal).unwrap();
    assert_eq!(parsed.version, Version::V4);
    assert_eq!(encode_seal_info(&parsed.info).unwrap(), parsed.info.raw, "round trip");
    let active = registry(SealStatus::Active);
    let report = verify_seal(&active, &seal, NOW);
    assert_eq!(report.verdict, Verdict::Valid, "{report:#?}");

    let signature = sealed(&seal, SIGNED_AT, "authority-sm2.key", "authority-sm2.pem");
    let report = verify_signature(&active, &signature, Protected::Bytes(DOCUMENT), NOW);
    assert_eq!(report.verdict, Verdict::Valid, "{report:#?}");
    assert_eq!(report.signing_time, Some(SIGNED_AT));
    let report = verify_signature(&active, &signature, Protected::Sm3(hash::sm3(DOCUMENT)), NOW);
    assert_eq!(report.verdict, Verdict::Valid);
}

#[test]
fn each_way_of_breaking_a_sealed_signature_is_named() {
    let seal = our_seal();
    let good = sealed(&seal, SIGNED_AT, "authority-sm2.key", "authority-sm2.pem");

    let changed = verify_signature(&registry(SealStatus::Active), &good, Protected::Bytes(b"other"), NOW);
    assert_eq!(check(&changed, "data_hash"), Outcome::Failed);
    assert_eq!(changed.verdict, Verdict::Invalid);

    let revoked = registry(SealStatus::Revoked("lost".into()));
    let report = verify_signature(&revoked, &good, Protected::Bytes(DOCUMENT), NOW);
    assert_eq!(check(&report, "seal_status"), Outcome::Failed);
    assert_eq!(report.verdict, Verdict::Invalid);
    let report = verify_seal(&registry(SealStatus::Suspended("audit".into())), &seal, NOW);
    assert_eq!(report.verdict, Verdict::Invalid);

    let unknown = verify_signature(&registry(SealStatus::Unknown), &good, Protected::Bytes(DOCUMENT), NOW);
    assert_eq!(unknown.verdict, Verdict::Indeterminate);

    // Signed before the seal was valid, and after it expired.
    let active = registry(SealStatus::Active);
    for at in [datetime!(2025-12-31 23:59 UTC), datetime!(2028-01-02 00:00 UTC)] {
        let early = sealed(&seal, at, "authority-sm2.key", "authority-sm2.pem");
        let report = verify_signature(
            &active,
            &early,
            Protected::Bytes(DOCUMENT),
            datetime!(2029-01-01 00:00 UTC),
        );
        assert_eq!(check(&report, "seal_validity"), Outcome::Failed, "{at}");
    }

    // Applied by a signer the seal does not list (the seal maker's own key).
    let stranger = sealed(&seal, SIGNED_AT, "seal-maker.key", "seal-maker.pem");
    let report = verify_signature(&active, &stranger, Protected::Bytes(DOCUMENT), NOW);
    assert_eq!(check(&report, "signer_signature"), Outcome::Passed);
    assert_eq!(check(&report, "signer_in_seal"), Outcome::Failed);

    // A signer certificate swapped for another one: the signature no longer verifies.
    let parsed = parse_signature(&good).unwrap();
    let swapped = encode_signature(
        parsed.to_sign.raw,
        cert("seal-maker.pem").der(),
        &parsed.algorithm,
        parsed.signature,
        None,
    )
    .unwrap();
    let report = verify_signature(&active, &swapped, Protected::Bytes(DOCUMENT), NOW);
    assert_eq!(check(&report, "signer_signature"), Outcome::Failed);

    // Signed in the future.
    let future = sealed(
        &seal,
        datetime!(2027-01-01 00:00 UTC),
        "authority-sm2.key",
        "authority-sm2.pem",
    );
    let report = verify_signature(&active, &future, Protected::Bytes(DOCUMENT), NOW);
    assert_eq!(check(&report, "signing_time"), Outcome::Failed);

    // Untrusted anchors: the certificates cannot be placed.
    let nobody = Registry {
        anchors: TrustAnchors::new(Vec::new()),
        intermediates: Vec::new(),
        status: SealStatus::Active,
    };
    let report = verify_signature(&nobody, &good, Protected::Bytes(DOCUMENT), NOW);
    assert_eq!(check(&report, "signer_certificate"), Outcome::Indeterminate);
    assert_eq!(check(&report, "maker_certificate"), Outcome::Indeterminate);
    assert_eq!(report.verdict, Verdict::Indeterminate);
}

#[test]
fn seals_only_take_sm2_keys() {
    let seal = NewSeal {
        vendor_id: "Zhengyin",
        es_id: ES_ID,
        seal_type: 1,
        name: "x",
        signer_certificates: vec![],
        created: NOW,
        valid_start: NOW,
        valid_end: NOW,
        picture: SealPicture {
            kind: "PNG",
            data: PNG,
            width: 1,
            height: 1,
        },
    };
    assert!(make_seal(
        &seal,
        cert("authority-ed25519.pem").der(),
        &key("authority-ed25519.key")
    )
    .is_err());
}

/// OpenSSL 3 checks the maker and signer signatures over the exact covered bytes.
#[test]
fn openssl_verifies_our_seal_and_signature() {
    if std::process::Command::new("openssl").arg("version").output().is_err() {
        eprintln!("SKIPPED: openssl is not installed here, so the OpenSSL cross-check did not run");
        return;
    }
    let dir = std::env::temp_dir().join(format!("zhengyin-ses-openssl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let seal = our_seal();
    let parsed = parse_seal(&seal).unwrap();
    openssl_verify(&dir, "seal-maker.pem", &parsed.signed_bytes, parsed.signature);
    let signature = sealed(&seal, SIGNED_AT, "authority-sm2.key", "authority-sm2.pem");
    let parsed = parse_signature(&signature).unwrap();
    openssl_verify(&dir, "authority-sm2.pem", parsed.to_sign.raw, parsed.signature);
    // And OpenSSL refuses a changed byte, so the check above means something.
    let mut changed = parsed.to_sign.raw.to_vec();
    changed[10] ^= 1;
    assert!(!openssl_accepts(&dir, "authority-sm2.pem", &changed, parsed.signature));
    let _ = std::fs::remove_dir_all(&dir);
}

fn openssl_verify(dir: &Path, cert_file: &str, data: &[u8], signature: &[u8]) {
    assert!(
        openssl_accepts(dir, cert_file, data, signature),
        "OpenSSL refused the {cert_file} signature"
    );
}

fn openssl_accepts(dir: &Path, cert_file: &str, data: &[u8], signature: &[u8]) -> bool {
    std::fs::write(dir.join("data"), data).unwrap();
    std::fs::write(dir.join("sig"), signature).unwrap();
    std::fs::write(dir.join("cert.pem"), cert(cert_file).to_pem()).unwrap();
    let status = std::process::Command::new("openssl")
        .args(["pkeyutl", "-verify", "-certin", "-inkey"])
        .arg(dir.join("cert.pem"))
        .args(["-rawin", "-digest", "sm3", "-pkeyopt", "distid:1234567812345678", "-in"])
        .arg(dir.join("data"))
        .arg("-sigfile")
        .arg(dir.join("sig"))
        .output()
        .unwrap();
    status.status.success()
}

/// A GM/T 0031-2014 (v1) signature — signer certificate and algorithm inside TBS_Sign, timeInfo
/// as BIT STRING text — over the ofdrw v1 seal, signed with a raw r‖s signature.
#[test]
fn a_v1_signature_is_read_and_its_signature_checked() {
    use der::asn1::{BitStringRef, Ia5StringRef, ObjectIdentifier, OctetStringRef};
    use zhengyin_crypto::Signer as _;

    let seal = sample("UserV1.esl");
    let signer = cert("authority-sm2.pem");
    let tbs = sequence(&[
        &tlv(&1i64),
        &seal,
        &tlv(&BitStringRef::from_bytes(b"20260601093000Z").unwrap()),
        &tlv(&BitStringRef::from_bytes(&hash::sm3(DOCUMENT)).unwrap()),
        &tlv(&Ia5StringRef::new("/Doc_0/Signs/Sign_0/Signature.xml").unwrap()),
        &tlv(&OctetStringRef::new(signer.der()).unwrap()),
        &tlv(&ObjectIdentifier::new_unwrap("1.2.156.10197.1.501")),
    ]);
    let raw = key("authority-sm2.key").sign(&tbs).unwrap();
    let signature = sequence(&[&tbs, &tlv(&BitStringRef::from_bytes(&raw).unwrap())]);

    let parsed = parse_signature(&signature).unwrap();
    assert_eq!(parsed.to_sign.version, 1);
    assert_eq!(parsed.to_sign.seal.version, Version::V1);
    assert_eq!(parsed.to_sign.time, SIGNED_AT);
    assert_eq!(parsed.signer_certificate, signer.der());
    let report = verify_signature(
        &registry(SealStatus::Active),
        &signature,
        Protected::Bytes(DOCUMENT),
        NOW,
    );
    assert_eq!(check(&report, "signer_signature"), Outcome::Passed, "{report:#?}");
    assert_eq!(check(&report, "seal_signature"), Outcome::Passed);
    assert_eq!(check(&report, "data_hash"), Outcome::Passed);
    assert!(report
        .checks
        .iter()
        .any(|c| c.code == "quirk" && c.message.contains("raw r||s")));
    // Our signer is not in the ofdrw seal's list, and its test certificate is refused.
    assert_eq!(check(&report, "signer_in_seal"), Outcome::Failed);
    assert_eq!(report.verdict, Verdict::Invalid);

    // The same with one byte of timeInfo changed: the signature no longer verifies.
    let at = signature.windows(15).position(|w| w == b"20260601093000Z").unwrap();
    let mut changed = signature.clone();
    changed[at + 3] = b'7';
    let report = verify_signature(&registry(SealStatus::Active), &changed, Protected::Bytes(DOCUMENT), NOW);
    assert_eq!(check(&report, "signer_signature"), Outcome::Failed);
}

/// A vendor's 6-field TBS_Sign (extDatas without its [0] tag) is read, reported as a quirk, and
/// its signature checked over the bytes as they are.
#[test]
fn a_six_field_tbs_sign_is_a_quirk_not_a_failure() {
    use der::asn1::{BitStringRef, GeneralizedTime, Ia5StringRef, ObjectIdentifier, OctetStringRef};
    use zhengyin_crypto::Signer as _;

    let seal = our_seal();
    let signer = cert("authority-sm2.pem");
    let extension = sequence(&[
        &tlv(&ObjectIdentifier::new_unwrap("1.2.156.112600.7.9")),
        &tlv(&OctetStringRef::new(b"v").unwrap()),
    ]);
    let seconds = u64::try_from(SIGNED_AT.unix_timestamp()).unwrap();
    let tbs = sequence(&[
        &tlv(&4i64),
        &seal,
        &tlv(&GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(seconds)).unwrap()),
        &tlv(&BitStringRef::from_bytes(&hash::sm3(DOCUMENT)).unwrap()),
        &tlv(&Ia5StringRef::new("/Doc_0/Signs/Sign_0/Signature.xml").unwrap()),
        &sequence(&[&extension]),
    ]);
    let raw = key("authority-sm2.key").sign(&tbs).unwrap();
    let sm2 = ObjectIdentifier::new_unwrap("1.2.156.10197.1.501");
    let signature = sequence(&[
        &tbs,
        &tlv(&OctetStringRef::new(signer.der()).unwrap()),
        &tlv(&sm2),
        &tlv(&BitStringRef::from_bytes(&raw).unwrap()),
    ]);
    let parsed = parse_signature(&signature).unwrap();
    assert_eq!(parsed.to_sign.extensions.len(), 1);
    assert!(parsed.quirks.contains(&zhengyin_ses::Quirk::UntaggedTbsExtensions));
    let report = verify_signature(
        &registry(SealStatus::Active),
        &signature,
        Protected::Bytes(DOCUMENT),
        NOW,
    );
    assert_eq!(report.verdict, Verdict::Valid, "{report:#?}");
    assert!(report
        .checks
        .iter()
        .any(|c| c.code == "quirk" && c.message.contains("6-field")));
}
