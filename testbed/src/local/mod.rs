//! A local cluster of real processes: one `tq-coordinator` and N `tq-agent` on 127.0.0.1,
//! with certificates, configuration files, state, logs and PID files in one directory:
//!
//! ```text
//! D/cluster.toml          what tqctl --cluster reads
//! D/<name>.toml           each process's configuration (coordinator, node-1, …)
//! D/<name>.pid            each running process's PID
//! D/certs/                CA, and one certificate + key per process and the operator
//! D/state/<name>/         sled stores
//! D/run/<name>.sock       agents' local key sockets; <name>.addr ready files
//! D/logs/<name>.log       each process's log
//! ```
//!
//! Every process is first started on port 0; the address it bound is then written back into
//! its configuration, so a restart comes back at the same address.

pub mod control;
pub mod host;
pub mod logs;
pub mod process;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tq_coordinator::CoordinatorConfig;
use tq_coordinator::cluster_file::ClusterFile;
use tq_node_agent::AgentConfig;
use tq_protocol::{ClusterId, NodeId, Peer};
use tq_wire::pki::{CertAuthority, write};
use tq_wire::process::LogConfig;
use tq_wire::tls::TlsFiles;

/// The coordinator's process name.
pub const COORDINATOR: &str = "coordinator";

/// How long a process may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a process may take to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A local cluster's directory and the processes this program started in it.
pub struct LocalCluster {
    dir: PathBuf,
    bins: PathBuf,
    cluster: ClusterId,
    nodes: Vec<NodeId>,
    /// Agents per process: 1 runs each as `tq-agent`; more run them in `tq-testbed
    /// agent-host` processes ([`LocalCluster::share_processes`]).
    per_process: usize,
    /// Where agents enroll, when not at the coordinator's own address.
    agents_enroll_at: Option<String>,
    /// The nice value agents start at ([`LocalCluster::lower_agent_priority`]).
    agent_nice: u8,
    children: Mutex<BTreeMap<String, Child>>,
}

fn io(what: &str, p: &Path, e: impl std::fmt::Display) -> String {
    format!("{what} {}: {e}", p.display())
}

impl LocalCluster {
    /// Creates a cluster of `n` nodes in `dir` (which must not hold one already): certificates
    /// and configuration files. Nothing runs yet.
    pub fn create(dir: &Path, n: usize) -> Result<LocalCluster, String> {
        if !(3..=tq_protocol::quorum::MAX_MEMBERS).contains(&n) {
            return Err(format!(
                "--nodes must be between 3 and {}, not {n}",
                tq_protocol::quorum::MAX_MEMBERS
            ));
        }
        if dir.join("cluster.toml").exists() {
            return Err(format!("{} already holds a cluster", dir.display()));
        }
        for sub in ["certs", "state", "run", "logs"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|e| io("cannot create", dir, e))?;
        }
        let dir = dir.canonicalize().map_err(|e| io("cannot resolve", dir, e))?;
        let cluster = tq_wire::pki::random_cluster_id().map_err(|e| e.to_string())?;
        let nodes: Vec<NodeId> = (1..=n)
            .map(|i| NodeId::new(format!("node-{i}")).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        let certs = dir.join("certs");
        let ca = CertAuthority::generate(&cluster).map_err(|e| e.to_string())?;
        let ca_path = certs.join("ca.pem");
        let pki = |e: tq_wire::pki::PkiError| e.to_string();
        write(&ca_path, ca.cert_pem.as_bytes(), 0o644).map_err(pki)?;
        write(&certs.join("ca-key.pem"), ca.key_pem().as_bytes(), 0o600).map_err(pki)?;
        let issue = |name: &str, peer: Peer| ca.issue_to(&certs, name, &cluster, &peer, &ca_path);
        let operator = issue("operator-admin", Peer::Operator("admin".into())).map_err(pki)?;
        let c = LocalCluster {
            bins: process::bin_dir()?,
            dir,
            cluster,
            nodes,
            per_process: 1,
            agents_enroll_at: None,
            agent_nice: 0,
            children: Mutex::new(BTreeMap::new()),
        };
        let coordinator = CoordinatorConfig {
            cluster_id: cluster.to_string(),
            listen: "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?,
            state_dir: c.state_dir(COORDINATOR),
            tls: issue(COORDINATOR, Peer::Coordinator).map_err(pki)?,
            protocol: Default::default(),
            log: LogConfig::default(),
            limits: Default::default(),
            failpoints: Default::default(),
        };
        c.write_toml(&c.config_path(COORDINATOR), &coordinator)?;
        // The coordinator's address is not known until it runs: the cluster file and the
        // agents' configurations are completed by `start_all`.
        let file = ClusterFile {
            cluster_id: cluster.to_string(),
            coordinator: String::new(),
            tls: TlsFiles { ca: ca_path.clone(), cert: operator.cert, key: operator.key },
        };
        file.write(&c.cluster_file())?;
        for id in &c.nodes {
            let name = id.as_str();
            let agent = AgentConfig {
                cluster_id: cluster.to_string(),
                node_id: name.into(),
                listen: "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?,
                advertise: None,
                state_dir: c.state_dir(name),
                key_socket: c.key_socket(name),
                coordinator: None,
                unlock_on_start: true,
                retry_interval: Duration::from_secs(1),
                rekey_delay: Duration::from_millis(50),
                tls: issue(name, Peer::Node(id.clone())).map_err(pki)?,
                peers: Vec::new(),
                log: LogConfig::default(),
                limits: Default::default(),
                failpoints: Default::default(),
            };
            c.write_toml(&c.config_path(name), &agent)?;
        }
        Ok(c)
    }

