//! The coordinator state machine (DESIGN §6.1–§6.4, §6.8, §6.10, §6.11, §8).
//!
//! # Contract
//!
//! A [`Coordinator`] does no I/O, reads no clock and owns no RNG. Its driver:
//!
//! 1. builds it with [`Coordinator::restore`] from the durable [`Ledger`] (checked; a failure
//!    means the store must fail closed, §7), and carries out the outputs it returns (an epoch
//!    that a crash interrupted is aborted, §2);
//! 2. feeds it operator commands ([`Coordinator::reconfigure`], [`Coordinator::abort`],
//!    [`Coordinator::commit`], [`Coordinator::upgrade_from_legacy`], [`Coordinator::enroll`]),
//!    every node's answer to a request it sent ([`Coordinator::handle_response`]), and
//!    [`Coordinator::tick`] regularly (retries, status polls, timeouts, staleness);
//! 3. carries out the returned [`CoordinatorOutput`]s **in order**: a `Persist` must be
//!    durable before any output after it takes effect (the commit decision is durable before
//!    any Commit is sent, §6.4); if it cannot be made durable the driver must stop.
//!
//! Secrets are held only while an epoch is being dealt (collected shares, then the Prepares
//! awaiting acks) and are dropped, zeroized, as soon as the phase ends.

mod commit;
pub mod ledger;
mod reconfigure;
pub mod status;
pub mod tracker;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

pub use commit::{AbortError, CommitError};
pub use ledger::{AbortReason, KnownNode, Ledger, LedgerChange, LedgerError};
pub use reconfigure::{ReconfigureError, ReconfigureRequest};
pub use tracker::{StaleOptions, StaleReason};

use crate::alarm::{Alarm, Alarms};
use crate::config::Configuration;
use crate::crypto::legacy::LegacyShare;
use crate::crypto::{Digest, Entropy, Share};
use crate::epoch::Epoch;
use crate::ids::{NodeId, Peer};
use crate::messages::{NodeStatusReport, Request, Response};
use crate::quorum::{Threshold, ThresholdPolicy};
use crate::time::Time;
use tracker::Tracker;

/// What the driver must do, in order (see the module contract).
#[derive(Debug)]
pub enum CoordinatorOutput {
    /// Make this ledger change durable before anything after it takes effect.
    Persist(LedgerChange),
    /// Send a request to a node; feed its answer to [`Coordinator::handle_response`].
    Send {
        /// The node.
        to: NodeId,
        /// The request.
        request: Request,
    },
}

/// When a prepared epoch commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CommitPolicy {
    /// As soon as K + Z members acked.
    #[default]
    Auto,
    /// Only when the operator says so (and at least K members acked).
    Manual,
}

/// Tunables.
#[derive(Debug, Clone)]
pub struct CoordinatorOptions {
    /// Auto or manual commit.
    pub commit_policy: CommitPolicy,
    /// How strict to be about K.
    pub threshold_policy: ThresholdPolicy,
    /// Abort an epoch without K + Z acks after this long (default 5 min).
    pub prepare_timeout: Duration,
    /// Resend unanswered Prepares, Commits and GetShares after this long.
    pub retry_interval: Duration,
    /// Ask every node for its status this often.
    pub poll_interval: Duration,
    /// Staleness thresholds.
    pub stale: StaleOptions,
}

impl Default for CoordinatorOptions {
    fn default() -> Self {
        CoordinatorOptions {
            commit_policy: CommitPolicy::Auto,
            threshold_policy: ThresholdPolicy::Majority,
            prepare_timeout: Duration::from_secs(300),
            retry_interval: Duration::from_secs(2),
            poll_interval: Duration::from_secs(2),
            stale: StaleOptions::default(),
        }
    }
}

/// What an attempt is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptKind {
    /// The first configuration (§6.1).
    Initial,
    /// A change from a committed epoch (§6.2).
    Reconfigure {
        /// The latest committed epoch it starts from.
        from: Epoch,
    },
    /// The upgrade from a legacy split (§6.10).
    LegacyUpgrade,
}

/// One epoch's attempt, from reservation to commit or abort.
#[derive(Debug)]
pub(crate) struct Attempt {
    pub(crate) epoch: Epoch,
    pub(crate) kind: AttemptKind,
    pub(crate) members: Vec<NodeId>,
    pub(crate) threshold: Threshold,
    pub(crate) started: Time,
    pub(crate) phase: Phase,
    /// Per member: when it acked, when it committed.
    pub(crate) progress: BTreeMap<NodeId, Progress>,
}

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Progress {
    pub(crate) prepared_at: Option<Time>,
    pub(crate) committed_at: Option<Time>,
}

