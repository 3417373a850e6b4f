//! Feldman verifiable Shamir sharing over the Ristretto255 scalar field, with vsss-rs
//! (DESIGN §5).

use curve25519_dalek::constants::{RISTRETTO_BASEPOINT_POINT, RISTRETTO_BASEPOINT_TABLE};
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use vsss_rs::{IdentifierPrimeField, PrimeFieldShare, ReadableShareSet, ValueGroup};
use zeroize::{Zeroize, Zeroizing};

use super::secret::{Secret, Share, ShareIndex};
use crate::quorum::Threshold;

type VShare = PrimeFieldShare<Scalar>;
type VPoint = ValueGroup<RistrettoPoint>;

/// The Feldman verifier set: the generator, then g^a₀ … g^a₍K−1₎ (K + 1 points).
#[derive(Clone, PartialEq, Eq)]
pub struct Commitments {
    points: Vec<RistrettoPoint>,
    bytes: Vec<[u8; 32]>,
}

/// Commitments that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitmentError {
    /// Not K + 1 points.
    #[error("expected {expected} commitments (K + 1), got {got}")]
    Count {
        /// K + 1.
        expected: usize,
        /// What arrived.
        got: usize,
    },
    /// A point that does not decode.
    #[error("commitment {0} is not a valid Ristretto255 point")]
    BadPoint(usize),
    /// The first point is not the standard generator.
    #[error("the first commitment must be the Ristretto255 base point")]
    WrongGenerator,
}

/// A share or secret that does not lie on the committed polynomial, or too few shares.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SharingError {
    /// The share fails the Feldman check.
    #[error("share {0} does not lie on the committed polynomial")]
    ShareNotOnPolynomial(u16),
    /// The rebuilt secret does not match the constant-term commitment.
    #[error("the rebuilt secret does not match the constant-term commitment")]
    SecretMismatch,
    /// Fewer shares than the threshold.
    #[error("{got} shares, {needed} needed")]
    TooFewShares {
        /// What was given.
        got: usize,
        /// K.
        needed: usize,
    },
    /// Two shares with the same x.
    #[error("two shares have index {0}")]
    DuplicateIndex(u16),
    /// A share at the x being computed was given: after shifting x by it, that share sits
    /// at x = 0, which is never a share (§5).
    #[error("a share with index {0}, the index being computed, was given")]
    TargetIndexGiven(u16),
}

impl Commitments {
    /// Decodes K + 1 compressed points.
    pub fn from_bytes(k: Threshold, bytes: Vec<[u8; 32]>) -> Result<Self, CommitmentError> {
        let expected = k.get() + 1;
        if bytes.len() != expected {
            return Err(CommitmentError::Count { expected, got: bytes.len() });
        }
        let points = bytes
            .iter()
            .enumerate()
            .map(|(i, b)| CompressedRistretto(*b).decompress().ok_or(CommitmentError::BadPoint(i)))
            .collect::<Result<Vec<_>, _>>()?;
        if points[0] != RISTRETTO_BASEPOINT_POINT {
            return Err(CommitmentError::WrongGenerator);
        }
        Ok(Commitments { points, bytes })
    }

    fn from_points(points: Vec<RistrettoPoint>) -> Self {
        let bytes = points.iter().map(|p| p.compress().to_bytes()).collect();
        Commitments { points, bytes }
    }

    /// The compressed points, generator first.
    pub fn as_bytes(&self) -> &[[u8; 32]] {
        &self.bytes
    }

    /// K (one less than the number of points).
    pub fn threshold(&self) -> usize {
        self.points.len() - 1
    }

    /// vsss-rs's form, to check [`verify_share`] against vsss-rs's own Feldman check.
    #[cfg(test)]
    fn verifier_set(&self) -> Vec<VPoint> {
        self.points.iter().map(|p| ValueGroup(*p)).collect()
    }
}

impl std::fmt::Debug for Commitments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Commitments(K={})", self.threshold())
    }
}

/// A fresh dealing: one share per x = 1..=n, and its commitments.
pub struct Dealing {
    /// Shares in x order.
    pub shares: Vec<Share>,
    /// The verifier set.
    pub commitments: Commitments,
}

/// A random non-zero scalar secret from the dealing's entropy stream.
pub fn random_secret(rng: &mut rand_chacha::ChaCha20Rng) -> Secret {
    loop {
        let mut wide = Zeroizing::new([0u8; 64]);
        rand_core::Rng::fill_bytes(rng, &mut *wide);
        let s = Zeroizing::new(Scalar::from_bytes_mod_order_wide(&wide));
        if *s != Scalar::ZERO {
            return Secret::from_scalar(&s);
        }
    }
}

