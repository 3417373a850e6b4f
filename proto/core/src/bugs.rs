//! Rules the simulation can break on purpose to prove its checker has teeth. Without the
//! `danger-inject-bugs` feature nothing here can be switched on.

/// Whether this build can break rules. The service binaries assert it is false at compile
/// time, so they can never ship with the feature.
pub const DANGER_BUGS_COMPILED: bool = cfg!(feature = "danger-inject-bugs");

/// A node rule to break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeBug {
    /// Ack shares without the digest and Feldman checks.
    SkipShareVerification,
    /// Ack a Prepare for an epoch at or below the committed one.
    AcceptStalePrepare,
}

/// A coordinator rule to break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoordinatorBug {
    /// Commit one ack short of K + Z.
    CommitBelowThreshold,
}
