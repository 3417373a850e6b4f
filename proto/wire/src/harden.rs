//! Process hygiene for processes that hold secrets (DESIGN §5): no core dumps, not
//! dumpable (no ptrace by other users, no /proc/<pid>/mem), and memory locked where the
//! limit allows.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// What hardening achieved, for the start-up log line.
#[derive(Debug, Clone, Copy)]
pub struct Hardening {
    /// RLIMIT_CORE is 0.
    pub core_dumps_off: bool,
    /// PR_SET_DUMPABLE is 0.
    pub not_dumpable: bool,
    /// All current and future memory is locked.
    pub memory_locked: bool,
}

/// Applies what this process is allowed to.
pub fn harden() -> Hardening {
    let core_dumps_off = setrlimit(Resource::RLIMIT_CORE, 0, 0).is_ok();
    let not_dumpable = nix::sys::prctl::set_dumpable(false).is_ok();
    // Locking future allocations under a small RLIMIT_MEMLOCK would make later allocations
    // fail; lock only when the limit is unlimited.
    let unlimited = getrlimit(Resource::RLIMIT_MEMLOCK)
        .is_ok_and(|(soft, _)| soft == nix::sys::resource::RLIM_INFINITY);
    let memory_locked = unlimited
        && nix::sys::mman::mlockall(
            nix::sys::mman::MlockAllFlags::MCL_CURRENT | nix::sys::mman::MlockAllFlags::MCL_FUTURE,
        )
        .is_ok();
    Hardening { core_dumps_off, not_dumpable, memory_locked }
}
