//! A canonical binary encoding: big-endian integers, u32-length-prefixed byte strings.
//! Used for configuration digests (one byte string per configuration) and by the stores.

/// Bytes that do not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Ran out of input.
    #[error("truncated: needed {needed} more bytes at offset {at}")]
    Truncated {
        /// Where.
        at: usize,
        /// How many more bytes were needed.
        needed: usize,
    },
    /// Input left over after the value.
    #[error("{0} trailing bytes")]
    Trailing(usize),
    /// A tag or version this code does not know.
    #[error("unknown tag {tag} for {what}")]
    UnknownTag {
        /// What was being decoded.
        what: &'static str,
        /// The tag.
        tag: u8,
    },
    /// A decoded field failed validation.
    #[error("invalid {what}: {why}")]
    Invalid {
        /// The field.
        what: &'static str,
        /// Why.
        why: String,
    },
}

/// Appends canonical encodings to a buffer.
#[derive(Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Writer::default()
    }
    /// One byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }
    /// Big-endian u16.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// Big-endian u32.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// Big-endian u64.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// Bytes whose length the reader knows.
    pub fn fixed(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }
    /// A u32 length, then the bytes.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        // Every encoded field is far below 4 GiB (configurations are capped at 1024 members).
        self.u32(v.len() as u32).fixed(v)
    }
    /// The encoding.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads what [`Writer`] wrote.
pub struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, at: 0 }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let rest = &self.buf[self.at..];
        if rest.len() < n {
            return Err(DecodeError::Truncated { at: self.at, needed: n - rest.len() });
        }
        self.at += n;
        Ok(&rest[..n])
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    /// One byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    /// Big-endian u16.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    /// Big-endian u32.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    /// Big-endian u64.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    /// `N` bytes.
    pub fn fixed<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        self.array()
    }
    /// A u32 length, then that many bytes.
    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    /// Fails unless everything was read.
    pub fn finish(self) -> Result<(), DecodeError> {
        match self.buf.len() - self.at {
            0 => Ok(()),
            n => Err(DecodeError::Trailing(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let mut w = Writer::new();
        w.u8(1).u16(2).u32(3).u64(4).fixed(&[5, 6]).bytes(b"xyz");
        let buf = w.finish();
        let mut r = Reader::new(&buf);
        assert_eq!(r.u8().unwrap(), 1);
        assert_eq!(r.u16().unwrap(), 2);
        assert_eq!(r.u32().unwrap(), 3);
        assert_eq!(r.u64().unwrap(), 4);
        assert_eq!(r.fixed::<2>().unwrap(), [5, 6]);
        assert_eq!(r.bytes().unwrap(), b"xyz");
        r.finish().unwrap();

        let mut r = Reader::new(&buf[..3]);
        r.u8().unwrap();
        assert_eq!(r.u32(), Err(DecodeError::Truncated { at: 1, needed: 2 }));
        let mut r = Reader::new(&buf);
        r.u8().unwrap();
        assert_eq!(r.finish(), Err(DecodeError::Trailing(buf.len() - 1)));
        // A length prefix that claims more than there is.
        let mut r = Reader::new(&[0, 0, 1, 0, 9]);
        assert!(matches!(r.bytes(), Err(DecodeError::Truncated { .. })));
    }
}
