//! The example PKI, a registry of one seal, and the samples, for the tests of this crate.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod package;

use std::path::PathBuf;

use time::macros::datetime;
use time::OffsetDateTime;
use zhengyin_crypto::{Certificate, FileKey, TrustAnchors};
use zhengyin_ses::format::SealPicture;
use zhengyin_ses::verify::{Context, SealStatus};
use zhengyin_ses::write::{make_seal, NewSeal};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn sample(name: &str) -> Vec<u8> {
    std::fs::read(root().join("tests/vectors/gmt0031-gbt38540-ofdrw").join(name)).unwrap()
}

pub fn cert(name: &str) -> Certificate {
    Certificate::all_from_pem(&std::fs::read_to_string(root().join("keys-example").join(name)).unwrap())
        .unwrap()
        .remove(0)
}

pub fn key(name: &str) -> FileKey {
    FileKey::from_pem_file(&root().join("keys-example").join(name)).unwrap()
}

/// A registry of one seal, with the example PKI.
pub struct Registry {
    pub anchors: TrustAnchors,
    pub intermediates: Vec<Certificate>,
    pub status: SealStatus,
}

impl Context for Registry {
    fn anchors(&self) -> &TrustAnchors {
        &self.anchors
    }
    fn intermediates(&self) -> &[Certificate] {
        &self.intermediates
    }
    fn seal_status(&self, es_id: &str, _: OffsetDateTime) -> SealStatus {
        if es_id == ES_ID {
            self.status.clone()
        } else {
            SealStatus::Unknown
        }
    }
}

pub const ES_ID: &str = "22010000000000001";
pub const PNG: &[u8] = b"\x89PNG\r\n\x1a\n(an example image)";

pub fn registry(status: SealStatus) -> Registry {
    Registry {
        anchors: TrustAnchors::new(vec![cert("root-ca.pem")]),
        intermediates: vec![cert("issuing-ca.pem")],
        status,
    }
}

pub fn our_seal() -> Vec<u8> {
    seal_made_at(datetime!(2026-01-01 00:00 UTC))
}

/// The example seal (valid 2026–2028, the SM2 authority its signer), claiming `created` as its
/// make date.
pub fn seal_made_at(created: OffsetDateTime) -> Vec<u8> {
    let signer = cert("authority-sm2.pem");
    let seal = NewSeal {
        vendor_id: "Zhengyin",
        es_id: ES_ID,
        seal_type: 1,
        name: "吉林示例科技有限公司合同专用章",
        signer_certificates: vec![signer.der()],
        created,
        valid_start: datetime!(2026-01-01 00:00 UTC),
        valid_end: datetime!(2028-01-01 00:00 UTC),
        picture: SealPicture {
            kind: "PNG",
            data: PNG,
            width: 40,
            height: 40,
        },
    };
    make_seal(&seal, cert("seal-maker.pem").der(), &key("seal-maker.key")).unwrap()
}

/// DER of one value.
pub fn tlv(v: &impl der::Encode) -> Vec<u8> {
    der::Encode::to_der(v).unwrap()
}

/// DER of a SEQUENCE of already encoded parts.
pub fn sequence(parts: &[&[u8]]) -> Vec<u8> {
    let body: Vec<u8> = parts.concat();
    let mut out = tlv(&der::Header::new(der::Tag::Sequence, der::Length::try_from(body.len()).unwrap()).unwrap());
    out.extend(body);
    out
}
