//! What a crash campaign checks after every round, from the outside, the way a user would
//! notice: the cluster's commits never go backwards, no member forgets a commit it acked,
//! and every member derives the same key from each epoch's secret, forever.

use std::collections::BTreeMap;

use tq_wire::pb;
use zeroize::Zeroizing;

/// What the campaign has seen so far.
#[derive(Default)]
pub(crate) struct Oracle {
    latest: u64,
    /// Every epoch seen committed (aborted epochs are skipped forever, so there are gaps).
    epochs: Vec<u64>,
    /// Per node, the highest epoch it was seen to have committed.
    committed: BTreeMap<String, u64>,
    /// The key each epoch's secret derived the first time it was seen.
    keys: BTreeMap<u64, Zeroizing<Vec<u8>>>,
    /// Acknowledged commits later missing (a node's or the coordinator's).
    pub(crate) acked_lost: u64,
    /// Epochs whose secret differed between members or over time.
    pub(crate) double_commits: u64,
    /// What went wrong, for the report.
    pub(crate) findings: Vec<String>,
}

impl Oracle {
    /// Checks a converged status against everything seen before.
    pub(crate) fn status(&mut self, round: u64, s: &pb::ClusterStatus) {
        if s.latest_committed_epoch < self.latest {
            self.acked_lost += 1;
            self.findings.push(format!(
                "round {round}: latest committed epoch went back from {} to {}",
                self.latest, s.latest_committed_epoch
            ));
        }
        if s.latest_committed_epoch > self.latest {
            self.epochs.push(s.latest_committed_epoch);
        }
        self.latest = self.latest.max(s.latest_committed_epoch);
        for m in &s.members {
            if m.state == "expunged" {
                continue;
            }
            let seen = self.committed.entry(m.node_id.clone()).or_default();
            if m.committed_epoch < *seen || m.stale_reason == "rolled_back" {
                self.acked_lost += 1;
                self.findings.push(format!(
                    "round {round}: {} reports committed epoch {} after having committed {}",
                    m.node_id, m.committed_epoch, *seen
                ));
            }
            *seen = (*seen).max(m.committed_epoch);
        }
    }

    /// The latest committed epoch seen.
    pub(crate) fn latest(&self) -> u64 {
        self.latest
    }

    /// Every epoch seen committed.
    pub(crate) fn epochs(&self) -> &[u64] {
        &self.epochs
    }

    /// Checks one node's key for `epoch` against the first one seen.
    pub(crate) fn key(&mut self, round: u64, node: &str, epoch: u64, key: Zeroizing<Vec<u8>>) {
        match self.keys.get(&epoch) {
            None => {
                self.keys.insert(epoch, key);
            }
            Some(k) if *k == key => {}
            Some(_) => {
                self.double_commits += 1;
                self.findings.push(format!(
                    "round {round}: {node} derives another key from epoch {epoch}'s secret"
                ));
            }
        }
    }

    /// An epoch a member should hold but cannot unlock.
    pub(crate) fn missing(&mut self, round: u64, node: &str, epoch: u64, why: &str) {
        self.acked_lost += 1;
        self.findings.push(format!("round {round}: {node} cannot unlock epoch {epoch}: {why}"));
    }
}
