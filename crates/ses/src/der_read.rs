//! DER readers whose errors name the position in the file being read, not in the inner value a
//! reader was opened on: every reader knows where its bytes start in the file ([`Origin`]). An
//! error names the first byte of the value that could not be read (its tag).

use der::{Decode, Header, Reader, SliceReader, Tag};

use crate::SesError;

/// The file being read: readers opened through it place their errors in it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Origin(usize);

impl Origin {
    /// The file starting at `file`'s first byte (the values read are slices of it).
    pub(crate) fn of(file: &[u8]) -> Self {
        Origin(file.as_ptr() as usize)
    }

    /// Where `part` (a slice of the file) starts in the file.
    fn offset(self, part: &[u8]) -> usize {
        (part.as_ptr() as usize).saturating_sub(self.0)
    }

    /// `e`, met reading the value at `within` bytes into `part`.
    fn error(self, part: &[u8], within: usize, e: der::Error) -> SesError {
        SesError::Malformed(format!("{} at byte {}", e.kind(), self.offset(part) + within))
    }

    /// A reader over `bytes`.
    pub(crate) fn reader(self, bytes: &[u8]) -> Result<Der<'_>, SesError> {
        Ok(Der {
            inner: SliceReader::new(bytes).map_err(|e| self.error(bytes, 0, e))?,
            bytes,
            origin: self,
        })
    }

    /// `tlv`, one whole DER value, decoded.
    pub(crate) fn decode<'a, T: Decode<'a>>(self, tlv: &'a [u8]) -> Result<T, SesError> {
        T::from_der(tlv).map_err(|e| self.error(tlv, 0, e))
    }

    /// A reader over the contents of `tlv`, which must be exactly one SEQUENCE.
    pub(crate) fn contents(self, tlv: &[u8]) -> Result<Der<'_>, SesError> {
        let mut r = self.reader(tlv)?;
        let body = r.expect(Tag::Sequence)?;
        r.finish(())?;
        self.reader(body)
    }
}

/// A DER reader (the `der` crate's) over part of a file.
pub(crate) struct Der<'a> {
    inner: SliceReader<'a>,
    bytes: &'a [u8],
    origin: Origin,
}

impl<'a> Der<'a> {
    /// Where the reader is, for errors in what it reads next.
    fn here(&self) -> usize {
        u32::from(self.inner.position()) as usize
    }

    fn fail(&self, at: usize, e: der::Error) -> SesError {
        self.origin.error(self.bytes, at, e)
    }

    /// The next value, decoded.
    pub(crate) fn decode<T: Decode<'a>>(&mut self) -> Result<T, SesError> {
        let at = self.here();
        let decoded = self.inner.decode();
        decoded.map_err(|e| self.fail(at, e))
    }

    /// The next value's bytes, header included.
    pub(crate) fn tlv_bytes(&mut self) -> Result<&'a [u8], SesError> {
        let at = self.here();
        let read = self.inner.tlv_bytes();
        read.map_err(|e| self.fail(at, e))
    }

    /// The next value's tag, not read.
    pub(crate) fn peek_tag(&self) -> Result<Tag, SesError> {
        self.inner.peek_tag().map_err(|e| self.fail(self.here(), e))
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.inner.is_finished()
    }

    /// `value` when everything was read, else an error at what is left.
    pub(crate) fn finish<T>(self, value: T) -> Result<T, SesError> {
        let (origin, bytes, at) = (self.origin, self.bytes, self.here());
        self.inner.finish(value).map_err(|e| origin.error(bytes, at, e))
    }

    /// The next value's header.
    pub(crate) fn header(&mut self) -> Result<Header, SesError> {
        let at = self.here();
        let header = Header::decode(&mut self.inner);
        header.map_err(|e| self.fail(at, e))
    }

    /// The contents of the next value, which must have tag `tag`.
    pub(crate) fn expect(&mut self, tag: Tag) -> Result<&'a [u8], SesError> {
        let at = self.here();
        let header = self.header()?;
        if header.tag != tag {
            let at = self.origin.offset(self.bytes) + at;
            return Err(SesError::Malformed(format!(
                "expected {tag}, found {} at byte {at}",
                header.tag
            )));
        }
        let read = self.inner.read_slice(header.length);
        read.map_err(|e| self.fail(at, e))
    }

    /// A reader over the contents of the next value, which must have tag `tag`.
    pub(crate) fn open(&mut self, tag: Tag) -> Result<Der<'a>, SesError> {
        let body = self.expect(tag)?;
        self.origin.reader(body)
    }

    /// A reader over the contents of the next value, a SEQUENCE.
    pub(crate) fn sequence(&mut self) -> Result<Der<'a>, SesError> {
        let tlv = self.tlv_bytes()?;
        self.origin.contents(tlv)
    }
}
