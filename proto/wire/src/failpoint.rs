//! Named failpoints: places in the services where a test can make the process die by
//! SIGKILL, or a durable write fail with an I/O error, exactly there (issue 4).
//!
//! A [`Failpoints`] value is handed to each service: the binaries build it from
//! `TQ_FAILPOINTS` (and log a warning when anything is armed); in-process tests build one per
//! service and arm points while it runs. Unarmed, a point costs one branch.
//!
//! `TQ_FAILPOINTS` is a comma-separated list of `point=action` or `point=action@N` (strike at
//! the N-th time the point is reached, counted from the start; default 1). Each armed point
//! strikes once. Kill points take `kill`; storage points take `enospc` or `eio` (the write is
//! refused before anything reaches sled, as when the disk refuses the log write) or
//! `fsync-eio` (sled has written the change into its data file; the fsync that would make it
//! durable fails).
//!
//! Arming a point in production hurts availability, never safety: the protocol must survive a
//! crash or a failed write at any of these places, which is what they are here to show.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

/// The environment variable the binaries read.
pub const ENV: &str = "TQ_FAILPOINTS";

/// A place in the services where a fault can be injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Point {
    /// The agent made a change durable while a request's answer waits, and has not answered.
    AgentAfterPersistBeforeAck,
    /// The coordinator has this agent's Prepare ack (it sent the Commit only acked members
    /// get); the agent has done nothing since: struck on that Commit's arrival.
    AgentAfterAck,
    /// The coordinator counted an ack of the epoch it prepares, and has not decided its commit.
    CoordinatorMidPrepare,
    /// The commit decision is durable; no Commit has been sent.
    CoordinatorAfterCommitDecision,
    /// An agent's protocol state change is being made durable.
    AgentPersist,
    /// A ledger change is being made durable.
    CoordinatorPersist,
}

/// Every point, with its name.
pub const POINTS: [(Point, &str); 6] = [
    (Point::AgentAfterPersistBeforeAck, "agent-after-persist-before-ack"),
    (Point::AgentAfterAck, "agent-after-ack"),
    (Point::CoordinatorMidPrepare, "coordinator-mid-prepare"),
    (Point::CoordinatorAfterCommitDecision, "coordinator-after-commit-decision"),
    (Point::AgentPersist, "agent-persist"),
    (Point::CoordinatorPersist, "coordinator-persist"),
];

impl Point {
    /// Its name in `TQ_FAILPOINTS`.
    pub fn name(self) -> &'static str {
        POINTS.iter().find(|(p, _)| *p == self).map_or("?", |(_, n)| n)
    }

    fn is_storage(self) -> bool {
        matches!(self, Point::AgentPersist | Point::CoordinatorPersist)
    }
}

/// What an armed point does when it strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// SIGKILL to this process: the same as `kill -9`, nothing runs after it.
    Kill,
    /// The write fails with ENOSPC before anything reaches sled.
    Enospc,
    /// The write fails with EIO before anything reaches sled.
    Eio,
    /// sled writes the change into its data file; the fsync fails with EIO.
    FsyncEio,
}

const ACTIONS: [(Action, &str); 4] = [
    (Action::Kill, "kill"),
    (Action::Enospc, "enospc"),
    (Action::Eio, "eio"),
    (Action::FsyncEio, "fsync-eio"),
];

impl Action {
    /// Its name in `TQ_FAILPOINTS`.
    pub fn name(self) -> &'static str {
        ACTIONS.iter().find(|(a, _)| *a == self).map_or("?", |(_, n)| n)
    }
}

/// A `TQ_FAILPOINTS` entry that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{ENV}: {entry:?}: {why}")]
pub struct FailpointError {
    entry: String,
    why: String,
}

#[derive(Debug, Clone, Copy)]
struct Armed {
    action: Action,
    /// Strike when the point is reached for the `at`-th time.
    at: u64,
    reached: u64,
}

/// The failpoints of one service (cloning shares them: a test keeps a clone to arm points).
#[derive(Clone, Default)]
pub struct Failpoints(Option<Arc<Mutex<BTreeMap<Point, Armed>>>>);

impl fmt::Debug for Failpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Failpoints({self})")
    }
}

/// The armed points, in `TQ_FAILPOINTS` syntax.
impl fmt::Display for Failpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(m) = &self.0 else { return Ok(()) };
        let m = m.lock().unwrap_or_else(|p| p.into_inner());
        let entries: Vec<String> =
            m.iter().map(|(p, a)| format!("{}={}@{}", p.name(), a.action.name(), a.at)).collect();
        f.write_str(&entries.join(","))
    }
}

impl Failpoints {
    /// Points that can be armed later ([`Failpoints::default`] never strikes).
    pub fn new() -> Failpoints {
        Failpoints(Some(Arc::default()))
    }

