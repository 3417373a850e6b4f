//! What the coordinator knows of each node, and staleness (DESIGN §6.11).

use std::time::Duration;

use crate::epoch::Epoch;
use crate::messages::{NodeError, NodeStatusReport};
use crate::time::Time;

/// Why a node is stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaleReason {
    /// No successful contact for longer than `stale_after`.
    NoContact {
        /// How long it has been.
        for_ms: u64,
    },
    /// Its committed epoch has lagged the cluster's for longer than `lag_grace`.
    Lagging {
        /// What it reports.
        committed: Option<Epoch>,
        /// The cluster's latest committed epoch.
        cluster: Epoch,
    },
    /// It reported older state than it reported before (restored from a backup?).
    RolledBack {
        /// The highest committed epoch it ever reported.
        was: Epoch,
        /// What it reports now.
        now: Option<Epoch>,
    },
}

impl StaleReason {
    /// A stable name for status output.
    pub fn as_str(&self) -> &'static str {
        match self {
            StaleReason::NoContact { .. } => "no_contact",
            StaleReason::Lagging { .. } => "lagging",
            StaleReason::RolledBack { .. } => "rolled_back",
        }
    }
}

/// Tunables of §6.11.
#[derive(Debug, Clone)]
pub struct StaleOptions {
    /// No contact for this long means stale (default 15 s).
    pub stale_after: Duration,
    /// Lagging the cluster's commit for this long means stale (default 30 s).
    pub lag_grace: Duration,
}

impl Default for StaleOptions {
    fn default() -> Self {
        StaleOptions { stale_after: Duration::from_secs(15), lag_grace: Duration::from_secs(30) }
    }
}

/// The coordinator's view of one node.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    /// Last successful answer from it.
    pub last_contact: Option<Time>,
    /// Its last status report.
    pub report: Option<NodeStatusReport>,
    /// When the request that `report` answers was sent (`None`: not known).
    pub report_asked: Option<Time>,
    /// The highest committed epoch it ever reported.
    pub max_committed: Option<Epoch>,
    /// When `max_committed` was raised. Answers travel on separate streams, so the answer
    /// to a poll sent before then can arrive after it and report the older epoch: only an
    /// answer to a request sent later proves a rollback.
    pub max_committed_at: Option<Time>,
    /// Since when its committed epoch lags the cluster's.
    pub lag_since: Option<Time>,
    /// Set while it reports older state than before.
    pub rolled_back: Option<(Epoch, Option<Epoch>)>,
    /// Its last refusal.
    pub last_error: Option<NodeError>,
    /// When it was last sent a Prepare, Commit or PrepareAndCommit (retry pacing).
    pub last_push: Option<Time>,
}

impl Tracker {
    /// Records a successful answer.
    pub fn contact(&mut self, now: Time) {
        self.last_contact = Some(now);
    }

    /// Records that it reported `committed` (a report, or a commit ack, which is sent only
    /// once the commit is durable); returns whether that raised `max_committed`.
    pub fn saw_committed(&mut self, now: Time, committed: Option<Epoch>) -> bool {
        if committed <= self.max_committed {
            return false;
        }
        self.max_committed = committed;
        self.max_committed_at = Some(now);
        true
    }

    /// Whether a report of `committed` is older than what it reported before, and was taken
    /// after that: the answer to a request sent at `asked` (`None`: taken at an unknown
    /// time, as an enrollment's summary is).
    pub fn proves_rollback(&self, asked: Option<Time>, committed: Option<Epoch>) -> bool {
        committed < self.max_committed
            && asked.is_some_and(|a| self.max_committed_at.is_none_or(|t| a > t))
    }

    /// Records a status report taken after a request sent at `asked` (see
    /// [`Tracker::proves_rollback`]); returns whether anything observable changed. A report
    /// older than what it reported before that proves nothing is dropped, and so is the
    /// answer to a poll sent before the one whose answer is held: it would show the node's
    /// prepared epoch going back (§6.11 keeps the highest reported).
    pub fn record_report(
        &mut self,
        now: Time,
        asked: Option<Time>,
        report: NodeStatusReport,
    ) -> bool {
        self.contact(now);
        if asked.is_some_and(|a| self.report_asked.is_some_and(|held| a < held)) {
            return false;
        }
        let committed = report.committed.map(|(e, _)| e);
        let before = self.rolled_back;
        if self.proves_rollback(asked, committed) {
            self.rolled_back = self.max_committed.map(|was| (was, committed));
        } else if committed < self.max_committed {
            return false;
        } else {
            self.rolled_back = None;
            self.saw_committed(now, committed);
        }
        let changed = before != self.rolled_back || self.report.as_ref() != Some(&report);
        self.report = Some(report);
        self.report_asked = self.report_asked.max(asked);
        changed
    }

    /// The committed epoch it last reported.
    pub fn committed(&self) -> Option<Epoch> {
        self.report.as_ref().and_then(|r| r.committed.map(|(e, _)| e))
    }

    /// Updates the lag clock against the cluster's latest commit.
    pub fn observe_lag(&mut self, now: Time, cluster: Option<Epoch>, member: bool) {
        let lagging = member && cluster.is_some() && self.committed() < cluster;
        match (lagging, self.lag_since) {
            (true, None) => self.lag_since = Some(now),
            (false, Some(_)) => self.lag_since = None,
            _ => {}
        }
    }

    /// Whether it is stale, and why (the first reason that applies). `origin` is when the
    /// coordinator started watching (a restarted coordinator gives every node a grace period).
    pub fn stale(
        &self,
        now: Time,
        origin: Time,
        cluster: Option<Epoch>,
        opts: &StaleOptions,
    ) -> Option<StaleReason> {
        if let Some((was, now_reported)) = self.rolled_back {
            return Some(StaleReason::RolledBack { was, now: now_reported });
        }
        let since = self.last_contact.unwrap_or(origin).max(origin);
        if now.since(since) > opts.stale_after {
            return Some(StaleReason::NoContact { for_ms: now.since(since).as_millis() as u64 });
        }
        match (self.lag_since, cluster) {
            // The lag clock only moves on ticks; the latest report decides whether it still lags.
            (Some(t), Some(cluster))
                if now.since(t) > opts.lag_grace && self.committed() < Some(cluster) =>
            {
                Some(StaleReason::Lagging { committed: self.committed(), cluster })
            }
            _ => None,
        }
    }
}
