//! SHA3-256 digests of shares and configurations (DESIGN §4, §5).

use std::fmt;

use sha3::{Digest as _, Sha3_256};

use super::secret::Share;
use crate::epoch::Epoch;
use crate::ids::ClusterId;

const SHARE_TAG: &[u8] = b"tq-v1-share-digest";
const CONFIG_TAG: &[u8] = b"tq-v1-configuration";

/// A 32-byte SHA3-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// Short hex for logs and status (the first 8 bytes).
    pub fn short(&self) -> String {
        hex::encode(&self.0[..8])
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.short())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// The digest a configuration records for a member's share: binds the share to its cluster,
/// epoch and x, so a share cannot be replayed into another slot.
pub fn share_digest(cluster: &ClusterId, epoch: Epoch, share: &Share) -> Digest {
    let mut h = Sha3_256::new();
    h.update((SHARE_TAG.len() as u8).to_be_bytes());
    h.update(SHARE_TAG);
    h.update(cluster.as_bytes());
    h.update(epoch.get().to_be_bytes());
    h.update(u32::from(share.index().get()).to_be_bytes());
    h.update(share.expose_value());
    Digest(h.finalize().into())
}

/// The digest of a configuration's canonical encoding.
pub fn config_digest(encoding: &[u8]) -> Digest {
    let mut h = Sha3_256::new();
    h.update((CONFIG_TAG.len() as u8).to_be_bytes());
    h.update(CONFIG_TAG);
    h.update(encoding);
    Digest(h.finalize().into())
}

/// A legacy share's digest: plain SHA3-256 of its bytes, as the legacy split recorded it.
pub fn legacy_share_digest(share_bytes: &[u8]) -> Digest {
    Digest(Sha3_256::digest(share_bytes).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::secret::ShareIndex;

    #[test]
    fn share_digest_binds_every_field_section_5() {
        let c1 = ClusterId::from_bytes([1; 16]);
        let c2 = ClusterId::from_bytes([2; 16]);
        let e1 = Epoch::new(1).unwrap();
        let e2 = Epoch::new(2).unwrap();
        let s = Share::from_bytes(ShareIndex::new(1).unwrap(), &[3; 32]).unwrap();
        let s_other_x = Share::from_bytes(ShareIndex::new(2).unwrap(), &[3; 32]).unwrap();
        let s_other_y = Share::from_bytes(ShareIndex::new(1).unwrap(), &[4; 32]).unwrap();
        let d = share_digest(&c1, e1, &s);
        assert_ne!(d, share_digest(&c2, e1, &s));
        assert_ne!(d, share_digest(&c1, e2, &s));
        assert_ne!(d, share_digest(&c1, e1, &s_other_x));
        assert_ne!(d, share_digest(&c1, e1, &s_other_y));
        assert_eq!(d, share_digest(&c1, e1, &s));
        // Cross-checked with Python hashlib.sha3_256.
        assert_eq!(
            hex::encode(d.0),
            "424530eb856f3ed652435510d0564817ec7d6712aff3f3a4a99a176a9a239d47"
        );
    }
}
