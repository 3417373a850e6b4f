//! The legacy split (DESIGN §6.10): a flat, unversioned byte-wise GF(256) Shamir split of a
//! 32-byte secret. Each member holds a package: its share and the digests of every share.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use zeroize::{Zeroize, Zeroizing};

use super::digest::{Digest, legacy_share_digest};
use super::secret::Secret;
use crate::ids::NodeId;
use crate::quorum::Threshold;
use crate::recorded::{Kind, record};

/// Legacy shares are x ‖ 32 bytes.
pub const LEGACY_SHARE_LEN: usize = 33;

/// One legacy share (x ‖ y over GF(256)).
pub struct LegacyShare(Box<Zeroizing<[u8; LEGACY_SHARE_LEN]>>);

/// Why legacy shares cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LegacyError {
    /// Not 33 bytes.
    #[error("legacy share must be {LEGACY_SHARE_LEN} bytes, got {0}")]
    Length(usize),
    /// x = 0.
    #[error("legacy share index 0 is not allowed")]
    ZeroIndex,
    /// Fewer than K (GF(256) combining would silently return garbage).
    #[error("{got} legacy shares, {needed} needed")]
    TooFewShares {
        /// What was given.
        got: usize,
        /// K.
        needed: usize,
    },
    /// Two shares with one x.
    #[error("two legacy shares have index {0}")]
    DuplicateIndex(u8),
    /// A share whose digest is not among the package's.
    #[error("legacy share from {0} matches no known digest")]
    UnknownDigest(NodeId),
    /// Packages that disagree about the split.
    #[error("legacy packages disagree about the split")]
    Inconsistent,
}

impl LegacyShare {
    /// A share from bytes.
    pub fn from_bytes(b: &[u8]) -> Result<Self, LegacyError> {
        if b.len() != LEGACY_SHARE_LEN {
            return Err(LegacyError::Length(b.len()));
        }
        if b[0] == 0 {
            return Err(LegacyError::ZeroIndex);
        }
        // Copied straight into the wiped box: an intermediate array on the stack would
        // leave the share behind in a frame nothing wipes.
        let mut share = LegacyShare(Box::new(Zeroizing::new([0; LEGACY_SHARE_LEN])));
        share.0.copy_from_slice(b);
        record(Kind::LegacyShare, &share.0[1..]);
        Ok(share)
    }
    /// The bytes. Never log them.
    pub fn expose(&self) -> &[u8; LEGACY_SHARE_LEN] {
        &self.0
    }
    /// The digest recorded for it.
    pub fn digest(&self) -> Digest {
        legacy_share_digest(&**self.0)
    }
    /// A copy. Deliberate, so every copy of a share is visible in review.
    pub fn duplicate(&self) -> Self {
        LegacyShare(self.0.clone())
    }
}

impl fmt::Debug for LegacyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LegacyShare(x={}, <redacted>)", self.0[0])
    }
}

/// What a legacy member holds: its share, the threshold, and every member's share digest.
#[derive(Debug)]
pub struct LegacyPackage {
    /// K of the legacy split.
    pub threshold: Threshold,
    /// This member's share.
    pub share: LegacyShare,
    /// Every member's share digest.
    pub digests: BTreeMap<NodeId, Digest>,
}

impl LegacyPackage {
    /// A copy. Deliberate, so every copy of a share is visible in review.
    pub fn duplicate(&self) -> Self {
        LegacyPackage {
            threshold: self.threshold,
            share: self.share.duplicate(),
            digests: self.digests.clone(),
        }
    }
}

/// Splits a legacy secret among `members` (for tests and for building legacy fixtures).
pub fn split(
    secret: &Secret,
    threshold: Threshold,
    members: &[NodeId],
    rng: &mut rand_chacha::ChaCha20Rng,
) -> BTreeMap<NodeId, LegacyPackage> {
    let mut raw = vsss_rs::Gf256::split_bytes(threshold.get(), members.len(), secret.expose(), rng)
        // Threshold validated 2 ≤ K < N; callers keep N ≤ 255 (the legacy split's limit).
        .unwrap_or_else(|_| panic!("legacy split of {} members", members.len()));
    let shares: Vec<LegacyShare> =
        raw.iter().map(|b| LegacyShare::from_bytes(b).unwrap_or_else(|_| unreachable!())).collect();
    raw.iter_mut().for_each(|b| b.zeroize());
    let digests: BTreeMap<NodeId, Digest> =
        members.iter().cloned().zip(shares.iter().map(LegacyShare::digest)).collect();
    members
        .iter()
        .cloned()
        .zip(shares)
        .map(|(id, share)| (id, LegacyPackage { threshold, share, digests: digests.clone() }))
        .collect()
}

