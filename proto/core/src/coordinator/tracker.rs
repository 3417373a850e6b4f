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
    /// The highest committed epoch it ever reported.
    pub max_committed: Option<Epoch>,
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

    /// Records a status report; returns whether anything observable changed.
    pub fn record_report(&mut self, now: Time, report: NodeStatusReport) -> bool {
        self.contact(now);
        let committed = report.committed.map(|(e, _)| e);
        let before = self.rolled_back;
        match self.max_committed {
            Some(was) if committed < Some(was) => self.rolled_back = Some((was, committed)),
            _ => {
                self.rolled_back = None;
                self.max_committed = self.max_committed.max(committed);
            }
        }
        let changed = before != self.rolled_back || self.report.as_ref() != Some(&report);
        self.report = Some(report);
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