#[derive(Debug)]
pub(crate) enum Phase {
    /// Gathering K shares of the latest committed epoch (§6.2).
    CollectingShares {
        from: Arc<Configuration>,
        shares: BTreeMap<NodeId, Share>,
        entropy: Entropy,
        asked_at: Time,
    },
    /// Gathering K + 1 legacy shares (§6.10; the extra one checks the packages' K), grouped
    /// by the split each package describes: whichever answers first does not decide it.
    CollectingLegacy { splits: Vec<LegacySplit>, entropy: Entropy, asked_at: Time },
    /// Between collecting and preparing, inside one call: never observed from outside.
    Dealing,
    /// Prepares sent; counting acks (§6.4). `unacked` holds the Prepares' shares for
    /// retransmission until each member acks.
    Preparing { config: Arc<Configuration>, unacked: BTreeMap<NodeId, Share>, asked_at: Time },
    /// The decision is durable; Commits and PrepareAndCommits are going out.
    Committing { config: Arc<Configuration> },
    /// Every member committed.
    Committed { config: Arc<Configuration> },
    /// Abandoned for good.
    Aborted { reason: AbortReason },
}

/// The legacy packages that describe one split (its K and every member's share digest),
/// and their shares. Honest members' packages all describe the same one.
#[derive(Debug)]
pub(crate) struct LegacySplit {
    pub(crate) threshold: Threshold,
    pub(crate) digests: BTreeMap<NodeId, Digest>,
    pub(crate) shares: BTreeMap<NodeId, LegacyShare>,
}

impl LegacySplit {
    /// Whether any split holds `id`'s share.
    pub(crate) fn answered(splits: &[LegacySplit], id: &NodeId) -> bool {
        splits.iter().any(|s| s.shares.contains_key(id))
    }

    /// The holders of each split, largest group first, when the packages describe more
    /// than one split: who to name when the upgrade cannot proceed.
    pub(crate) fn disagreement(splits: &[LegacySplit]) -> Option<Vec<Vec<NodeId>>> {
        if splits.len() < 2 {
            return None;
        }
        let mut groups: Vec<Vec<NodeId>> =
            splits.iter().map(|s| s.shares.keys().cloned().collect()).collect();
        // Ties by the first holder, so the alarm does not depend on the answers' order.
        groups.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.first().cmp(&b.first())));
        Some(groups)
    }

    /// Whether no split can still reach K + 1 shares. An answer never changes (a second,
    /// different one is refused), and only a holder a split's digests name can add to it, so
    /// each split can grow by its named holders yet to answer, whether they have enrolled or
    /// not. A split nobody has described yet needs 3 holders at least (2 ≤ K): among the
    /// known nodes and every named holder, fewer than 3 left to answer rule it out.
    pub(crate) fn hopeless<'a>(
        splits: &'a [LegacySplit],
        known: impl Iterator<Item = &'a NodeId>,
    ) -> bool {
        let waiting = |id: &&NodeId| !Self::answered(splits, id);
        let named = splits.iter().flat_map(|s| s.digests.keys());
        let left: BTreeSet<&NodeId> = known.chain(named).filter(waiting).collect();
        left.len() < 3
            && splits.iter().all(|s| {
                s.shares.len() + s.digests.keys().filter(waiting).count() <= s.threshold.get()
            })
    }
}

impl Attempt {
    /// Ends a collecting phase and hands back its entropy; the caller sets the next phase.
    fn take_entropy(&mut self) -> Option<Entropy> {
        match std::mem::replace(&mut self.phase, Phase::Dealing) {
            Phase::CollectingShares { entropy, .. } | Phase::CollectingLegacy { entropy, .. } => {
                Some(entropy)
            }
            other => {
                self.phase = other;
                None
            }
        }
    }

    pub(crate) fn in_flight(&self) -> bool {
        matches!(
            self.phase,
            Phase::CollectingShares { .. }
                | Phase::CollectingLegacy { .. }
                | Phase::Dealing
                | Phase::Preparing { .. }
        )
    }

    pub(crate) fn config(&self) -> Option<&Arc<Configuration>> {
        match &self.phase {
            Phase::Preparing { config, .. }
            | Phase::Committing { config }
            | Phase::Committed { config } => Some(config),
            _ => None,
        }
    }
}

/// The coordinator.
#[derive(Debug)]
pub struct Coordinator {
    options: CoordinatorOptions,
    ledger: Ledger,
    /// When this incarnation started (staleness grace after a restart).
    origin: Time,
    attempt: Option<Attempt>,
    trackers: BTreeMap<NodeId, Tracker>,
    alarms: Alarms,
    version: u64,
    last_poll: Option<Time>,
    /// Who was stale when last looked at, and why (the reason's name, as status shows it):
    /// staleness changes with time alone, and every change must move the status version (§8).
    last_stale: BTreeMap<NodeId, &'static str>,
    #[cfg(feature = "danger-inject-bugs")]
    bug: Option<crate::bugs::CoordinatorBug>,
}