/// Deals `secret` (a canonical scalar) to x = 1..=n with threshold K.
pub fn deal(
    secret: &Secret,
    k: Threshold,
    n: usize,
    rng: &mut rand_chacha::ChaCha20Rng,
) -> Dealing {
    // Callers deal only secrets they drew with `random_secret` or rebuilt from tq shares.
    let s = secret.scalar().unwrap_or_else(|| unreachable_secret());
    let mut value = IdentifierPrimeField(*s);
    let ids = (1..=n as u64).map(|i| IdentifierPrimeField(Scalar::from(i)));
    let (mut vshares, verifiers) = vsss_rs::feldman::split_secret_with_participant_ids_iter::<
        VShare,
        VPoint,
    >(k.get(), n, &value, None, &mut *rng, ids)
    // Parameters come from a validated Threshold (2 ≤ K < N ≤ 1024) and the generator is the
    // base point, so vsss-rs has nothing to reject.
    .unwrap_or_else(|_| unreachable_split());
    let shares = vshares
        .iter()
        .enumerate()
        .map(|(i, v)| {
            Share::from_scalar(
                ShareIndex::new(i as u64 + 1).unwrap_or_else(|_| unreachable_split()),
                &v.value.0,
            )
        })
        .collect();
    vshares.iter_mut().for_each(|v| v.value.0.zeroize());
    value.0.zeroize();
    let commitments = Commitments::from_points(verifiers.iter().map(|v| v.0).collect());
    Dealing { shares, commitments }
}

#[cold]
fn unreachable_secret() -> ! {
    panic!("dealing a secret that is not a canonical scalar")
}

#[cold]
fn unreachable_split() -> ! {
    panic!("vsss-rs rejected parameters that were validated")
}

/// Checks a share against the commitments (the Feldman check).
///
/// This is vsss-rs's Feldman check, g^y = Σ C_j·x^j, with the sum computed by Horner's
/// rule, (…(C₍K−1₎·x + C₍K−2₎)·x + …)·x + C₀, in variable time: x and the commitments are
/// public, so nothing secret meets variable-time code (y only meets the constant-time
/// base-point table). x is at most 1024, so each step is a dozen point additions where
/// vsss-rs's check spends a 253-bit constant-time multiplication (~28 ms per Prepare at
/// K = 513) and a multiscalar sum still ~1 000 additions at K = 17 (BENCHMARKS.md).
pub fn verify_share(share: &Share, commitments: &Commitments) -> Result<(), SharingError> {
    let x = share.index().get();
    let expected = commitments.points[1..]
        .iter()
        .rev()
        .fold(RistrettoPoint::identity(), |acc, c| times_small(&acc, x) + c);
    let y = share.y_scalar();
    if RISTRETTO_BASEPOINT_TABLE * &*y == expected {
        Ok(())
    } else {
        Err(SharingError::ShareNotOnPolynomial(share.index().get()))
    }
}

/// x·P by double-and-add over x's bits, most significant first (x ≥ 1, public).
fn times_small(p: &RistrettoPoint, x: u16) -> RistrettoPoint {
    let top = 15 - x.leading_zeros();
    (0..top).rev().fold(*p, |acc, bit| {
        let doubled = acc + acc;
        if (x >> bit) & 1 == 1 { doubled + p } else { doubled }
    })
}

/// Checks a rebuilt secret against the constant-term commitment.
pub fn check_secret(secret: &Secret, commitments: &Commitments) -> Result<(), SharingError> {
    let s = secret.scalar().ok_or(SharingError::SecretMismatch)?;
    if RISTRETTO_BASEPOINT_POINT * *s == commitments.points[1] {
        Ok(())
    } else {
        Err(SharingError::SecretMismatch)
    }
}

/// Rebuilds the secret from at least K shares (only the first K are used).
pub fn combine(shares: &[&Share], k: Threshold) -> Result<Secret, SharingError> {
    let y = interpolate(shares, k, Scalar::ZERO)?;
    Ok(Secret::from_scalar(&y))
}

/// Computes the share at `x` from at least K shares of the same polynomial (catch-up, §6.5).
pub fn interpolate_share(
    shares: &[&Share],
    k: Threshold,
    x: ShareIndex,
) -> Result<Share, SharingError> {
    let y = interpolate(shares, k, x.scalar())?;
    Ok(Share::from_scalar(x, &y))
}

