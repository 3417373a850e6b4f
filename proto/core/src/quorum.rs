//! Membership and threshold bounds, and the safety margin Z (DESIGN §4).

use std::fmt;

/// The fewest members a configuration may have.
pub const MIN_MEMBERS: usize = 3;
/// The most members a configuration may have.
pub const MAX_MEMBERS: usize = 1024;

/// The threshold K: how many shares rebuild the secret. Always `2 ≤ K < N`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Threshold(u16);

/// How strict the coordinator is about K beyond the hard bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ThresholdPolicy {
    /// K ≥ ⌊N/2⌋ + 1: the default (DESIGN §4).
    #[default]
    Majority,
    /// Only the hard bounds 2 ≤ K < N.
    Permissive,
}

/// A membership size or threshold outside DESIGN §4's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QuorumError {
    /// N outside 3..=1024.
    #[error("a configuration needs {MIN_MEMBERS} to {MAX_MEMBERS} members, got {0}")]
    Members(usize),
    /// K outside 2..N.
    #[error("threshold must satisfy 2 <= K < N, got K={k} with N={n}")]
    Threshold {
        /// The threshold asked for.
        k: usize,
        /// The number of members.
        n: usize,
    },
    /// K below a majority under [`ThresholdPolicy::Majority`].
    #[error("threshold {k} is below a majority of {n} members (policy needs at least {min})")]
    BelowMajority {
        /// The threshold asked for.
        k: usize,
        /// The number of members.
        n: usize,
        /// The smallest threshold the policy allows.
        min: usize,
    },
}

impl Threshold {
    /// Checks K against N (hard bounds only; see [`ThresholdPolicy`] for the rest).
    pub fn new(k: usize, n: usize) -> Result<Self, QuorumError> {
        check_members(n)?;
        if k < 2 || k >= n {
            return Err(QuorumError::Threshold { k, n });
        }
        // n ≤ 1024 so k fits.
        Ok(Threshold(k as u16))
    }

    /// Checks K against N and the policy.
    pub fn with_policy(k: usize, n: usize, policy: ThresholdPolicy) -> Result<Self, QuorumError> {
        let t = Threshold::new(k, n)?;
        let min = n / 2 + 1;
        if policy == ThresholdPolicy::Majority && k < min {
            return Err(QuorumError::BelowMajority { k, n, min });
        }
        Ok(t)
    }

    /// K.
    pub const fn get(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Debug for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "K={}", self.0)
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Checks N against 3..=1024.
pub fn check_members(n: usize) -> Result<(), QuorumError> {
    if (MIN_MEMBERS..=MAX_MEMBERS).contains(&n) { Ok(()) } else { Err(QuorumError::Members(n)) }
}

/// The safety margin Z: how many acked members may die after a commit while the secret
/// stays recoverable. Commit needs K + Z acks.
pub fn safety_margin(n: usize, k: Threshold) -> usize {
    let z = match n {
        0..=4 => 0,
        5..=8 => 1,
        9..=15 => 2,
        16..=23 => 3,
        24..=32 => 4,
        _ => n / 8,
    };
    z.min(n.saturating_sub(k.get()))
}

/// K + Z: the acks a commit needs.
pub fn acks_needed(n: usize, k: Threshold) -> usize {
    k.get() + safety_margin(n, k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_section_4() {
        assert_eq!(Threshold::new(2, 2), Err(QuorumError::Members(2)));
        assert_eq!(Threshold::new(2, 1025), Err(QuorumError::Members(1025)));
        assert_eq!(Threshold::new(0, 5), Err(QuorumError::Threshold { k: 0, n: 5 }));
        assert_eq!(Threshold::new(1, 5), Err(QuorumError::Threshold { k: 1, n: 5 }));
        assert_eq!(Threshold::new(5, 5), Err(QuorumError::Threshold { k: 5, n: 5 }));
        assert_eq!(Threshold::new(6, 5), Err(QuorumError::Threshold { k: 6, n: 5 }));
        assert_eq!(Threshold::new(2, 3).unwrap().get(), 2);
        assert_eq!(Threshold::new(1023, 1024).unwrap().get(), 1023);
    }

    #[test]
    fn majority_policy_section_4() {
        assert_eq!(
            Threshold::with_policy(2, 5, ThresholdPolicy::Majority),
            Err(QuorumError::BelowMajority { k: 2, n: 5, min: 3 })
        );
        assert!(Threshold::with_policy(3, 5, ThresholdPolicy::Majority).is_ok());
        assert!(Threshold::with_policy(2, 5, ThresholdPolicy::Permissive).is_ok());
        assert!(Threshold::with_policy(3, 4, ThresholdPolicy::Majority).is_ok());
        assert!(Threshold::with_policy(2, 4, ThresholdPolicy::Majority).is_err());
    }

    #[test]
    fn safety_margin_table_section_4() {
        let z = |n, k| safety_margin(n, Threshold::new(k, n).unwrap());
        assert_eq!(z(3, 2), 0);
        assert_eq!(z(4, 3), 0);
        assert_eq!(z(5, 3), 1);
        assert_eq!(z(8, 5), 1);
        assert_eq!(z(9, 5), 2);
        assert_eq!(z(15, 8), 2);
        assert_eq!(z(16, 9), 3);
        assert_eq!(z(23, 12), 3);
        assert_eq!(z(24, 13), 4);
        assert_eq!(z(32, 17), 4);
        assert_eq!(z(33, 17), 4);
        assert_eq!(z(1024, 513), 128);
        // Never more than N - K.
        assert_eq!(z(5, 4), 1);
        assert_eq!(z(9, 8), 1);
        assert_eq!(z(32, 31), 1);
        assert_eq!(acks_needed(32, Threshold::new(17, 32).unwrap()), 21);
    }
}
