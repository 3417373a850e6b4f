//! `tq-testbed faults`: a crash campaign against a local cluster of real processes. Each
//! round starts a reconfiguration (a secret rotation with a random threshold), SIGKILLs the
//! coordinator or an agent at a random moment of it, restarts the victim after a random
//! pause, waits for the cluster to converge, and checks what users rely on (see `oracle`).
//! With `--kill-points` the faults land at named places instead (see `points`). Every random
//! choice comes from `--seed`.

mod oracle;
mod points;
mod remains;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use rand::RngExt;
use rand_core::SeedableRng;
use serde_json::{Value, json};
use tq_wire::pb;

use crate::local::{COORDINATOR, LocalCluster, control};
use crate::up::ENROLL_TIMEOUT;
use oracle::Oracle;

/// How long a round may take to converge before the campaign calls it stuck.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(60);
/// The purpose the campaign derives keys for (the oracle keeps one key per epoch).
pub(crate) const PURPOSE: &str = "tq-testbed/faults";

/// What to run.
#[derive(Debug, Clone)]
pub struct FaultArgs {
    /// How many processes to kill in all (one per round).
    pub kills: u64,
    /// Every random choice derives from it.
    pub seed: u64,
    /// Agents in the cluster.
    pub nodes: usize,
    /// Where the cluster lives (default: a temporary directory, removed when all is well).
    pub dir: Option<PathBuf>,
    /// Each named failpoint once instead of `kills` random kills.
    pub kill_points: bool,
}

/// A cluster under test and what has been seen of it (also driven by `netfaults`).
pub(crate) struct Campaign {
    pub(crate) c: LocalCluster,
    pub(crate) rng: rand_chacha::ChaCha8Rng,
    pub(crate) oracle: Oracle,
    pub(crate) members: Vec<String>,
    pub(crate) converge_ms: Vec<u64>,
    /// Per failpoint, what happened (`--kill-points`).
    points: Vec<Value>,
}

/// Short timings, so a campaign spends its time on faults rather than on waiting.
pub(crate) fn short_timings(c: &LocalCluster) -> Result<(), String> {
    c.set_protocol(|p| {
        p.poll_interval = Duration::from_millis(200);
        p.retry_interval = Duration::from_millis(200);
        p.stale_after = Duration::from_secs(3);
        p.lag_grace = Duration::from_secs(3);
        p.prepare_timeout = Duration::from_secs(10);
    })
}

/// Runs the campaign; returns the summary (its `ok` field says whether everything held).
pub async fn faults(args: &FaultArgs) -> Result<Value, String> {
    let started = Instant::now();
    let (dir, temporary) = match &args.dir {
        Some(d) => (d.clone(), false),
        None => (std::env::temp_dir().join(format!("tq-faults-{}", std::process::id())), true),
    };
    let c = LocalCluster::create(&dir, args.nodes)?;
    short_timings(&c)?;
    let mut k = Campaign::new(c, args.seed);
    let res = if args.kill_points { k.run_points().await } else { k.run(args.kills).await };
    k.c.stop_all();
    let (kills, by_victim, aborted, converged) = match &res {
        Ok(r) => (r.kills, r.by_victim, r.aborted, r.converged),
        Err(e) => {
            k.oracle.findings.push(e.clone());
            (0, [0, 0], 0, false)
        }
    };
    let points_ok = k.points.iter().all(|p| p["ok"] == true);
    let logs = k.c.scan_logs(&[])?;
    let ok = converged
        && points_ok
        && logs.ok()
        && k.oracle.acked_lost == 0
        && k.oracle.double_commits == 0;
    k.converge_ms.sort_unstable();
    let pct = |p: f64| {
        k.converge_ms.get(((k.converge_ms.len() as f64 - 1.0) * p) as usize).copied().unwrap_or(0)
    };
    let mut summary = json!({
        "kills": kills,
        "coordinator_kills": by_victim[0],
        "agent_kills": by_victim[1],
        "acked_lost": k.oracle.acked_lost,
        "double_commits": k.oracle.double_commits,
        "converged": converged,
        "max_converge_ms": k.converge_ms.last().copied().unwrap_or(0),
        "p50_converge_ms": pct(0.5),
        "latest_committed_epoch": k.oracle.latest(),
        "attempts_aborted": aborted,
        "nodes": args.nodes,
        "seed": args.seed,
        "elapsed_s": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        "findings": k.oracle.findings,
        "logs": logs.to_json(),
        "ok": ok,
        "dir": if ok && temporary { Value::Null } else { json!(dir.display().to_string()) },
    });
    if args.kill_points {
        let storage = k.points.iter().filter(|p| p["fired"] == true && p["action"] != "kill");
        summary["storage_faults"] = json!(storage.count());
        summary["points"] = Value::Array(std::mem::take(&mut k.points));
    }
    if ok && temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(summary)
}

struct Outcome {
    kills: u64,
    by_victim: [u64; 2],
    aborted: u64,
    converged: bool,
}

