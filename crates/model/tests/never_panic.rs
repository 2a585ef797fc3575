//! Parsers of untrusted input never panic (a stable-toolchain stand-in for fuzz targets).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use zhengyin_model::{canonical, CitizenId, LicenceId, ReceivedLicence, TypeCode, Uscc};

proptest! {
    #[test]
    fn identifiers(text in "\\PC{0,90}", id_like in "1\\.2\\.156\\.3005\\.2\\.[0-9A-Z.]{0,80}") {
        for s in [&text, &id_like] {
            let _ = LicenceId::parse(s);
            let _ = Uscc::parse(s);
            let _ = CitizenId::parse(s);
            let _ = TypeCode::parse(s);
        }
    }

    #[test]
    fn json(bytes in proptest::collection::vec(any::<u8>(), 0..400), nested in "[\\[\\]{}\":,0-9a-z.eE+-]{0,200}") {
        for b in [bytes.as_slice(), nested.as_bytes()] {
            if let Ok(v) = canonical::parse_strict(b) {
                let c = canonical::to_canonical(&v).unwrap();
                prop_assert_eq!(canonical::parse_strict(&c).unwrap(), v);
            }
            let _ = ReceivedLicence::parse(b);
        }
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = "[".repeat(100_000);
    assert!(canonical::parse_strict(deep.as_bytes()).is_err());
}