    /// From `TQ_FAILPOINTS` (unset or empty: nothing armed, and nothing can be).
    pub fn from_env() -> Result<Failpoints, FailpointError> {
        match std::env::var(ENV) {
            Ok(spec) if !spec.trim().is_empty() => Failpoints::parse(&spec),
            _ => Ok(Failpoints::default()),
        }
    }

    /// Parses a `TQ_FAILPOINTS` value.
    pub fn parse(spec: &str) -> Result<Failpoints, FailpointError> {
        let fp = Failpoints::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            fp.arm(entry)?;
        }
        Ok(fp)
    }

    /// Arms one `point=action[@N]`; the count starts now.
    pub fn arm(&self, entry: &str) -> Result<(), FailpointError> {
        let err = |why: String| FailpointError { entry: entry.into(), why };
        let (name, rest) =
            entry.split_once('=').ok_or_else(|| err("expected point=action".into()))?;
        let (action, at) = match rest.split_once('@') {
            Some((a, n)) => (a, n.parse::<u64>().ok().filter(|n| *n > 0)),
            None => (rest, Some(1)),
        };
        let at = at.ok_or_else(|| err("the count after @ must be a whole number from 1".into()))?;
        let point = POINTS.iter().find(|(_, n)| *n == name).map(|(p, _)| *p).ok_or_else(|| {
            let names: Vec<&str> = POINTS.iter().map(|(_, n)| *n).collect();
            err(format!("no such point (there are: {})", names.join(", ")))
        })?;
        let action = ACTIONS.iter().find(|(_, n)| *n == action).map(|(a, _)| *a);
        let action = match action {
            Some(Action::Kill) if !point.is_storage() => Action::Kill,
            Some(a) if a != Action::Kill && point.is_storage() => a,
            _ if point.is_storage() => return Err(err("takes enospc, eio or fsync-eio".into())),
            _ => return Err(err("takes kill".into())),
        };
        let Some(m) = &self.0 else { return Err(err("these failpoints cannot be armed".into())) };
        m.lock().unwrap_or_else(|p| p.into_inner()).insert(point, Armed { action, at, reached: 0 });
        Ok(())
    }

    /// Whether any point is armed.
    pub fn any_armed(&self) -> bool {
        self.0.as_ref().is_some_and(|m| !m.lock().unwrap_or_else(|p| p.into_inner()).is_empty())
    }

    /// The point is reached: returns the action if it strikes now (it is then disarmed).
    /// Every strike is written to stderr at once, so that it precedes whatever follows it,
    /// even a SIGKILL, and nobody mistakes an injected fault for a real one.
    pub fn reached(&self, point: Point) -> Option<Action> {
        let m = self.0.as_ref()?;
        let mut m = m.lock().unwrap_or_else(|p| p.into_inner());
        let armed = m.get_mut(&point)?;
        armed.reached += 1;
        if armed.reached < armed.at {
            return None;
        }
        let action = armed.action;
        m.remove(&point);
        eprintln!("tq failpoint {} struck: {}", point.name(), action.name());
        Some(action)
    }

    /// A kill point: if it strikes, the process dies here by SIGKILL.
    pub fn kill_point(&self, point: Point) {
        if self.reached(point) == Some(Action::Kill) {
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
            // SIGKILL cannot be caught or ignored; nothing after the raise runs.
            std::process::abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_strikes_once_at_its_count() {
        let fp = Failpoints::parse("agent-persist=enospc@2, coordinator-mid-prepare=kill").unwrap();
        assert_eq!(fp.to_string(), "coordinator-mid-prepare=kill@1,agent-persist=enospc@2");
        assert_eq!(fp.reached(Point::AgentPersist), None);
        assert_eq!(fp.reached(Point::AgentPersist), Some(Action::Enospc));
        assert_eq!(fp.reached(Point::AgentPersist), None, "struck once");
        assert_eq!(fp.reached(Point::CoordinatorPersist), None, "never armed");
        assert!(fp.any_armed());
    }

    #[test]
    fn bad_entries_are_refused_with_the_reason() {
        let why = |s: &str| Failpoints::parse(s).unwrap_err().to_string();
        assert!(why("agent-persist").contains("expected point=action"));
        assert!(why("agent-persit=eio").contains("no such point (there are: agent-after"));
        assert!(why("agent-persist=kill").contains("takes enospc, eio or fsync-eio"));
        assert!(why("agent-after-ack=eio").contains("takes kill"));
        assert!(why("agent-after-ack=kill@0").contains("from 1"));
        assert!(!Failpoints::parse(" ").unwrap().any_armed());
        assert!(Failpoints::default().arm("agent-after-ack=kill").is_err());
        assert_eq!(Failpoints::default().reached(Point::AgentAfterAck), None);
    }
}
