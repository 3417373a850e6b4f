//! Counting acks, the commit decision and its fan-out (DESIGN §6.4), abort and timeouts
//! (§6.8), and what node reports change (§6.11).

use super::reconfigure::resend_share_requests;
use super::{
    AbortReason, Attempt, CommitPolicy, Coordinator, CoordinatorOutput, LedgerChange, LegacySplit,
    Phase,
};
use crate::alarm::Alarm;
use crate::bugs::CoordinatorBug;
use crate::crypto::Digest;
use crate::epoch::Epoch;
use crate::ids::{NodeId, Peer};
use crate::messages::{NodeError, NodeStatusReport, Request, RequestKind};
use crate::time::Time;

/// Why an operator's commit was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitError {
    /// No epoch is preparing.
    #[error("no epoch is preparing")]
    NothingPreparing,
    /// Fewer than K fresh members acked: committing would lose the secret.
    #[error("only {acks} fresh members acked epoch {epoch}; at least {needed} (K) are needed")]
    NotEnoughAcks {
        /// The epoch.
        epoch: Epoch,
        /// Fresh matching acks so far.
        acks: usize,
        /// K.
        needed: usize,
    },
}

/// Why an operator's abort was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AbortError {
    /// Nothing is in flight.
    #[error("no epoch is in progress")]
    NothingInProgress,
    /// The commit decision was made; it is never undone (§6.4).
    #[error("epoch {0} is already committed")]
    AlreadyCommitted(Epoch),
}

impl Coordinator {
    /// Commits the preparing epoch now (manual policy, or to stop waiting for K + Z). Needs at
    /// least K fresh acks with the matching digest.
    pub fn commit(&mut self, now: Time) -> Result<Vec<CoordinatorOutput>, CommitError> {
        let Some(Attempt { phase: Phase::Preparing { config, .. }, epoch, .. }) = &self.attempt
        else {
            return Err(CommitError::NothingPreparing);
        };
        let (epoch, needed) = (*epoch, config.threshold().get());
        let acks = self.fresh_acks(now);
        if acks < needed {
            return Err(CommitError::NotEnoughAcks { epoch, acks, needed });
        }
        let mut out = Vec::new();
        self.decide_commit(now, true, &mut out);
        Ok(out)
    }

    /// Abandons the epoch in flight for good (§6.8).
    pub fn abort(&mut self) -> Result<Vec<CoordinatorOutput>, AbortError> {
        match &self.attempt {
            Some(a) if a.in_flight() => {
                let mut out = Vec::new();
                self.abort_attempt(AbortReason::Operator, &mut out);
                Ok(out)
            }
            Some(Attempt {
                phase: Phase::Committing { .. } | Phase::Committed { .. },
                epoch,
                ..
            }) => Err(AbortError::AlreadyCommitted(*epoch)),
            _ => Err(AbortError::NothingInProgress),
        }
    }

    pub(super) fn abort_attempt(&mut self, reason: AbortReason, out: &mut Vec<CoordinatorOutput>) {
        let Some(a) = self.attempt.as_mut().filter(|a| a.in_flight()) else { return };
        let epoch = a.epoch;
        // Dropping the phase zeroizes whatever shares it held.
        a.phase = Phase::Aborted { reason: reason.clone() };
        self.persist(LedgerChange::Aborted { epoch, reason }, out);
    }

    pub(super) fn abort_if_timed_out(&mut self, now: Time, out: &mut Vec<CoordinatorOutput>) {
        let timed_out = self
            .attempt
            .as_ref()
            .is_some_and(|a| a.in_flight() && now.since(a.started) >= self.options.prepare_timeout);
        if !timed_out {
            return;
        }
        // §6.8 aborts when K + Z acks have not arrived; under the manual policy they may have,
        // and the epoch waits for the operator's commit or abort.
        if self.options.commit_policy == CommitPolicy::Manual
            && let Some(Attempt { phase: Phase::Preparing { config, .. }, .. }) = &self.attempt
            && self.fresh_acks(now) >= config.acks_needed()
        {
            return;
        }
        if let Some(Attempt { phase: Phase::CollectingLegacy { splits, .. }, .. }) = &self.attempt
            && let Some(holders) = LegacySplit::disagreement(splits)
        {
            self.raise(now, Alarm::LegacySplitsDisagree { holders });
        }
        self.abort_attempt(AbortReason::Timeout, out);
    }