impl Coordinator {
    /// A coordinator over its durable ledger. An epoch that a crash left in flight is aborted
    /// (the returned output records that).
    pub fn restore(
        now: Time,
        ledger: Ledger,
        options: CoordinatorOptions,
    ) -> Result<(Coordinator, Vec<CoordinatorOutput>), LedgerError> {
        ledger.check()?;
        let trackers = ledger.known.keys().map(|id| (id.clone(), Tracker::default())).collect();
        let mut c = Coordinator {
            options,
            ledger,
            origin: now,
            attempt: None,
            trackers,
            alarms: Alarms::default(),
            version: 1,
            last_poll: None,
            last_stale: BTreeMap::new(),
            #[cfg(feature = "danger-inject-bugs")]
            bug: None,
        };
        let mut out = Vec::new();
        if let Some(epoch) = c.ledger.interrupted_epoch() {
            c.persist(
                LedgerChange::Aborted { epoch, reason: AbortReason::CoordinatorRestarted },
                &mut out,
            );
        }
        Ok((c, out))
    }

    /// Breaks one rule on purpose (simulation only).
    #[cfg(feature = "danger-inject-bugs")]
    pub fn danger_inject_bug(&mut self, bug: crate::bugs::CoordinatorBug) {
        self.bug = Some(bug);
    }

    #[cfg(feature = "danger-inject-bugs")]
    fn has_bug(&self, bug: crate::bugs::CoordinatorBug) -> bool {
        self.bug == Some(bug)
    }

    #[cfg(not(feature = "danger-inject-bugs"))]
    fn has_bug(&self, _: crate::bugs::CoordinatorBug) -> bool {
        false
    }

    /// The ledger as this coordinator believes it is durable.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Alarms raised here.
    pub fn alarms(&self) -> &Alarms {
        &self.alarms
    }

    /// What this coordinator knows of a node (§6.11).
    pub fn tracker(&self, id: &NodeId) -> Option<&Tracker> {
        self.trackers.get(id)
    }

    /// The options in force.
    pub fn options(&self) -> &CoordinatorOptions {
        &self.options
    }

    /// A node agent starts and registers with its state summary (§6.13). Known nodes may be
    /// named in reconfigurations; one left out of a committed epoch only after it enrolls
    /// with wiped state.
    pub fn enroll(
        &mut self,
        now: Time,
        address: String,
        summary: NodeStatusReport,
    ) -> Vec<CoordinatorOutput> {
        let mut out = Vec::new();
        let node = summary.node_id.clone();
        // A wiped node holds nothing, or, if its agent restarted since, only its Prepare of
        // the attempt in flight that names it: still the newcomer, not a removed member back
        // with its old state.
        let only_this_attempt = summary.prepared.is_none_or(|(_, d)| {
            let config = self.attempt.as_ref().and_then(Attempt::config);
            config.is_some_and(|c| c.digest() == d && c.is_member(&node))
        });
        let fresh = summary.committed.is_none() && summary.expunged.is_none() && only_this_attempt;
        let lost = self.lost_prepare(&node, summary.prepared.map(|(e, _)| e), None);
        let t = self.trackers.entry(node.clone()).or_default();
        // A summary is taken before its enrollment travels, maybe before a commit or prepare
        // ack that arrived first: older state than before, or no longer the Prepare it acked,
        // is confirmed by a poll sent from here on.
        let confirm = lost || summary.committed.map(|(e, _)| e) < t.max_committed;
        if t.record_report(now, None, summary) {
            self.changed();
        }
        let known = self.ledger.known.get(&node);
        if known.is_none_or(|k| k.address != address || k.fresh != fresh) {
            self.persist(
                LedgerChange::NodeEnrolled { node: node.clone(), address, fresh },
                &mut out,
            );
        }
        if confirm {
            out.push(CoordinatorOutput::Send { to: node.clone(), request: Request::Status });
        }
        self.refresh_stale(now, &node);
        out
    }

