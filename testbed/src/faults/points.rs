//! `tq-testbed faults --kill-points`: every named failpoint (`tq_wire::failpoint`) strikes
//! once, on a real process of the local cluster. For each: its target restarts with the point
//! armed (`TQ_FAILPOINTS`); a reconfiguration makes it strike; the process must end exactly
//! there (killed by SIGKILL at a kill point, exit 74 with the OS error as its last log line at
//! a storage fault, and the strike in its log); its store, read while it is down, must hold
//! exactly what it made durable before that place (an ack is never ahead of its persist, a
//! Commit never ahead of the decision, a refused write leaves no trace, §6.3, §6.4, §7);
//! restarted without the point, the cluster must converge with nothing acked lost (the
//! oracle), and the interrupted epoch must end as the protocol says: committed once an
//! agent's durable ack or the durable decision exists, aborted when the coordinator restarts
//! before its decision is durable (§6.8).

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use rand::RngExt;
use serde_json::json;
use tq_protocol::quorum::{Threshold, acks_needed};
use tq_wire::pb;

use super::remains::{Held, Snapshot, count, held, last_line, settled_snapshot, snapshot};
use super::{Campaign, Outcome};
use crate::local::COORDINATOR;
use Held::{Committed, Decided, Nothing, Prepared, Reserved};

/// How long an armed point may take to strike once the reconfiguration started.
const STRIKE_TIMEOUT: Duration = Duration::from_secs(20);
/// What an agent logs once it stored an address book.
const BOOK_STORED: &str = "address book updated";

/// One failpoint, where it strikes, and how the epoch it interrupts must end.
struct Case {
    point: &'static str,
    action: &'static str,
    /// Strike at this hit; None: at the (K + Z − 1)-th ack, one short of the commit.
    at: Option<u64>,
    /// What the victim's store may hold of the interrupted epoch once it is down.
    holds: &'static [Held],
    commits: bool,
}

impl Case {
    fn coordinator(&self) -> bool {
        self.point.starts_with("coordinator")
    }

    /// Its process must end with SIGKILL, or exit 74 with the OS error as its last line:
    /// what an operator reads first (which store, which step, which OS error).
    fn ended_right(&self, exit: ExitStatus, last_line: &str) -> bool {
        let os_error = match self.action {
            "kill" => return exit.signal() == Some(Signal::SIGKILL as i32),
            "enospc" => "No space left on device",
            _ => "Input/output error",
        };
        exit.code() == Some(74)
            && last_line.contains("writing state to")
            && last_line.contains(os_error)
    }
}

/// An agent's persists during a reconfiguration: 1 its Prepare, 2 its Commit. The
/// coordinator's: 1 the epoch's reservation, 2 the commit decision.
///
/// `fsync-eio` leaves the change in the data file, one write beyond the seal: the store keeps
/// it, as after a crash between the two fsyncs. After its ack an agent may also have
/// committed: when the decision came before its ack was counted, the coordinator sent it a
/// PrepareAndCommit first, and the Commit that strikes only once the late ack arrived (§6.4).
#[rustfmt::skip]
const CASES: [Case; 10] = [
    Case { point: "agent-after-persist-before-ack", action: "kill", at: Some(1),
           holds: &[Prepared], commits: true },
    Case { point: "agent-after-persist-before-ack", action: "kill", at: Some(2),
           holds: &[Committed], commits: true },
    Case { point: "agent-after-ack", action: "kill", at: Some(1),
           holds: &[Prepared, Committed], commits: true },
    Case { point: "coordinator-mid-prepare", action: "kill", at: None,
           holds: &[Reserved], commits: false },
    Case { point: "coordinator-after-commit-decision", action: "kill", at: Some(1),
           holds: &[Decided], commits: true },
    Case { point: "agent-persist", action: "enospc", at: Some(1),
           holds: &[Nothing], commits: true },
    Case { point: "agent-persist", action: "eio", at: Some(2),
           holds: &[Prepared], commits: true },
    Case { point: "agent-persist", action: "fsync-eio", at: Some(1),
           holds: &[Prepared], commits: true },
    Case { point: "coordinator-persist", action: "enospc", at: Some(2),
           holds: &[Reserved], commits: false },
    Case { point: "coordinator-persist", action: "fsync-eio", at: Some(2),
           holds: &[Decided], commits: true },
];

