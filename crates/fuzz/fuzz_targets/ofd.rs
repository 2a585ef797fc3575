//! Any bytes as an OFD package: verified within the default limits, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use time::macros::datetime;
use zhengyin_crypto::TrustAnchors;
use zhengyin_ses::ofd::{verify_ofd, Limits};
use zhengyin_ses::verify::Offline;

fuzz_target!(|data: &[u8]| {
    let anchors = TrustAnchors::new(Vec::new());
    let ctx = Offline { anchors: &anchors, intermediates: &[], crls: &[] };
    let _ = verify_ofd(&ctx, data, datetime!(2026-11-22 08:00 UTC), Limits::default());
});
