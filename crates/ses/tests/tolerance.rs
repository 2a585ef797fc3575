//! Real vendors' quirks, each in a synthetic file made here: read and reported with a warning or
//! a doubt, never by loosening a check that protects a signature.
//! - A v1 seal whose certificate list is an `IA5String` instead of certificates: read, a `quirk`
//!   warning; which signers it allows is unknown, so a signature with it is at best INDETERMINATE.
//! - A maker certificate not yet valid at the seal's self-declared make date but valid when the
//!   seal is used: `maker_certificate` INDETERMINATE naming both dates, not INVALID.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{cert, key, our_seal, registry, seal_made_at, sequence, tlv, ES_ID, PNG};
use der::asn1::{BitStringRef, Ia5StringRef, ObjectIdentifier, OctetStringRef, UtcTime, Utf8StringRef};
use time::macros::datetime;
use time::OffsetDateTime;
use zhengyin_crypto::{hash, Signer as _};
use zhengyin_model::{Outcome, Verdict, VerificationReport};
use zhengyin_ses::format::{CertList, Quirk};
use zhengyin_ses::verify::{verify_seal, verify_signature, Protected, SealStatus};
use zhengyin_ses::write::apply_seal;
use zhengyin_ses::{parse_seal, Version};

const DOCUMENT: &[u8] = b"<ofd:Signature>an example Signature.xml</ofd:Signature>";
const SIGNED_AT: OffsetDateTime = datetime!(2026-06-01 09:30 UTC);
const NOW: OffsetDateTime = datetime!(2026-11-22 08:00 UTC);

fn check<'a>(report: &'a VerificationReport, code: &str) -> &'a zhengyin_model::Check {
    report.checks.iter().find(|c| c.code == code).unwrap()
}

fn utc(at: OffsetDateTime) -> Vec<u8> {
    tlv(&UtcTime::from_unix_duration(std::time::Duration::from_secs(
        u64::try_from(at.unix_timestamp()).unwrap(),
    ))
    .unwrap())
}

/// A GM/T 0031-2014 (v1) seal as one vendor writes it: text where the certificate list goes,
/// signed by the example seal maker.
fn v1_seal_with_text_list() -> Vec<u8> {
    let info = sequence(&[
        &sequence(&[
            &tlv(&Ia5StringRef::new("ES").unwrap()),
            &tlv(&1i64),
            &tlv(&Ia5StringRef::new("Vendor").unwrap()),
        ]),
        &tlv(&Ia5StringRef::new(ES_ID).unwrap()),
        &sequence(&[
            &tlv(&1i64),
            &tlv(&Utf8StringRef::new("吉林示例科技有限公司合同专用章").unwrap()),
            &tlv(&Ia5StringRef::new("cert list").unwrap()),
            &utc(datetime!(2026-01-01 00:00 UTC)),
            &utc(datetime!(2026-01-01 00:00 UTC)),
            &utc(datetime!(2028-01-01 00:00 UTC)),
        ]),
        &sequence(&[
            &tlv(&Ia5StringRef::new("PNG").unwrap()),
            &tlv(&OctetStringRef::new(PNG).unwrap()),
            &tlv(&40i64),
            &tlv(&40i64),
        ]),
    ]);
    let maker = cert("seal-maker.pem");
    let cert_tlv = tlv(&OctetStringRef::new(maker.der()).unwrap());
    let alg_tlv = tlv(&ObjectIdentifier::new_unwrap("1.2.156.10197.1.501"));
    let covered = sequence(&[&info, &cert_tlv, &alg_tlv]);
    let signature = key("seal-maker.key").sign(&covered).unwrap();
    sequence(&[
        &info,
        &sequence(&[
            &cert_tlv,
            &alg_tlv,
            &tlv(&BitStringRef::from_bytes(&signature).unwrap()),
        ]),
    ])
}

