//! Signed licences as both backends keep them: compressed with zstd against a dictionary of the
//! licence format built into the binary (`licence.dict`: the keys, cryptosuite names and
//! administrative words every licence repeats). A licence is about 1.1 KB of JSON, and most of it
//! is what every other licence says too; packed, about 400 bytes remain (its identifier, names,
//! dates and signature). Readers always get the signed bytes exactly as they were given.
//!
//! A stored value is one of:
//! - the signed bytes themselves, which start with `{` (written before packing existed);
//! - [`ZSTD_WITH_DICTIONARY_V1`] then one zstd frame, made with `licence.dict`, that records its
//!   content size.
//!
//! The dictionary is part of the stored format: changing a byte of it would make every packed
//! licence unreadable, so its SHA-256 is pinned by a test. A better dictionary is a new tag.

use std::cell::RefCell;
use std::sync::OnceLock;

use zstd::bulk::{Compressor, Decompressor};
use zstd::dict::{DecoderDictionary, EncoderDictionary};

use crate::StoreError;

/// The tag of a value packed with zstd and dictionary version 1.
const ZSTD_WITH_DICTIONARY_V1: u8 = 1;

/// Dictionary version 1 (raw content: zstd matches against its bytes directly).
const DICTIONARY_V1: &[u8] = include_bytes!("licence.dict");

/// zstd's level: 3 (its default) packs as small as 19 here within a few bytes, far faster.
const LEVEL: i32 = 3;

/// No signed licence is larger (the API refuses bodies long before this): a bound on what a
/// corrupt value can make a reader allocate.
const MAX_SIGNED_BYTES: u64 = 16 << 20;

fn encoder_dictionary() -> &'static EncoderDictionary<'static> {
    static DICTIONARY: OnceLock<EncoderDictionary<'static>> = OnceLock::new();
    DICTIONARY.get_or_init(|| EncoderDictionary::copy(DICTIONARY_V1, LEVEL))
}

fn decoder_dictionary() -> &'static DecoderDictionary<'static> {
    static DICTIONARY: OnceLock<DecoderDictionary<'static>> = OnceLock::new();
    DICTIONARY.get_or_init(|| DecoderDictionary::copy(DICTIONARY_V1))
}

thread_local! {
    // A context per thread: making one costs more than packing a licence.
    static COMPRESSOR: RefCell<Option<Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<Decompressor<'static>>> = const { RefCell::new(None) };
}

/// The stored form of a signed licence. Never fails: should zstd refuse (it does not on any
/// input), or packing not pay, the signed bytes are stored as they are.
pub(crate) fn pack(signed: &[u8]) -> Vec<u8> {
    let packed = COMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.is_none() {
            *cell = Compressor::with_prepared_dictionary(encoder_dictionary()).ok();
        }
        let compressor = cell.as_mut()?;
        let mut out = vec![0; 1 + zstd::zstd_safe::compress_bound(signed.len())];
        out[0] = ZSTD_WITH_DICTIONARY_V1;
        let written = compressor.compress_to_buffer(signed, &mut out[1..]).ok()?;
        out.truncate(1 + written);
        Some(out)
    });
    match packed {
        Some(packed) if packed.len() < signed.len() && signed.first() == Some(&b'{') => packed,
        _ => signed.to_vec(),
    }
}

/// The signed bytes of a stored value.
pub(crate) fn unpack(stored: &[u8]) -> Result<Vec<u8>, StoreError> {
    match stored.split_first() {
        Some((b'{', _)) => Ok(stored.to_vec()),
        Some((&ZSTD_WITH_DICTIONARY_V1, frame)) => {
            let size = match zstd::zstd_safe::get_frame_content_size(frame) {
                Ok(Some(size)) if size <= MAX_SIGNED_BYTES => size,
                _ => return Err(corrupt("its frame states no plausible size")),
            };
            let capacity = usize::try_from(size).map_err(|_| corrupt("too large"))?;
            DECOMPRESSOR.with(|cell| {
                let mut cell = cell.borrow_mut();
                if cell.is_none() {
                    *cell = Some(
                        Decompressor::with_prepared_dictionary(decoder_dictionary())
                            .map_err(|e| corrupt(&e.to_string()))?,
                    );
                }
                let decompressor = cell.as_mut().ok_or_else(|| corrupt("no decompressor"))?;
                let signed = decompressor
                    .decompress(frame, capacity)
                    .map_err(|e| corrupt(&e.to_string()))?;
                if signed.len() == capacity {
                    Ok(signed)
                } else {
                    Err(corrupt("shorter than its frame states"))
                }
            })
        }
        Some((tag, _)) => Err(corrupt(&format!("unknown packing {tag}"))),
        None => Err(corrupt("empty")),
    }
}

