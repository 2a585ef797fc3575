//! The character map: reading the font's (formats 4 and 12) and writing the subset's.

use std::collections::BTreeMap;

use crate::read::Table;
use crate::{malformed, FontError};

/// Which of the font's character maps is read, and where it is in `cmap`.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Lookup {
    offset: usize,
    format: u16,
}

impl Lookup {
    /// The best Unicode map of the font: full Unicode (format 12) before the BMP (format 4).
    pub(crate) fn find(cmap: Table<'_>) -> Result<Lookup, FontError> {
        let count = usize::from(cmap.u16(2)?);
        let mut best: Option<(u8, Lookup)> = None;
        for i in 0..count {
            let r = 4 + i * 8;
            let (platform, encoding) = (cmap.u16(r)?, cmap.u16(r + 2)?);
            let offset = cmap.u32(r + 4)? as usize;
            let format = cmap.u16(offset)?;
            let rank = match (platform, encoding, format) {
                (3, 10, 12) | (0, 4, 12) | (0, 6, 12) => 0,
                (3, 1, 4) | (0, 3, 4) => 1,
                (0, _, 4) => 2,
                _ => continue,
            };
            let lookup = Lookup { offset, format };
            lookup.check(cmap)?;
            if best.is_none_or(|(b, _)| rank < b) {
                best = Some((rank, lookup));
            }
        }
        best.map(|(_, l)| l)
            .ok_or_else(|| malformed("cmap", "no Unicode character map in format 4 or 12"))
    }

    /// Checks that the map's arrays lie within the table.
    fn check(&self, cmap: Table<'_>) -> Result<(), FontError> {
        if self.format == 4 {
            let segments = usize::from(cmap.u16(self.offset + 6)? / 2);
            cmap.slice(self.offset + 16, segments * 8)?;
        } else {
            let groups = cmap.u32(self.offset + 12)? as usize;
            cmap.slice(self.offset + 16, groups.saturating_mul(12))?;
        }
        Ok(())
    }

    /// The glyph of character `c` (0 when it has none).
    pub(crate) fn glyph(&self, cmap: Table<'_>, c: u32) -> Option<u16> {
        if self.format == 4 {
            self.glyph_4(cmap, c).ok()
        } else {
            self.glyph_12(cmap, c).ok()
        }
    }

    fn glyph_4(&self, cmap: Table<'_>, c: u32) -> Result<u16, FontError> {
        let Ok(c) = u16::try_from(c) else { return Ok(0) };
        let o = self.offset;
        let seg_x2 = usize::from(cmap.u16(o + 6)?);
        let (ends, starts, deltas, ranges) = (o + 14, o + 16 + seg_x2, o + 16 + 2 * seg_x2, o + 16 + 3 * seg_x2);
        for i in (0..seg_x2).step_by(2) {
            if cmap.u16(ends + i)? < c {
                continue;
            }
            let start = cmap.u16(starts + i)?;
            if start > c {
                return Ok(0);
            }
            let delta = cmap.u16(deltas + i)?;
            let range = usize::from(cmap.u16(ranges + i)?);
            if range == 0 {
                return Ok(c.wrapping_add(delta));
            }
            let glyph = cmap.u16(ranges + i + range + 2 * usize::from(c - start))?;
            return Ok(if glyph == 0 { 0 } else { glyph.wrapping_add(delta) });
        }
        Ok(0)
    }

    fn glyph_12(&self, cmap: Table<'_>, c: u32) -> Result<u16, FontError> {
        let groups = cmap.u32(self.offset + 12)? as usize;
        let (mut low, mut high) = (0, groups);
        while low < high {
            let mid = (low + high) / 2;
            let g = self.offset + 16 + mid * 12;
            let (start, end) = (cmap.u32(g)?, cmap.u32(g + 4)?);
            if c < start {
                high = mid;
            } else if c > end {
                low = mid + 1;
            } else {
                let glyph = cmap.u32(g + 8)?.saturating_add(c - start);
                return Ok(u16::try_from(glyph).unwrap_or(0));
            }
        }
        Ok(0)
    }
}

/// Runs of consecutive characters mapped to consecutive glyphs: (first char, last char, first glyph).
fn runs(map: &BTreeMap<u32, u16>) -> Vec<(u32, u32, u16)> {
    let mut runs: Vec<(u32, u32, u16)> = Vec::new();
    for (&c, &g) in map {
        match runs.last_mut() {
            Some((start, end, first)) if c == *end + 1 && u32::from(g) == u32::from(*first) + (c - *start) => *end = c,
            _ => runs.push((c, c, g)),
        }
    }
    runs
}

/// A `cmap` table mapping each character of `map` to its glyph: format 4 (Windows BMP) for the
/// characters below U+10000 and format 12 (Windows full Unicode) for all.
pub(crate) fn write(map: &BTreeMap<u32, u16>) -> Result<Vec<u8>, FontError> {
    let bmp: BTreeMap<u32, u16> = map.range(..0xFFFF).map(|(&c, &g)| (c, g)).collect();
    let mut segments = runs(&bmp);
    segments.push((0xFFFF, 0xFFFF, 0));
    let seg_count = segments.len();
    let length = 16 + seg_count * 8;
    let length = u16::try_from(length)
        .map_err(|_| FontError::Unsupported(format!("{} characters are too many for one document", map.len())))?;
    let mut f4 = Vec::with_capacity(usize::from(length));
    let search = 1usize << (usize::BITS - 1 - seg_count.leading_zeros());
    for v in [
        4,
        length,
        0,
        (seg_count * 2) as u16,
        (search * 2) as u16,
        search.trailing_zeros() as u16,
        ((seg_count - search) * 2) as u16,
    ] {
        f4.extend_from_slice(&v.to_be_bytes());
    }
    for (_, end, _) in &segments {
        f4.extend_from_slice(&(*end as u16).to_be_bytes());
    }
    f4.extend_from_slice(&0u16.to_be_bytes());
    for (start, _, _) in &segments {
        f4.extend_from_slice(&(*start as u16).to_be_bytes());
    }
    for (start, _, glyph) in &segments {
        // The last segment maps U+FFFF to glyph 0: 0xFFFF + 1 wraps to 0.
        let delta = if *start == 0xFFFF {
            1
        } else {
            glyph.wrapping_sub(*start as u16)
        };
        f4.extend_from_slice(&delta.to_be_bytes());
    }
    f4.extend(std::iter::repeat_n(0u8, seg_count * 2));

    let groups = runs(map);
    let mut f12 = Vec::with_capacity(16 + groups.len() * 12);
    f12.extend_from_slice(&12u16.to_be_bytes());
    f12.extend_from_slice(&0u16.to_be_bytes());
    for v in [(16 + groups.len() * 12) as u32, 0, groups.len() as u32] {
        f12.extend_from_slice(&v.to_be_bytes());
    }
    for (start, end, glyph) in &groups {
        for v in [*start, *end, u32::from(*glyph)] {
            f12.extend_from_slice(&v.to_be_bytes());
        }
    }

    let mut table = Vec::with_capacity(20 + f4.len() + f12.len());
    table.extend_from_slice(&0u16.to_be_bytes());
    table.extend_from_slice(&2u16.to_be_bytes());
    for (encoding, offset) in [(1u16, 20u32), (10, 20 + f4.len() as u32)] {
        table.extend_from_slice(&3u16.to_be_bytes());
        table.extend_from_slice(&encoding.to_be_bytes());
        table.extend_from_slice(&offset.to_be_bytes());
    }
    table.extend_from_slice(&f4);
    table.extend_from_slice(&f12);
    Ok(table)
}
