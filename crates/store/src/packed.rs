//! Signed licences and log entries as both backends keep them: compressed with zstd against a
//! dictionary of their format built into the binary (`licence.dict`: the keys, cryptosuite names
//! and administrative words every licence repeats; `log-entry.dict`: every event's keys). A
//! licence is about 1.1 KB of JSON, and most of it is what every other licence says too; packed,
//! about 450 bytes remain (its identifier, names, dates and signature). A licence's log entry,
//! about 480 bytes of hex digests and names, keeps about 180. Readers always get the bytes
//! exactly as they were given: a log entry's leaf hash is over them, never over the packing.
//!
//! Chunks of use records on the embedded store (64 records, some 20 KB of JSON) are packed too,
//! with no dictionary: each is long enough to find its own repetitions (about a tenth remains),
//! and small values keep the store's nodes small.
//!
//! A stored value is one of, by its first byte:
//! - a dictionary's tag (1 for licences, 2 for log entries, 3 for use-record chunks, whose
//!   dictionary is empty) then one zstd frame made with that dictionary, which records its
//!   content size and a checksum of it;
//! - 0 then the bytes themselves, where packing did not pay and the bytes start with
//!   one of these three;
//! - any other first byte: the bytes themselves (written before packing existed, when every
//!   licence and entry was a JSON object, starting with `{`; or where packing did not pay).
//!
//! A dictionary is part of the stored format: changing a byte of one would make every value
//! packed with it unreadable, so their SHA-256 are pinned by a test. A better one is a new tag.

use std::cell::RefCell;
use std::sync::OnceLock;

use zstd::bulk::{Compressor, Decompressor};
use zstd::dict::{DecoderDictionary, EncoderDictionary};

use crate::StoreError;

/// A dictionary (raw content: zstd matches against its bytes directly) and the tag of the
/// values packed with it.
struct Dictionary {
    tag: u8,
    content: &'static [u8],
}

/// Signed licences' dictionary, version 1.
const LICENCE: usize = 0;
/// Log entries' dictionary, version 1.
const LOG_ENTRY: usize = 1;
/// Chunks of use records: no dictionary.
const USE_RECORDS: usize = 2;

const DICTIONARIES: [Dictionary; 3] = [
    Dictionary {
        tag: 1,
        content: include_bytes!("licence.dict"),
    },
    Dictionary {
        tag: 2,
        content: include_bytes!("log-entry.dict"),
    },
    Dictionary { tag: 3, content: b"" },
];

/// The tag of bytes kept as they are, because they start with a tag.
const RAW: u8 = 0;

/// zstd's level: 3 (its default) packs as small as 19 here within a few bytes, far faster.
const LEVEL: i32 = 3;

/// No stored value unpacks larger (the API refuses bodies long before this): a bound on what a
/// corrupt value can make a reader allocate.
const MAX_UNPACKED_BYTES: u64 = 16 << 20;