    /// Opens a cluster directory made by [`LocalCluster::create`].
    pub fn open(dir: &Path) -> Result<LocalCluster, String> {
        let dir = dir.canonicalize().map_err(|e| io("no cluster directory", dir, e))?;
        let (_, cluster) = ClusterFile::load(&dir.join("cluster.toml"))?;
        let mut nodes = Vec::new();
        for i in 1.. {
            let name = format!("node-{i}");
            if !dir.join(format!("{name}.toml")).exists() {
                break;
            }
            nodes.push(NodeId::new(name).map_err(|e| e.to_string())?);
        }
        Ok(LocalCluster {
            bins: process::bin_dir()?,
            dir,
            cluster,
            nodes,
            per_process: 1,
            agents_enroll_at: None,
            agent_nice: 0,
            children: Mutex::new(BTreeMap::new()),
        })
    }

    /// The cluster id.
    pub fn cluster(&self) -> ClusterId {
        self.cluster
    }
    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// The node ids, `node-1` … `node-N`.
    pub fn nodes(&self) -> &[NodeId] {
        &self.nodes
    }
    /// `D/cluster.toml`.
    pub fn cluster_file(&self) -> PathBuf {
        self.dir.join("cluster.toml")
    }
    /// A process's configuration file.
    pub fn config_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.toml"))
    }
    /// A process's PID file.
    pub fn pid_file(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.pid"))
    }
    /// A process's log.
    pub fn log_path(&self, name: &str) -> PathBuf {
        self.dir.join("logs").join(format!("{name}.log"))
    }
    /// Searches every process's log for a panic and for `values` ([`logs::scan`]).
    pub fn scan_logs(
        &self,
        values: &[tq_protocol::recorded::Recorded],
    ) -> Result<logs::LogScan, String> {
        logs::scan(&self.dir.join("logs"), values)
    }
    /// An agent's local key socket.
    pub fn key_socket(&self, name: &str) -> PathBuf {
        self.dir.join("run").join(format!("{name}.sock"))
    }
    /// A process's state directory (its sled store).
    pub fn state_dir(&self, name: &str) -> PathBuf {
        self.dir.join("state").join(name)
    }
    /// A sibling binary (`tqctl`, …).
    pub fn bin(&self, name: &str) -> PathBuf {
        self.bins.join(name)
    }

    fn write_toml(&self, path: &Path, value: &impl serde::Serialize) -> Result<(), String> {
        let body = toml::to_string_pretty(value).map_err(|e| e.to_string())?;
        write(path, body.as_bytes(), 0o644).map_err(|e| e.to_string())
    }

    fn read_toml<T: serde::de::DeserializeOwned>(&self, path: &Path) -> Result<T, String> {
        tq_wire::process::load_toml(path).map_err(|e| e.to_string())
    }

    /// Changes the coordinator's `[protocol]` settings (takes effect at its next start).
    pub fn set_protocol(
        &self,
        change: impl FnOnce(&mut tq_coordinator::config::ProtocolConfig),
    ) -> Result<(), String> {
        self.edit_coordinator(|c| change(&mut c.protocol))
    }

    /// Changes the coordinator's configuration file (read at its next start).
    fn edit_coordinator(&self, change: impl FnOnce(&mut CoordinatorConfig)) -> Result<(), String> {
        let path = self.config_path(COORDINATOR);
        let mut c: CoordinatorConfig = self.read_toml(&path)?;
        change(&mut c);
        self.write_toml(&path, &c)
    }

    /// Sets every process's log level (from its next start): `debug` writes every line a
    /// release build can.
    pub fn set_log_level(&self, level: &str) -> Result<(), String> {
        self.edit_coordinator(|c| c.log.level = level.to_string())?;
        for id in &self.nodes {
            self.edit_agent(id.as_str(), |a| a.log.level = level.to_string())?;
        }
        Ok(())
    }

    /// Changes an agent's configuration file (read at its next start).
    pub fn edit_agent(
        &self,
        name: &str,
        change: impl FnOnce(&mut AgentConfig),
    ) -> Result<(), String> {
        let path = self.config_path(name);
        let mut c: AgentConfig = self.read_toml(&path)?;
        change(&mut c);
        self.write_toml(&path, &c)
    }

    /// From the next start of each agent on, it enrolls at `addr` (a proxy in front of the
    /// coordinator, say) instead of the coordinator's own address; the operator's cluster
    /// file keeps the coordinator's.
    pub fn enroll_agents_at(&mut self, addr: String) {
        self.agents_enroll_at = Some(addr);
    }

    /// From the next start on, runs agents `n` to a process (`tq-testbed agent-host`), for
    /// meshes larger than the machine can run as separate processes. Each keeps its own
    /// store, TLS identity, listener and key socket; but a signal sent to one agent reaches
    /// every agent of its process, and one cannot be started alone.
    pub fn share_processes(&mut self, n: usize) {
        self.per_process = n.max(1);
    }

    /// From the next start on, agents run at nice `nice`, below the coordinator: on a rack
    /// each agent has its own machine, and the coordinator's CPU is not theirs to take.
    pub fn lower_agent_priority(&mut self, nice: u8) {
        self.agent_nice = nice.min(19);
    }

    /// Starts the coordinator, then every agent, and waits until every agent has enrolled.
    pub async fn start_all(&self, timeout: Duration) -> Result<(), String> {
        self.start(COORDINATOR)?;
        if self.per_process == 1 {
            for id in &self.nodes {
                self.start(id.as_str())?;
            }
        } else {
            for group in self.nodes.chunks(self.per_process) {
                self.start_host(group)?;
            }
        }
        control::wait_enrolled(self, timeout).await
    }

    fn ready_file(&self, name: &str) -> PathBuf {
        self.dir.join("run").join(format!("{name}.addr"))
    }

    /// Starts one `agent-host` process for `group` and waits until every agent listens.
    fn start_host(&self, group: &[NodeId]) -> Result<u32, String> {
        let first = group.first().ok_or("an empty group of agents")?.as_str();
        let mut agents = Vec::with_capacity(group.len());
        for id in group {
            self.point_agent_at_coordinator(id.as_str())?;
            agents.push((self.config_path(id.as_str()), self.ready_file(id.as_str())));
        }
        let log = self.log_path(&format!("host-{first}"));
        let mut child =
            process::spawn_host(&self.bin("tq-testbed"), &agents, &log, self.agent_nice)?;
        let pid = child.id();
        for id in group {
            write(&self.pid_file(id.as_str()), format!("{pid}\n").as_bytes(), 0o644)
                .map_err(|e| e.to_string())?;
        }
        for (id, (_, ready)) in group.iter().zip(&agents) {
            let addr = process::wait_ready(&mut child, ready, &log, START_TIMEOUT)
                .map_err(|e| format!("{id}: {e}"))?;
            self.pin_address(id.as_str(), &addr)?;
        }
        if let Ok(mut c) = self.children.lock() {
            c.insert(format!("host-{first}"), child);
        }
        Ok(pid)
    }

    /// Starts one process (`coordinator` or `node-N`) and waits until it listens. Returns
    /// its PID. A process already running under that name is an error.
    pub fn start(&self, name: &str) -> Result<u32, String> {
        self.start_with_failpoints(name, None)
    }

    /// [`LocalCluster::start`] with `TQ_FAILPOINTS` set to `failpoints`.
    pub fn start_with_failpoints(
        &self,
        name: &str,
        failpoints: Option<&str>,
    ) -> Result<u32, String> {
        if let Some(pid) = process::live_pid(&self.pid_file(name)) {
            return Err(format!("{name} is already running (pid {pid})"));
        }
        if name != COORDINATOR && self.per_process > 1 {
            return Err(format!("{name} shares a process with other agents: restart them all"));
        }
        let binary = if name == COORDINATOR { "tq-coordinator" } else { "tq-agent" };
        if name != COORDINATOR {
            self.point_agent_at_coordinator(name)?;
        }
        let ready = self.ready_file(name);
        let log = self.log_path(name);
        let config = self.config_path(name);
        let nice = if name == COORDINATOR { 0 } else { self.agent_nice };
        let mut child = process::spawn(&self.bin(binary), &config, &ready, &log, failpoints, nice)?;
        let pid = child.id();
        write(&self.pid_file(name), format!("{pid}\n").as_bytes(), 0o644)
            .map_err(|e| e.to_string())?;
        let addr = process::wait_ready(&mut child, &ready, &log, START_TIMEOUT)
            .map_err(|e| format!("{name}: {e}"))?;
        self.pin_address(name, &addr)?;
        if let Ok(mut c) = self.children.lock() {
            c.insert(name.to_string(), child);
        }
        Ok(pid)
    }

    /// Where a process listens (once it has started: its configuration then holds the
    /// address it bound).
    pub fn listen_addr(&self, name: &str) -> Result<std::net::SocketAddr, String> {
        let path = self.config_path(name);
        if name == COORDINATOR {
            self.read_toml::<CoordinatorConfig>(&path).map(|c| c.listen)
        } else {
            self.read_toml::<AgentConfig>(&path).map(|c| c.listen)
        }
    }

    /// Writes the bound address back into the configuration (and the cluster file).
    fn pin_address(&self, name: &str, addr: &str) -> Result<(), String> {
        let listen = addr.parse().map_err(|e| format!("{name} reported {addr:?}: {e}"))?;
        let path = self.config_path(name);
        if name == COORDINATOR {
            let mut c: CoordinatorConfig = self.read_toml(&path)?;
            c.listen = listen;
            self.write_toml(&path, &c)?;
            let (mut f, _) = ClusterFile::load(&self.cluster_file())?;
            f.coordinator = addr.to_string();
            f.write(&self.cluster_file())
        } else {
            let mut c: AgentConfig = self.read_toml(&path)?;
            c.listen = listen;
            self.write_toml(&path, &c)
        }
    }

    fn point_agent_at_coordinator(&self, name: &str) -> Result<(), String> {
        let (f, _) = ClusterFile::load(&self.cluster_file())?;
        let at = self.agents_enroll_at.clone().unwrap_or(f.coordinator);
        let path = self.config_path(name);
        let mut c: AgentConfig = self.read_toml(&path)?;
        if !at.is_empty() && c.coordinator.as_deref() != Some(&at) {
            c.coordinator = Some(at);
            self.write_toml(&path, &c)?;
        }
        Ok(())
    }

    /// The PID of a running process.
    pub fn pid(&self, name: &str) -> Option<i32> {
        process::live_pid(&self.pid_file(name)).map(|p| p.as_raw())
    }

    /// Sends `signal` (SIGTERM to stop, SIGKILL to crash) and waits until the process is
    /// gone. Returns whether it was running.
    pub fn signal(&self, name: &str, signal: Signal) -> bool {
        let was = process::stop(&self.pid_file(name), signal, STOP_GRACE);
        // Its command line empties (how `stop` sees it gone) a moment before it can be
        // waited for; a handle `start` then replaced would leave a zombie until we exit.
        if let Ok(mut children) = self.children.lock()
            && let Some(child) = children.get_mut(name)
        {
            let deadline = Instant::now() + STOP_GRACE;
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        self.reap();
        was
    }

    /// Stops every process of the cluster, agents first.
    pub fn stop_all(&self) {
        for id in self.nodes.iter().rev() {
            self.signal(id.as_str(), Signal::SIGTERM);
        }
        self.signal(COORDINATOR, Signal::SIGTERM);
        for name in self.nodes.iter().map(NodeId::as_str).chain([COORDINATOR]) {
            let _ = std::fs::remove_file(self.pid_file(name));
        }
    }

    /// How a process this program started ended, once it has (None while it runs, or if it
    /// was not started here). Does not wait.
    pub fn exited(&self, name: &str) -> Option<ExitStatus> {
        let mut children = self.children.lock().ok()?;
        let status = children.get_mut(name)?.try_wait().ok()??;
        children.remove(name);
        Some(status)
    }

    /// Collects the processes this program started that have exited: (name, how).
    pub fn reap(&self) -> Vec<(String, String)> {
        let Ok(mut children) = self.children.lock() else { return Vec::new() };
        let mut gone = Vec::new();
        children.retain(|name, child| match child.try_wait() {
            Ok(Some(status)) => {
                gone.push((name.clone(), status.to_string()));
                false
            }
            _ => true,
        });
        gone
    }
}
