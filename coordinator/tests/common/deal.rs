//! Dealing an epoch as the coordinator would, to send hand-made Prepares.

// Each test binary uses part of the harness.
#![allow(dead_code)]

use super::*;

/// One epoch dealt as the coordinator would (DESIGN §6.1/§6.2): a valid configuration and
/// every member's share.
pub(crate) struct Dealt {
    pub(crate) config: Arc<Configuration>,
    pub(crate) shares: BTreeMap<NodeId, Share>,
}

/// Deals `epoch` (after `previous`) to `members` with threshold `k`, from `seed`. The prior
/// secrets (present when `previous` is) seal an empty history: a node checks them only
/// when it unlocks, never when it prepares.
pub(crate) fn deal(
    cluster: ClusterId,
    epoch: u64,
    previous: Option<u64>,
    members: &[NodeId],
    k: usize,
    seed: u8,
) -> Dealt {
    use rand_core::SeedableRng;
    use tq_protocol::crypto::digest::share_digest;
    use tq_protocol::crypto::prior::{SecretHistory, seal};
    use tq_protocol::crypto::sharing::{deal, random_secret};
    use tq_protocol::{ConfigurationParts, Epoch, Threshold};

    let mut rng = rand_chacha::ChaCha20Rng::from_seed([seed; 32]);
    let mut ids = members.to_vec();
    ids.sort();
    let e = Epoch::new(epoch).expect("a valid epoch");
    let threshold = Threshold::new(k, ids.len()).expect("a valid threshold");
    let secret = random_secret(&mut rng);
    let dealing = deal(&secret, threshold, ids.len(), &mut rng);
    let parts = ConfigurationParts {
        cluster_id: cluster,
        epoch: e,
        previous_epoch: previous.map(|p| Epoch::new(p).expect("a valid epoch")),
        threshold: k,
        members: ids
            .iter()
            .zip(&dealing.shares)
            .map(|(id, s)| (id.clone(), u64::from(s.index().get()), share_digest(&cluster, e, s)))
            .collect(),
        commitments: dealing.commitments.as_bytes().to_vec(),
        prior_secrets: previous
            .map(|_| seal(&secret, &cluster, e, &SecretHistory::default(), [seed; 32])),
    };
    let config = Arc::new(Configuration::try_from(parts).expect("a valid configuration"));
    Dealt { config, shares: ids.into_iter().zip(dealing.shares).collect() }
}

impl Dealt {
    /// The wire configuration.
    pub(crate) fn config_pb(&self) -> pb::Configuration {
        tq_wire::convert::config_to_pb(&self.config)
    }

    /// `n`'s share on the wire.
    pub(crate) fn share_pb(&self, n: &NodeId) -> pb::Share {
        tq_wire::convert::share_to_pb(self.shares.get(n).expect("a member's share"))
    }

    /// The Prepare the coordinator would send `n`.
    pub(crate) fn prepare(&self, n: &NodeId) -> pb::PrepareRequest {
        pb::PrepareRequest { config: Some(self.config_pb()), share: Some(self.share_pb(n)) }
    }

    /// The configuration's digest.
    pub(crate) fn digest(&self) -> Vec<u8> {
        self.config.digest().0.to_vec()
    }

    /// The Commit the coordinator would send.
    pub(crate) fn commit(&self) -> pb::CommitRequest {
        pb::CommitRequest { epoch: self.config.epoch().get(), digest: self.digest() }
    }
}

/// A cluster with epoch 1 committed on n1..n3, and epoch 2 dealt to the same members (what
/// the coordinator would prepare next).
pub(crate) async fn configured_and_dealt(name: &str) -> (Cluster, Dealt) {
    let (c, all) = Cluster::configured(name, 3, 2).await;
    let dealt = deal(c.id, 2, Some(1), &all, 2, 42);
    (c, dealt)
}

/// The configuration a Prepare carries, to change it.
pub(crate) fn prepared_config(req: &mut pb::PrepareRequest) -> &mut pb::Configuration {
    req.config.as_mut().expect("a configuration")
}
