//! `tq-testbed bench`: the real `tq-coordinator` and N `tq-agent` processes over loopback
//! mTLS, with real sled stores on one directory (default: tmpfs), measured scenario by
//! scenario, each against a floor measured in the same run:
//!
//! | scenario | what is timed | floor |
//! |---|---|---|
//! | `reconfigure_warm` | Reconfigure RPC → every member committed (secret rotated), connections up | 3 fan-outs + 4 persists |
//! | `reconfigure_no_rekey` | `reconfigure_warm` with every agent locked: no re-unlock follows the commit (diagnostic) | the same |
//! | `reconfigure_cold` | `reconfigure_warm` right after every agent restarted (coordinator must reconnect) | cold fan-out + 2 fan-outs + 4 persists |
//! | `unlock_warm` | Lock, then Unlock with wait on an agent's key socket | fan-out |
//! | `unlock_cold` | Unlock with wait on an agent just restarted (no connection to a peer) | cold fan-out |
//! | `unlock_blackholed` | `unlock_warm` with N − K agents SIGSTOPped | fan-out to the K − 1 live peers |
//! | `status_saturated` | closed-loop Status polls from a few clients: polls/s | the same load of empty RPCs |
//! | `status_at_1000` | Status polls at 1000/s open loop while reconfigurations run | one empty RPC |
//!
//! A *fan-out* is N empty RPCs (NodeAgent Status) at once over warm mTLS channels; a
//! *persist* is a sled insert made durable on the same directory by tq-wire's
//! `Durable::sync`, what both stores use (flush, fsync of the data file and of the seal).
//! Scenario code lives next to its name: `floor`, `reconfigure`, `unlock`, `status`;
//! `clients` makes channels; `stats`, `memory`, `state_dir` and
//! `machine` (CPU model, and how much CPU other programs took meanwhile) measure. Results and
//! their analysis: BENCHMARKS.md.

mod clients;
mod floor;
mod machine;
mod memory;
mod mesh;
mod reconfigure;
mod state_dir;
mod stats;
mod status;
mod unlock;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Map, Value, json};
use tonic::transport::Channel;
use tq_protocol::NodeId;
use tq_wire::pb::node_agent_client::NodeAgentClient;

use crate::local::{COORDINATOR, LocalCluster, logs};
use crate::up::ENROLL_TIMEOUT;
use clients::Clients;
use memory::Highest;
use stats::{SlowRpcs, round};

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchArgs {
    /// Agents (N).
    pub nodes: usize,
    /// Samples per scenario (cold ones take fewer: each restarts processes).
    pub runs: usize,
    /// Where the cluster's directory (and so every sled store) goes; default `/dev/shm`
    /// when it is a writable tmpfs, else the temporary directory.
    pub state_dir: Option<PathBuf>,
    /// Keep the cluster's directory (logs, stores) afterwards.
    pub keep: bool,
    /// The agents' nice value (0: the coordinator's priority).
    pub agents_nice: u8,
}

/// The targets the issue sets (2 cores, N = 32, K = 17).
pub const TARGETS: &str = "reconfigure_warm p50 ≤ 15 ms, p99 ≤ 40 ms; unlock_warm p99 ≤ 5 ms; \
     status_saturated ≥ 10000/s; agent RSS ≤ 20 MB; coordinator RSS ≤ 64 MB";

/// A running benchmark: the cluster, the clients and what has been measured so far.
struct Bench {
    c: LocalCluster,
    clients: Clients,
    /// A warm channel to every agent, in node order.
    nodes: Vec<NodeAgentClient<Channel>>,
    ids: Vec<NodeId>,
    k: usize,
    runs: usize,
    /// The latest committed epoch.
    latest: u64,
    slow: Arc<SlowRpcs>,
    /// Agents stopped with SIGSTOP: continued whatever happens.
    stopped: Mutex<BTreeSet<i32>>,
    coordinator_rss: Highest,
    agent_rss: Highest,
    scenarios: Map<String, Value>,
    machine: Value,
    cpu_start: machine::CpuMark,
    /// Slow RPCs counted before the scenario being measured.
    slow_before: u64,
    /// How the agents run (separate processes, or a mesh sharing a few).
    processes: String,
    /// More agents than run as separate processes: see `mesh`.
    mesh: bool,
    /// Agents per process (1 unless `mesh`).
    per_process: usize,
}

/// CPU ticks of the services at one moment.
#[derive(Debug, Clone, Copy)]
struct ServiceTicks {
    coordinator: u64,
    agents: u64,
}

impl Drop for Bench {
    fn drop(&mut self) {
        self.continue_stopped();
        self.c.stop_all();
    }
}