/// f(at) from K points: combining at zero with every x shifted by `at` is the same Lagrange
/// interpolation, so vsss-rs does the arithmetic.
fn interpolate(
    shares: &[&Share],
    k: Threshold,
    at: Scalar,
) -> Result<Zeroizing<Scalar>, SharingError> {
    if shares.len() < k.get() {
        return Err(SharingError::TooFewShares { got: shares.len(), needed: k.get() });
    }
    let chosen = &shares[..k.get()];
    let mut seen = std::collections::BTreeSet::new();
    for s in chosen {
        if !seen.insert(s.index()) {
            return Err(SharingError::DuplicateIndex(s.index().get()));
        }
        if s.index().scalar() == at {
            return Err(SharingError::TargetIndexGiven(s.index().get()));
        }
    }
    let mut shifted: Vec<VShare> = chosen
        .iter()
        .map(|s| {
            let mut v = to_vsss(s);
            v.identifier = IdentifierPrimeField(s.index().scalar() - at);
            v
        })
        .collect();
    let res = shifted.combine();
    shifted.iter_mut().for_each(|v| v.value.0.zeroize());
    // Indices are distinct, non-zero, at most 1024 and none is `at` (checked above), so
    // every shifted identifier is non-zero and distinct: vsss-rs cannot refuse.
    let mut y = res.unwrap_or_else(|_| unreachable_split());
    let out = Zeroizing::new(y.0);
    y.0.zeroize();
    Ok(out)
}

