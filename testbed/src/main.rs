//! `tq-testbed`: simulate, replay, run a local cluster, demo.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tq_sim::cli::print_summary;

#[derive(Parser)]
#[command(name = "tq-testbed", version, about = "Simulate, replay and exercise a tq cluster")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Sim(tq_sim::cli::Command),
    /// Start a local cluster: one tq-coordinator and N tq-agent processes on 127.0.0.1, with
    /// certificates, configs, state, logs and PID files in DIR. Prints `READY <cluster.toml>`
    /// once every agent has enrolled, then runs until SIGINT or SIGTERM and stops them all.
    /// A process that dies is reported, not restarted. An existing DIR is started again.
    Up {
        /// How many agents (node-1 … node-N).
        #[arg(long, default_value_t = 5)]
        nodes: usize,
        /// The cluster's directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Restart one process (coordinator or node-N) of a cluster started by `up`. Set
    /// TQ_FAILPOINTS (e.g. agent-after-ack=kill) to restart it with failpoints armed.
    Restart {
        /// The cluster's directory.
        dir: PathBuf,
        /// coordinator, node-1, …
        name: String,
    },
    /// Make agents of a cluster started by `up` forget their secrets and unlock again from
    /// their peers (no coordinator needed); prints each unlock's time and checks that all
    /// derive the same key.
    Unlock {
        /// The cluster's directory.
        dir: PathBuf,
        /// Which nodes (default: every running agent).
        nodes: Vec<String>,
        /// One JSON object instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// A crash campaign: loop secret rotations on a local cluster while SIGKILLing the
    /// coordinator or an agent at random moments; after each restart check that no acked
    /// commit was lost, no epoch's secret differs, and the cluster converges. With
    /// --kill-points, each named failpoint strikes once instead (SIGKILL at a named place, or
    /// a failed write) and the interrupted epoch must end as the protocol says. The last line
    /// of output is one JSON object; exit status 0 only if nothing was lost and no process's
    /// log shows a panic.
    Faults {
        /// How many processes to kill (one per round).
        #[arg(long, default_value_t = 20)]
        kills: u64,
        /// Every random choice derives from it.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Agents in the cluster.
        #[arg(long, default_value_t = 5)]
        nodes: usize,
        /// Where to put the cluster (default: a temporary directory, removed if all held).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Print only the JSON summary.
        #[arg(long)]
        json: bool,
        /// Strike each named failpoint once (ignores --kills).
        #[arg(long)]
        kill_points: bool,
    },
    /// Network faults on a local cluster of real processes, through a fault-injecting TCP
    /// proxy in front of every process. Exits 0 only if every case passed.
    ///
    /// Every connection to a process crosses its proxy (agents advertise their proxy's
    /// address; they enroll at the coordinator's); the proxy tells who connected from the
    /// socket's owner in /proc (needs root or CAP_SYS_PTRACE: the services are
    /// non-dumpable). Faults per link: partition (new and open connections reset),
    /// blackhole (accepted, held open, nothing delivered until heal), delay (each chunk held
    /// per direction, order kept), loss (a lost segment costs TCP a retransmission timeout:
    /// a seeded 30 % of chunks are held 200 ms more). The operator and the harness reach the
    /// processes directly. One cluster runs every case; between cases every link heals and
    /// the cluster must converge with every member deriving the same keys. Cases:
    ///
    /// minority_partition: N − (K + Z) members are partitioned from everyone before a
    /// rotation; it must commit with exactly K + Z acks, show the minority unacked and stale,
    /// and after heal the minority must catch up and commit.
    ///
    /// coordinator_partition: under the manual policy every member acks, the coordinator is
    /// cut off from the agents and the operator commits; status must say committing, an
    /// abort must be refused, no agent may commit; after heal every member commits.
    ///
    /// blackholed_unlock: N − K members are blackholed; every other member unlocks from the
    /// K − 1 peers that answer, each in well under 2 s (an unlock that waited would take 3 or
    /// 10 s).
    ///
    /// loss_and_delay: 200 ms each way and 30 % loss on every link; a rotation must commit on
    /// every member and an unlock complete, each no faster than its round trips allow.
    ///
    /// paused_agent, paused_coordinator: SIGSTOP for 5 s during a rotation, then SIGCONT. An
    /// agent: the epoch commits without it and it is shown stale. The coordinator: an agent
    /// still unlocks meanwhile, and the rotation commits after SIGCONT.
    ///
    /// The last line with --json is one object: cases (each with ok and its figures),
    /// failed, logs (a search of every process's log for panics), ok, seed, elapsed_s.
    Netfaults {
        /// Agents in the cluster (K = N/2 + 1 in every rotation).
        #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u16).range(3..=16))]
        nodes: u16,
        /// Every random choice (who is cut off, which chunks are lost) derives from it.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Print the summary as one JSON line (each case's line still goes to stderr).
        #[arg(long)]
        json: bool,
    },
    /// Benchmark a local cluster of real processes over loopback mTLS with real sled stores:
    /// secret rotation (warm, cold), unlock (warm, cold, N − K agents SIGSTOPped), status
    /// polling (saturated, 1000/s during rotations), each against a floor measured in the
    /// same run, and the services' memory. Counts any RPC of 35 ms or more as slow. Fails if
    /// any process's log shows a panic.
    Bench {
        /// How many agents (N; K = N/2 + 1). Above 32 the agents share 16 processes, start
        /// locked, and only rotations, unlock and status polling are measured.
        #[arg(long, default_value_t = 32)]
        nodes: usize,
        /// Samples per scenario (cold scenarios take a tenth, 3 to 10).
        #[arg(long, default_value_t = 100)]
        runs: usize,
        /// Where the sled stores go (default: /dev/shm when it is a tmpfs, else the
        /// temporary directory); the output names the filesystem.
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Print the summary as one JSON object on the last line.
        #[arg(long)]
        json: bool,
        /// Keep the cluster's directory (logs, stores) afterwards.
        #[arg(long)]
        keep: bool,
        /// The agents' nice value. On a rack each agent has its own machine; here all share
        /// two cores with the coordinator, whose status polls would otherwise wait behind
        /// 32 agents' re-key storms. 0 runs them at the coordinator's priority.
        #[arg(long, default_value_t = 19, value_parser = clap::value_parser!(u8).range(0..=19))]
        agents_nice: u8,
    },
    /// Run several agents in this one process (used by `bench` for meshes larger than two
    /// cores can run as processes): each with its own configuration, store, TLS identity,
    /// listener and key socket. Stops on SIGTERM/SIGINT, or when any agent fails.
    #[command(hide = true)]
    AgentHost {
        /// An agent's configuration file; repeat once per agent.
        #[arg(long = "config", required = true)]
        configs: Vec<PathBuf>,
        /// Where each agent writes its bound address, in the order of --config.
        #[arg(long = "ready-file", required = true)]
        ready_files: Vec<PathBuf>,
    },
    /// A narrated tour on a fresh local cluster: initial configuration, unlock everywhere,
    /// add a node, remove a node, kill an agent and watch it go stale, unlock with the
    /// coordinator stopped, restart and catch up. Exits 0 only if every check passed.
    Demo {
        /// How many agents (at least 5).
        #[arg(long, default_value_t = 6)]
        nodes: usize,
        /// Where to put the cluster (default: a temporary directory, removed on success).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Keep the temporary directory after a successful run.
        #[arg(long)]
        keep: bool,
    },
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

fn report(res: Result<(), String>) -> ExitCode {
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tq-testbed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    tq_wire::tls::install_crypto_provider();
    match Cli::parse().command {
        Command::Up { nodes, dir } => {
            report(runtime().and_then(|rt| rt.block_on(tq_testbed::up::up(&dir, nodes))))
        }
        Command::Restart { dir, name } => report(tq_testbed::up::restart(&dir, &name)),
        Command::Faults { kills, seed, nodes, dir, json, kill_points } => {
            let args = tq_testbed::faults::FaultArgs { kills, seed, nodes, dir, kill_points };
            match runtime().and_then(|rt| rt.block_on(tq_testbed::faults::faults(&args))) {
                Ok(summary) => {
                    if !json {
                        eprintln!("{}", serde_json::to_string_pretty(&summary).unwrap_or_default());
                    }
                    println!("{summary}");
                    if summary["ok"] == true { ExitCode::SUCCESS } else { ExitCode::FAILURE }
                }
                Err(e) => report(Err(e)),
            }
        }
        Command::Netfaults { nodes, seed, json } => {
            let args = tq_testbed::netfaults::NetFaultArgs { nodes: nodes.into(), seed };
            match runtime().and_then(|rt| rt.block_on(tq_testbed::netfaults::netfaults(&args))) {
                Ok(summary) => print_summary(&summary, json, summary["ok"] == true),
                Err(e) => report(Err(e)),
            }
        }
        Command::AgentHost { configs, ready_files } => {
            if configs.len() != ready_files.len() {
                eprintln!("tq-testbed agent-host: give one --ready-file per --config");
                return ExitCode::from(64);
            }
            let agents: Vec<_> = configs.into_iter().zip(ready_files).collect();
            tq_testbed::local::host::main(&agents)
        }
        Command::Unlock { dir, nodes, json } => {
            report(runtime().and_then(|rt| rt.block_on(tq_testbed::up::unlock(&dir, &nodes, json))))
        }
        Command::Bench { nodes, runs, state_dir, json, keep, agents_nice } => {
            let args = tq_testbed::bench::BenchArgs { nodes, runs, state_dir, keep, agents_nice };
            match runtime().and_then(|rt| rt.block_on(tq_testbed::bench::bench(&args))) {
                Ok(summary) if json => {
                    println!("{summary}");
                    ExitCode::SUCCESS
                }
                Ok(summary) => {
                    print!("{}", tq_testbed::bench::render(&summary));
                    ExitCode::SUCCESS
                }
                Err(e) => report(Err(e)),
            }
        }
        Command::Demo { nodes, dir, keep } => {
            report(runtime().and_then(|rt| rt.block_on(tq_testbed::demo::demo(dir, nodes, keep))))
        }
        Command::Sim(cmd) => tq_sim::cli::run(cmd, "tq-testbed"),
    }
}