fn corrupt(why: &str) -> StoreError {
    StoreError::Corrupt(format!("a stored licence: {why}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use sha2::{Digest, Sha256};

    use super::*;

    const LICENCE: &str = r#"{"defining_authority":"11100000000013338W","face":{"address":"长春市示例路1号","company_form":"有限责任公司","company_name":"吉林示例科技有限公司","established":"2020-02-29","legal_representative":"张三"},"holder":{"code":"91350100M000100Y43","code_type":"001","name":"吉林示例科技有限公司"},"id":"1.2.156.3005.2.11100000000013338W032.11220000013544541J.0NUKV.001.0","issue_date":"2026-12-04","issuer":{"code":"11220000013544541J","level":"city","name":"示例发证机构"},"name":"营业执照","number":"LOAD-x1","proof":{"created":"2026-12-04T13:54:35Z","cryptosuite":"eddsa-jcs-2022","proofPurpose":"assertionMethod","proofValue":"z4rj5Ci9T9hbWEjBzkTq9aCdpXnyivRrAikj7id5SiY1rw2C9caWQB3dqqoXG4tLa7go3ryYPSHYUf2sTKjS3NkR5","seal":null,"type":"DataIntegrityProof","verificationMethod":"urn:zhengyin:cert:sha256:ef926625bfed6c6894434e5829369d28b1348316be6b46a0257c9cf3c60d23a6"},"region_code":"220100","service_item":null,"type":{"code":"11100000000013338W032","name":"营业执照","version":1},"valid_from":"2026-12-04","valid_until":"2046-11-21","version":"001"}"#;

    #[test]
    fn the_dictionary_is_the_one_stored_licences_were_packed_with() {
        // Packed licences cannot be read with any other dictionary: a new one is a new tag.
        assert_eq!(
            hex(&Sha256::digest(DICTIONARY_V1)),
            "73d6bc7ef8df49b4585b8ce6d0b4fe9919cb2a3809be5b9389b28320c40a04e2",
            "licence.dict changed"
        );
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn a_licence_packs_to_well_under_half_and_unpacks_to_the_same_bytes() {
        let packed = pack(LICENCE.as_bytes());
        assert_eq!(packed[0], ZSTD_WITH_DICTIONARY_V1);
        assert!(
            packed.len() * 5 < LICENCE.len() * 2,
            "{} of {}",
            packed.len(),
            LICENCE.len()
        );
        assert_eq!(unpack(&packed).unwrap(), LICENCE.as_bytes());
    }

    #[test]
    fn values_written_before_packing_read_as_they_are() {
        assert_eq!(unpack(LICENCE.as_bytes()).unwrap(), LICENCE.as_bytes());
        // Bytes that are not a JSON object (a replicated licence is taken as given) stay raw too.
        assert_eq!(pack(b"[1]"), b"[1]");
        assert_eq!(pack(b""), b"");
    }

    #[test]
    fn a_damaged_value_is_corrupt_not_a_panic_or_a_wrong_licence() {
        let packed = pack(LICENCE.as_bytes());
        for cut in [1, 2, 5, packed.len() / 2, packed.len() - 1] {
            assert!(
                matches!(unpack(&packed[..cut]), Err(StoreError::Corrupt(_))),
                "cut at {cut}"
            );
        }
        let mut flipped = packed.clone();
        let last = flipped.len() - 1;
        flipped[last / 2] ^= 0x40;
        // zstd frames made here carry no checksum: a flip may decode, but never to the licence.
        assert!(unpack(&flipped).map_or(true, |bytes| bytes != LICENCE.as_bytes()));
        assert!(matches!(unpack(&[9, 1, 2]), Err(StoreError::Corrupt(_))));
        assert!(matches!(unpack(&[]), Err(StoreError::Corrupt(_))));
    }
}
