//! The process-global set of recorded values.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{Kind, Recorded};

/// Set once by a test harness; no service code sets it.
static RECORDING: AtomicBool = AtomicBool::new(false);
static RECORDED: Mutex<BTreeSet<Recorded>> = Mutex::new(BTreeSet::new());

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
