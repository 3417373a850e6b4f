//! Epochs (DESIGN §4): start at 1, strictly increase, 0 is never valid.

use std::fmt;
use std::num::NonZeroU64;

/// A configuration's epoch. Never 0; incrementing past `u64::MAX` is an error.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Epoch(NonZeroU64);

/// An epoch number that is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EpochError {
    /// Epoch 0 is never valid.
    #[error("epoch 0 is not valid")]
    Zero,
    /// The next epoch would not fit in 64 bits.
    #[error("epoch overflow: no epoch after {0}")]
    Overflow(u64),
}

impl Epoch {
    /// The first epoch.
    pub const FIRST: Epoch = Epoch(NonZeroU64::MIN);

    /// An epoch from its number.
    pub fn new(n: u64) -> Result<Self, EpochError> {
        NonZeroU64::new(n).map(Epoch).ok_or(EpochError::Zero)
    }

    /// The number.
    pub const fn get(self) -> u64 {
        self.0.get()
    }

    /// The epoch after this one.
    pub fn next(self) -> Result<Epoch, EpochError> {
        self.0.checked_add(1).map(Epoch).ok_or(EpochError::Overflow(self.get()))
    }
}

impl TryFrom<u64> for Epoch {
    type Error = EpochError;
    fn try_from(n: u64) -> Result<Self, Self::Error> {
        Epoch::new(n)
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.get())
    }
}

impl fmt::Debug for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "e{}", self.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_and_overflow_are_errors_section_4() {
        assert_eq!(Epoch::new(0), Err(EpochError::Zero));
        assert_eq!(Epoch::FIRST.get(), 1);
        assert_eq!(Epoch::new(7).unwrap().next().unwrap().get(), 8);
        assert_eq!(Epoch::new(u64::MAX).unwrap().next(), Err(EpochError::Overflow(u64::MAX)));
    }
}
