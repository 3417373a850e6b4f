//! One value to search logs for. Holding one is harmless: it is a copy of bytes the caller
//! already has, zeroed on drop; what is gated behind `danger-record-secrets` is the
//! process-wide recording of every secret made (`store`).

use zeroize::Zeroizing;

use super::Kind;

/// One recorded value. Its `Debug` is redacted like the types it was copied from.
#[derive(Clone, PartialEq, Eq)]
pub struct Recorded {
    kind: Kind,
    bytes: Zeroizing<Vec<u8>>,
}

impl Recorded {
    /// A value to search for that the caller holds: recorded by this process (with
    /// `danger-record-secrets`), made by hand (the scanner's own tests), or handed out by a
    /// service (a derived key the demo got from an agent's key socket).
    pub fn new(kind: Kind, bytes: &[u8]) -> Self {
        Recorded { kind, bytes: Zeroizing::new(bytes.to_vec()) }
    }

    /// What it is.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The bytes, to search for. Never print them.
    pub fn danger_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl PartialOrd for Recorded {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Recorded {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.kind, &**self.bytes).cmp(&(other.kind, &**other.bytes))
    }
}

impl std::fmt::Debug for Recorded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Recorded({}, {} bytes, <redacted>)", self.kind.name(), self.bytes.len())
    }
}
