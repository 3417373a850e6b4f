//! The public configuration of one epoch (DESIGN §4), validated once at the boundary:
//! a `Configuration` value cannot break §4's rules.

use std::collections::BTreeMap;

use crate::codec::{DecodeError, Reader, Writer};
use crate::crypto::digest::{config_digest, share_digest};
use crate::crypto::prior::PriorSecrets;
use crate::crypto::sharing::{CommitmentError, Commitments, Dealing};
use crate::crypto::{Digest, Share, ShareIndex};
use crate::epoch::Epoch;
use crate::ids::{ClusterId, NodeId};
use crate::quorum::{QuorumError, Threshold, acks_needed, check_members};

const ENCODING_VERSION: u8 = 1;

/// A member's public slot: its share's x and the digest of its share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// x, 1-based in sorted member order.
    pub x: ShareIndex,
    /// SHA3-256 of the member's share (DESIGN §5).
    pub share_digest: Digest,
}

/// A configuration as received, not yet checked.
#[derive(Debug, Clone)]
pub struct ConfigurationParts {
    /// The cluster.
    pub cluster_id: ClusterId,
    /// This configuration's epoch.
    pub epoch: Epoch,
    /// The latest committed epoch this one replaces.
    pub previous_epoch: Option<Epoch>,
    /// K.
    pub threshold: usize,
    /// Members as listed (duplicates are an error, order is checked).
    pub members: Vec<(NodeId, u64, Digest)>,
    /// The Feldman verifier set: K + 1 compressed points.
    pub commitments: Vec<[u8; 32]>,
    /// Sealed history; present exactly when `previous_epoch` is.
    pub prior_secrets: Option<PriorSecrets>,
}