/// A victim restarted with its point armed, about to be struck.
struct Armed {
    victim: String,
    spec: String,
    /// The threshold of the reconfiguration that makes it strike.
    k: usize,
    log: PathBuf,
    state: PathBuf,
    /// Strikes of this point its log held before.
    strikes: usize,
    /// Its store before a write that must leave no trace.
    before: Option<Snapshot>,
}

/// How the victim ended, and what it left behind.
struct Hit {
    exit: Option<ExitStatus>,
    fired: bool,
    last_line: String,
    unchanged: Option<bool>,
    /// The interrupted epoch.
    epoch: u64,
    held: Option<Held>,
}

/// What one point did, for the campaign's totals.
struct Struck {
    fired: bool,
    aborted: bool,
    converged: bool,
}

impl Campaign {
    /// Runs every case once, in order, on one cluster.
    pub(super) async fn run_points(&mut self) -> Result<Outcome, String> {
        let converged = self.start().await?;
        let mut out = Outcome { kills: 0, by_victim: [0, 0], aborted: 0, converged };
        if !converged {
            return Ok(out);
        }
        for (i, case) in CASES.iter().enumerate() {
            let r = self.point(i as u64 + 1, case).await?;
            if r.fired && case.action == "kill" {
                out.kills += 1;
                out.by_victim[usize::from(!case.coordinator())] += 1;
            }
            out.aborted += u64::from(r.aborted);
            if !r.converged {
                out.converged = false;
                break;
            }
        }
        Ok(out)
    }

    /// Arms the case's point on a victim, strikes it, restarts the victim without it, and
    /// checks everything the module docs say.
    async fn point(&mut self, round: u64, case: &Case) -> Result<Struck, String> {
        let Some(armed) = self.arm(round, case).await? else {
            return Ok(Struck { fired: false, aborted: false, converged: false });
        };
        let latest = self.oracle.latest();
        let hit = self.strike(case, &armed).await?;
        let restarted = Instant::now();
        self.c.start(&armed.victim).map_err(|e| format!("{}: {e}", armed.spec))?;
        let Some(status) = self.converged(round).await else {
            return Ok(Struck { fired: hit.fired, aborted: false, converged: false });
        };
        let converge_ms = restarted.elapsed().as_millis() as u64;
        self.converge_ms.push(converge_ms);
        self.check(round, &status).await;
        let committed = self.oracle.latest() > latest;
        self.report(case, &armed, &hit, committed, converge_ms);
        Ok(Struck { fired: hit.fired, aborted: !committed, converged: true })
    }