fn encoder_dictionary(which: usize) -> &'static EncoderDictionary<'static> {
    static PREPARED: [OnceLock<EncoderDictionary<'static>>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    PREPARED[which].get_or_init(|| EncoderDictionary::copy(DICTIONARIES[which].content, LEVEL))
}

fn decoder_dictionary(which: usize) -> &'static DecoderDictionary<'static> {
    static PREPARED: [OnceLock<DecoderDictionary<'static>>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    PREPARED[which].get_or_init(|| DecoderDictionary::copy(DICTIONARIES[which].content))
}

thread_local! {
    // A context per thread and dictionary: making one costs more than packing a value.
    static COMPRESSORS: RefCell<[Option<Compressor<'static>>; 3]> = const { RefCell::new([None, None, None]) };
    static DECOMPRESSORS: RefCell<[Option<Decompressor<'static>>; 3]> = const { RefCell::new([None, None, None]) };
}

/// The stored form of a signed licence.
pub fn pack_licence(signed: &[u8]) -> Vec<u8> {
    pack(LICENCE, signed)
}

/// The stored form of a log entry.
pub fn pack_log_entry(entry: &[u8]) -> Vec<u8> {
    pack(LOG_ENTRY, entry)
}

/// The stored form of a chunk of use records.
pub fn pack_use_records(chunk: &[u8]) -> Vec<u8> {
    pack(USE_RECORDS, chunk)
}

/// Never fails: should zstd refuse (it does not on any input), or packing not pay, the bytes
/// are stored as they are (behind [`RAW`] if they start with a tag).
fn pack(which: usize, bytes: &[u8]) -> Vec<u8> {
    let packed = COMPRESSORS.with(|cell| {
        let mut cell = cell.borrow_mut();
        let slot = &mut cell[which];
        if slot.is_none() {
            let mut compressor = Compressor::with_prepared_dictionary(encoder_dictionary(which)).ok()?;
            // Four bytes that make a damaged value an error, never other bytes.
            compressor.include_checksum(true).ok()?;
            *slot = Some(compressor);
        }
        let compressor = slot.as_mut()?;
        let mut out = vec![0; 1 + zstd::zstd_safe::compress_bound(bytes.len())];
        out[0] = DICTIONARIES[which].tag;
        let written = compressor.compress_to_buffer(bytes, &mut out[1..]).ok()?;
        out.truncate(1 + written);
        Some(out)
    });
    match packed {
        Some(packed) if packed.len() < bytes.len() => packed,
        _ if starts_with_tag(bytes) => [&[RAW][..], bytes].concat(),
        _ => bytes.to_vec(),
    }
}

fn starts_with_tag(bytes: &[u8]) -> bool {
    bytes
        .first()
        .is_some_and(|first| *first == RAW || DICTIONARIES.iter().any(|d| d.tag == *first))
}

/// The bytes of a stored value, whichever way it was stored.
pub fn unpack(stored: &[u8]) -> Result<Vec<u8>, StoreError> {
    let (tag, frame) = match stored.split_first() {
        Some((&RAW, bytes)) => return Ok(bytes.to_vec()),
        Some((tag, frame)) => (*tag, frame),
        None => return Ok(Vec::new()),
    };
    let Some(which) = DICTIONARIES.iter().position(|d| d.tag == tag) else {
        return Ok(stored.to_vec());
    };
    let size = match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(Some(size)) if size <= MAX_UNPACKED_BYTES => size,
        _ => return Err(corrupt("its frame states no plausible size")),
    };
    let capacity = usize::try_from(size).map_err(|_| corrupt("too large"))?;
    DECOMPRESSORS.with(|cell| {
        let mut cell = cell.borrow_mut();
        let slot = &mut cell[which];
        if slot.is_none() {
            *slot = Some(
                Decompressor::with_prepared_dictionary(decoder_dictionary(which))
                    .map_err(|e| corrupt(&e.to_string()))?,
            );
        }
        let decompressor = slot.as_mut().ok_or_else(|| corrupt("no decompressor"))?;
        let bytes = decompressor
            .decompress(frame, capacity)
            .map_err(|e| corrupt(&e.to_string()))?;
        if bytes.len() == capacity {
            Ok(bytes)
        } else {
            Err(corrupt("shorter than its frame states"))
        }
    })
}

fn corrupt(why: &str) -> StoreError {
    StoreError::Corrupt(format!("a stored value: {why}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use sha2::{Digest, Sha256};

    use super::*;

    const LICENCE_JSON: &str = r#"{"defining_authority":"11100000000013338W","face":{"address":"长春市示例路1号","company_form":"有限责任公司","company_name":"吉林示例科技有限公司","established":"2020-02-29","legal_representative":"张三"},"holder":{"code":"91350100M000100Y43","code_type":"001","name":"吉林示例科技有限公司"},"id":"1.2.156.3005.2.11100000000013338W032.11220000013544541J.0NUKV.001.0","issue_date":"2026-12-04","issuer":{"code":"11220000013544541J","level":"city","name":"示例发证机构"},"name":"营业执照","number":"LOAD-x1","proof":{"created":"2026-12-04T13:54:35Z","cryptosuite":"eddsa-jcs-2022","proofPurpose":"assertionMethod","proofValue":"z4rj5Ci9T9hbWEjBzkTq9aCdpXnyivRrAikj7id5SiY1rw2C9caWQB3dqqoXG4tLa7go3ryYPSHYUf2sTKjS3NkR5","seal":null,"type":"DataIntegrityProof","verificationMethod":"urn:zhengyin:cert:sha256:ef926625bfed6c6894434e5829369d28b1348316be6b46a0257c9cf3c60d23a6"},"region_code":"220100","service_item":null,"type":{"code":"11100000000013338W032","name":"营业执照","version":1},"valid_from":"2026-12-04","valid_until":"2046-11-21","version":"001"}"#;

    const LOG_ENTRY_JSON: &str = r#"{"authority":"11220000013544541J","cryptosuite":"eddsa-jcs-2022","document_sha256":"3f6a9c1e0b2d4f5a6c7e8d9f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d","event":"licence.issued","licence":"1.2.156.3005.2.11100000000013338W032.11220000013544541J.0NUKV.001.0","licence_sha256":"9a8b7c6d5e4f30211203f4e5d6c7b8a99a8b7c6d5e4f30211203f4e5d6c7b8a9","time":"2026-12-04T13:54:35Z","verification_method":"urn:zhengyin:cert:sha256:ef926625bfed6c6894434e5829369d28b1348316be6b46a0257c9cf3c60d23a6"}"#;

    #[test]
    fn the_dictionaries_are_the_ones_stored_values_were_packed_with() {
        // Packed values cannot be read with any other dictionary: a new one is a new tag.
        assert_eq!(
            format!("{:x}", Sha256::digest(DICTIONARIES[LICENCE].content)),
            "73d6bc7ef8df49b4585b8ce6d0b4fe9919cb2a3809be5b9389b28320c40a04e2",
            "licence.dict changed"
        );
        assert_eq!(
            format!("{:x}", Sha256::digest(DICTIONARIES[LOG_ENTRY].content)),
            "a8cfb6cb5f48663b58f5ae4293afd7306648771822eba62a845d2798b2604e95",
            "log-entry.dict changed"
        );
    }

    #[test]
    fn a_log_entry_packs_to_under_half_and_unpacks_to_the_same_bytes() {
        let packed = pack_log_entry(LOG_ENTRY_JSON.as_bytes());
        assert_eq!(packed[0], DICTIONARIES[LOG_ENTRY].tag);
        assert!(
            packed.len() * 2 < LOG_ENTRY_JSON.len(),
            "{} of {}",
            packed.len(),
            LOG_ENTRY_JSON.len()
        );
        assert_eq!(unpack(&packed).unwrap(), LOG_ENTRY_JSON.as_bytes());
    }

    #[test]
    fn a_licence_packs_to_well_under_half_and_unpacks_to_the_same_bytes() {
        let packed = pack_licence(LICENCE_JSON.as_bytes());
        assert_eq!(packed[0], DICTIONARIES[LICENCE].tag);
        assert!(
            packed.len() * 5 < LICENCE_JSON.len() * 2,
            "{} of {}",
            packed.len(),
            LICENCE_JSON.len()
        );
        assert_eq!(unpack(&packed).unwrap(), LICENCE_JSON.as_bytes());
    }

    #[test]
    fn a_chunk_of_use_records_packs_to_a_fifth_and_unpacks_to_the_same_bytes() {
        let record = |n: u32| {
            format!(
                r#"{{"authorisation":null,"department":"11220100MB0000000X","grant":null,"holder":{{"code":"9135010{n:011}","code_type":"001"}},"id":"UR18{n:014x}","licences":["1.2.156.3005.2.11100000000013338W032.11220000013544541J.{n:05}.001.0"],"operation":"verify","outcome":"answered","service_item":"220100-FOOD-001","time":"2026-12-04T13:54:35.{n:06}Z","type_code":"11100000000013338W032","use_cause":"核验"}}"#
            )
        };
        let chunk = format!("[{}]", (0..64).map(record).collect::<Vec<_>>().join(","));
        let packed = pack_use_records(chunk.as_bytes());
        assert_eq!(packed[0], DICTIONARIES[USE_RECORDS].tag);
        assert!(packed.len() * 5 < chunk.len(), "{} of {}", packed.len(), chunk.len());
        assert_eq!(unpack(&packed).unwrap(), chunk.as_bytes());
    }

    #[test]
    fn values_written_before_packing_read_as_they_are() {
        assert_eq!(unpack(LICENCE_JSON.as_bytes()).unwrap(), LICENCE_JSON.as_bytes());
        // Bytes packing does not shrink are kept as they are, behind a tag only where their
        // first byte is one.
        for bytes in [&b"[1]"[..], b"", b"b1", b"\x00x", b"\x01x", b"\x02", b"\x03y"] {
            let stored = pack_log_entry(bytes);
            assert_eq!(stored.len(), bytes.len() + usize::from(starts_with_tag(bytes)));
            assert_eq!(unpack(&stored).unwrap(), bytes);
        }
    }

    #[test]
    fn a_damaged_value_is_corrupt_not_a_panic_or_a_wrong_licence() {
        let packed = pack_licence(LICENCE_JSON.as_bytes());
        for cut in [1, 2, 5, packed.len() / 2, packed.len() - 1] {
            assert!(
                matches!(unpack(&packed[..cut]), Err(StoreError::Corrupt(_))),
                "cut at {cut}"
            );
        }
        for at in 1..packed.len() {
            let mut flipped = packed.clone();
            flipped[at] ^= 0x40;
            // An error, or (a bit the decoder never reads) the very same bytes: never others.
            assert!(
                unpack(&flipped).map_or(true, |bytes| bytes == LICENCE_JSON.as_bytes()),
                "a bit flipped at {at} gave other bytes"
            );
        }
        assert!(matches!(unpack(&[2, 1, 2]), Err(StoreError::Corrupt(_))));
    }
}