/// A configuration that breaks DESIGN §4.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// N or K out of bounds.
    #[error(transparent)]
    Quorum(#[from] QuorumError),
    /// Bad commitments.
    #[error(transparent)]
    Commitments(#[from] CommitmentError),
    /// A member listed twice.
    #[error("member {0} is listed twice")]
    DuplicateMember(NodeId),
    /// Members not in sorted order, or x not 1-based in that order.
    #[error("member {node} must have share index {expected}, has {got}")]
    MemberIndex {
        /// The member.
        node: NodeId,
        /// Its position + 1 in sorted order.
        expected: u64,
        /// What it claims.
        got: u64,
    },
    /// `previous_epoch` not below `epoch`.
    #[error("previous epoch {previous} is not before epoch {epoch}")]
    PreviousNotBefore {
        /// This epoch.
        epoch: Epoch,
        /// The claimed previous epoch.
        previous: Epoch,
    },
    /// Prior secrets without a previous epoch, or the reverse.
    #[error("prior secrets must be present exactly when there is a previous epoch")]
    PriorSecretsMismatch,
}

/// The public configuration of one epoch. Immutable; share it behind an `Arc`.
#[derive(Clone, PartialEq, Eq)]
pub struct Configuration {
    cluster_id: ClusterId,
    epoch: Epoch,
    previous_epoch: Option<Epoch>,
    threshold: Threshold,
    members: BTreeMap<NodeId, Member>,
    commitments: Commitments,
    prior_secrets: Option<PriorSecrets>,
    digest: Digest,
}

impl TryFrom<ConfigurationParts> for Configuration {
    type Error = ConfigError;

    fn try_from(p: ConfigurationParts) -> Result<Self, ConfigError> {
        let n = p.members.len();
        check_members(n)?;
        let threshold = Threshold::new(p.threshold, n)?;
        if let Some(previous) = p.previous_epoch.filter(|prev| *prev >= p.epoch) {
            return Err(ConfigError::PreviousNotBefore { epoch: p.epoch, previous });
        }
        if p.previous_epoch.is_some() != p.prior_secrets.is_some() {
            return Err(ConfigError::PriorSecretsMismatch);
        }
        let mut members = BTreeMap::new();
        for (node, x, share_digest) in p.members {
            if members.contains_key(&node) {
                return Err(ConfigError::DuplicateMember(node));
            }
            let expected = members.len() as u64 + 1;
            let last_is_smaller = members.keys().next_back().is_none_or(|last| *last < node);
            if x != expected || !last_is_smaller {
                return Err(ConfigError::MemberIndex { node, expected, got: x });
            }
            // expected ≤ n ≤ 1024, so it is a valid index.
            let x = ShareIndex::new(x).map_err(|_| QuorumError::Members(n))?;
            members.insert(node, Member { x, share_digest });
        }
        let commitments = Commitments::from_bytes(threshold, p.commitments)?;
        let mut c = Configuration {
            cluster_id: p.cluster_id,
            epoch: p.epoch,
            previous_epoch: p.previous_epoch,
            threshold,
            members,
            commitments,
            prior_secrets: p.prior_secrets,
            digest: Digest([0; 32]),
        };
        c.digest = config_digest(&c.encode());
        Ok(c)
    }
}

impl Configuration {
    /// Builds the configuration for a fresh dealing: members get x = 1.. in sorted order and
    /// their share digests. `members` must be sorted, distinct and as many as the shares.
    pub(crate) fn from_dealing(
        cluster_id: ClusterId,
        epoch: Epoch,
        previous_epoch: Option<Epoch>,
        threshold: Threshold,
        members: &[NodeId],
        dealing: &Dealing,
        prior_secrets: Option<PriorSecrets>,
    ) -> Result<Self, ConfigError> {
        let members = members
            .iter()
            .zip(&dealing.shares)
            .map(|(id, s)| {
                (id.clone(), u64::from(s.index().get()), share_digest(&cluster_id, epoch, s))
            })
            .collect();
        Configuration::try_from(ConfigurationParts {
            cluster_id,
            epoch,
            previous_epoch,
            threshold: threshold.get(),
            members,
            commitments: dealing.commitments.as_bytes().to_vec(),
            prior_secrets,
        })
    }

    /// The unvalidated parts (for the wire, and for tests that need to break a rule).
    pub fn to_parts(&self) -> ConfigurationParts {
        ConfigurationParts {
            cluster_id: self.cluster_id,
            epoch: self.epoch,
            previous_epoch: self.previous_epoch,
            threshold: self.threshold.get(),
            members: self
                .members
                .iter()
                .map(|(id, m)| (id.clone(), u64::from(m.x.get()), m.share_digest))
                .collect(),
            commitments: self.commitments.as_bytes().to_vec(),
            prior_secrets: self.prior_secrets.clone(),
        }
    }

    /// The cluster.
    pub fn cluster_id(&self) -> &ClusterId {
        &self.cluster_id
    }
    /// The epoch.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }
    /// The latest committed epoch this one replaces.
    pub fn previous_epoch(&self) -> Option<Epoch> {
        self.previous_epoch
    }
    /// K.
    pub fn threshold(&self) -> Threshold {
        self.threshold
    }
    /// N.
    pub fn n(&self) -> usize {
        self.members.len()
    }
    /// K + Z.
    pub fn acks_needed(&self) -> usize {
        acks_needed(self.n(), self.threshold)
    }
    /// Members in sorted order.
    pub fn members(&self) -> &BTreeMap<NodeId, Member> {
        &self.members
    }
    /// One member's slot.
    pub fn member(&self, id: &NodeId) -> Option<&Member> {
        self.members.get(id)
    }
    /// Whether `id` is a member.
    pub fn is_member(&self, id: &NodeId) -> bool {
        self.members.contains_key(id)
    }
    /// The Feldman verifier set.
    pub fn commitments(&self) -> &Commitments {
        &self.commitments
    }
    /// The sealed history.
    pub fn prior_secrets(&self) -> Option<&PriorSecrets> {
        self.prior_secrets.as_ref()
    }
    /// The digest of the canonical encoding; acks and commits carry it.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// Checks a share claimed for `member` against the digest this configuration records
    /// (cheap, and names a bad sender).
    pub fn share_matches(&self, member: &NodeId, share: &Share) -> bool {
        self.members.get(member).is_some_and(|m| {
            m.x == share.index()
                && share_digest(&self.cluster_id, self.epoch, share) == m.share_digest
        })
    }

    /// The canonical encoding (what the digest covers, and what stores keep).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(ENCODING_VERSION)
            .fixed(self.cluster_id.as_bytes())
            .u64(self.epoch.get())
            .u64(self.previous_epoch.map_or(0, Epoch::get))
            .u16(self.threshold.get() as u16)
            .u32(self.members.len() as u32);
        for (id, m) in &self.members {
            w.bytes(id.as_str().as_bytes()).u16(m.x.get()).fixed(&m.share_digest.0);
        }
        w.u32(self.commitments.as_bytes().len() as u32);
        for c in self.commitments.as_bytes() {
            w.fixed(c);
        }
        match &self.prior_secrets {
            None => w.u8(0),
            Some(p) => w.u8(1).fixed(&p.salt).bytes(&p.ciphertext),
        };
        w.finish()
    }

    /// Decodes and validates a canonical encoding.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let invalid = |what: &'static str, why: String| DecodeError::Invalid { what, why };
        let mut r = Reader::new(buf);
        let version = r.u8()?;
        if version != ENCODING_VERSION {
            return Err(DecodeError::UnknownTag { what: "configuration version", tag: version });
        }
        let cluster_id = ClusterId::from_bytes(r.fixed()?);
        let epoch = Epoch::new(r.u64()?).map_err(|e| invalid("epoch", e.to_string()))?;
        let previous_epoch = match r.u64()? {
            0 => None,
            n => Some(Epoch::new(n).map_err(|e| invalid("previous epoch", e.to_string()))?),
        };
        let threshold = usize::from(r.u16()?);
        let n = r.u32()? as usize;
        check_members(n).map_err(|e| invalid("members", e.to_string()))?;
        let mut members = Vec::with_capacity(n);
        for _ in 0..n {
            let id = std::str::from_utf8(r.bytes()?)
                .map_err(|e| invalid("node id", e.to_string()))
                .and_then(|s| NodeId::new(s).map_err(|e| invalid("node id", e.to_string())))?;
            members.push((id, u64::from(r.u16()?), Digest(r.fixed()?)));
        }
        let nc = r.u32()? as usize;
        if nc > n + 1 {
            return Err(invalid("commitments", format!("{nc} for {n} members")));
        }
        let commitments = (0..nc).map(|_| r.fixed()).collect::<Result<Vec<_>, _>>()?;
        let prior_secrets = match r.u8()? {
            0 => None,
            1 => Some(PriorSecrets { salt: r.fixed()?, ciphertext: r.bytes()?.to_vec() }),
            tag => return Err(DecodeError::UnknownTag { what: "prior secrets", tag }),
        };
        r.finish()?;
        Configuration::try_from(ConfigurationParts {
            cluster_id,
            epoch,
            previous_epoch,
            threshold,
            members,
            commitments,
            prior_secrets,
        })
        .map_err(|e| invalid("configuration", e.to_string()))
    }
}