    /// Restarts a victim with the case's point armed and waits until the cluster is quiet
    /// again (None if it never is).
    async fn arm(&mut self, round: u64, case: &Case) -> Result<Option<Armed>, String> {
        let n = self.members.len();
        let k = self.rng.random_range(n / 2 + 1..n);
        let threshold = Threshold::new(k, n).map_err(|e| e.to_string())?;
        let at = case.at.unwrap_or(acks_needed(n, threshold) as u64 - 1);
        let spec = format!("{}={}@{at}", case.point, case.action);
        let victim = if case.coordinator() {
            COORDINATOR.to_string()
        } else {
            self.members[self.rng.random_range(0..n)].clone()
        };
        let log = self.c.log_path(&victim);
        let books = count(&log, BOOK_STORED);
        self.c.signal(&victim, Signal::SIGTERM);
        self.c.start_with_failpoints(&victim, Some(&spec)).map_err(|e| format!("{spec}: {e}"))?;
        if self.converged(round).await.is_none() {
            return Ok(None);
        }
        // A restarted agent stores the address book its enrollment brings back, at a moment
        // of its own (possibly after it shows converged): that write must not be taken for
        // the failed one's doing.
        if !case.coordinator() {
            let deadline = Instant::now() + STRIKE_TIMEOUT;
            while count(&log, BOOK_STORED) == books && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        let state = self.c.state_dir(&victim);
        // Only the first persist of a round has a moment before it to compare with.
        let refused = case.action == "enospc" || case.action == "eio";
        let before = if refused && at == 1 { Some(settled_snapshot(&state).await) } else { None };
        let strikes = count(&log, &strike_line(case));
        Ok(Some(Armed { victim, spec, k, log, state, strikes, before }))
    }

    /// Starts the reconfiguration that makes the point strike and waits for the victim to
    /// end; reads what it left behind.
    async fn strike(&mut self, case: &Case, a: &Armed) -> Result<Hit, String> {
        let started = Instant::now();
        let attempt = self.reconfigure(a.k).await;
        // The coordinator may die before its answer is out.
        if let (Err(e), false) = (&attempt, case.coordinator()) {
            return Err(format!("{}: {e}", a.spec));
        }
        let exit = loop {
            if let Some(status) = self.c.exited(&a.victim) {
                break Some(status);
            }
            if started.elapsed() > STRIKE_TIMEOUT {
                // It never struck: stop it, or the cluster cannot go on.
                self.c.signal(&a.victim, Signal::SIGKILL);
                break None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        // Compared before anything opens the store: sled's open writes to its files.
        let unchanged = a.before.as_ref().map(|b| *b == snapshot(&a.state));
        let epoch = attempt.as_ref().ok().map(|r: &pb::Attempt| r.epoch);
        let (epoch, held) = match exit {
            Some(_) => {
                let (e, h) = held(&a.state, &self.c.cluster(), &a.victim, epoch)
                    .map_err(|e| format!("{}: {e}", a.spec))?;
                (e, Some(h))
            }
            None => (epoch.unwrap_or_default(), None),
        };
        Ok(Hit {
            exit,
            fired: exit.is_some() && count(&a.log, &strike_line(case)) == a.strikes + 1,
            last_line: last_line(&a.log),
            unchanged,
            epoch,
            held,
        })
    }

    /// Judges one point and records it.
    fn report(&mut self, case: &Case, a: &Armed, hit: &Hit, committed: bool, converge_ms: u64) {
        let ended_right = hit.exit.is_some_and(|s| case.ended_right(s, &hit.last_line));
        let outcome = |c: bool| if c { "committed" } else { "aborted" };
        let ok = hit.fired
            && ended_right
            && hit.unchanged != Some(false)
            && hit.held.is_some_and(|h| case.holds.contains(&h))
            && committed == case.commits
            && (!committed || hit.epoch == self.oracle.latest());
        if !ok {
            self.oracle.findings.push(format!(
                "{} on {}: fired {}, exit {:?}, last log line {:?}, store unchanged {:?}, store \
                 holds {:?} of epoch {} (expected one of {:?}), {} (expected {})",
                a.spec,
                a.victim,
                hit.fired,
                hit.exit,
                hit.last_line,
                hit.unchanged,
                hit.held,
                hit.epoch,
                case.holds,
                outcome(committed),
                outcome(case.commits),
            ));
        }
        self.points.push(json!({
            "point": case.point,
            "action": case.action,
            "failpoints": a.spec,
            "victim": a.victim,
            "fired": hit.fired,
            "exit": hit.exit.map(|s| s.to_string()),
            "last_log_line": hit.last_line,
            "store_unchanged": hit.unchanged,
            "store_holds": hit.held.map(Held::name),
            "store_holds_expected": case.holds.iter().map(|h| h.name()).collect::<Vec<_>>(),
            "epoch": hit.epoch,
            "outcome": outcome(committed),
            "expected": outcome(case.commits),
            "converge_ms": converge_ms,
            "ok": ok,
        }));
    }
}

/// What a process writes to its log when the case's point strikes.
fn strike_line(case: &Case) -> String {
    format!("tq failpoint {} struck", case.point)
}