    /// How many members' matching acks count now: acked and not stale (§6.11).
    fn fresh_acks(&self, now: Time) -> usize {
        let Some(a) = &self.attempt else { return 0 };
        a.progress
            .iter()
            .filter(|(id, p)| p.prepared_at.is_some() && !self.is_stale(now, id))
            .count()
    }

    pub(super) fn on_ack(
        &mut self,
        now: Time,
        from: &NodeId,
        epoch: Epoch,
        digest: Digest,
        out: &mut Vec<CoordinatorOutput>,
    ) {
        let Some(a) = self.attempt.as_mut().filter(|a| a.epoch == epoch) else { return };
        let Some(config) = a.config().cloned() else { return };
        if digest != config.digest() {
            let alarm = Alarm::MismatchedConfiguration {
                epoch,
                from: Peer::Node(from.clone()),
                ours: config.digest(),
                theirs: digest,
            };
            return self.raise(now, alarm);
        }
        let Some(p) = a.progress.get_mut(from) else { return };
        let late = matches!(a.phase, Phase::Committing { .. }) && p.committed_at.is_none();
        if p.prepared_at.is_none() {
            p.prepared_at = Some(now);
            if let Phase::Preparing { unacked, .. } = &mut a.phase {
                unacked.remove(from);
            }
            self.changed();
        }
        if late {
            self.commit_now(now, from, epoch, digest, out);
        }
        self.maybe_commit(now, out);
    }

    /// A member answered this attempt's Prepare after the commit decision: its Prepare was
    /// overtaken by the PrepareAndCommit sent at the decision (which may have started a
    /// catch-up the coordinator is not told the end of). Commit goes to it at once; else
    /// `every member committed` waits for the next retry (`retry_interval`, 2 s by default).
    fn commit_now(
        &mut self,
        now: Time,
        to: &NodeId,
        epoch: Epoch,
        digest: Digest,
        out: &mut Vec<CoordinatorOutput>,
    ) {
        self.trackers.entry(to.clone()).or_default().last_push = Some(now);
        out.push(CoordinatorOutput::Send {
            to: to.clone(),
            request: Request::Commit { epoch, digest },
        });
    }

    fn maybe_commit(&mut self, now: Time, out: &mut Vec<CoordinatorOutput>) {
        let Some(Attempt { phase: Phase::Preparing { config, .. }, .. }) = &self.attempt else {
            return;
        };
        if self.options.commit_policy == CommitPolicy::Manual {
            return;
        }
        let mut needed = config.acks_needed();
        if self.has_bug(CoordinatorBug::CommitBelowThreshold) {
            needed -= 1;
        }
        if self.fresh_acks(now) >= needed {
            self.decide_commit(now, false, out);
        }
    }

    /// The commit decision: durable first, then Commit to acked members and PrepareAndCommit
    /// to the rest (§6.4).
    fn decide_commit(&mut self, now: Time, by_operator: bool, out: &mut Vec<CoordinatorOutput>) {
        let Some(a) = self.attempt.as_mut() else { return };
        let Phase::Preparing { config, .. } = &a.phase else { return };
        let config = config.clone();
        // The remaining Prepares' shares are dropped (zeroized) here.
        a.phase = Phase::Committing { config: config.clone() };
        self.persist(LedgerChange::Committed { config, by_operator }, out);
        self.reconcile_now(now, out);
        // A new latest epoch can make members lag at once.
        self.refresh_staleness(now);
    }

    pub(super) fn on_committed(&mut self, now: Time, from: &NodeId, epoch: Epoch) {
        // A commit ack is sent only once the commit is durable: it is a report of the node's
        // committed epoch like a status report, so a later report of an older one is a
        // rollback (§6.11) even if no status poll came in between.
        if self.trackers.entry(from.clone()).or_default().saw_committed(now, Some(epoch)) {
            // Status shows it (§8), whether or not the epoch is the attempt's.
            self.changed();
        }
        let Some(a) = self.attempt.as_mut().filter(|a| a.epoch == epoch) else { return };
        if !matches!(a.phase, Phase::Committing { .. }) {
            return;
        }
        if let Some(p) = a.progress.get_mut(from).filter(|p| p.committed_at.is_none()) {
            p.committed_at = Some(now);
            p.prepared_at.get_or_insert(now);
            if a.progress.values().all(|p| p.committed_at.is_some())
                && let Phase::Committing { config } = &a.phase
            {
                a.phase = Phase::Committed { config: config.clone() };
            }
            self.changed();
        }
    }

