//! Damaged legacy packages (§6.10): what a case does to them before it starts, and which
//! alarms that damage explains when the coordinator is honest (I7).

use std::collections::{BTreeMap, BTreeSet};

use tq_protocol::crypto::legacy::{self, LegacyPackage, LegacyShare};
use tq_protocol::{Alarm, NodeId, Peer, Secret, Threshold};
use zeroize::Zeroizing;

use crate::event::LegacyDamage;

/// Damages the packages `damage` names. Every `OtherSplit` node gets its package of one
/// second split of another secret, so together they describe a split of their own.
pub(crate) fn apply(
    packages: &mut BTreeMap<NodeId, LegacyPackage>,
    damage: &BTreeMap<NodeId, LegacyDamage>,
    rng: &mut rand_chacha::ChaCha20Rng,
) {
    let Some(threshold) = packages.values().next().map(|p| p.threshold) else { return };
    let ids: Vec<NodeId> = packages.keys().cloned().collect();
    let mut bytes = [0u8; 32];
    rand_core::Rng::fill_bytes(rng, &mut bytes);
    let other = legacy::split(&Secret::from_bytes(&mut bytes), threshold, &ids, rng);
    let n = ids.len();
    for (id, how) in damage {
        let Some(pkg) = packages.get_mut(id) else { continue };
        match how {
            LegacyDamage::CorruptShare => {
                let mut b = Zeroizing::new(*pkg.share.expose());
                b[1] ^= 1;
                pkg.share = LegacyShare::from_bytes(&*b)
                    .unwrap_or_else(|e| panic!("share with its x unchanged: {e}"));
            }
            LegacyDamage::OtherSplit => {
                if let Some(o) = other.get(id) {
                    *pkg = o.duplicate();
                }
            }
            LegacyDamage::OtherThreshold => {
                let k = threshold.get();
                pkg.threshold = Threshold::new(k + 1, n)
                    .or_else(|_| Threshold::new(k - 1, n))
                    .unwrap_or_else(|e| panic!("another K for {n} legacy members: {e}"));
            }
        }
    }
}

/// Whether the damaged packages explain `alarm`: a package called inconsistent is a damaged
/// one, and splits said to disagree keep damaged and intact holders apart, all the intact
/// ones in one group.
pub(crate) fn explains(damaged: &BTreeSet<NodeId>, alarm: &Alarm) -> bool {
    match alarm {
        Alarm::LegacyInconsistent { from: Peer::Node(id) } => damaged.contains(id),
        Alarm::LegacySplitsDisagree { holders } => {
            let all_damaged = |g: &Vec<NodeId>| g.iter().all(|id| damaged.contains(id));
            let intact = |g: &Vec<NodeId>| g.iter().all(|id| !damaged.contains(id));
            holders.iter().all(|g| all_damaged(g) || intact(g))
                && holders.iter().filter(|g| intact(g)).count() <= 1
        }
        _ => false,
    }
}
