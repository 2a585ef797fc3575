//! TrueType fonts for the documents Zhengyin makes: [`Font::parse`] reads a font file (a `.ttf`,
//! or one face of a `.ttc` collection) and checks everything the subsetter will rely on;
//! [`Font::subset`] writes a standalone TrueType font holding only the glyphs a document's text
//! needs, so that a licence file carries its own font (a few tens of KB instead of megabytes)
//! and looks the same in every reader.
//!
//! The subset keeps each glyph's outline and hinting instructions byte for byte, renumbers the
//! glyphs (composite glyphs' components included), and writes fresh `cmap` (formats 4 and 12),
//! `hmtx`, `loca`, `maxp`, `hhea`, `head` and `post` (version 3: no glyph names). The naming,
//! copyright and licence strings (`name`) and `OS/2` are kept as they were; layout tables (`GSUB`,
//! `GPOS`, `kern`, vertical metrics) are dropped: the documents place every character
//! themselves.
//!
//! What it is not: a shaper or a rasteriser, and it reads TrueType outlines (`glyf`) only; a
//! font with CFF outlines (`OTTO`) is refused with a clear error.

mod cmap;
mod read;
mod subset;

use std::collections::BTreeMap;
use std::ops::Range;

use read::Table;

pub use subset::Subset;

/// The largest font file read (the largest CJK fonts are some 30 MB).
pub const MAX_FONT_BYTES: usize = 64 << 20;

/// Why a font cannot be read or subset.
#[derive(Debug, thiserror::Error)]
pub enum FontError {
    /// The file is not a TrueType font or collection.
    #[error("not a TrueType font: {0}")]
    NotAFont(String),
    /// A font this crate does not read.
    #[error("unsupported font: {0}")]
    Unsupported(String),
    /// A table the font must have is missing.
    #[error("the font has no `{0}` table")]
    MissingTable(&'static str),
    /// A table ends before what it claims.
    #[error("the font's `{table}` table is truncated at byte {offset}")]
    Truncated {
        /// The table.
        table: &'static str,
        /// Where, from the table's start.
        offset: usize,
    },
    /// A table holds a value that cannot be right.
    #[error("the font's `{table}` table is malformed: {reason}")]
    Malformed {
        /// The table.
        table: &'static str,
        /// What is wrong.
        reason: String,
    },
}

fn malformed(table: &'static str, reason: impl Into<String>) -> FontError {
    FontError::Malformed {
        table,
        reason: reason.into(),
    }
}

/// A TrueType font face, checked.
pub struct Font {
    data: Vec<u8>,
    tables: BTreeMap<[u8; 4], Range<usize>>,
    family: String,
    num_glyphs: u16,
    h_metrics: u16,
    long_loca: bool,
    units_per_em: u16,
    cmap: cmap::Lookup,
}

impl std::fmt::Debug for Font {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Font")
            .field("family", &self.family)
            .field("num_glyphs", &self.num_glyphs)
            .finish_non_exhaustive()
    }
}

impl Font {
    /// Reads face `index` of `data` (0 for a single font).
    pub fn parse(data: Vec<u8>, index: u32) -> Result<Font, FontError> {
        if data.len() > MAX_FONT_BYTES {
            return Err(FontError::NotAFont(format!(
                "{} bytes, more than the {MAX_FONT_BYTES} read",
                data.len()
            )));
        }
        let file = Table::new("file", &data);
        let face = face_offset(file, index)?;
        let tables = table_directory(file, face)?;
        let mut font = Font {
            data,
            tables,
            family: String::new(),
            num_glyphs: 0,
            h_metrics: 0,
            long_loca: false,
            units_per_em: 0,
            cmap: cmap::Lookup::default(),
        };
        font.check()?;
        Ok(font)
    }

    /// The font's family name (English where it has one), as documents name it.
    pub fn family(&self) -> &str {
        &self.family
    }

    /// How many glyphs the font has.
    pub fn glyph_count(&self) -> u16 {
        self.num_glyphs
    }

