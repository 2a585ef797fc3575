//! Bounds-checked big-endian reads: every offset in a font is the font's own claim.

use crate::FontError;

/// A table's bytes, named for the errors.
#[derive(Clone, Copy)]
pub(crate) struct Table<'a> {
    pub(crate) tag: &'static str,
    pub(crate) bytes: &'a [u8],
}

impl<'a> Table<'a> {
    pub(crate) fn new(tag: &'static str, bytes: &'a [u8]) -> Self {
        Self { tag, bytes }
    }

    pub(crate) fn slice(&self, at: usize, len: usize) -> Result<&'a [u8], FontError> {
        at.checked_add(len)
            .and_then(|end| self.bytes.get(at..end))
            .ok_or(FontError::Truncated {
                table: self.tag,
                offset: at,
            })
    }

    pub(crate) fn u16(&self, at: usize) -> Result<u16, FontError> {
        let b = self.slice(at, 2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn i16(&self, at: usize) -> Result<i16, FontError> {
        Ok(self.u16(at)? as i16)
    }

    pub(crate) fn u32(&self, at: usize) -> Result<u32, FontError> {
        let b = self.slice(at, 4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}
