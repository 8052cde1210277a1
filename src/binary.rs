//! The building blocks of this crate's stored binary forms (stored pages, tagged values):
//! big-endian numbers and length-prefixed byte strings, written by [`Writer`] and read by
//! [`Reader`].
//!
//! Writing a count or a length that does not fit its prefix is an error, never a prefix cut to
//! fit: a cut one would leave a record that cannot be read back, or worse, one that reads as
//! something else. Reading checks every length against the bytes that are there, and never
//! trusts a length for an allocation.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

/// A count or length too large for the prefix the format gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TooLarge {
    /// What was being written ("tags", "a header value", …).
    pub(crate) what: &'static str,
    /// Its count or length.
    pub(crate) len: usize,
    /// The most its prefix can hold.
    pub(crate) max: u64,
}

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {}, more than the {} the stored form can hold",
            self.what,
            grouped(self.len as u64),
            grouped(self.max)
        )
    }
}

/// A number with its thousands separated by commas, as people read them: `65,535`.
fn grouped(number: u64) -> String {
    let digits = number.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Writes a binary record front to back.
pub(crate) struct Writer {
    out: BytesMut,
}

impl Writer {
    pub(crate) fn with_capacity(capacity: usize) -> Writer {
        Writer {
            out: BytesMut::with_capacity(capacity),
        }
    }

    pub(crate) fn u8(&mut self, value: u8) {
        self.out.put_u8(value);
    }

    pub(crate) fn u16(&mut self, value: u16) {
        self.out.put_u16(value);
    }

    pub(crate) fn u64(&mut self, value: u64) {
        self.out.put_u64(value);
    }

    /// Bytes as they are, without a length: for fixed-size fields and a record's last part.
    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.out.put_slice(bytes);
    }

    /// A count in one byte.
    pub(crate) fn count8(&mut self, what: &'static str, count: usize) -> Result<(), TooLarge> {
        let count = fits::<u8>(what, count)?;
        self.out.put_u8(count);
        Ok(())
    }

    /// A count in two bytes.
    pub(crate) fn count16(&mut self, what: &'static str, count: usize) -> Result<(), TooLarge> {
        let count = fits::<u16>(what, count)?;
        self.out.put_u16(count);
        Ok(())
    }

    /// A count in four bytes.
    pub(crate) fn count32(&mut self, what: &'static str, count: usize) -> Result<(), TooLarge> {
        let count = fits::<u32>(what, count)?;
        self.out.put_u32(count);
        Ok(())
    }

    /// Bytes after their length in two bytes.
    pub(crate) fn bytes16(&mut self, what: &'static str, bytes: &[u8]) -> Result<(), TooLarge> {
        self.count16(what, bytes.len())?;
        self.out.put_slice(bytes);
        Ok(())
    }

    /// Bytes after their length in four bytes.
    pub(crate) fn bytes32(&mut self, what: &'static str, bytes: &[u8]) -> Result<(), TooLarge> {
        self.count32(what, bytes.len())?;
        self.out.put_slice(bytes);
        Ok(())
    }

    pub(crate) fn finish(self) -> Bytes {
        self.out.freeze()
    }
}

/// `count` as the prefix type `T`, or the error naming `what`.
fn fits<T: TryFrom<usize> + Bounded>(what: &'static str, count: usize) -> Result<T, TooLarge> {
    T::try_from(count).map_err(|_| TooLarge {
        what,
        len: count,
        max: T::MAX_PREFIX,
    })
}

/// The largest value of a prefix type.
trait Bounded {
    const MAX_PREFIX: u64;
}

impl Bounded for u8 {
    const MAX_PREFIX: u64 = u8::MAX as u64;
}

impl Bounded for u16 {
    const MAX_PREFIX: u64 = u16::MAX as u64;
}

impl Bounded for u32 {
    const MAX_PREFIX: u64 = u32::MAX as u64;
}

