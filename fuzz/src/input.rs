//! A fuzz input read as a stream of small choices. Past the end every read gives zeros, so
//! every byte string is a valid input and a mutation shifts later choices rather than
//! making the whole input invalid. Also the reverse, for writing seeds.

use tq_protocol::RequestKind;

/// Every request kind, for choosing one with a byte.
pub const REQUEST_KINDS: [RequestKind; 6] = [
    RequestKind::Prepare,
    RequestKind::Commit,
    RequestKind::PrepareAndCommit,
    RequestKind::GetShare,
    RequestKind::GetLegacyShare,
    RequestKind::Status,
];

/// A seed: a first byte, then each step as `encode` writes it.
pub fn script<T>(first: u8, steps: &[T], encode: impl Fn(&T, &mut Vec<u8>)) -> Vec<u8> {
    let mut out = vec![first];
    steps.iter().for_each(|s| encode(s, &mut out));
    out
}

/// The bytes left to read.
#[derive(Debug)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// Reads `data` from the front.
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// One byte (0 past the end).
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    /// A big-endian u16.
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    /// `N` bytes (zeros past the end).
    pub fn array<const N: usize>(&mut self) -> [u8; N] {
        std::array::from_fn(|_| self.byte())
    }

    /// Up to `n` bytes (fewer near the end).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        self.bytes(self.data.len())
    }
}
