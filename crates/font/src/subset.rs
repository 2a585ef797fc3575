//! Writing the subset: the glyphs a text needs, renumbered, with the tables that describe them.

use std::collections::{BTreeMap, BTreeSet};

use crate::read::Table;
use crate::{cmap, Font, FontError};

/// A subset font and the characters it could not give.
#[derive(Debug, Clone)]
pub struct Subset {
    /// The font file (TrueType).
    pub bytes: Vec<u8>,
    /// Characters of the text the font has no glyph for, in order, once each.
    pub missing: Vec<char>,
}

// Composite glyph flags (OpenType `glyf`).
const ARGS_ARE_WORDS: u16 = 0x0001;
const HAS_SCALE: u16 = 0x0008;
const MORE_COMPONENTS: u16 = 0x0020;
const HAS_X_Y_SCALE: u16 = 0x0040;
const HAS_TWO_BY_TWO: u16 = 0x0080;

/// Tables kept byte for byte: names and licence, OS/2 metrics, hinting programs.
const KEPT: [&[u8; 4]; 6] = [b"OS/2", b"cvt ", b"fpgm", b"gasp", b"name", b"prep"];

pub(crate) fn write(font: &Font, text: &str) -> Result<Subset, FontError> {
    let mut chars = BTreeMap::new();
    let mut missing = Vec::new();
    for c in text.chars().collect::<BTreeSet<_>>() {
        match font.glyph(c) {
            Some(glyph) => {
                chars.insert(u32::from(c), glyph);
            }
            None if c.is_control() => {}
            None => missing.push(c),
        }
    }
    let glyphs = closure(font, chars.values().copied())?;
    let renumbered: BTreeMap<u16, u16> = glyphs.iter().zip(0u16..).map(|(&old, new)| (old, new)).collect();
    let count = glyphs.len() as u16;

    let mut glyf = Vec::new();
    let mut loca = Vec::with_capacity((glyphs.len() + 1) * 4);
    let mut hmtx = Vec::with_capacity(glyphs.len() * 4);
    for &old in &glyphs {
        loca.extend_from_slice(&(glyf.len() as u32).to_be_bytes());
        let start = glyf.len();
        glyf.extend_from_slice(font.outline(old)?);
        for (at, component) in components(font.outline(old)?)? {
            let new = renumbered.get(&component).copied().unwrap_or(0);
            glyf[start + at..start + at + 2].copy_from_slice(&new.to_be_bytes());
        }
        glyf.resize(glyf.len().next_multiple_of(4), 0);
        let (advance, lsb) = font.metrics(old)?;
        hmtx.extend_from_slice(&advance.to_be_bytes());
        hmtx.extend_from_slice(&lsb.to_be_bytes());
    }
    loca.extend_from_slice(&(glyf.len() as u32).to_be_bytes());

    let map: BTreeMap<u32, u16> = chars
        .iter()
        .map(|(&c, old)| (c, renumbered.get(old).copied().unwrap_or(0)))
        .collect();

    let mut head = font.table(b"head", "head")?.slice(0, 54)?.to_vec();
    head[8..12].fill(0);
    head[50..52].copy_from_slice(&1i16.to_be_bytes());
    let mut hhea = font.table(b"hhea", "hhea")?.slice(0, 36)?.to_vec();
    hhea[34..36].copy_from_slice(&count.to_be_bytes());
    let mut maxp = font.table(b"maxp", "maxp")?.bytes.to_vec();
    maxp[4..6].copy_from_slice(&count.to_be_bytes());
    let mut post = match font.raw_table(b"post") {
        Some(post) if post.len() >= 32 => post[..32].to_vec(),
        _ => vec![0; 32],
    };
    post[0..4].copy_from_slice(&0x0003_0000u32.to_be_bytes());

    let mut tables: BTreeMap<[u8; 4], Vec<u8>> = BTreeMap::new();
    for tag in KEPT {
        if let Some(bytes) = font.raw_table(tag) {
            tables.insert(*tag, bytes.to_vec());
        }
    }
    tables.insert(*b"cmap", cmap::write(&map)?);
    tables.insert(*b"glyf", glyf);
    tables.insert(*b"head", head);
    tables.insert(*b"hhea", hhea);
    tables.insert(*b"hmtx", hmtx);
    tables.insert(*b"loca", loca);
    tables.insert(*b"maxp", maxp);
    tables.insert(*b"post", post);
    Ok(Subset {
        bytes: assemble(&tables),
        missing,
    })
}