fn to_vsss(share: &Share) -> VShare {
    VShare {
        identifier: IdentifierPrimeField(share.index().scalar()),
        value: IdentifierPrimeField(*share.y_scalar()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    fn rng(seed: u8) -> rand_chacha::ChaCha20Rng {
        rand_chacha::ChaCha20Rng::from_seed([seed; 32])
    }

    #[test]
    fn known_answer_dealing_section_5() {
        let mut r = rng(7);
        let secret = random_secret(&mut r);
        let d = deal(&secret, Threshold::new(2, 3).unwrap(), 3, &mut r);
        // Fixed seed, fixed bytes. Checked independently (Python, integers mod ℓ): the three
        // y values are collinear and 2·y₁ − y₂ is the secret.
        assert_eq!(
            hex::encode(secret.expose()),
            "086565a2edb6121f62aeb259d634dadcbaa39a503cbb80b8e176643cb5d7d909"
        );
        let y: Vec<String> = d.shares.iter().map(|s| hex::encode(s.expose_value())).collect();
        assert_eq!(
            y,
            [
                "05ea74a73870f3ed4e8fe4751e1772e3661c4b2cd03668c11ff1e04da813d501",
                "ef427a099e8ce614120d0e3545f3e8fe1295fb0764b24fca5d6b5d5f9b4fd009",
                "ecc7890ee945c7e3feed3f518dd58005bf0dace3f72d37d39be5d9708e8bcb01",
            ]
        );
        assert_eq!(
            hex::encode(d.commitments.as_bytes()[1]),
            "ca3f9db3b7808bdd87faac3639b0da197e9b9daddd37973e2984586a24018e2a"
        );
    }

    #[test]
    fn any_k_shares_rebuild_and_verify() {
        let mut r = rng(1);
        let k = Threshold::new(3, 5).unwrap();
        let secret = random_secret(&mut r);
        let d = deal(&secret, k, 5, &mut r);
        for s in &d.shares {
            verify_share(s, &d.commitments).unwrap();
        }
        for combo in [[0, 1, 2], [2, 3, 4], [4, 0, 2]] {
            let picked: Vec<&Share> = combo.iter().map(|&i| &d.shares[i]).collect();
            let rebuilt = combine(&picked, k).unwrap();
            assert!(rebuilt.ct_eq(&secret));
            check_secret(&rebuilt, &d.commitments).unwrap();
        }
        // K - 1 shares give a different value (threshold is real).
        let two: Vec<&Share> = d.shares[..2].iter().collect();
        assert_eq!(combine(&two, k).err(), Some(SharingError::TooFewShares { got: 2, needed: 3 }));
    }

    /// §5: the Horner Feldman check agrees with vsss-rs's on shares on and off the
    /// polynomial, at small and mesh-sized thresholds, up to the largest index (1024).
    #[test]
    fn feldman_check_agrees_with_vsss_rs_section_5() {
        use vsss_rs::FeldmanVerifierSet;
        for (seed, k, n) in [(4u8, 2usize, 3usize), (5, 17, 32), (6, 129, 256), (7, 513, 1024)] {
            let mut r = rng(seed);
            let d = deal(&random_secret(&mut r), Threshold::new(k, n).unwrap(), n, &mut r);
            let sampled = d.shares.iter().enumerate().step_by(n / 8 + 1);
            for (i, s) in sampled.chain(d.shares.iter().enumerate().skip(n - 1)) {
                let theirs = d.commitments.verifier_set().verify_share(&to_vsss(s)).is_ok();
                assert!(theirs && verify_share(s, &d.commitments).is_ok(), "share {i}");
                let mut y = *s.expose_value();
                y[i % 31] ^= 1 << (i % 8);
                let Ok(bad) = Share::from_bytes(s.index(), &y) else { continue };
                let theirs = d.commitments.verifier_set().verify_share(&to_vsss(&bad)).is_ok();
                assert!(!theirs && verify_share(&bad, &d.commitments).is_err(), "bad share {i}");
            }
        }
    }

    #[test]
    fn interpolating_a_missing_share_section_6_5() {
        let mut r = rng(2);
        let k = Threshold::new(3, 5).unwrap();
        let secret = random_secret(&mut r);
        let d = deal(&secret, k, 5, &mut r);
        let others: Vec<&Share> = [&d.shares[0], &d.shares[2], &d.shares[4]].into();
        let mine = interpolate_share(&others, k, ShareIndex::new(2).unwrap()).unwrap();
        assert!(mine.ct_eq(&d.shares[1]));
        verify_share(&mine, &d.commitments).unwrap();
    }

    #[test]
    fn tampered_share_fails_feldman_section_5() {
        let mut r = rng(3);
        let k = Threshold::new(2, 3).unwrap();
        let d = deal(&random_secret(&mut r), k, 3, &mut r);
        let mut y = *d.shares[1].expose_value();
        y[0] ^= 1;
        let bad = Share::from_bytes(d.shares[1].index(), &y).unwrap();
        assert_eq!(verify_share(&bad, &d.commitments), Err(SharingError::ShareNotOnPolynomial(2)));
        let moved =
            Share::from_bytes(ShareIndex::new(3).unwrap(), d.shares[1].expose_value()).unwrap();
        assert!(verify_share(&moved, &d.commitments).is_err());
        let wrong = Secret::from_bytes(&mut [1; 32]);
        assert_eq!(check_secret(&wrong, &d.commitments), Err(SharingError::SecretMismatch));
    }

    /// Found by the `share_combine` fuzz target: a share at the index being computed became
    /// x = 0 after the shift, and vsss-rs's refusal was treated as unreachable (a panic).
    #[test]
    fn interpolating_at_a_given_index_is_refused_section_5() {
        let mut r = rng(6);
        let k = Threshold::new(2, 3).unwrap();
        let d = deal(&random_secret(&mut r), k, 3, &mut r);
        let given = [&d.shares[0], &d.shares[2]];
        for x in [1, 3] {
            assert_eq!(
                interpolate_share(&given, k, ShareIndex::new(x).unwrap()).err(),
                Some(SharingError::TargetIndexGiven(x as u16))
            );
        }
        let mine = interpolate_share(&given, k, ShareIndex::new(2).unwrap()).unwrap();
        assert!(mine.ct_eq(&d.shares[1]));
    }

    #[test]
    fn duplicate_index_is_refused_section_5() {
        let mut r = rng(4);
        let k = Threshold::new(2, 3).unwrap();
        let d = deal(&random_secret(&mut r), k, 3, &mut r);
        let dup = [&d.shares[0], &d.shares[0]];
        assert_eq!(combine(&dup, k).err(), Some(SharingError::DuplicateIndex(1)));
    }

    #[test]
    fn commitments_are_validated() {
        let mut r = rng(5);
        let k = Threshold::new(2, 3).unwrap();
        let d = deal(&random_secret(&mut r), k, 3, &mut r);
        let bytes = d.commitments.as_bytes().to_vec();
        assert_eq!(Commitments::from_bytes(k, bytes.clone()).unwrap(), d.commitments);
        assert_eq!(
            Commitments::from_bytes(k, bytes[..2].to_vec()),
            Err(CommitmentError::Count { expected: 3, got: 2 })
        );
        let mut bad = bytes.clone();
        bad[2] = [0xff; 32];
        assert_eq!(Commitments::from_bytes(k, bad), Err(CommitmentError::BadPoint(2)));
        let mut swapped = bytes;
        swapped.swap(0, 1);
        assert_eq!(Commitments::from_bytes(k, swapped), Err(CommitmentError::WrongGenerator));
    }
}
