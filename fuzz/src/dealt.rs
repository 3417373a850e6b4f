//! Real dealings built once per process through tq-protocol's public API: the raw material
//! the harnesses pick from, tamper with or replace. A harness that only saw random bytes
//! would stop at the first digest check.

use std::collections::BTreeMap;
use std::sync::Arc;

use rand_core::SeedableRng;
use tq_protocol::crypto::digest::share_digest;
use tq_protocol::crypto::prior::{SecretHistory, seal};
use tq_protocol::crypto::sharing::{deal, random_secret};
use tq_protocol::{ClusterId, Configuration, ConfigurationParts, Epoch, NodeId, Share, Threshold};

/// The cluster every harness runs in.
pub const CLUSTER: ClusterId = ClusterId::from_bytes([7; 16]);

/// Another cluster, whose configurations must be refused.
pub const OTHER_CLUSTER: ClusterId = ClusterId::from_bytes([9; 16]);

/// A node id known to be valid.
pub fn id(s: &str) -> NodeId {
    NodeId::new(s).unwrap_or_else(|e| panic!("fixture node id {s:?}: {e}"))
}

/// One epoch dealt: its configuration, every member's share, and every secret up to and
/// including this epoch's (what a member that unlocks it must hold).
#[derive(Debug)]
pub struct Dealt {
    /// The configuration.
    pub config: Arc<Configuration>,
    /// Each member's share.
    pub shares: BTreeMap<NodeId, Share>,
    /// Every earlier secret carried forward, plus this epoch's.
    pub history: SecretHistory,
}

impl Dealt {
    /// Deals `epoch` of `cluster` to `members` with threshold `k`; with `previous`, the
    /// previous epoch's history is sealed in. `seed` fixes every random byte.
    pub fn new(
        cluster: ClusterId,
        epoch: u64,
        previous: Option<&Dealt>,
        members: &[&str],
        k: usize,
        seed: u8,
    ) -> Dealt {
        let epoch = Epoch::new(epoch).unwrap_or_else(|e| panic!("fixture epoch: {e}"));
        let mut rng = rand_chacha::ChaCha20Rng::from_seed([seed; 32]);
        let mut ids: Vec<NodeId> = members.iter().map(|m| id(m)).collect();
        ids.sort();
        let threshold =
            Threshold::new(k, ids.len()).unwrap_or_else(|e| panic!("fixture threshold: {e}"));
        let secret = random_secret(&mut rng);
        let dealing = deal(&secret, threshold, ids.len(), &mut rng);
        let prior_secrets =
            previous.map(|p| seal(&secret, &cluster, epoch, &p.history, [seed; 32]));
        let parts = ConfigurationParts {
            cluster_id: cluster,
            epoch,
            previous_epoch: previous.map(|p| p.config.epoch()),
            threshold: k,
            members: ids
                .iter()
                .zip(&dealing.shares)
                .map(|(id, s)| {
                    (id.clone(), u64::from(s.index().get()), share_digest(&cluster, epoch, s))
                })
                .collect(),
            commitments: dealing.commitments.as_bytes().to_vec(),
            prior_secrets,
        };
        let config = Configuration::try_from(parts)
            .unwrap_or_else(|e| panic!("fixture configuration for epoch {epoch}: {e}"));
        let mut history = previous.map(|p| p.history.duplicate()).unwrap_or_default();
        history.0.insert(epoch, secret);
        Dealt {
            config: Arc::new(config),
            shares: ids.into_iter().zip(dealing.shares).collect(),
            history,
        }
    }

    /// The secret of this epoch.
    pub fn secret(&self) -> &tq_protocol::Secret {
        let e = self.config.epoch();
        self.history.0.get(&e).unwrap_or_else(|| panic!("fixture {e} has no secret"))
    }
}