/// Glyph 0 (`.notdef`), the given glyphs and every component of a composite among them.
fn closure(font: &Font, glyphs: impl Iterator<Item = u16>) -> Result<BTreeSet<u16>, FontError> {
    let mut set = BTreeSet::new();
    let mut todo: Vec<u16> = std::iter::once(0).chain(glyphs).collect();
    while let Some(glyph) = todo.pop() {
        if !set.insert(glyph) {
            continue;
        }
        for (_, component) in components(font.outline(glyph)?)? {
            if component >= font.num_glyphs {
                return Err(crate::malformed(
                    "glyf",
                    format!("glyph {glyph} names component {component}, past the last glyph"),
                ));
            }
            todo.push(component);
        }
    }
    Ok(set)
}

/// A composite glyph's components: where each one's glyph index is in the outline, and the index.
fn components(outline: &[u8]) -> Result<Vec<(usize, u16)>, FontError> {
    let glyph = Table::new("glyf", outline);
    if outline.is_empty() || glyph.i16(0)? >= 0 {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    let mut at = 10;
    loop {
        let flags = glyph.u16(at)?;
        found.push((at + 2, glyph.u16(at + 2)?));
        at += 4 + if flags & ARGS_ARE_WORDS != 0 { 4 } else { 2 };
        at += if flags & HAS_SCALE != 0 {
            2
        } else if flags & HAS_X_Y_SCALE != 0 {
            4
        } else if flags & HAS_TWO_BY_TWO != 0 {
            8
        } else {
            0
        };
        if flags & MORE_COMPONENTS == 0 {
            return Ok(found);
        }
    }
}

/// The font file: the table directory (tags in order), each table 4-byte aligned with its
/// checksum, and `head`'s whole-file checksum adjustment.
fn assemble(tables: &BTreeMap<[u8; 4], Vec<u8>>) -> Vec<u8> {
    let n = tables.len();
    let search = 1usize << (usize::BITS - 1 - n.leading_zeros());
    let mut out = Vec::new();
    out.extend_from_slice(&0x0001_0000u32.to_be_bytes());
    for v in [n, search * 16, search.trailing_zeros() as usize, n * 16 - search * 16] {
        out.extend_from_slice(&(v as u16).to_be_bytes());
    }
    let mut offset = 12 + n * 16;
    let mut head_at = None;
    for (tag, bytes) in tables {
        if tag == b"head" {
            head_at = Some(offset);
        }
        out.extend_from_slice(tag);
        out.extend_from_slice(&checksum(bytes).to_be_bytes());
        out.extend_from_slice(&(offset as u32).to_be_bytes());
        out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        offset += bytes.len().next_multiple_of(4);
    }
    for bytes in tables.values() {
        out.extend_from_slice(bytes);
        out.resize(out.len().next_multiple_of(4), 0);
    }
    if let Some(at) = head_at {
        let adjustment = 0xB1B0_AFBAu32.wrapping_sub(checksum(&out));
        out[at + 8..at + 12].copy_from_slice(&adjustment.to_be_bytes());
    }
    out
}

/// The OpenType table checksum: the sum of its big-endian words, zero-padded.
fn checksum(bytes: &[u8]) -> u32 {
    bytes.chunks(4).fold(0u32, |sum, chunk| {
        let mut word = [0u8; 4];
        word[..chunk.len()].copy_from_slice(chunk);
        sum.wrapping_add(u32::from_be_bytes(word))
    })
}
