//! The status the control plane polls (DESIGN §8).

use super::tracker::{StaleReason, Tracker};
use super::{AbortReason, AttemptKind, Coordinator, Phase};
use crate::alarm::Alarm;
use crate::epoch::Epoch;
use crate::ids::{ClusterId, NodeId};
use crate::messages::NodeError;
use crate::time::Time;

/// The phase of an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhaseStatus {
    /// Gathering shares of the previous epoch (or legacy shares).
    CollectingShares,
    /// Prepares out, counting acks.
    Preparing,
    /// Decided; commits going out.
    Committing,
    /// Every member committed.
    Committed,
    /// Abandoned, and why.
    Aborted(AbortReason),
}

impl PhaseStatus {
    /// A stable name: `collecting_shares`, `preparing`, `committing`, `committed`, `aborted`.
    pub fn as_str(&self) -> &'static str {
        match self {
            PhaseStatus::CollectingShares => "collecting_shares",
            PhaseStatus::Preparing => "preparing",
            PhaseStatus::Committing => "committing",
            PhaseStatus::Committed => "committed",
            PhaseStatus::Aborted(_) => "aborted",
        }
    }

    /// Whether the attempt still holds the cluster (collecting or preparing).
    pub fn in_flight(&self) -> bool {
        matches!(self, PhaseStatus::CollectingShares | PhaseStatus::Preparing)
    }
}

/// The latest attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptStatus {
    /// Its epoch.
    pub epoch: Epoch,
    /// What it is for.
    pub kind: AttemptKind,
    /// Where it is.
    pub phase: PhaseStatus,
    /// K.
    pub threshold: usize,
    /// K + Z.
    pub acks_needed: usize,
    /// Matching acks so far.
    pub acks: usize,
    /// When it started.
    pub started_at: Time,
}

/// A member's state in the epoch of interest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// Not (yet) acked.
    Unacked,
    /// Acked: configuration and share durable.
    Prepared,
    /// Committed.
    Committed,
    /// Left out of a committed epoch (§6.9).
    Expunged,
}

impl MemberState {
    /// A stable name.
    pub fn as_str(&self) -> &'static str {
        match self {
            MemberState::Unacked => "unacked",
            MemberState::Prepared => "prepared",
            MemberState::Committed => "committed",
            MemberState::Expunged => "expunged",
        }
    }
}

/// One member's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberStatus {
    /// The node.
    pub node_id: NodeId,
    /// Its state in the latest attempt's epoch (or the latest committed epoch).
    pub state: MemberState,
    /// When it acked that epoch.
    pub prepared_at: Option<Time>,
    /// When it committed that epoch.
    pub committed_at: Option<Time>,
    /// Its last successful contact.
    pub last_contact: Option<Time>,
    /// The highest committed epoch it reported.
    pub committed_epoch: Option<Epoch>,
    /// Whether it is stale, and why (§6.11).
    pub stale: Option<StaleReason>,
    /// Its last refusal.
    pub last_error: Option<NodeError>,
}

/// What the control plane sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterStatus {
    /// The cluster.
    pub cluster_id: ClusterId,
    /// The latest committed epoch.
    pub latest_committed_epoch: Option<Epoch>,
    /// The latest attempt, in whatever phase.
    pub attempt: Option<AttemptStatus>,
    /// Members of the latest committed epoch, of the attempt, and those left out.
    pub members: Vec<MemberStatus>,
    /// Alarms raised here, with when.
    pub alarms: Vec<(Time, Alarm)>,
    /// How many alarms in all.
    pub alarm_count: u64,
    /// Changes whenever anything above changes (`last_contact` may advance without it).
    pub version: u64,
}

impl ClusterStatus {
    /// The attempt, if it is still collecting, preparing or committing.
    pub fn pending(&self) -> Option<&AttemptStatus> {
        self.attempt.as_ref().filter(|a| a.phase.in_flight() || a.phase == PhaseStatus::Committing)
    }
}

impl Coordinator {
    /// The status version; cheap, for conditional polls.
    pub fn status_version(&self) -> u64 {
        self.version
    }

    /// The latest attempt, cheaply (no member rows).
    pub fn attempt_status(&self) -> Option<AttemptStatus> {
        self.attempt.as_ref().map(|a| {
            let phase = match &a.phase {
                Phase::CollectingShares { .. }
                | Phase::CollectingLegacy { .. }
                | Phase::Dealing => PhaseStatus::CollectingShares,
                Phase::Preparing { .. } => PhaseStatus::Preparing,
                Phase::Committing { .. } => PhaseStatus::Committing,
                Phase::Committed { .. } => PhaseStatus::Committed,
                Phase::Aborted { reason } => PhaseStatus::Aborted(reason.clone()),
            };
            AttemptStatus {
                epoch: a.epoch,
                kind: a.kind,
                phase,
                threshold: a.threshold.get(),
                acks_needed: crate::quorum::acks_needed(a.members.len(), a.threshold),
                acks: a.progress.values().filter(|p| p.prepared_at.is_some()).count(),
                started_at: a.started,
            }
        })
    }

    /// The full status (§8).
    pub fn status(&self, now: Time) -> ClusterStatus {
        let latest = self.ledger.latest.as_ref();
        let attempt = self.attempt_status();
        // The epoch of interest: the attempt's unless it was aborted, else the latest commit.
        let live_attempt =
            self.attempt.as_ref().filter(|a| !matches!(a.phase, Phase::Aborted { .. }));
        let mut ids: Vec<NodeId> =
            latest.map(|c| c.members().keys().cloned().collect()).unwrap_or_default();
        if let Some(a) = live_attempt {
            ids.extend(a.members.iter().cloned());
        }
        ids.extend(self.ledger.former_members.iter().cloned());
        ids.sort();
        ids.dedup();
        let unknown = Tracker::default();
        let members = ids
            .into_iter()
            .map(|id| {
                let t = self.trackers.get(&id).unwrap_or(&unknown);
                let progress = live_attempt.and_then(|a| a.progress.get(&id).copied());
                let in_latest = latest.is_some_and(|c| c.is_member(&id));
                let state = match (progress, live_attempt) {
                    (Some(p), _) if p.committed_at.is_some() => MemberState::Committed,
                    (Some(p), _) if p.prepared_at.is_some() => MemberState::Prepared,
                    (Some(_), _) => MemberState::Unacked,
                    (None, _) if !in_latest => MemberState::Expunged,
                    (None, _) if t.committed() >= latest.map(|c| c.epoch()) => {
                        MemberState::Committed
                    }
                    (None, _) => MemberState::Unacked,
                };
                MemberStatus {
                    stale: t.stale(
                        now,
                        self.origin,
                        self.ledger.latest_committed(),
                        &self.options.stale,
                    ),
                    node_id: id,
                    state,
                    prepared_at: progress.and_then(|p| p.prepared_at),
                    committed_at: progress.and_then(|p| p.committed_at),
                    last_contact: t.last_contact,
                    // Its commit ack is as good as a report (a later poll confirms it).
                    committed_epoch: t.max_committed.max(
                        live_attempt
                            .filter(|_| progress.is_some_and(|p| p.committed_at.is_some()))
                            .map(|a| a.epoch),
                    ),
                    last_error: t.last_error.clone(),
                }
            })
            .collect();
        ClusterStatus {
            cluster_id: self.ledger.cluster_id,
            latest_committed_epoch: self.ledger.latest_committed(),
            attempt,
            members,
            alarms: self.alarms.kept().to_vec(),
            alarm_count: self.alarms.total(),
            version: self.version,
        }
    }
}
