//! A test-only record of every secret and share this process created, so a test harness
//! can search its logs for them (DESIGN §5 hygiene: secrets never appear in logs).
//!
//! Two locks keep it out of real services. Without the `danger-record-secrets` feature
//! [`record`] compiles to nothing. With it, nothing is kept until [`danger_start_recording`]
//! is called, which only test harnesses do; and the service binaries refuse to build in
//! release with the feature ([`DANGER_RECORD_SECRETS_COMPILED`]). The feature is there at
//! all because `cargo nextest run --workspace` unifies the harness's features into the
//! debug builds of the binaries.
//!
//! The search itself ([`scan`]) is always there: it finds values its caller already holds,
//! so `tq-testbed demo` can search real release processes' logs for the keys they handed it.

pub mod scan;
#[cfg(feature = "danger-record-secrets")]
mod store;
mod value;

#[cfg(feature = "danger-record-secrets")]
pub use store::{danger_start_recording, recorded};
pub use value::Recorded;

/// Whether this build can record secrets. The service binaries assert at compile time that
/// it is false in release builds.
pub const DANGER_RECORD_SECRETS_COMPILED: bool = cfg!(feature = "danger-record-secrets");

/// What a recorded value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// An epoch's cluster secret ([`crate::Secret`]).
    Secret,
    /// A share's y ([`crate::Share`]).
    Share,
    /// A legacy share's y ([`crate::crypto::legacy::LegacyShare`]).
    LegacyShare,
    /// A key derived for a consumer ([`crate::crypto::derive::derive_key`]).
    DerivedKey,
    /// A dealing's seed ([`crate::Entropy`]).
    Entropy,
}

impl Kind {
    /// Every kind, in report order.
    pub const ALL: [Kind; 5] =
        [Kind::Secret, Kind::Share, Kind::LegacyShare, Kind::DerivedKey, Kind::Entropy];

    /// A lowercase name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Secret => "secret",
            Kind::Share => "share",
            Kind::LegacyShare => "legacy share",
            Kind::DerivedKey => "derived key",
            Kind::Entropy => "entropy",
        }
    }
}

/// Remembers `bytes` as a value of `kind`, if recording was switched on.
#[inline]
pub(crate) fn record(kind: Kind, bytes: &[u8]) {
    #[cfg(feature = "danger-record-secrets")]
    store::record(kind, bytes);
    #[cfg(not(feature = "danger-record-secrets"))]
    let _ = (kind, bytes);
}