#[test]
fn a_v1_seal_listing_text_for_certificates_is_read_with_a_warning() {
    let seal = v1_seal_with_text_list();
    let parsed = parse_seal(&seal).unwrap();
    assert_eq!(parsed.version, Version::V1);
    assert_eq!(parsed.info.property.cert_list, CertList::Text("cert list"));
    assert!(parsed.quirks.contains(&Quirk::TextCertList));

    // The seal alone: its maker signature holds; the quirk is a warning.
    let active = registry(SealStatus::Active);
    let report = verify_seal(&active, &seal, NOW);
    assert_eq!(check(&report, "seal_signature").outcome, Outcome::Passed, "{report:#?}");
    assert!(report
        .checks
        .iter()
        .any(|c| c.code == "quirk" && c.outcome == Outcome::Warning && c.message.contains("IA5String")));
    assert_eq!(report.verdict, Verdict::Valid, "{report:#?}");

    // Applied: whether the seal allows this signer is unknown, so never VALID.
    let signature = applied(&seal);
    let report = verify_signature(&active, &signature, Protected::Bytes(DOCUMENT), NOW);
    assert_eq!(
        check(&report, "signer_signature").outcome,
        Outcome::Passed,
        "{report:#?}"
    );
    assert_eq!(check(&report, "signer_in_seal").outcome, Outcome::Indeterminate);
    assert_eq!(report.verdict, Verdict::Indeterminate);

    // A byte of the text changed: the maker's signature no longer holds.
    let at = seal.windows(9).position(|w| w == b"cert list").unwrap();
    let mut changed = seal.clone();
    changed[at] = b'C';
    let report = verify_seal(&active, &changed, NOW);
    assert_eq!(check(&report, "seal_signature").outcome, Outcome::Failed);
    assert_eq!(report.verdict, Verdict::Invalid);
}

/// `seal` applied by the example SM2 authority to [`DOCUMENT`] at [`SIGNED_AT`].
fn applied(seal: &[u8]) -> Vec<u8> {
    apply_seal(
        seal,
        SIGNED_AT,
        &hash::sm3(DOCUMENT),
        "/Doc_0/Signs/Sign_0/Signature.xml",
        cert("authority-sm2.pem").der(),
        &key("authority-sm2.key"),
    )
    .unwrap()
}

#[test]
fn a_maker_certificate_not_yet_valid_at_the_claimed_make_date_is_a_doubt_not_a_failure() {
    let active = registry(SealStatus::Active);
    // The example seal maker's certificate is valid from 2025-01-01; the seal claims 2024-06-01.
    let early = seal_made_at(datetime!(2024-06-01 00:00 UTC));
    let report = verify_seal(&active, &early, NOW);
    let maker = check(&report, "maker_certificate");
    assert_eq!(maker.outcome, Outcome::Indeterminate, "{report:#?}");
    assert!(
        maker.message.contains("2024-06-01") && maker.message.contains("2026-11-22"),
        "{}",
        maker.message
    );
    assert_eq!(report.verdict, Verdict::Indeterminate);

    let signature = applied(&early);
    let report = verify_signature(&active, &signature, Protected::Bytes(DOCUMENT), NOW);
    let maker = check(&report, "maker_certificate");
    assert_eq!(maker.outcome, Outcome::Indeterminate, "{report:#?}");
    assert!(maker.message.contains("2026-06-01"), "{}", maker.message);
    assert_eq!(report.verdict, Verdict::Indeterminate);

    // Still a failure: a make date after the certificate expired, and any other chain fault.
    let late = seal_made_at(datetime!(2036-01-01 00:00 UTC));
    let report = verify_seal(&active, &late, NOW);
    assert_eq!(check(&report, "maker_certificate").outcome, Outcome::Failed);
    assert_eq!(report.verdict, Verdict::Invalid);
    // And the ordinary seal is untouched.
    assert_eq!(verify_seal(&active, &our_seal(), NOW).verdict, Verdict::Valid);
}