    pub(super) fn on_status(
        &mut self,
        now: Time,
        from: &NodeId,
        asked: Time,
        report: NodeStatusReport,
        out: &mut Vec<CoordinatorOutput>,
    ) {
        if let Some((e, d)) = report.committed {
            let ours = self.ledger.committed.get(&e).copied();
            if ours.is_none_or(|ours| ours != d) {
                self.raise(now, Alarm::UnknownCommit { from: Peer::Node(from.clone()), epoch: e });
            }
        }
        // A node that says it is expunged is no longer the wiped node that enrolled.
        if report.expunged.is_some()
            && let Some(k) = self.ledger.known.get(from).filter(|k| k.fresh)
        {
            let change = LedgerChange::NodeEnrolled {
                node: from.clone(),
                address: k.address.clone(),
                fresh: false,
            };
            self.persist(change, out);
        }
        let committed = report.committed.map(|(e, _)| e);
        let prepared = report.prepared;
        if self.trackers.entry(from.clone()).or_default().record_report(now, Some(asked), report) {
            self.changed();
        }
        if self.lost_prepare(from, prepared.map(|(e, _)| e), Some(asked)) {
            if let Some(p) = self.attempt.as_mut().and_then(|a| a.progress.get_mut(from)) {
                p.prepared_at = None;
            }
            self.changed();
        }
        // A durable prepare reported in status counts as the ack that may have been lost.
        if let Some((e, d)) = prepared
            && self.attempt.as_ref().is_some_and(|a| a.epoch == e && a.in_flight())
        {
            self.on_ack(now, from, e, d, out);
        }
        if let Some(e) = self.attempt.as_ref().map(|a| a.epoch).filter(|e| committed >= Some(*e)) {
            self.on_committed(now, from, e);
        }
    }

    /// Whether a member's report of `prepared`, taken after a request sent at `asked`
    /// (`None`: at an unknown time, as an enrollment's summary is), shows that it no longer
    /// holds the Prepare it acked: restored from a backup or wiped since (§6.11, older state
    /// than it reported). Its ack then stops counting, so that no commit decision rests on a
    /// share that is gone (I6); an unknown time only calls for a poll to find out.
    pub(super) fn lost_prepare(
        &self,
        from: &NodeId,
        prepared: Option<Epoch>,
        asked: Option<Time>,
    ) -> bool {
        let Some(a) = self.attempt.as_ref().filter(|a| matches!(a.phase, Phase::Preparing { .. }))
        else {
            return false;
        };
        let acked = a.progress.get(from).and_then(|p| p.prepared_at);
        prepared < Some(a.epoch) && acked.is_some_and(|t| asked.is_none_or(|asked| asked > t))
    }

    pub(super) fn on_refusal(
        &mut self,
        now: Time,
        from: &NodeId,
        request: RequestKind,
        epoch: Option<Epoch>,
        error: NodeError,
        out: &mut Vec<CoordinatorOutput>,
    ) {
        if let NodeError::MismatchedConfiguration(e) = &error {
            let ours = self.attempt.as_ref().and_then(|a| a.config().map(|c| c.digest()));
            let alarm = Alarm::MismatchedConfiguration {
                epoch: *e,
                from: Peer::Node(from.clone()),
                ours: ours.unwrap_or(Digest([0; 32])),
                theirs: Digest([0; 32]),
            };
            self.raise(now, alarm);
        }
        // A refused Prepare will be refused again: stop resending it.
        if request == RequestKind::Prepare
            && let Some(Attempt { phase: Phase::Preparing { unacked, .. }, epoch: e, .. }) =
                &mut self.attempt
            && Some(*e) == epoch
        {
            unacked.remove(from);
        }
        // A Prepare that arrived after the member caught up to this very epoch: it holds the
        // commit; Commit confirms it (and checks the digest) at once rather than at the next
        // retry.
        if request == RequestKind::Prepare
            && let NodeError::StaleEpoch { epoch: e, committed } = &error
            && *e == *committed
            && let Some(Attempt { phase: Phase::Committing { config }, epoch: a, progress, .. }) =
                &self.attempt
            && *a == *e
            && progress.get(from).is_some_and(|p| p.committed_at.is_none())
        {
            let (e, digest) = (*e, config.digest());
            self.commit_now(now, from, e, digest, out);
        }
        // Not prepared: it needs the whole configuration (if it is a member at all: only a
        // member was sent the Commit).
        if request == RequestKind::Commit
            && matches!(error, NodeError::NotPrepared(_))
            && let Some(config) =
                self.ledger.latest.clone().filter(|c| Some(c.epoch()) == epoch && c.is_member(from))
        {
            out.push(CoordinatorOutput::Send {
                to: from.clone(),
                request: Request::PrepareAndCommit { config },
            });
        }
        let t = self.trackers.entry(from.clone()).or_default();
        if t.last_error.as_ref() != Some(&error) {
            t.last_error = Some(error);
            self.changed();
        }
    }

