//! Any bytes as a seal and as a sealed signature: parsed and verified, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use time::macros::datetime;
use zhengyin_crypto::TrustAnchors;
use zhengyin_ses::verify::{verify_seal, verify_signature, Offline, Protected};

fuzz_target!(|data: &[u8]| {
    let anchors = TrustAnchors::new(Vec::new());
    let ctx = Offline { anchors: &anchors, intermediates: &[], crls: &[] };
    let now = datetime!(2026-11-22 08:00 UTC);
    if let Ok(seal) = zhengyin_ses::parse_seal(data) {
        let _ = zhengyin_ses::write::encode_seal_info(&seal.info);
    }
    let _ = zhengyin_ses::parse_signature(data);
    let _ = verify_seal(&ctx, data, now);
    let _ = verify_signature(&ctx, data, Protected::Bytes(data), now);
});