impl Campaign {
    /// A campaign on `c` (every member of it in every reconfiguration), choices from `seed`.
    pub(crate) fn new(c: LocalCluster, seed: u64) -> Campaign {
        let members = c.nodes().iter().map(ToString::to_string).collect();
        Campaign {
            c,
            rng: rand_chacha::ChaCha8Rng::seed_from_u64(seed),
            oracle: Oracle::default(),
            members,
            converge_ms: Vec::new(),
            points: Vec::new(),
        }
    }

    /// Starts the cluster and commits its first configuration; false if it never settles.
    async fn start(&mut self) -> Result<bool, String> {
        self.c.start_all(ENROLL_TIMEOUT).await?;
        self.reconfigure(self.members.len() / 2 + 1).await?;
        self.settle(0).await
    }

    async fn run(&mut self, kills: u64) -> Result<Outcome, String> {
        let n = self.members.len();
        let converged = self.start().await?;
        let mut out = Outcome { kills: 0, by_victim: [0, 0], aborted: 0, converged };
        if !converged {
            return Ok(out);
        }
        let mut round = 0;
        while out.kills < kills {
            round += 1;
            let before = self.oracle.latest();
            let k = self.rng.random_range(n / 2 + 1..n);
            self.reconfigure(k).await?;
            // Somewhere in share collection, prepare, the commit decision or its fan-out.
            // A reconfiguration takes a few milliseconds on loopback: most kills land inside.
            let pause = if self.rng.random_bool(0.5) {
                self.rng.random_range(0..3)
            } else {
                self.rng.random_range(0..15)
            };
            tokio::time::sleep(Duration::from_millis(pause)).await;
            let victim = if self.rng.random_bool(0.3) {
                out.by_victim[0] += 1;
                COORDINATOR.to_string()
            } else {
                out.by_victim[1] += 1;
                self.members[self.rng.random_range(0..n)].clone()
            };
            self.c.signal(&victim, Signal::SIGKILL);
            out.kills += 1;
            let down = self.rng.random_range(0..400);
            tokio::time::sleep(Duration::from_millis(down)).await;
            self.c.start(&victim).map_err(|e| format!("round {round}: restarting {e}"))?;
            if !self.settle(round).await? {
                out.converged = false;
                break;
            }
            if self.oracle.latest() == before {
                out.aborted += 1;
            }
        }
        Ok(out)
    }

    pub(crate) async fn reconfigure(&mut self, k: usize) -> Result<pb::Attempt, String> {
        let mut client = control::operator(&self.c)?;
        let req = pb::ReconfigureRequest {
            members: self.members.clone(),
            threshold: k as u32,
            previous_epoch: self.oracle.latest(),
        };
        client
            .reconfigure(req)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| format!("reconfigure: {}", s.message()))
    }

    /// Waits until nothing is pending, every member has committed the latest epoch and none
    /// is stale; then checks the oracle and every member's keys. False if it never settles.
    pub(crate) async fn settle(&mut self, round: u64) -> Result<bool, String> {
        let start = Instant::now();
        let Some(status) = self.converged(round).await else { return Ok(false) };
        self.converge_ms.push(start.elapsed().as_millis() as u64);
        self.check(round, &status).await;
        Ok(true)
    }

    /// Waits until nothing is pending, every member has committed the latest epoch and none
    /// is stale (None, and a finding, after [`CONVERGE_TIMEOUT`]).
    pub(crate) async fn converged(&mut self, round: u64) -> Option<pb::ClusterStatus> {
        let start = Instant::now();
        loop {
            if let Ok(s) = control::status(&self.c).await
                && s.pending.is_none()
                && s.latest_committed_epoch > 0
                && s.members.iter().filter(|m| m.state != "expunged").all(|m| {
                    !m.stale
                        && m.state == "committed"
                        && m.committed_epoch == s.latest_committed_epoch
                })
            {
                return Some(s);
            }
            if start.elapsed() > CONVERGE_TIMEOUT {
                self.oracle.findings.push(format!(
                    "round {round}: not converged after {CONVERGE_TIMEOUT:?}: {:?}",
                    control::status(&self.c).await.map(|s| s.members)
                ));
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Checks a converged status against the oracle, and every member's keys.
    pub(crate) async fn check(&mut self, round: u64, status: &pb::ClusterStatus) {
        self.oracle.status(round, status);
        let latest = status.latest_committed_epoch;
        // The latest epoch, and one earlier epoch carried forward, on every member.
        let epochs = self.oracle.epochs();
        let earlier = epochs[self.rng.random_range(0..epochs.len())];
        for m in self.members.clone() {
            let socket = self.c.key_socket(&m);
            match control::unlock(&socket, Duration::from_secs(10)).await {
                Ok(e) if e >= latest => {}
                Ok(e) => {
                    self.oracle.missing(round, &m, latest, &format!("unlocked only epoch {e}"));
                    continue;
                }
                Err(e) => {
                    self.oracle.missing(round, &m, latest, &e);
                    continue;
                }
            }
            for epoch in [latest, earlier] {
                match control::derive(&socket, PURPOSE, epoch).await {
                    Ok((_, key)) => self.oracle.key(round, &m, epoch, key),
                    Err(e) => self.oracle.missing(round, &m, epoch, &e),
                }
            }
        }
    }
}
