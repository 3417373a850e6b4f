//! The process-global set of recorded values.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use zeroize::Zeroizing;

use super::Kind;

/// Set once by a test harness; no service code sets it.
static RECORDING: AtomicBool = AtomicBool::new(false);
static RECORDED: Mutex<BTreeSet<Recorded>> = Mutex::new(BTreeSet::new());

/// One recorded value. Its `Debug` is redacted like the types it was copied from.
#[derive(Clone, PartialEq, Eq)]
pub struct Recorded {
    kind: Kind,
    bytes: Zeroizing<Vec<u8>>,
}

impl Recorded {
    /// A value recorded by hand (the scanner's own tests).
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

/// Starts recording every secret and share created from now on in this process. For test
/// harnesses only.
pub fn danger_start_recording() {
    RECORDING.store(true, Ordering::SeqCst);
}

/// Every distinct value recorded so far.
pub fn recorded() -> Vec<Recorded> {
    lock().iter().cloned().collect()
}

pub(super) fn record(kind: Kind, bytes: &[u8]) {
    if RECORDING.load(Ordering::Relaxed) {
        lock().insert(Recorded::new(kind, bytes));
    }
}

fn lock() -> std::sync::MutexGuard<'static, BTreeSet<Recorded>> {
    // A panic while holding the lock cannot leave the set half-updated.
    RECORDED.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