impl std::fmt::Debug for Configuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Configuration({:?} K={} N={} prev={:?} {:?})",
            self.epoch,
            self.threshold.get(),
            self.n(),
            self.previous_epoch,
            self.digest
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::crypto::sharing::{deal, random_secret};
    use rand_core::SeedableRng;

    pub(crate) fn ids(n: usize) -> Vec<NodeId> {
        let mut v: Vec<NodeId> =
            (1..=n).map(|i| NodeId::new(format!("node-{i}")).unwrap()).collect();
        v.sort();
        v
    }

    pub(crate) fn sample(n: usize, k: usize) -> Configuration {
        let mut rng = rand_chacha::ChaCha20Rng::from_seed([1; 32]);
        let k = Threshold::new(k, n).unwrap();
        let d = deal(&random_secret(&mut rng), k, n, &mut rng);
        Configuration::from_dealing(
            ClusterId::from_bytes([1; 16]),
            Epoch::FIRST,
            None,
            k,
            &ids(n),
            &d,
            None,
        )
        .unwrap()
    }

    fn broken(f: impl FnOnce(&mut ConfigurationParts)) -> Result<Configuration, ConfigError> {
        let mut p = sample(5, 3).to_parts();
        f(&mut p);
        Configuration::try_from(p)
    }

    #[test]
    fn encoding_round_trips_and_digest_is_stable() {
        let c = sample(5, 3);
        let d = Configuration::decode(&c.encode()).unwrap();
        assert_eq!(d, c);
        assert_eq!(d.digest(), c.digest());
        assert_eq!(Configuration::try_from(c.to_parts()).unwrap(), c);
        let mut buf = c.encode();
        buf.push(0);
        assert_eq!(Configuration::decode(&buf).err(), Some(DecodeError::Trailing(1)));
        buf.truncate(buf.len() - 10);
        assert!(matches!(Configuration::decode(&buf), Err(DecodeError::Truncated { .. })));
    }

    #[test]
    fn every_field_changes_the_digest() {
        let c = sample(5, 3);
        let mut p = c.to_parts();
        p.members[0].2.0[0] ^= 1;
        assert_ne!(Configuration::try_from(p).unwrap().digest(), c.digest());
        let mut p = c.to_parts();
        p.epoch = Epoch::new(2).unwrap();
        assert_ne!(Configuration::try_from(p).unwrap().digest(), c.digest());
    }

    #[test]
    fn validation_rules_section_4() {
        assert_eq!(
            broken(|p| p.threshold = 1).err(),
            Some(QuorumError::Threshold { k: 1, n: 5 }.into())
        );
        assert_eq!(
            broken(|p| p.threshold = 5).err(),
            Some(QuorumError::Threshold { k: 5, n: 5 }.into())
        );
        assert_eq!(broken(|p| p.members.truncate(2)).err(), Some(QuorumError::Members(2).into()));
        assert!(matches!(
            broken(|p| p.members[1].0 = p.members[0].0.clone()),
            Err(ConfigError::DuplicateMember(_))
        ));
        assert!(matches!(broken(|p| p.members.swap(0, 1)), Err(ConfigError::MemberIndex { .. })));
        assert!(matches!(broken(|p| p.members[2].1 = 7), Err(ConfigError::MemberIndex { .. })));
        assert!(matches!(broken(|p| p.members[0].1 = 0), Err(ConfigError::MemberIndex { .. })));
        assert!(matches!(
            broken(|p| {
                p.commitments.pop();
            }),
            Err(ConfigError::Commitments(_))
        ));
        assert_eq!(
            broken(|p| p.previous_epoch = Some(Epoch::FIRST)).err(),
            Some(ConfigError::PreviousNotBefore { epoch: Epoch::FIRST, previous: Epoch::FIRST })
        );
        assert_eq!(
            broken(|p| {
                p.epoch = Epoch::new(3).unwrap();
                p.previous_epoch = Some(Epoch::new(2).unwrap());
            })
            .err(),
            Some(ConfigError::PriorSecretsMismatch)
        );
    }
}