    /// Handles a node's answer to a request this coordinator sent it at `asked`.
    pub fn handle_response(
        &mut self,
        now: Time,
        from: &NodeId,
        asked: Time,
        response: Response,
    ) -> Vec<CoordinatorOutput> {
        let mut out = Vec::new();
        self.trackers.entry(from.clone()).or_default().contact(now);
        match response {
            Response::Share { epoch, digest, share } => {
                self.on_share(now, from, epoch, digest, share, &mut out)
            }
            Response::LegacyShare(pkg) => self.on_legacy_share(now, from, pkg, &mut out),
            Response::PrepareAck { epoch, digest } => {
                self.on_ack(now, from, epoch, digest, &mut out)
            }
            Response::CommitAck { epoch } => self.on_committed(now, from, epoch),
            Response::CatchingUp { .. } => {}
            Response::Status(report) => self.on_status(now, from, asked, report, &mut out),
            Response::CommitAdvance { config } => {
                // A late answer to an old GetShare is fine; a commit this ledger never made
                // is impossible with one honest coordinator.
                if self.ledger.committed.get(&config.epoch()) != Some(&config.digest()) {
                    let alarm = Alarm::UnknownCommit {
                        from: Peer::Node(from.clone()),
                        epoch: config.epoch(),
                    };
                    self.raise(now, alarm);
                }
            }
            Response::Expunged { .. } => {}
            Response::Error { request, epoch, error } => {
                self.on_refusal(now, from, request, epoch, error, &mut out)
            }
        }
        self.refresh_stale(now, from);
        out
    }

    /// Retries, polls, timeouts. Call regularly (every few hundred milliseconds is plenty).
    pub fn tick(&mut self, now: Time) -> Vec<CoordinatorOutput> {
        let mut out = Vec::new();
        self.abort_if_timed_out(now, &mut out);
        self.retry(now, &mut out);
        self.reconcile(now, &mut out);
        if self.last_poll.is_none_or(|t| now.since(t) >= self.options.poll_interval) {
            self.last_poll = Some(now);
            for id in self.watched() {
                out.push(CoordinatorOutput::Send { to: id, request: Request::Status });
            }
        }
        self.observe_lag(now);
        self.refresh_staleness(now);
        out
    }

    /// Every node whose status is worth polling: known, current members and pending members.
    fn watched(&self) -> BTreeSet<NodeId> {
        let mut ids: BTreeSet<NodeId> = self.ledger.known.keys().cloned().collect();
        if let Some(c) = &self.ledger.latest {
            ids.extend(c.members().keys().cloned());
        }
        if let Some(a) = &self.attempt {
            ids.extend(a.members.iter().cloned());
        }
        ids
    }

    /// Re-evaluates who is stale and why: after time passed, and after a commit (which can
    /// make members lag). The status shows it at once, so a change moves the version (§8).
    pub(super) fn refresh_staleness(&mut self, now: Time) {
        let stale: BTreeMap<NodeId, &'static str> = self
            .watched()
            .into_iter()
            .filter_map(|id| self.stale_reason(now, &id).map(|r| (id, r)))
            .collect();
        if stale != self.last_stale {
            self.last_stale = stale;
            self.changed();
        }
    }

    /// Re-evaluates one node's staleness after hearing from it: without time passing it can
    /// become fresh, or stale for another reason (its report). The status shows that at
    /// once, so the version must move at once (§8), and the next tick must compare against
    /// it.
    fn refresh_stale(&mut self, now: Time, id: &NodeId) {
        let watched = self.ledger.known.contains_key(id)
            || self.ledger.latest.as_ref().is_some_and(|c| c.is_member(id))
            || self.attempt.as_ref().is_some_and(|a| a.members.contains(id));
        let reason = if watched { self.stale_reason(now, id) } else { None };
        if reason != self.last_stale.get(id).copied() {
            match reason {
                Some(r) => self.last_stale.insert(id.clone(), r),
                None => self.last_stale.remove(id),
            };
            self.changed();
        }
    }

    /// The name of the reason `id` is stale, as status shows it (§6.11).
    fn stale_reason(&self, now: Time, id: &NodeId) -> Option<&'static str> {
        let t = self.trackers.get(id)?;
        let reason =
            t.stale(now, self.origin, self.ledger.latest_committed(), &self.options.stale)?;
        Some(reason.as_str())
    }

    fn observe_lag(&mut self, now: Time) {
        let cluster = self.ledger.latest_committed();
        let latest = self.ledger.latest.clone();
        for (id, t) in &mut self.trackers {
            let member = latest.as_ref().is_some_and(|c| c.is_member(id));
            t.observe_lag(now, cluster, member);
        }
    }

    fn raise(&mut self, now: Time, alarm: Alarm) {
        self.alarms.raise(now, alarm);
        self.changed();
    }

    /// Marks the status as changed (watchers and conditional polls see a new version).
    fn changed(&mut self) {
        self.version += 1;
    }

    fn persist(&mut self, change: LedgerChange, out: &mut Vec<CoordinatorOutput>) {
        self.ledger.apply(&change);
        self.changed();
        out.push(CoordinatorOutput::Persist(change));
    }

    fn is_stale(&self, now: Time, id: &NodeId) -> bool {
        self.trackers.get(id).is_none_or(|t| {
            t.stale(now, self.origin, self.ledger.latest_committed(), &self.options.stale).is_some()
        })
    }
}

#[cfg(test)]
mod tests;