/// Runs the benchmark; returns the summary object.
pub async fn bench(args: &BenchArgs) -> Result<Value, String> {
    if args.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    let base = args.state_dir.clone().unwrap_or_else(state_dir::default_dir);
    let dir = base.join(format!("tq-bench-{}", std::process::id()));
    let store = state_dir::prepare(&base)?;
    eprintln!(
        "bench: N={} on {} ({store}); every process's files in {}",
        args.nodes,
        base.display(),
        dir.display()
    );
    let res = run(args, &dir, &store).await;
    match &res {
        Ok(_) if !args.keep => {
            let _ = std::fs::remove_dir_all(&dir);
        }
        Ok(_) => eprintln!("bench: kept {}", dir.display()),
        Err(_) => eprintln!("bench: failed; logs and state kept in {}", dir.display()),
    }
    res
}

async fn run(args: &BenchArgs, dir: &Path, store: &str) -> Result<Value, String> {
    let started = Instant::now();
    let mut c = LocalCluster::create(dir, args.nodes)?;
    let processes = if args.nodes > mesh::SEPARATE_MAX {
        mesh::prepare(&mut c)?
    } else {
        "real tq-coordinator and tq-agent processes (LocalCluster)".to_string()
    };
    c.lower_agent_priority(args.agents_nice);
    let processes = match args.agents_nice {
        0 => format!("{processes}; agents at the coordinator's priority"),
        n => format!("{processes}; agents at nice {n}, below the coordinator"),
    };
    eprintln!("bench: {processes}");
    // The coordinator's background poll (every 2 s by default) would re-open connections
    // the cold scenarios need closed; at 16 RPCs/s it is noise for the warm ones anyway.
    c.set_protocol(|p| {
        p.poll_interval = Duration::from_secs(600);
        p.stale_after = Duration::from_secs(1200);
        p.lag_grace = Duration::from_secs(1200);
    })?;
    // Handled from here on, so that a Ctrl-C during start-up still stops every process.
    let (mut term, mut int) = signals()?;
    let mut b = Bench::start(c, args.runs, processes).await?;
    let signalled = tokio::select! {
        biased;
        _ = term.recv() => true,
        _ = int.recv() => true,
        () = std::future::ready(()) => false,
    };
    if signalled {
        return Err("stopped by a signal while starting".into());
    }
    tokio::select! {
        r = b.scenarios() => r?,
        _ = term.recv() => return Err("stopped by SIGTERM".into()),
        _ = int.recv() => return Err("stopped by SIGINT".into()),
    }
    let mut summary = b.summary(store, started.elapsed());
    // Stops every process, so that their logs are complete.
    drop(b);
    let logs = logs::scan(&dir.join("logs"), &[])?;
    if !logs.ok() {
        return Err(format!("a process's log shows a panic: {}", logs.findings.join("; ")));
    }
    summary["logs"] = logs.to_json();
    summary["agents_nice"] = json!(args.agents_nice);
    Ok(summary)
}

fn signals() -> Result<(tokio::signal::unix::Signal, tokio::signal::unix::Signal), String> {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(t), Ok(i)) => Ok((t, i)),
        (Err(e), _) | (_, Err(e)) => Err(format!("cannot handle signals: {e}")),
    }
}

impl Bench {
    async fn start(c: LocalCluster, runs: usize, processes: String) -> Result<Bench, String> {
        let t = Instant::now();
        let (machine, cpu_start) = (machine::describe(), machine::CpuMark::now(&[]));
        let slow = Arc::new(SlowRpcs::default());
        let started = async {
            c.start_all(ENROLL_TIMEOUT).await?;
            let clients = Clients::new(&c.cluster_file(), slow.clone()).await?;
            let nodes = clients.nodes()?;
            Ok::<_, String>((clients, nodes))
        }
        .await;
        let (clients, nodes) = match started {
            Ok(x) => x,
            Err(e) => {
                c.stop_all();
                return Err(e);
            }
        };
        let ids = c.nodes().to_vec();
        let n = ids.len();
        eprintln!("bench: {n} agents enrolled in {} ms", t.elapsed().as_millis());
        Ok(Bench {
            c,
            clients,
            nodes,
            ids,
            k: n / 2 + 1,
            runs,
            latest: 0,
            slow,
            stopped: Mutex::new(BTreeSet::new()),
            coordinator_rss: Highest::default(),
            agent_rss: Highest::default(),
            scenarios: Map::new(),
            machine,
            cpu_start,
            slow_before: 0,
            processes,
            mesh: n > mesh::SEPARATE_MAX,
            per_process: if n > mesh::SEPARATE_MAX {
                n.div_ceil(mesh::HOST_PROCESSES).max(1)
            } else {
                1
            },
        })
    }

    fn n(&self) -> usize {
        self.ids.len()
    }