    /// The glyph for `c`, if the font has one.
    pub fn glyph(&self, c: char) -> Option<u16> {
        let cmap = self.table(b"cmap", "cmap").ok()?;
        self.cmap
            .glyph(cmap, c as u32)
            .filter(|&g| g != 0 && g < self.num_glyphs)
    }

    /// The advance width of `c`'s glyph as a fraction of the em, if the font has it.
    pub fn advance(&self, c: char) -> Option<f64> {
        let glyph = self.glyph(c)?;
        let (advance, _) = self.metrics(glyph).ok()?;
        Some(f64::from(advance) / f64::from(self.units_per_em))
    }

    /// A standalone font with the glyphs of every character of `text` (those the font has).
    pub fn subset(&self, text: &str) -> Result<Subset, FontError> {
        subset::write(self, text)
    }

    fn table(&self, tag: &[u8; 4], name: &'static str) -> Result<Table<'_>, FontError> {
        let range = self.tables.get(tag).ok_or(FontError::MissingTable(name))?;
        Ok(Table::new(name, &self.data[range.clone()]))
    }

    fn raw_table(&self, tag: &[u8; 4]) -> Option<&[u8]> {
        self.tables.get(tag).map(|r| &self.data[r.clone()])
    }

    /// Reads the header tables and checks that every glyph's place, metrics and the character
    /// map can be read, so that subsetting later cannot meet a surprise.
    fn check(&mut self) -> Result<(), FontError> {
        let head = self.table(b"head", "head")?;
        if head.u32(12)? != 0x5F0F_3CF5 {
            return Err(malformed("head", "wrong magic number"));
        }
        let units_per_em = head.u16(18)?;
        if !(16..=16384).contains(&units_per_em) {
            return Err(malformed("head", format!("{units_per_em} units per em")));
        }
        let long_loca = match head.i16(50)? {
            0 => false,
            1 => true,
            other => return Err(malformed("head", format!("index-to-location format {other}"))),
        };
        let num_glyphs = self.table(b"maxp", "maxp")?.u16(4)?;
        if num_glyphs == 0 {
            return Err(malformed("maxp", "no glyphs"));
        }
        let h_metrics = self.table(b"hhea", "hhea")?.u16(34)?;
        if h_metrics == 0 || h_metrics > num_glyphs {
            return Err(malformed(
                "hhea",
                format!("{h_metrics} horizontal metrics for {num_glyphs} glyphs"),
            ));
        }
        self.units_per_em = units_per_em;
        self.long_loca = long_loca;
        self.num_glyphs = num_glyphs;
        self.h_metrics = h_metrics;

        let hmtx = self.table(b"hmtx", "hmtx")?;
        let needed = usize::from(h_metrics) * 4 + usize::from(num_glyphs - h_metrics) * 2;
        hmtx.slice(0, needed)?;
        let glyf_len = self.table(b"glyf", "glyf")?.bytes.len();
        for glyph in 0..num_glyphs {
            let place = self.glyph_place(glyph)?;
            if place.start > place.end || place.end > glyf_len {
                return Err(malformed("loca", format!("glyph {glyph} lies outside `glyf`")));
            }
        }
        let cmap = self.table(b"cmap", "cmap")?;
        self.cmap = cmap::Lookup::find(cmap)?;
        self.family = family_name(self.table(b"name", "name")?).unwrap_or_else(|| "Embedded".to_owned());
        Ok(())
    }

    /// Where glyph `glyph`'s outline is in `glyf`.
    fn glyph_place(&self, glyph: u16) -> Result<Range<usize>, FontError> {
        let loca = self.table(b"loca", "loca")?;
        let i = usize::from(glyph);
        if self.long_loca {
            Ok(loca.u32(i * 4)? as usize..loca.u32(i * 4 + 4)? as usize)
        } else {
            Ok(usize::from(loca.u16(i * 2)?) * 2..usize::from(loca.u16(i * 2 + 2)?) * 2)
        }
    }

    /// Glyph `glyph`'s outline as stored in `glyf` (empty for a glyph with none, such as a space).
    pub fn outline(&self, glyph: u16) -> Result<&[u8], FontError> {
        let place = self.glyph_place(glyph)?;
        self.table(b"glyf", "glyf")?.slice(place.start, place.end - place.start)
    }

    /// Glyph `glyph`'s advance width and left side bearing.
    fn metrics(&self, glyph: u16) -> Result<(u16, i16), FontError> {
        let hmtx = self.table(b"hmtx", "hmtx")?;
        let long = usize::from(self.h_metrics);
        let g = usize::from(glyph);
        if g < long {
            Ok((hmtx.u16(g * 4)?, hmtx.i16(g * 4 + 2)?))
        } else {
            Ok((hmtx.u16((long - 1) * 4)?, hmtx.i16(long * 4 + (g - long) * 2)?))
        }
    }
}

/// Where face `index` starts: 0 for a single font, from the header for a collection.
fn face_offset(file: Table<'_>, index: u32) -> Result<usize, FontError> {
    let tag = file
        .slice(0, 4)
        .map_err(|_| FontError::NotAFont("shorter than a header".into()))?;
    match tag {
        b"ttcf" => {
            let faces = file.u32(8)?;
            if index >= faces {
                return Err(FontError::NotAFont(format!(
                    "the collection has {faces} faces; face {index} was asked for"
                )));
            }
            Ok(file.u32(12 + 4 * index as usize)? as usize)
        }
        _ if index == 0 => Ok(0),
        _ => Err(FontError::NotAFont(format!("a single font has no face {index}"))),
    }
}

/// The face's tables, each checked to lie within the file.
fn table_directory(file: Table<'_>, face: usize) -> Result<BTreeMap<[u8; 4], Range<usize>>, FontError> {
    match file.u32(face)? {
        0x0001_0000 | 0x7472_7565 => {}
        0x4F54_544F => {
            return Err(FontError::Unsupported(
                "the font has CFF outlines (OpenType `OTTO`); use a font with TrueType outlines".into(),
            ))
        }
        other => return Err(FontError::NotAFont(format!("unknown font version {other:#010x}"))),
    }
    let count = usize::from(file.u16(face + 4)?);
    let mut tables = BTreeMap::new();
    for i in 0..count {
        let record = face + 12 + i * 16;
        let tag: [u8; 4] = file.slice(record, 4)?.try_into().unwrap_or_default();
        let start = file.u32(record + 8)? as usize;
        let len = file.u32(record + 12)? as usize;
        file.slice(start, len).map_err(|_| {
            FontError::NotAFont(format!(
                "table `{}` lies outside the file",
                String::from_utf8_lossy(&tag)
            ))
        })?;
        tables.insert(tag, start..start + len);
    }
    Ok(tables)
}

/// The family name (name ID 1): Windows English first, then any Windows Unicode one.
fn family_name(name: Table<'_>) -> Option<String> {
    let count = usize::from(name.u16(2).ok()?);
    let strings = usize::from(name.u16(4).ok()?);
    let mut best: Option<(u8, String)> = None;
    for i in 0..count {
        let r = 6 + i * 12;
        let (platform, encoding, language, id) = (
            name.u16(r).ok()?,
            name.u16(r + 2).ok()?,
            name.u16(r + 4).ok()?,
            name.u16(r + 6).ok()?,
        );
        if id != 1 || platform != 3 || !(encoding == 1 || encoding == 10) {
            continue;
        }
        let rank = if language == 0x0409 { 0 } else { 1 };
        if best.as_ref().is_some_and(|(b, _)| *b <= rank) {
            continue;
        }
        let bytes = name
            .slice(
                strings + usize::from(name.u16(r + 10).ok()?),
                usize::from(name.u16(r + 8).ok()?),
            )
            .ok()?;
        let units: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        if let Ok(family) = String::from_utf16(&units) {
            best = Some((rank, family));
        }
    }
    best.map(|(_, family)| family).filter(|f| !f.trim().is_empty())
}