/// Reads a binary record front to back; every read checks the remaining length and is `None`
/// past the end. Numbers are read in place; [`take`](Reader::take) hands out shared slices of
/// the record without copying.
pub(crate) struct Reader {
    bytes: Bytes,
    at: usize,
}

impl Reader {
    pub(crate) fn new(bytes: Bytes) -> Reader {
        Reader { bytes, at: 0 }
    }

    pub(crate) fn slice(&mut self, len: usize) -> Option<&[u8]> {
        let end = self.at.checked_add(len)?;
        let slice = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(slice)
    }

    pub(crate) fn take(&mut self, len: usize) -> Option<Bytes> {
        let start = self.at;
        self.slice(len)?;
        Some(self.bytes.slice(start..self.at))
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.slice(N)?.try_into().ok()
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(u8::from_be_bytes)
    }

    pub(crate) fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_be_bytes)
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }

    pub(crate) fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_be_bytes)
    }

    /// A length written in four bytes.
    pub(crate) fn len32(&mut self) -> Option<usize> {
        usize::try_from(self.u32()?).ok()
    }

    /// Bytes after their length in four bytes.
    pub(crate) fn bytes32(&mut self) -> Option<Bytes> {
        let len = self.len32()?;
        self.take(len)
    }

    /// UTF-8 text of `len` bytes.
    pub(crate) fn text(&mut self, len: usize) -> Option<String> {
        std::str::from_utf8(self.slice(len)?)
            .ok()
            .map(str::to_owned)
    }

    /// Bytes after their length in two bytes.
    pub(crate) fn slice16(&mut self) -> Option<&[u8]> {
        let len = usize::from(self.u16()?);
        self.slice(len)
    }

    /// Whether every byte has been read.
    pub(crate) fn is_done(&self) -> bool {
        self.at == self.bytes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back() {
        let mut writer = Writer::with_capacity(0);
        writer.u8(7);
        writer.u16(300);
        writer.u64(u64::MAX - 1);
        writer.bytes16("a name", b"cache-control").unwrap();
        writer.bytes32("a body", b"hello").unwrap();
        writer.count8("tags", 255).unwrap();
        writer.raw(b"end");
        let mut reader = Reader::new(writer.finish());
        assert_eq!(reader.u8(), Some(7));
        assert_eq!(reader.u16(), Some(300));
        assert_eq!(reader.u64(), Some(u64::MAX - 1));
        assert_eq!(reader.slice16(), Some(&b"cache-control"[..]));
        assert_eq!(reader.bytes32().as_deref(), Some(&b"hello"[..]));
        assert_eq!(reader.u8(), Some(255));
        assert_eq!(reader.slice(3), Some(&b"end"[..]));
        assert!(reader.is_done());
        assert_eq!(reader.u8(), None);
    }

    #[test]
    fn counts_and_lengths_beyond_their_prefix_are_errors() {
        let mut writer = Writer::with_capacity(0);
        assert_eq!(
            writer.count8("tags", 256),
            Err(TooLarge {
                what: "tags",
                len: 256,
                max: 255
            })
        );
        assert!(writer.count16("names", 65_536).is_err());
        assert!(writer.bytes16("a tag", &vec![b'x'; 65_536]).is_err());
        assert!(writer.bytes16("a tag", &vec![b'x'; 65_535]).is_ok());
        let error = writer.count16("tags", 70_000).unwrap_err();
        assert_eq!(
            error.to_string(),
            "tags of 70,000, more than the 65,535 the stored form can hold"
        );
    }

    #[test]
    fn lengths_past_the_end_read_as_nothing() {
        let mut writer = Writer::with_capacity(0);
        writer.u16(10);
        writer.raw(b"short");
        let mut reader = Reader::new(writer.finish());
        assert_eq!(reader.slice16(), None);
        let mut reader = Reader::new(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 1]));
        assert_eq!(reader.bytes32(), None);
    }
}
