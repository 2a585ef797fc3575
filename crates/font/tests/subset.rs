//! Subsets of a real CJK font read back: every character keeps its outline and advance under
//! its new glyph number; bad fonts are refused with an error, never a panic.
//!
//! The font is WenQuanYi Micro Hei (Debian's fonts-wqy-microhei, installed by
//! scripts/test-deps.sh): a TrueType collection of two faces with some 30,000 glyphs.

#![allow(clippy::unwrap_used, clippy::panic)]

use zhengyin_font::{Font, FontError};

const WQY: &str = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc";
const TEXT: &str = "营业执照 统一社会信用代码 91110000MA01ABCD2X 住所：北京市海淀区 ，。（）ÅÉ";

fn wqy() -> Vec<u8> {
    std::fs::read(WQY).unwrap_or_else(|e| panic!("{WQY}: {e} (bash scripts/test-deps.sh installs it)"))
}

#[test]
fn a_subset_keeps_each_characters_outline_and_advance() {
    for face in [0, 1] {
        let font = Font::parse(wqy(), face).unwrap();
        assert!(font.family().starts_with("WenQuanYi Micro Hei"), "{}", font.family());
        let subset = font.subset(TEXT).unwrap();
        assert!(subset.missing.is_empty(), "{:?}", subset.missing);
        assert!(subset.bytes.len() < 40_000, "{} bytes", subset.bytes.len());

        let small = Font::parse(subset.bytes.clone(), 0).unwrap();
        assert_eq!(small.family(), font.family());
        let distinct: std::collections::BTreeSet<char> = TEXT.chars().collect();
        // .notdef, one glyph per distinct character and the components of composite ones.
        assert!(usize::from(small.glyph_count()) > distinct.len());
        let mut composites = 0;
        for c in distinct {
            let (old, new) = (
                font.outline(font.glyph(c).unwrap()).unwrap(),
                small.outline(small.glyph(c).unwrap()).unwrap(),
            );
            if old.first().is_some_and(|&b| b & 0x80 != 0) {
                // A composite: the same record, its components renumbered (tests/fonts.rs
                // compares the drawn points with an independent reader).
                composites += 1;
                assert_eq!(old.len(), new.len(), "{c}");
            } else {
                assert_eq!(old, new, "{c}");
            }
            assert_eq!(font.advance(c), small.advance(c), "{c}");
        }
        assert!(composites > 0, "the text exercises composite glyphs");
        assert_eq!(small.glyph('龘'), None, "a character not asked for");
    }
}

#[test]
fn characters_the_font_lacks_are_named() {
    let font = Font::parse(wqy(), 0).unwrap();
    let subset = font.subset("证\u{F8FF}照\u{10FFFD}\u{F8FF}\n").unwrap();
    assert_eq!(subset.missing, ['\u{F8FF}', '\u{10FFFD}']);
    let small = Font::parse(subset.bytes, 0).unwrap();
    assert!(small.glyph('证').is_some() && small.glyph('照').is_some());
}

#[test]
fn the_whole_file_checksum_is_the_magic_number() {
    let bytes = Font::parse(wqy(), 0).unwrap().subset(TEXT).unwrap().bytes;
    assert_eq!(bytes.len() % 4, 0);
    let sum = bytes
        .chunks(4)
        .fold(0u32, |s, w| s.wrapping_add(u32::from_be_bytes(w.try_into().unwrap())));
    assert_eq!(sum, 0xB1B0_AFBA);
}

#[test]
fn what_is_not_a_truetype_font_is_refused() {
    assert!(matches!(
        Font::parse(b"PK\x03\x04 a zip".to_vec(), 0),
        Err(FontError::NotAFont(_))
    ));
    assert!(matches!(Font::parse(Vec::new(), 0), Err(FontError::NotAFont(_))));
    let mut cff = wqy();
    let face = u32::from_be_bytes(cff[12..16].try_into().unwrap()) as usize;
    cff[face..face + 4].copy_from_slice(b"OTTO");
    let refused = Font::parse(cff, 0).unwrap_err();
    assert!(matches!(refused, FontError::Unsupported(_)), "{refused}");
    assert!(refused.to_string().contains("CFF"));
    let refused = Font::parse(wqy(), 2).unwrap_err();
    assert!(refused.to_string().contains("2 faces"), "{refused}");
}

#[test]
fn a_truncated_or_scribbled_font_is_an_error_not_a_panic() {
    let whole = wqy();
    // The first face's tables: a cut anywhere in them, and changed bytes in their directory.
    for len in (0..4096)
        .step_by(7)
        .chain((4096..whole.len()).step_by(whole.len() / 97))
    {
        if let Ok(font) = Font::parse(whole[..len].to_vec(), 0) {
            let _ = font.subset(TEXT);
        }
    }
    for at in (0..600).step_by(3) {
        let mut bad = whole.clone();
        bad[at] ^= 0xA5;
        if let Ok(font) = Font::parse(bad, 0) {
            let _ = font.subset(TEXT);
        }
    }
    let cut = Font::parse(whole[..whole.len() / 2].to_vec(), 0).unwrap_err();
    assert!(cut.to_string().contains("outside the file"), "{cut}");
}
