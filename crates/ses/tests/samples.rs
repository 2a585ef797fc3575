//! The real seals and signatures made by ofdrw (see tests/vectors/README.md), and a third-party
//! seal with vendor quirks.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use zhengyin_ses::format::CertList;
use zhengyin_ses::{parse_seal, parse_signature, Quirk, Version};

fn sample(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/vectors/gmt0031-gbt38540-ofdrw")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

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