/// Rebuilds the legacy secret from shares named by sender. Each must match the digest known
/// for its sender, indices must be distinct, and there must be at least K.
pub fn combine(
    threshold: Threshold,
    digests: &BTreeMap<NodeId, Digest>,
    shares: &BTreeMap<NodeId, LegacyShare>,
) -> Result<Secret, LegacyError> {
    if shares.len() < threshold.get() {
        return Err(LegacyError::TooFewShares { got: shares.len(), needed: threshold.get() });
    }
    let mut xs = BTreeSet::new();
    let mut raw: Vec<Vec<u8>> = Vec::with_capacity(threshold.get());
    for (from, share) in shares.iter().take(threshold.get()) {
        if digests.get(from) != Some(&share.digest()) {
            return Err(LegacyError::UnknownDigest(from.clone()));
        }
        if !xs.insert(share.expose()[0]) {
            return Err(LegacyError::DuplicateIndex(share.expose()[0]));
        }
        raw.push(share.expose().to_vec());
    }
    let res = vsss_rs::Gf256::combine_bytes(&raw);
    raw.iter_mut().for_each(|b| b.zeroize());
    let mut bytes = Zeroizing::new(res.map_err(|_| LegacyError::Inconsistent)?);
    let mut out: [u8; 32] = bytes.as_slice().try_into().map_err(|_| LegacyError::Inconsistent)?;
    bytes.zeroize();
    Ok(Secret::from_bytes(&mut out))
}

/// Rebuilds the legacy secret from K + 1 shares and checks that two different K of them
/// agree. Nothing covers a package's threshold: a package claiming too low a K (a faulty
/// node, a damaged store) would make K shares of a higher-degree split combine to a wrong
/// secret that no commitment catches. K + 1 shares on one polynomial of degree K − 1 give
/// the same secret from any K; from a higher degree, two subsets disagree (but with
/// probability 2⁻²⁵⁶).
pub fn combine_verified(
    threshold: Threshold,
    digests: &BTreeMap<NodeId, Digest>,
    shares: &BTreeMap<NodeId, LegacyShare>,
) -> Result<Secret, LegacyError> {
    let k = threshold.get();
    if shares.len() <= k {
        return Err(LegacyError::TooFewShares { got: shares.len(), needed: k + 1 });
    }
    let first = combine(threshold, digests, shares)?;
    let rest: BTreeMap<NodeId, LegacyShare> =
        shares.iter().skip(1).take(k).map(|(id, s)| (id.clone(), s.duplicate())).collect();
    let second = combine(threshold, digests, &rest)?;
    if !first.ct_eq(&second) {
        return Err(LegacyError::Inconsistent);
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    fn ids(n: usize) -> Vec<NodeId> {
        (1..=n).map(|i| NodeId::new(format!("n{i}")).unwrap()).collect()
    }

    #[test]
    fn legacy_split_round_trip_section_6_10() {
        let mut rng = rand_chacha::ChaCha20Rng::from_seed([1; 32]);
        let secret = Secret::from_bytes(&mut [0x42; 32]);
        let k = Threshold::new(3, 5).unwrap();
        let pkgs = split(&secret, k, &ids(5), &mut rng);
        let digests = pkgs.values().next().unwrap().digests.clone();
        let pick = |names: &[usize]| -> BTreeMap<NodeId, LegacyShare> {
            names.iter().map(|&i| (ids(5)[i].clone(), pkgs[&ids(5)[i]].share.duplicate())).collect()
        };
        assert!(combine(k, &digests, &pick(&[0, 2, 4])).unwrap().ct_eq(&secret));
        assert_eq!(
            combine(k, &digests, &pick(&[0, 1])).err(),
            Some(LegacyError::TooFewShares { got: 2, needed: 3 })
        );
        // A share presented as another member's does not match that member's digest.
        let mut swapped = pick(&[0, 1, 2]);
        let s0 = swapped.remove(&ids(5)[0]).unwrap();
        swapped.insert(ids(5)[3].clone(), s0);
        assert_eq!(
            combine(k, &digests, &swapped).err(),
            Some(LegacyError::UnknownDigest(ids(5)[3].clone()))
        );
        assert!(combine_verified(k, &digests, &pick(&[0, 2, 3, 4])).unwrap().ct_eq(&secret));
        assert_eq!(
            combine_verified(k, &digests, &pick(&[0, 2, 4])).err(),
            Some(LegacyError::TooFewShares { got: 3, needed: 4 })
        );
        assert_eq!(LegacyShare::from_bytes(&[1; 32]).err(), Some(LegacyError::Length(32)));
        assert_eq!(LegacyShare::from_bytes(&[0; 33]).err(), Some(LegacyError::ZeroIndex));
    }

    /// Found by fuzzing (coordinator_messages): a package claiming K = 2 for a K = 3 split
    /// made two shares combine to a wrong secret, sealed as epoch 1 for good (§6.10).
    #[test]
    fn a_lowered_legacy_threshold_is_caught_by_the_extra_share_section_6_10() {
        let mut rng = rand_chacha::ChaCha20Rng::from_seed([2; 32]);
        let secret = Secret::from_bytes(&mut [0x43; 32]);
        let pkgs = split(&secret, Threshold::new(3, 5).unwrap(), &ids(5), &mut rng);
        let digests = pkgs.values().next().unwrap().digests.clone();
        let three: BTreeMap<NodeId, LegacyShare> = ids(5)
            .into_iter()
            .take(3)
            .map(|id| (id.clone(), pkgs[&id].share.duplicate()))
            .collect();
        let lowered = Threshold::new(2, 5).unwrap();
        let wrong = combine(lowered, &digests, &three).unwrap();
        assert!(!wrong.ct_eq(&secret), "K shares of a higher-degree split give garbage");
        assert_eq!(
            combine_verified(lowered, &digests, &three).err(),
            Some(LegacyError::Inconsistent)
        );
    }
}
