//! The coordinator ledger (DESIGN §2, §7): epochs handed out, commit decisions, aborts and
//! known nodes. No secret and no share is ever in it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::config::Configuration;
use crate::crypto::Digest;
use crate::epoch::Epoch;
use crate::ids::{ClusterId, NodeId};

/// Why an epoch was abandoned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AbortReason {
    /// The operator asked.
    Operator,
    /// K + Z acks did not arrive within the prepare timeout (§6.8).
    Timeout,
    /// The coordinator restarted while the epoch was in flight (§2).
    CoordinatorRestarted,
    /// Rebuilding the previous secret failed its checks (an alarm says more).
    ShareCollectionFailed,
}

impl AbortReason {
    /// A stable name for status output.
    pub fn as_str(&self) -> &'static str {
        match self {
            AbortReason::Operator => "operator",
            AbortReason::Timeout => "prepare_timeout",
            AbortReason::CoordinatorRestarted => "coordinator_restarted",
            AbortReason::ShareCollectionFailed => "share_collection_failed",
        }
    }
}

/// The coordinator's durable state.
#[derive(Debug, Clone)]
pub struct Ledger {
    /// The cluster.
    pub cluster_id: ClusterId,
    /// The highest epoch ever handed out; every epoch at or below it is used.
    pub highest_epoch: Option<Epoch>,
    /// The digest of every committed epoch.
    pub committed: BTreeMap<Epoch, Digest>,
    /// The latest committed configuration.
    pub latest: Option<Arc<Configuration>>,
    /// Every node that was ever a member of a committed epoch.
    pub former_members: BTreeSet<NodeId>,
    /// Abandoned epochs.
    pub aborted: BTreeMap<Epoch, AbortReason>,
    /// Enrolled nodes (§6.13).
    pub known: BTreeMap<NodeId, KnownNode>,
}

/// What the ledger keeps about an enrolled node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownNode {
    /// Its advertised address.
    pub address: String,
    /// It enrolled with wiped state (nothing prepared, committed or expunged) and has not
    /// been a member of a committed epoch since. Only such a node may rejoin after it was
    /// left out of a committed epoch (§6.9).
    pub fresh: bool,
}

/// One durable ledger transition.
#[derive(Debug, Clone)]
pub enum LedgerChange {
    /// `epoch` is handed out: never to be used again (§6.1).
    EpochReserved(Epoch),
    /// The commit decision (§6.4). Durable before any Commit is sent.
    Committed {
        /// The committed configuration.
        config: Arc<Configuration>,
        /// The operator decided (with at least K acks) rather than K + Z acks arriving.
        by_operator: bool,
    },
    /// The epoch is abandoned for good (§6.8).
    Aborted {
        /// The epoch.
        epoch: Epoch,
        /// Why.
        reason: AbortReason,
    },
    /// A node enrolled, or enrolled again (§6.13).
    NodeEnrolled {
        /// The node.
        node: NodeId,
        /// Its advertised address.
        address: String,
        /// It reported wiped state.
        fresh: bool,
    },
}

/// A ledger that breaks its own rules: the store must fail closed (§7).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// A committed epoch above the highest handed out.
    #[error("committed epoch {0} was never handed out")]
    CommittedBeyondHighest(Epoch),
    /// The latest configuration is not the latest commit.
    #[error("latest configuration does not match the latest committed epoch")]
    LatestMismatch,
    /// A configuration for another cluster.
    #[error("ledger holds a configuration of another cluster")]
    WrongCluster,
    /// An epoch both committed and aborted.
    #[error("epoch {0} is both committed and aborted")]
    CommittedAndAborted(Epoch),
}

impl Ledger {
    /// An empty ledger for a new cluster.
    pub fn new(cluster_id: ClusterId) -> Self {
        Ledger {
            cluster_id,
            highest_epoch: None,
            committed: BTreeMap::new(),
            latest: None,
            former_members: BTreeSet::new(),
            aborted: BTreeMap::new(),
            known: BTreeMap::new(),
        }
    }

    /// The latest committed epoch.
    pub fn latest_committed(&self) -> Option<Epoch> {
        self.latest.as_ref().map(|c| c.epoch())
    }

    /// Applies one change.
    pub fn apply(&mut self, change: &LedgerChange) {
        match change {
            LedgerChange::EpochReserved(e) => {
                self.highest_epoch = self.highest_epoch.max(Some(*e));
            }
            LedgerChange::Committed { config, .. } => {
                let e = config.epoch();
                self.highest_epoch = self.highest_epoch.max(Some(e));
                self.committed.insert(e, config.digest());
                self.former_members.extend(config.members().keys().cloned());
                // Members of the new epoch and of the one it replaces are no longer wiped
                // newcomers, whatever they reported when they enrolled: one left out now must
                // be wiped again before it may return.
                let previous =
                    self.latest.as_ref().map(|c| c.members().keys().cloned().collect::<Vec<_>>());
                for id in config.members().keys().chain(previous.iter().flatten()) {
                    if let Some(k) = self.known.get_mut(id) {
                        k.fresh = false;
                    }
                }
                if self.latest_committed() < Some(e) {
                    self.latest = Some(config.clone());
                }
            }
            LedgerChange::Aborted { epoch, reason } => {
                self.aborted.insert(*epoch, reason.clone());
            }
            LedgerChange::NodeEnrolled { node, address, fresh } => {
                self.known
                    .insert(node.clone(), KnownNode { address: address.clone(), fresh: *fresh });
            }
        }
    }

    /// Checks the ledger's own consistency (§7).
    pub fn check(&self) -> Result<(), LedgerError> {
        if let Some((&e, _)) = self.committed.last_key_value() {
            if Some(e) > self.highest_epoch {
                return Err(LedgerError::CommittedBeyondHighest(e));
            }
            let latest = self.latest.as_ref().ok_or(LedgerError::LatestMismatch)?;
            if latest.epoch() != e || self.committed[&e] != latest.digest() {
                return Err(LedgerError::LatestMismatch);
            }
            if *latest.cluster_id() != self.cluster_id {
                return Err(LedgerError::WrongCluster);
            }
        } else if self.latest.is_some() {
            return Err(LedgerError::LatestMismatch);
        }
        if let Some(e) = self.committed.keys().find(|e| self.aborted.contains_key(e)) {
            return Err(LedgerError::CommittedAndAborted(*e));
        }
        Ok(())
    }

    /// Whether `id` was left out of a committed epoch and has not enrolled wiped since: it
    /// refuses protocol work (§6.9) and must never be sent a later share (I8).
    pub fn is_removed(&self, id: &NodeId) -> bool {
        let member = self.latest.as_ref().is_some_and(|c| c.is_member(id));
        let fresh = self.known.get(id).is_some_and(|k| k.fresh);
        self.former_members.contains(id) && !member && !fresh
    }

    /// The epoch handed out last, if it is neither committed nor aborted: an attempt that a
    /// crash interrupted.
    pub fn interrupted_epoch(&self) -> Option<Epoch> {
        self.highest_epoch
            .filter(|e| !self.committed.contains_key(e) && !self.aborted.contains_key(e))
    }
}
