//! Alarms (DESIGN §8): protocol violations that should be impossible with an honest
//! coordinator. Kept and counted, never only logged.

use crate::crypto::Digest;
use crate::epoch::Epoch;
use crate::ids::{NodeId, Peer};
use crate::time::Time;

/// One protocol violation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alarm {
    /// Two different configurations for one epoch (§6.3, §6.6).
    MismatchedConfiguration {
        /// The epoch.
        epoch: Epoch,
        /// Who showed us the other one.
        from: Peer,
        /// The digest we hold.
        ours: Digest,
        /// The digest they hold.
        theirs: Digest,
    },
    /// The coordinator dealt us a share that fails its digest or the Feldman check.
    BadShareFromCoordinator {
        /// The epoch.
        epoch: Epoch,
    },
    /// A peer sent a share that does not match the configuration's digest for it.
    BadShareFromPeer {
        /// The epoch.
        epoch: Epoch,
        /// The sender.
        from: Peer,
    },
    /// Computing our own share from peers' shares failed its checks (§6.5).
    ShareComputationFailed {
        /// The epoch.
        epoch: Epoch,
    },
    /// A rebuilt secret did not match its constant-term commitment.
    SecretMismatch {
        /// The epoch.
        epoch: Epoch,
    },
    /// Prior secrets did not decrypt under a verified secret.
    DecryptionFailed {
        /// The epoch whose configuration carries them.
        epoch: Epoch,
    },
    /// Legacy shares that do not rebuild a secret consistently (§6.10).
    LegacyInconsistent {
        /// The member whose share or package did not fit.
        from: Peer,
    },
    /// Legacy packages describe different splits and no split can gather K + 1 shares
    /// (§6.10): the upgrade stops, and every group is named, since nothing shows which
    /// one is right.
    LegacySplitsDisagree {
        /// The holders of each split, largest group first.
        holders: Vec<Vec<NodeId>>,
    },
    /// A node reports a committed epoch the coordinator never committed.
    UnknownCommit {
        /// The node.
        from: Peer,
        /// What it claims.
        epoch: Epoch,
    },
}

/// Alarms raised so far: the first [`Alarms::KEEP`] in full, and a count of all.
#[derive(Debug, Clone, Default)]
pub struct Alarms {
    kept: Vec<(Time, Alarm)>,
    total: u64,
}

impl Alarms {
    /// How many alarms are kept in full.
    pub const KEEP: usize = 64;

    /// Records one.
    pub fn raise(&mut self, now: Time, alarm: Alarm) {
        self.total += 1;
        if self.kept.len() < Self::KEEP {
            self.kept.push((now, alarm));
        }
    }

    /// How many were raised.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The first ones, with when they were raised.
    pub fn kept(&self) -> &[(Time, Alarm)] {
        &self.kept
    }
}
