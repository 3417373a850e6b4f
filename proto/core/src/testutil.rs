//! Fixtures for the core's unit tests: dealt configurations without a coordinator.

use std::collections::BTreeMap;
use std::sync::Arc;

use rand_core::SeedableRng;

use crate::config::Configuration;
use crate::crypto::prior::{SecretHistory, seal};
use crate::crypto::sharing::{deal, random_secret};
use crate::crypto::{Secret, Share};
use crate::epoch::Epoch;
use crate::ids::{ClusterId, NodeId};
use crate::quorum::Threshold;

pub(crate) const CLUSTER: ClusterId = ClusterId::from_bytes([7; 16]);

pub(crate) fn id(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

pub(crate) fn e(n: u64) -> Epoch {
    Epoch::new(n).unwrap()
}

/// One epoch's dealing: the configuration, every member's share, and the secret.
pub(crate) struct Dealt {
    pub(crate) config: Arc<Configuration>,
    pub(crate) shares: BTreeMap<NodeId, Share>,
    pub(crate) secret: Secret,
}

impl Dealt {
    pub(crate) fn share(&self, who: &str) -> Share {
        self.shares[&id(who)].duplicate()
    }
}

/// Deals epoch `epoch` to `members` (sorted here) with threshold `k`; `prior` is sealed in
/// when `previous` is set.
pub(crate) fn dealt(
    epoch: u64,
    previous: Option<u64>,
    members: &[&str],
    k: usize,
    prior: &SecretHistory,
    seed: u8,
) -> Dealt {
    let mut rng = rand_chacha::ChaCha20Rng::from_seed([seed; 32]);
    let mut ids: Vec<NodeId> = members.iter().map(|m| id(m)).collect();
    ids.sort();
    let k = Threshold::new(k, ids.len()).unwrap();
    let secret = random_secret(&mut rng);
    let d = deal(&secret, k, ids.len(), &mut rng);
    let sealed = previous.map(|_| seal(&secret, &CLUSTER, e(epoch), prior, [seed; 32]));
    let config =
        Configuration::from_dealing(CLUSTER, e(epoch), previous.map(e), k, &ids, &d, sealed)
            .unwrap();
    let shares = ids.into_iter().zip(d.shares).collect();
    Dealt { config: Arc::new(config), shares, secret }
}
