//! A node's durable state (DESIGN §4) and the changes that move it (§7: one change, one
//! transaction).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::config::Configuration;
use crate::crypto::legacy::LegacyPackage;
use crate::crypto::sharing::verify_share;
use crate::crypto::{Digest, Share};
use crate::epoch::Epoch;
use crate::ids::{ClusterId, NodeId};

/// What a node keeps on disk.
#[derive(Debug, Default)]
pub struct NodeState {
    /// Configurations by epoch: the latest committed and any prepared after it.
    pub configs: BTreeMap<Epoch, Arc<Configuration>>,
    /// This node's share of each epoch in `configs`.
    pub shares: BTreeMap<Epoch, Share>,
    /// Every epoch this node committed.
    pub committed: BTreeSet<Epoch>,
    /// A legacy share package, until the first commit (§6.10).
    pub legacy: Option<LegacyPackage>,
    /// Set when the node learned it was left out of a committed epoch (§6.9).
    pub expunged: Option<Epoch>,
}

/// One durable transition. The driver writes it in one transaction and makes it durable
/// before carrying out any output that follows it.
#[derive(Debug)]
pub enum NodeChange {
    /// Store a prepared configuration and this node's share (§6.3).
    Prepared {
        /// The configuration.
        config: Arc<Configuration>,
        /// This node's share.
        share: Share,
    },
    /// Commit an epoch whose configuration and share are stored (§6.4).
    Committed {
        /// The epoch.
        epoch: Epoch,
    },
    /// Store a configuration with a share computed from peers, and commit it (§6.5).
    CaughtUp {
        /// The committed configuration.
        config: Arc<Configuration>,
        /// This node's computed share.
        share: Share,
    },
    /// Record that this node was left out of a committed epoch (§6.9).
    Expunged {
        /// That epoch.
        epoch: Epoch,
    },
}

/// Durable state that breaks the node's own rules: the store must fail closed (§7).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// A stored configuration is for another cluster.
    #[error("stored configuration for epoch {0} belongs to another cluster")]
    WrongCluster(Epoch),
    /// A configuration is stored under another epoch's key.
    #[error("configuration stored under epoch {key} is for epoch {actual}")]
    WrongEpoch {
        /// The key.
        key: Epoch,
        /// The configuration's own epoch.
        actual: Epoch,
    },
    /// A share without its configuration, or the reverse.
    #[error("epoch {0} has a share without a configuration or a configuration without a share")]
    Unpaired(Epoch),
    /// A stored share does not match its configuration.
    #[error("stored share for epoch {0} does not match its configuration")]
    BadShare(Epoch),
    /// This node is not a member of a stored configuration.
    #[error("this node is not a member of stored epoch {0}")]
    NotAMember(Epoch),
    /// The latest committed epoch has no configuration or share.
    #[error("latest committed epoch {0} has no stored configuration and share")]
    MissingCommitted(Epoch),
    /// Configurations older than the latest commit were kept.
    #[error("epoch {0} is older than the latest commit but was not discarded")]
    NotDiscarded(Epoch),
}

impl NodeState {
    /// The latest committed epoch.
    pub fn latest_committed(&self) -> Option<Epoch> {
        self.committed.last().copied()
    }

    /// The highest epoch with a stored configuration.
    pub fn highest_prepared(&self) -> Option<Epoch> {
        self.configs.keys().next_back().copied()
    }

    /// The latest committed configuration.
    pub fn committed_config(&self) -> Option<&Arc<Configuration>> {
        self.latest_committed().and_then(|e| self.configs.get(&e))
    }

    /// The digest stored for `epoch`.
    pub fn digest(&self, epoch: Epoch) -> Option<Digest> {
        self.configs.get(&epoch).map(|c| c.digest())
    }

    /// Applies one change (what a store replays, and what the node does in memory).
    pub fn apply(&mut self, change: NodeChange) {
        match change {
            NodeChange::Prepared { config, share } => {
                let e = config.epoch();
                self.configs.insert(e, config);
                self.shares.insert(e, share);
            }
            NodeChange::Committed { epoch } => self.commit(epoch),
            NodeChange::CaughtUp { config, share } => {
                let e = config.epoch();
                self.configs.insert(e, config);
                self.shares.insert(e, share);
                self.commit(e);
            }
            NodeChange::Expunged { epoch } => self.expunged = Some(epoch),
        }
    }

    fn commit(&mut self, epoch: Epoch) {
        self.committed.insert(epoch);
        // §6.4: shares of earlier epochs are discarded, and with them the configurations
        // (later answers about them are CommitAdvance or Expunged, which need only this one).
        self.configs = self.configs.split_off(&epoch);
        self.shares = self.shares.split_off(&epoch);
        self.legacy = None;
    }

    /// Checks the state's own consistency (§7: a store that fails it fails closed).
    pub fn check(&self, me: &NodeId, cluster: &ClusterId) -> Result<(), StateError> {
        let epochs: BTreeSet<Epoch> =
            self.configs.keys().chain(self.shares.keys()).copied().collect();
        for e in epochs {
            let (Some(config), Some(share)) = (self.configs.get(&e), self.shares.get(&e)) else {
                return Err(StateError::Unpaired(e));
            };
            if config.cluster_id() != cluster {
                return Err(StateError::WrongCluster(e));
            }
            if config.epoch() != e {
                return Err(StateError::WrongEpoch { key: e, actual: config.epoch() });
            }
            if !config.is_member(me) {
                return Err(StateError::NotAMember(e));
            }
            if !config.share_matches(me, share)
                || verify_share(share, config.commitments()).is_err()
            {
                return Err(StateError::BadShare(e));
            }
        }
        if let Some(c) = self.latest_committed() {
            if !self.configs.contains_key(&c) {
                return Err(StateError::MissingCommitted(c));
            }
            if let Some(old) = self.configs.keys().next().filter(|e| **e < c) {
                return Err(StateError::NotDiscarded(*old));
            }
        }
        Ok(())
    }

    /// A copy (the simulation's disk and memory are separate; shares copied deliberately).
    pub fn duplicate(&self) -> NodeState {
        NodeState {
            configs: self.configs.clone(),
            shares: self.shares.iter().map(|(e, s)| (*e, s.duplicate())).collect(),
            committed: self.committed.clone(),
            legacy: self.legacy.as_ref().map(LegacyPackage::duplicate),
            expunged: self.expunged,
        }
    }
}

impl NodeChange {
    /// A copy, for a driver that applies the change in two places.
    pub fn duplicate(&self) -> NodeChange {
        match self {
            NodeChange::Prepared { config, share } => {
                NodeChange::Prepared { config: config.clone(), share: share.duplicate() }
            }
            NodeChange::Committed { epoch } => NodeChange::Committed { epoch: *epoch },
            NodeChange::CaughtUp { config, share } => {
                NodeChange::CaughtUp { config: config.clone(), share: share.duplicate() }
            }
            NodeChange::Expunged { epoch } => NodeChange::Expunged { epoch: *epoch },
        }
    }
}