    /// Every scenario, in an order that keeps the cold ones (which restart processes) last.
    async fn scenarios(&mut self) -> Result<(), String> {
        self.initial().await?;
        let floors = self.floors().await?;
        let floor_slow = self.slow.count();
        self.slow_before = floor_slow;
        if self.mesh {
            self.mesh_scenarios(&floors).await?;
        } else {
            self.separate_scenarios(&floors).await?;
        }
        let mut f = floors.summary();
        f["slow_rpcs"] = json!(floor_slow);
        self.scenarios.insert("floors".into(), f);
        Ok(())
    }

    /// Every scenario, for agents that run as processes of their own.
    async fn separate_scenarios(&mut self, floors: &floor::Floors) -> Result<(), String> {
        self.sample_rss();
        self.reconfigure_warm(floors).await?;
        self.reconfigure_locked(floors).await?;
        self.sample_rss();
        self.unlock_warm(floors).await?;
        self.unlock_blackholed().await?;
        self.sample_rss();
        self.status_saturated(floors).await?;
        self.status_at_1000(floors).await?;
        self.sample_rss();
        self.reconfigure_cold(floors).await?;
        self.unlock_cold(floors).await?;
        self.sample_rss();
        Ok(())
    }

    /// The initial configuration (all N, K = ⌊N/2⌋ + 1), committed and unlocked everywhere.
    async fn initial(&mut self) -> Result<(), String> {
        let t = Instant::now();
        let mut op = self.clients.connected_operator().await?;
        self.latest = self.clients.latest_committed(&mut op).await?;
        self.rotate(&mut op).await?;
        if !self.mesh {
            self.clients.wait_unlocked(&self.nodes, self.latest, Duration::from_millis(20)).await?;
        }
        eprintln!(
            "bench: epoch {} committed and unlocked on all {} agents (K = {}) in {} ms",
            self.latest,
            self.n(),
            self.k,
            t.elapsed().as_millis()
        );
        Ok(())
    }

    /// The PID of a process of the cluster.
    fn pid(&self, name: &str) -> Result<i32, String> {
        self.c.pid(name).ok_or_else(|| format!("{name} is not running"))
    }

    /// SIGSTOPs an agent (it keeps its sockets; nothing it is sent is answered).
    fn blackhole(&self, name: &str) -> Result<(), String> {
        let pid = self.pid(name)?;
        if let Ok(mut s) = self.stopped.lock() {
            s.insert(pid);
        }
        kill(Pid::from_raw(pid), Signal::SIGSTOP).map_err(|e| format!("SIGSTOP {name}: {e}"))
    }

    /// SIGCONTs every agent stopped by [`Bench::blackhole`].
    fn continue_stopped(&self) {
        let stopped = self.stopped.lock().map(|mut s| std::mem::take(&mut *s)).unwrap_or_default();
        for pid in stopped {
            let _ = kill(Pid::from_raw(pid), Signal::SIGCONT);
        }
    }

    /// Stops a process with SIGTERM (waiting until it is gone) and starts it again.
    fn restart(&self, name: &str) -> Result<(), String> {
        tokio::task::block_in_place(|| {
            self.c.signal(name, Signal::SIGTERM);
            self.c.start(name).map(drop)
        })
    }

    /// Notes the services' resident memory.
    fn sample_rss(&mut self) {
        if let Some(r) = self.c.pid(COORDINATOR).and_then(memory::rss) {
            self.coordinator_rss.see(COORDINATOR, r);
        }
        for id in &self.ids {
            if let Some(r) = self.c.pid(id.as_str()).and_then(memory::rss) {
                self.agent_rss.see(id.as_str(), r);
            }
        }
    }

    /// CPU ticks used so far by the coordinator and by the agents' processes.
    fn service_ticks(&self) -> ServiceTicks {
        let agents: Vec<i32> = self.ids.iter().filter_map(|id| self.c.pid(id.as_str())).collect();
        ServiceTicks {
            coordinator: self.c.pid(COORDINATOR).map_or(0, |p| machine::ticks_of(&[p])),
            agents: machine::ticks_of(&agents),
        }
    }

    /// What the coordinator and the agents spent since `start`, per one of `count`
    /// operations, in milliseconds: the cost of a figure, which other programs on the cores
    /// move less than its latency (still ±15 % between runs of the same code, 2026-12-07).
    fn cpu_per(&self, start: ServiceTicks, count: usize) -> Value {
        let now = self.service_ticks();
        let per =
            |a: u64, b: u64| round(machine::ticks_ms(a.saturating_sub(b)) / count.max(1) as f64);
        json!({
            "coordinator_cpu_ms": per(now.coordinator, start.coordinator),
            "agents_cpu_ms": per(now.agents, start.agents),
        })
    }

