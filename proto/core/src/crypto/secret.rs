//! Secret material as types (DESIGN §5 hygiene): zeroized on drop, boxed so moves do not
//! leave copies behind, `Debug` redacted, compared in constant time.

use std::fmt;

use curve25519_dalek::scalar::Scalar;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::quorum::MAX_MEMBERS;
use crate::recorded::{Kind, record};

/// A cluster secret of one epoch (a Ristretto255 scalar's canonical bytes, or a legacy
/// secret's 32 bytes).
pub struct Secret(Box<Zeroizing<[u8; 32]>>);

impl Secret {
    /// Takes ownership of the bytes; the caller's copy is wiped.
    pub fn from_bytes(bytes: &mut [u8; 32]) -> Self {
        let s = Secret(Box::new(Zeroizing::new(*bytes)));
        bytes.zeroize();
        record(Kind::Secret, s.expose());
        s
    }

    /// The bytes, for key derivation and sealing. Never log them.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// Constant-time equality.
    pub fn ct_eq(&self, other: &Secret) -> bool {
        self.0.ct_eq(&**other.0).into()
    }

    pub(crate) fn from_scalar(s: &Scalar) -> Self {
        let mut b = s.to_bytes();
        Secret::from_bytes(&mut b)
    }

    /// The secret as a scalar, when it is one (tq epochs; legacy secrets may not be).
    pub(crate) fn scalar(&self) -> Option<Zeroizing<Scalar>> {
        Option::from(Scalar::from_canonical_bytes(**self.0)).map(Zeroizing::new)
    }

    /// A copy. Deliberate, so every copy of a secret is visible in review.
    pub fn duplicate(&self) -> Secret {
        Secret(self.0.clone())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A share's x-coordinate: 1-based, at most [`MAX_MEMBERS`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct ShareIndex(u16);

/// Why bytes are not a share.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShareError {
    /// x = 0 is the secret itself, never a share.
    #[error("share index 0 is not allowed")]
    ZeroIndex,
    /// x beyond the largest configuration.
    #[error("share index {0} is beyond the largest configuration ({MAX_MEMBERS})")]
    IndexTooLarge(u64),
    /// The value is not 32 bytes.
    #[error("share value must be 32 bytes, got {0}")]
    Length(usize),
    /// The value is not a canonical Ristretto255 scalar.
    #[error("share value is not a canonical scalar")]
    NotCanonical,
}

impl ShareIndex {
    /// Checks 1 ≤ x ≤ [`MAX_MEMBERS`].
    pub fn new(x: u64) -> Result<Self, ShareError> {
        match x {
            0 => Err(ShareError::ZeroIndex),
            x if x > MAX_MEMBERS as u64 => Err(ShareError::IndexTooLarge(x)),
            x => Ok(ShareIndex(x as u16)),
        }
    }

    /// x.
    pub const fn get(self) -> u16 {
        self.0
    }

    pub(crate) fn scalar(self) -> Scalar {
        Scalar::from(u64::from(self.0))
    }
}

/// One member's share of one epoch's secret: the point (x, y) on the dealt polynomial.
pub struct Share {
    x: ShareIndex,
    y: Box<Zeroizing<[u8; 32]>>,
}

impl Share {
    /// A share from wire bytes; the value must be a canonical scalar.
    pub fn from_bytes(x: ShareIndex, y: &[u8]) -> Result<Self, ShareError> {
        if y.len() != 32 {
            return Err(ShareError::Length(y.len()));
        }
        // Straight into the wiped box: moving a Zeroizing array into a Box leaves the
        // moved-from stack copy unwiped.
        let mut bytes = Box::new(Zeroizing::new([0u8; 32]));
        bytes.copy_from_slice(y);
        if bool::from(Scalar::from_canonical_bytes(**bytes).is_none()) {
            return Err(ShareError::NotCanonical);
        }
        record(Kind::Share, &**bytes);
        Ok(Share { x, y: bytes })
    }

    pub(crate) fn from_scalar(x: ShareIndex, y: &Scalar) -> Self {
        let y = Box::new(Zeroizing::new(y.to_bytes()));
        record(Kind::Share, &**y);
        Share { x, y }
    }

    /// x.
    pub fn index(&self) -> ShareIndex {
        self.x
    }

    /// y's bytes, for the wire and the store. Never log them.
    pub fn expose_value(&self) -> &[u8; 32] {
        &self.y
    }

    pub(crate) fn y_scalar(&self) -> Zeroizing<Scalar> {
        // Constructors only accept canonical scalars.
        Zeroizing::new(Scalar::from_bytes_mod_order(**self.y))
    }

    /// Constant-time equality of (x, y).
    pub fn ct_eq(&self, other: &Share) -> bool {
        self.x == other.x && bool::from(self.y.ct_eq(&**other.y))
    }

    /// A copy. Deliberate, so every copy of a share is visible in review.
    pub fn duplicate(&self) -> Share {
        Share { x: self.x, y: self.y.clone() }
    }
}

impl fmt::Debug for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Share(x={}, y=<redacted>)", self.x.get())
    }
}

/// Fresh randomness handed to the core by its driver (the core owns no RNG). It seeds a
/// ChaCha20 stream for exactly one dealing, so a simulation seed reproduces every byte.
pub struct Entropy(Zeroizing<[u8; 32]>);

impl Entropy {
    /// Wraps 32 random bytes; the caller's copy is wiped.
    pub fn from_bytes(bytes: &mut [u8; 32]) -> Self {
        let e = Entropy(Zeroizing::new(*bytes));
        bytes.zeroize();
        record(Kind::Entropy, &*e.0);
        e
    }

    pub(crate) fn rng(&self) -> rand_chacha::ChaCha20Rng {
        rand_core::SeedableRng::from_seed(*self.0)
    }
}

impl fmt::Debug for Entropy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Entropy(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secret_bytes() {
        let mut b = [0xabu8; 32];
        let s = Secret::from_bytes(&mut b);
        assert_eq!(b, [0u8; 32], "the caller's copy is wiped");
        let d = format!("{s:?}");
        assert!(!d.contains("ab") && !d.contains("171"), "{d}");
        let share = Share::from_bytes(ShareIndex::new(3).unwrap(), &[0x05; 32]).unwrap();
        let d = format!("{share:?}");
        assert!(!d.contains("5, 5") && !d.contains("05"), "{d}");
        assert_eq!(format!("{:?}", Entropy::from_bytes(&mut [7; 32])), "Entropy(<redacted>)");
    }

    #[test]
    fn share_bytes_are_checked_section_5() {
        let x = ShareIndex::new(1).unwrap();
        assert_eq!(ShareIndex::new(0), Err(ShareError::ZeroIndex));
        assert_eq!(ShareIndex::new(1025), Err(ShareError::IndexTooLarge(1025)));
        assert_eq!(Share::from_bytes(x, &[1; 31]).err(), Some(ShareError::Length(31)));
        assert_eq!(Share::from_bytes(x, &[1; 33]).err(), Some(ShareError::Length(33)));
        assert_eq!(Share::from_bytes(x, &[0xff; 32]).err(), Some(ShareError::NotCanonical));
    }

    #[test]
    fn constant_time_equality() {
        let a = Secret::from_bytes(&mut [1; 32]);
        let b = Secret::from_bytes(&mut [1; 32]);
        let c = Secret::from_bytes(&mut [2; 32]);
        assert!(a.ct_eq(&b));
        assert!(!a.ct_eq(&c));
    }
}