    /// Resends what the phase in flight is waiting for.
    pub(super) fn retry(&mut self, now: Time, out: &mut Vec<CoordinatorOutput>) {
        let every = self.options.retry_interval;
        match self.attempt.as_mut().map(|a| &mut a.phase) {
            Some(Phase::CollectingShares { from, shares, asked_at, .. })
                if now.since(*asked_at) >= every =>
            {
                *asked_at = now;
                resend_share_requests(from, shares, out);
            }
            Some(Phase::CollectingLegacy { splits, asked_at, .. })
                if now.since(*asked_at) >= every =>
            {
                *asked_at = now;
                for id in self.ledger.known.keys().filter(|id| !LegacySplit::answered(splits, id)) {
                    out.push(CoordinatorOutput::Send {
                        to: id.clone(),
                        request: Request::GetLegacyShare,
                    });
                }
            }
            Some(Phase::Preparing { config, unacked, asked_at })
                if now.since(*asked_at) >= every =>
            {
                *asked_at = now;
                // As when dealt: no share to a member removed again since (I8).
                for (id, share) in unacked.iter().filter(|(id, _)| !self.ledger.is_removed(id)) {
                    let request =
                        Request::Prepare { config: config.clone(), share: share.duplicate() };
                    out.push(CoordinatorOutput::Send { to: id.clone(), request });
                }
            }
            _ => {}
        }
    }

    /// Brings every member of the latest committed epoch to it, at most once per retry
    /// interval each: Commit to those known to hold it prepared, PrepareAndCommit otherwise.
    pub(super) fn reconcile(&mut self, now: Time, out: &mut Vec<CoordinatorOutput>) {
        let every = self.options.retry_interval;
        let Some(config) = self.ledger.latest.clone() else { return };
        let e = config.epoch();
        for id in config.members().keys() {
            let t = self.trackers.entry(id.clone()).or_default();
            // A commit ack is a durable commit as much as a status report is: without it, a
            // member that acked the commit looked behind until its next status poll, and got
            // a PrepareAndCommit every retry interval meanwhile (at N = 1024, while the next
            // rotation ran, ~250 members per rotation decoded a 66 kB configuration for
            // nothing). A report of less since (a rollback, §6.11) counts instead.
            let acked_commit = t.rolled_back.is_none() && t.max_committed >= Some(e);
            let done = t.committed() >= Some(e)
                || acked_commit
                || self.attempt.as_ref().is_some_and(|a| {
                    a.epoch == e && a.progress.get(id).is_some_and(|p| p.committed_at.is_some())
                });
            if done || t.last_push.is_some_and(|p| now.since(p) < every) {
                continue;
            }
            t.last_push = Some(now);
            out.push(self.commit_request(id, &config));
        }
    }

    /// Sends the commit fan-out at once (right after the decision).
    fn reconcile_now(&mut self, now: Time, out: &mut Vec<CoordinatorOutput>) {
        let Some(config) = self.ledger.latest.clone() else { return };
        for id in config.members().keys() {
            self.trackers.entry(id.clone()).or_default().last_push = Some(now);
            out.push(self.commit_request(id, &config));
        }
    }

    fn commit_request(
        &self,
        id: &NodeId,
        config: &std::sync::Arc<crate::config::Configuration>,
    ) -> CoordinatorOutput {
        let e = config.epoch();
        let acked = self.attempt.as_ref().is_some_and(|a| {
            a.epoch == e && a.progress.get(id).is_some_and(|p| p.prepared_at.is_some())
        }) || self
            .trackers
            .get(id)
            .and_then(|t| t.report.as_ref())
            .is_some_and(|r| r.prepared == Some((e, config.digest())));
        let request = if acked {
            Request::Commit { epoch: e, digest: config.digest() }
        } else {
            Request::PrepareAndCommit { config: config.clone() }
        };
        CoordinatorOutput::Send { to: id.clone(), request }
    }
}