    /// Records a latency scenario: its samples against its floor (`ratio` = p50 / floor).
    fn record(&mut self, name: &str, s: &stats::Samples, floor_ms: f64, extra: Value) {
        let mut v = s.summary();
        v["floor_ms"] = json!(round(floor_ms));
        v["ratio"] = json!(if floor_ms > 0.0 { round(s.p50() / floor_ms) } else { 0.0 });
        // RPCs of 35 ms or more while this scenario ran (its own and its floor's).
        let slow = self.slow.count();
        v["slow_rpcs"] = json!(slow - self.slow_before);
        self.slow_before = slow;
        if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
            o.extend(e);
        }
        eprintln!(
            "bench: {name:<18} p50 {:>8.3} ms  p99 {:>8.3} ms  floor {:>7.3} ms  ×{:.1}  ({} samples)",
            s.p50(),
            s.p99(),
            floor_ms,
            v["ratio"].as_f64().unwrap_or(0.0),
            s.len()
        );
        self.scenarios.insert(name.into(), v);
    }

    fn summary(&mut self, store: &str, took: Duration) -> Value {
        let floors = self.scenarios.remove("floors").unwrap_or(Value::Null);
        let pids: Vec<i32> = std::iter::once(COORDINATOR)
            .chain(self.ids.iter().map(NodeId::as_str))
            .filter_map(|n| self.c.pid(n))
            .collect();
        let cpu =
            machine::cpu_use(self.cpu_start, machine::CpuMark::now(&pids), took.as_secs_f64());
        json!({
            "nodes": self.n(),
            "threshold": self.k,
            "store": store,
            "state_dir": self.c.dir().display().to_string(),
            "processes": self.processes,
            "scenarios": Value::Object(self.scenarios.clone()),
            "floors": floors,
            "rss_mb": {
                // A mesh's agents share processes: the share of one, and the process whole.
                "agents_per_process": self.per_process,
                "agent_process": round(self.agent_rss.now_mb),
                "coordinator": round(self.coordinator_rss.now_mb),
                "agent": round(self.agent_rss.now_mb / self.per_process as f64),
                "agent_name": self.agent_rss.name,
                "coordinator_peak": round(self.coordinator_rss.peak_mb),
                "agent_peak": round(self.agent_rss.peak_mb),
                "coordinator_anon": round(self.coordinator_rss.anon_mb),
                "agent_anon": round(self.agent_rss.anon_mb),
            },
            "slow_rpcs": self.slow.count(),
            "timed_rpcs": self.slow.total(),
            "slowest_rpcs_ms": self.slow.worst(),
            "elapsed_s": round(took.as_secs_f64()),
            "machine": self.machine,
            "cpu": cpu,
        })
    }
}

/// The summary as a table, for people.
pub fn render(v: &Value) -> String {
    let mut out = format!(
        "tq bench: N={} K={} store={} ({})\n\n{:<20} {:>10} {:>10} {:>10} {:>8} {:>10}\n",
        v["nodes"],
        v["threshold"],
        v["store"].as_str().unwrap_or("?"),
        v["state_dir"].as_str().unwrap_or("?"),
        "scenario",
        "p50 ms",
        "p99 ms",
        "floor ms",
        "ratio",
        "per s"
    );
    if let Some(s) = v["scenarios"].as_object() {
        for (name, r) in s {
            let per_s =
                r.get("per_s").and_then(Value::as_f64).map_or(String::new(), |x| format!("{x:.0}"));
            out.push_str(&format!(
                "{name:<20} {:>10.3} {:>10.3} {:>10.3} {:>8.2} {:>10}\n",
                r["p50_ms"].as_f64().unwrap_or(0.0),
                r["p99_ms"].as_f64().unwrap_or(0.0),
                r["floor_ms"].as_f64().unwrap_or(0.0),
                r["ratio"].as_f64().unwrap_or(0.0),
                per_s
            ));
        }
    }
    out.push_str(&format!(
        "\nRSS: coordinator {} MB, agent {} MB ({}; {} MB of it private); slow RPCs (≥ 35 ms): {} of {}\n\
         other programs used {:.0}% of the machine's CPU meanwhile ({} CPUs, {})\ntargets: {TARGETS}\n",
        v["rss_mb"]["coordinator"],
        v["rss_mb"]["agent"],
        v["rss_mb"]["agent_name"].as_str().unwrap_or("?"),
        v["rss_mb"]["agent_anon"],
        v["slow_rpcs"],
        v["timed_rpcs"],
        v["cpu"]["other_programs_share_of_cpu"].as_f64().unwrap_or(0.0) * 100.0,
        v["machine"]["cpus"],
        v["machine"]["cpu_model"].as_str().unwrap_or("?"),
    ));
    out
}
