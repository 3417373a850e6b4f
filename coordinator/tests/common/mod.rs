//! An in-process cluster for the integration tests: a real coordinator and real node agents,
//! each started with its library `run` on the test's runtime and stopped through a shutdown
//! future the harness controls; real mTLS certificates from `tq_wire::pki`; real sled stores;
//! every listener on 127.0.0.1 (port 0 the first time; a restarted service takes its old
//! port back, as a real machine would, so address books stay valid).
//!
//! Set `TQ_IT_LOG=debug` (or another level) to see the services' logs, and `TQ_IT_KEEP=1` to
//! keep the temporary directory.

// Each test binary uses part of the harness.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use slog::{Logger, o};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tq_coordinator::config::ProtocolConfig;
use tq_coordinator::{CoordinatorConfig, CoordinatorError};
use tq_node_agent::{AgentConfig, AgentError};
use tq_protocol::{ClusterId, NodeId, Peer};
use tq_wire::client::{ClientLimits, channel};
use tq_wire::pb::{
    self, coordinator_client::CoordinatorClient, local_keys_client::LocalKeysClient,
};
use tq_wire::pki::{CertAuthority, ClusterCerts, init_cluster_certs};
use tq_wire::process::LogConfig;
use tq_wire::server::ServerLimits;
use tq_wire::tls::{TlsFiles, TlsMaterial};

/// How long any wait may take before the test fails.
pub(crate) const DEADLINE: Duration = Duration::from_secs(8);

/// The purpose every test derives keys for.
pub(crate) const PURPOSE: &str = "disk";
pub(crate) const CONTEXT: &[u8] = b"sled-0";

/// A service started with its `run`: its shutdown trigger and its task.
struct Running<E> {
    listen: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), E>>,
}

impl<E: std::fmt::Display> Running<E> {
    /// Starts `run` (given the ready callback and the shutdown future) and waits until it
    /// calls `ready` with its bound address, or fails.
    async fn start<F>(
        what: &str,
        run: impl FnOnce(
            Box<dyn FnOnce(SocketAddr) + Send>,
            std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
        ) -> F,
    ) -> Result<Running<E>, String>
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Send + 'static,
    {
        let (ready_tx, ready_rx) = oneshot::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let ready = Box::new(move |addr: SocketAddr| {
            let _ = ready_tx.send(addr);
        });
        let shutdown = Box::pin(async move {
            let _ = stop_rx.await;
        });
        let mut task = tokio::spawn(run(ready, shutdown));
        tokio::select! {
            addr = ready_rx => match addr {
                Ok(listen) => Ok(Running { listen, shutdown: Some(stop_tx), task }),
                Err(_) => Err(match (&mut task).await {
                    Ok(Err(e)) => format!("{what} did not start: {e}"),
                    other => format!("{what} did not start: {:?}", other.map(|_| ())),
                }),
            },
            () = tokio::time::sleep(DEADLINE) => {
                task.abort();
                Err(format!("{what} not ready within {DEADLINE:?}"))
            }
        }
    }

    /// Triggers the shutdown and waits for `run` to return; it must return Ok.
    async fn stop(mut self, what: &str) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match tokio::time::timeout(DEADLINE, &mut self.task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => panic!("{what} stopped with an error: {e}"),
            Ok(Err(e)) => panic!("{what} task failed: {e}"),
            Err(_) => panic!("{what} did not stop within {DEADLINE:?}"),
        }
    }
}

/// One node agent's files and, while it runs, its service.
struct Agent {
    id: NodeId,
    tls: TlsFiles,
    state_dir: PathBuf,
    key_socket: PathBuf,
    /// The address it bound last; a restart binds it again.
    listen: Option<SocketAddr>,
    running: Option<Running<AgentError>>,
}

/// Protocol timings short enough for tests.
pub(crate) fn fast_protocol() -> ProtocolConfig {
    ProtocolConfig {
        commit_policy: "auto".into(),
        threshold_policy: "majority".into(),
        prepare_timeout: Duration::from_secs(60),
        retry_interval: Duration::from_millis(100),
        poll_interval: Duration::from_millis(100),
        stale_after: Duration::from_secs(3),
        lag_grace: Duration::from_secs(3),
    }
}

/// A cluster: CA and certificates, one coordinator, agents `n1`..`nN`, all in one temporary
/// directory that is removed at the end.
pub(crate) struct Cluster {
    pub(crate) id: ClusterId,
    pub(crate) root: PathBuf,
    pub(crate) certs: ClusterCerts,
    /// The protocol settings the coordinator starts with next time.
    pub(crate) protocol: ProtocolConfig,
    coordinator: Option<Running<CoordinatorError>>,
    coordinator_listen: Option<SocketAddr>,
    coordinator_state: PathBuf,
    agents: BTreeMap<NodeId, Agent>,
    log: Logger,
}

/// `n1`, `n2`, ...
pub(crate) fn node(i: usize) -> NodeId {
    NodeId::new(format!("n{i}")).expect("a valid node id")
}

fn id(name: &str) -> NodeId {
    NodeId::new(name).expect("a valid node id")
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("randomness");
    b
}

fn logger() -> Logger {
    match std::env::var("TQ_IT_LOG") {
        Ok(level) => {
            let level = tq_wire::logging::parse_level(&level).unwrap_or(slog::Level::Debug);
            let (log, guard) =
                tq_wire::logging::logger(tq_wire::logging::LogFormat::Term, level, "it");
            // The guard flushes on drop; a test process may keep it.
            std::mem::forget(guard);
            log
        }
        Err(_) => Logger::root(slog::Discard, o!()),
    }
}

impl Cluster {
    /// A running cluster of `n` agents, all enrolled; returns it and the node ids.
    pub(crate) async fn up(name: &str, n: usize) -> (Cluster, Vec<NodeId>) {
        let mut c = Cluster::new(name, n);
        c.start_coordinator().await;
        c.start_agents().await;
        let all = c.nodes();
        c.wait_enrolled(&all).await;
        (c, all)
    }

    /// [`Cluster::up`], then epoch 1 committed on every node with threshold `k`.
    pub(crate) async fn configured(name: &str, n: usize, k: u32) -> (Cluster, Vec<NodeId>) {
        let (c, all) = Cluster::up(name, n).await;
        c.reconfigure(&all, k, 0).await.expect("initial configuration accepted");
        c.wait_committed(1, &all).await;
        (c, all)
    }

    /// Certificates for a coordinator, nodes `n1`..`n{nodes}` and operator `alice` in a new
    /// temporary directory. Nothing runs yet.
    pub(crate) fn new(name: &str, nodes: usize) -> Cluster {
        tq_wire::tls::install_crypto_provider();
        let id = ClusterId::from_bytes(random_bytes());
        let root = std::env::temp_dir().join(format!(
            "tq-it-{name}-{}-{}",
            std::process::id(),
            hex(&random_bytes::<4>())
        ));
        std::fs::create_dir_all(&root).expect("temporary directory");
        let ids: Vec<NodeId> = (1..=nodes).map(node).collect();
        let certs = init_cluster_certs(&root.join("pki"), &id, &ids, "alice")
            .expect("cluster certificates");
        let agents = certs
            .nodes
            .iter()
            .map(|(n, tls)| {
                let dir = root.join(n.as_str());
                let agent = Agent {
                    id: n.clone(),
                    tls: tls.clone(),
                    state_dir: dir.join("state"),
                    key_socket: dir.join("keys.sock"),
                    listen: None,
                    running: None,
                };
                (n.clone(), agent)
            })
            .collect();
        Cluster {
            id,
            coordinator_state: root.join("coordinator"),
            root,
            certs,
            protocol: fast_protocol(),
            coordinator: None,
            coordinator_listen: None,
            agents,
            log: logger(),
        }
    }

    /// The cluster CA (its key is in the pki directory), to issue more certificates.
    pub(crate) fn ca(&self) -> CertAuthority {
        let pki = self.root.join("pki");
        let cert = std::fs::read_to_string(pki.join("ca.pem")).expect("CA certificate");
        let key = std::fs::read_to_string(pki.join("ca-key.pem")).expect("CA key");
        CertAuthority::load(&cert, &key).expect("CA loads")
    }

    // ------------------------------------------------------------------ the coordinator

    /// The coordinator's configuration as the harness starts it.
    pub(crate) fn coordinator_config(&self) -> CoordinatorConfig {
        CoordinatorConfig {
            cluster_id: self.id.to_string(),
            listen: self.coordinator_listen.unwrap_or_else(|| "127.0.0.1:0".parse().expect("addr")),
            state_dir: self.coordinator_state.clone(),
            tls: self.certs.coordinator.clone(),
            protocol: self.protocol.clone(),
            log: LogConfig::default(),
            limits: ServerLimits::default(),
        }
    }

    /// Starts the coordinator (on its previous address if it ran before).
    pub(crate) async fn start_coordinator(&mut self) {
        assert!(self.coordinator.is_none(), "the coordinator is already running");
        let config = self.coordinator_config();
        let log = self.log.new(o!("service" => "coordinator"));
        let running = Running::start("coordinator", move |ready, shutdown| {
            tq_coordinator::run(config, log, move |r| ready(r.listen), shutdown)
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        self.coordinator_listen = Some(running.listen);
        self.coordinator = Some(running);
    }

    /// Starts the coordinator with its usual configuration; Err says why it did not start.
    pub(crate) async fn try_start_coordinator(&mut self) -> Result<(), String> {
        assert!(self.coordinator.is_none(), "the coordinator is already running");
        let config = self.coordinator_config();
        let log = self.log.new(o!("service" => "coordinator"));
        let running = Running::start("coordinator", move |ready, shutdown| {
            tq_coordinator::run(config, log, move |r| ready(r.listen), shutdown)
        })
        .await?;
        self.coordinator_listen = Some(running.listen);
        self.coordinator = Some(running);
        Ok(())
    }

    /// Stops the coordinator; its `run` must return Ok.
    pub(crate) async fn stop_coordinator(&mut self) {
        let running = self.coordinator.take().expect("the coordinator is not running");
        running.stop("coordinator").await;
    }

    /// The coordinator's address (it keeps it across restarts).
    pub(crate) fn coordinator_addr(&self) -> SocketAddr {
        self.coordinator_listen.expect("the coordinator never started")
    }

    /// The coordinator's ledger directory.
    pub(crate) fn coordinator_state(&self) -> &Path {
        &self.coordinator_state
    }

    // ------------------------------------------------------------------ agents

    /// The agent's configuration as the harness starts it.
    pub(crate) fn agent_config(&self, n: &NodeId) -> AgentConfig {
        let a = self.agent(n);
        AgentConfig {
            cluster_id: self.id.to_string(),
            node_id: n.to_string(),
            listen: a.listen.unwrap_or_else(|| "127.0.0.1:0".parse().expect("addr")),
            advertise: None,
            state_dir: a.state_dir.clone(),
            key_socket: a.key_socket.clone(),
            coordinator: self.coordinator_listen.map(|a| a.to_string()),
            unlock_on_start: true,
            retry_interval: Duration::from_millis(100),
            tls: a.tls.clone(),
            peers: Vec::new(),
            log: LogConfig::default(),
            limits: ServerLimits::default(),
        }
    }

    fn agent(&self, n: &NodeId) -> &Agent {
        self.agents.get(n).unwrap_or_else(|| panic!("no agent {n} in this cluster"))
    }

    fn agent_mut(&mut self, n: &NodeId) -> &mut Agent {
        self.agents.get_mut(n).unwrap_or_else(|| panic!("no agent {n} in this cluster"))
    }

    /// Starts agent `n` with its state directory (on its previous address if it ran before).
    pub(crate) async fn start_agent(&mut self, n: &NodeId) {
        let config = self.agent_config(n);
        self.start_agent_with(n, config).await.unwrap_or_else(|e| panic!("{e}"));
    }

    /// Starts agent `n` with `config`; Err says why it did not start.
    pub(crate) async fn start_agent_with(
        &mut self,
        n: &NodeId,
        config: AgentConfig,
    ) -> Result<(), String> {
        assert!(self.agent(n).running.is_none(), "agent {n} is already running");
        let log = self.log.new(o!("service" => "agent"));
        let running = Running::start(&format!("agent {n}"), move |ready, shutdown| {
            tq_node_agent::run(config, log, move |r| ready(r.listen), shutdown)
        })
        .await?;
        let a = self.agent_mut(n);
        a.listen = Some(running.listen);
        a.running = Some(running);
        Ok(())
    }

    /// Starts every agent that is not running.
    pub(crate) async fn start_agents(&mut self) {
        let ids: Vec<NodeId> =
            self.agents.values().filter(|a| a.running.is_none()).map(|a| a.id.clone()).collect();
        for n in &ids {
            self.start_agent(n).await;
        }
    }

    /// Stops agent `n`; its `run` must return Ok. Its state directory stays.
    pub(crate) async fn stop_agent(&mut self, n: &NodeId) {
        let running =
            self.agent_mut(n).running.take().unwrap_or_else(|| panic!("agent {n} is not running"));
        running.stop(&format!("agent {n}")).await;
    }

    /// Stops agent `n` and starts it again on the same state directory and address.
    pub(crate) async fn restart_agent(&mut self, n: &NodeId) {
        self.stop_agent(n).await;
        self.start_agent(n).await;
    }

    /// Node ids of every agent.
    pub(crate) fn nodes(&self) -> Vec<NodeId> {
        self.agents.keys().cloned().collect()
    }

    /// Agent `n`'s peer service address.
    pub(crate) fn agent_addr(&self, n: &NodeId) -> SocketAddr {
        self.agent(n).listen.unwrap_or_else(|| panic!("agent {n} never started"))
    }

    /// Agent `n`'s mTLS files.
    pub(crate) fn agent_tls(&self, n: &NodeId) -> TlsFiles {
        self.agent(n).tls.clone()
    }

    // ------------------------------------------------------------------ clients

    fn tls(&self, files: &TlsFiles) -> TlsMaterial {
        TlsMaterial::load(files, self.id, None).expect("TLS files load")
    }

    /// A client of the coordinator's control service authenticated with `files`.
    pub(crate) fn coordinator_client_as(&self, tls: &TlsMaterial) -> CoordinatorClient<Channel> {
        let ch = channel(tls, Peer::Coordinator, &self.coordinator_addr().to_string(), &limits())
            .expect("a channel");
        CoordinatorClient::new(ch)
    }

    /// The operator `alice`.
    pub(crate) fn operator(&self) -> CoordinatorClient<Channel> {
        self.coordinator_client_as(&self.tls(&self.certs.operator))
    }

    /// A client of agent `n`'s peer service authenticated with `tls`.
    pub(crate) fn node_client_as(
        &self,
        tls: &TlsMaterial,
        n: &NodeId,
    ) -> pb::node_agent_client::NodeAgentClient<Channel> {
        let ch = channel(tls, Peer::Node(n.clone()), &self.agent_addr(n).to_string(), &limits())
            .expect("a channel");
        pb::node_agent_client::NodeAgentClient::new(ch)
    }

    /// A channel to `addr` that trusts this cluster's CA for the server (checked by host name,
    /// as any TLS client would) and presents `cert_pem`/`key_pem`, whatever issued them: for
    /// certificates the harness's own TLS loading would refuse.
    pub(crate) async fn raw_channel(
        &self,
        addr: SocketAddr,
        cert_pem: &str,
        key_pem: &str,
    ) -> Result<Channel, tonic::transport::Error> {
        use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
        let ca = std::fs::read_to_string(&self.certs.ca).expect("CA certificate");
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca))
            .identity(Identity::from_pem(cert_pem, key_pem))
            .domain_name("localhost");
        Endpoint::from_shared(format!("https://{addr}"))
            .expect("an endpoint")
            .timeout(Duration::from_secs(5))
            .tls_config(tls)?
            .connect()
            .await
    }

    /// TLS material for one of this cluster's certificates.
    pub(crate) fn tls_of(&self, files: &TlsFiles) -> TlsMaterial {
        self.tls(files)
    }

    /// Agent `n`'s local key service, over its Unix socket.
    pub(crate) async fn keys(&self, n: &NodeId) -> LocalKeysClient<Channel> {
        let socket = &self.agent(n).key_socket;
        tq_wire::client::local_keys(socket)
            .await
            .unwrap_or_else(|e| panic!("agent {n}'s key socket {}: {e}", socket.display()))
    }

    // ------------------------------------------------------------------ operations

    /// The coordinator's status.
    pub(crate) async fn status(&self) -> pb::ClusterStatus {
        self.operator()
            .status(pb::StatusRequest::default())
            .await
            .unwrap_or_else(|e| panic!("status: {e:?}"))
            .into_inner()
    }

    /// Asks for a configuration of `members` with threshold `k` after `previous` (0 = none).
    pub(crate) async fn reconfigure(
        &self,
        members: &[NodeId],
        k: u32,
        previous: u64,
    ) -> Result<pb::Attempt, tonic::Status> {
        let req = pb::ReconfigureRequest {
            members: members.iter().map(ToString::to_string).collect(),
            threshold: k,
            previous_epoch: previous,
        };
        self.operator().reconfigure(req).await.map(tonic::Response::into_inner)
    }

    /// Waits until `pred` holds for the status; fails with `what` and the last status.
    pub(crate) async fn wait_status(
        &self,
        what: &str,
        pred: impl Fn(&pb::ClusterStatus) -> bool,
    ) -> pb::ClusterStatus {
        let start = Instant::now();
        let mut last = None;
        while start.elapsed() < DEADLINE {
            match self.operator().status(pb::StatusRequest::default()).await {
                Ok(s) => {
                    let s = s.into_inner();
                    if pred(&s) {
                        return s;
                    }
                    last = Some(format!("{s:#?}"));
                }
                Err(e) => last = Some(format!("status failed: {e:?}")),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "timed out after {DEADLINE:?} waiting until {what}; last status: {}",
            last.unwrap_or_default()
        );
    }

    /// Waits until every node in `ids` has enrolled with the coordinator.
    pub(crate) async fn wait_enrolled(&self, ids: &[NodeId]) {
        wait_until(&format!("nodes {ids:?} enrolled"), || async {
            let nodes = self.operator().nodes(pb::NodesRequest {}).await.ok()?.into_inner();
            let enrolled: Vec<String> = nodes.nodes.iter().map(|n| n.node_id.clone()).collect();
            ids.iter().all(|n| enrolled.contains(&n.to_string())).then_some(())
        })
        .await;
    }

    /// Waits until epoch `epoch` is committed and every one of `members` reports it committed.
    pub(crate) async fn wait_committed(&self, epoch: u64, members: &[NodeId]) -> pb::ClusterStatus {
        self.wait_status(&format!("epoch {epoch} is committed on {members:?}"), |s| {
            s.latest_committed_epoch == epoch
                && members.iter().all(|n| {
                    member(s, n)
                        .is_some_and(|m| m.state == "committed" && m.committed_epoch == epoch)
                })
        })
        .await
    }

    /// Agent `n`'s key for `PURPOSE`/`CONTEXT` at `epoch` (0 = latest), once it can derive it.
    pub(crate) async fn wait_key(&self, n: &NodeId, epoch: u64) -> Vec<u8> {
        let keys = self.keys(n).await;
        wait_until(&format!("agent {n} derives a key for epoch {epoch}"), || {
            let mut keys = keys.clone();
            async move {
                let r = derive(&mut keys, epoch).await.ok()?;
                (epoch == 0 || r.epoch == epoch).then_some(r.key)
            }
        })
        .await
    }

    /// Every one of `ids` derives the same key for `epoch`; returns it.
    pub(crate) async fn same_key_everywhere(&self, ids: &[NodeId], epoch: u64) -> Vec<u8> {
        let mut first: Option<(NodeId, Vec<u8>)> = None;
        for n in ids {
            let key = self.wait_key(n, epoch).await;
            assert_eq!(key.len(), 32, "agent {n}'s key for epoch {epoch} has the wrong length");
            assert!(key.iter().any(|b| *b != 0), "agent {n}'s key for epoch {epoch} is all zero");
            match &first {
                None => first = Some((n.clone(), key)),
                Some((m, k)) => assert_eq!(
                    &key, k,
                    "agents {m} and {n} derive different keys for epoch {epoch}: \
                     they did not rebuild the same secret"
                ),
            }
        }
        first.map(|(_, k)| k).expect("at least one node")
    }

    /// Stops everything still running and removes the directory.
    pub(crate) async fn shutdown(mut self) {
        let running: Vec<NodeId> =
            self.agents.values().filter(|a| a.running.is_some()).map(|a| a.id.clone()).collect();
        for n in &running {
            self.stop_agent(n).await;
        }
        if self.coordinator.is_some() {
            self.stop_coordinator().await;
        }
        // Drop removes the directory.
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // After a failure the services may still run: tell them to stop (the runtime ends
        // with the test anyway) and remove the files.
        for a in self.agents.values_mut() {
            if let Some(mut r) = a.running.take() {
                if let Some(tx) = r.shutdown.take() {
                    let _ = tx.send(());
                }
                r.task.abort();
            }
        }
        if let Some(mut r) = self.coordinator.take() {
            if let Some(tx) = r.shutdown.take() {
                let _ = tx.send(());
            }
            r.task.abort();
        }
        if std::env::var_os("TQ_IT_KEEP").is_some() {
            eprintln!("kept {}", self.root.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

fn limits() -> ClientLimits {
    ClientLimits {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        ..ClientLimits::default()
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `n`'s row in the status.
pub(crate) fn member<'a>(s: &'a pb::ClusterStatus, n: &NodeId) -> Option<&'a pb::MemberStatus> {
    s.members.iter().find(|m| m.node_id == n.as_str())
}

/// Derives the test key at `epoch` (0 = latest).
pub(crate) async fn derive(
    keys: &mut LocalKeysClient<Channel>,
    epoch: u64,
) -> Result<pb::DeriveKeyResponse, tonic::Status> {
    let req = pb::DeriveKeyRequest {
        purpose: PURPOSE.into(),
        context: CONTEXT.to_vec(),
        epoch,
        length: 0,
    };
    keys.derive_key(req).await.map(tonic::Response::into_inner)
}

/// Polls `probe` until it returns Some, or fails the test after [`DEADLINE`].
pub(crate) async fn wait_until<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        if start.elapsed() > DEADLINE {
            panic!("timed out after {DEADLINE:?} waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Node ids from names.
pub(crate) fn ids(names: &[&str]) -> Vec<NodeId> {
    names.iter().map(|n| id(n)).collect()
}

// ====================================================================== bad-input suite
//
// Helpers for t30..t32: every bad input must leave its target's durable state byte-for-byte
// unchanged, cause no panic, and leave the target answering status calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tonic::Code;
use tq_protocol::{Configuration, NodeError, Share};

/// Every file under a state directory, by relative path, with its bytes.
pub(crate) type Snapshot = BTreeMap<PathBuf, Vec<u8>>;

/// Reads every file under `dir` (recursively).
pub(crate) fn snapshot(dir: &Path) -> Snapshot {
    fn walk(root: &Path, dir: &Path, out: &mut Snapshot) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let bytes = std::fs::read(&path)
                    .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
                let rel = path.strip_prefix(root).expect("under the root").to_path_buf();
                out.insert(rel, bytes);
            }
        }
    }
    let mut out = Snapshot::new();
    walk(dir, dir, &mut out);
    out
}

/// A snapshot once the directory stopped changing (two reads 150 ms apart agree): address
/// book pushes after an enrollment, for one, land shortly after the cluster is up.
pub(crate) async fn settled_snapshot(dir: &Path) -> Snapshot {
    let start = Instant::now();
    let mut last = snapshot(dir);
    loop {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let now = snapshot(dir);
        if now == last {
            return now;
        }
        assert!(start.elapsed() < DEADLINE, "{} keeps changing", dir.display());
        last = now;
    }
}

/// Fails naming every file that differs (never printing their bytes: they hold shares).
pub(crate) fn assert_same_files(what: &str, before: &Snapshot, after: &Snapshot) {
    let mut diffs = Vec::new();
    for (path, bytes) in before {
        match after.get(path) {
            None => diffs.push(format!("{} removed", path.display())),
            Some(b) if b != bytes => diffs.push(format!(
                "{} changed ({} -> {} bytes)",
                path.display(),
                bytes.len(),
                b.len()
            )),
            Some(_) => {}
        }
    }
    for path in after.keys().filter(|p| !before.contains_key(*p)) {
        diffs.push(format!("{} added", path.display()));
    }
    assert!(diffs.is_empty(), "{what}: durable state changed: {diffs:?}");
}

static PANICS: AtomicUsize = AtomicUsize::new(0);
static PANIC_HOOK: std::sync::Once = std::sync::Once::new();

/// Counts panics anywhere in this test process (service tasks included: tokio catches them
/// at the task boundary, after the hook ran). The default hook still prints them.
pub(crate) fn watch_panics() {
    PANIC_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
}

/// Panics counted since [`watch_panics`].
pub(crate) fn panics() -> usize {
    PANICS.load(Ordering::SeqCst)
}

/// A service whose durable state a bad input must not touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// The coordinator and its ledger.
    Coordinator,
    /// An agent and its store.
    Agent(NodeId),
}

/// What [`Cluster::untouched`] recorded before the bad input.
#[must_use = "check it with Cluster::assert_untouched"]
pub(crate) struct Untouched {
    taken: Vec<(Target, PathBuf, Snapshot)>,
}

impl Cluster {
    /// The state directory of a target.
    pub(crate) fn state_dir(&self, t: &Target) -> PathBuf {
        match t {
            Target::Coordinator => self.coordinator_state.clone(),
            Target::Agent(n) => self.agent(n).state_dir.clone(),
        }
    }

    /// Waits until the targets' state directories are quiet and snapshots them.
    pub(crate) async fn untouched(&self, targets: &[Target]) -> Untouched {
        watch_panics();
        let mut taken = Vec::new();
        for t in targets {
            let dir = self.state_dir(t);
            taken.push((t.clone(), dir.clone(), settled_snapshot(&dir).await));
        }
        Untouched { taken }
    }

    /// After a bad input: every target's durable state is byte-for-byte what it was (read
    /// once it is quiet again, so a late write is caught too), every target still answers a
    /// status call, every service still runs, and nothing panicked.
    pub(crate) async fn assert_untouched(&self, u: Untouched) {
        for (t, dir, before) in &u.taken {
            let after = settled_snapshot(dir).await;
            assert_same_files(&format!("{t:?}"), before, &after);
        }
        for (t, _, _) in &u.taken {
            self.assert_answers(t).await;
        }
        self.assert_running();
        assert_eq!(panics(), 0, "something panicked (see the output above)");
    }

    /// The target answers a status call from the operator.
    pub(crate) async fn assert_answers(&self, t: &Target) {
        match t {
            Target::Coordinator => {
                let s = self.status().await;
                assert_eq!(s.cluster_id, self.id.to_string(), "{s:#?}");
            }
            Target::Agent(n) => {
                let st = self.node_status(n).await;
                assert_eq!(st.node_id, n.as_str(), "{st:#?}");
            }
        }
    }

    /// Agent `n`'s status, asked by the operator.
    pub(crate) async fn node_status(&self, n: &NodeId) -> pb::NodeStatus {
        let operator = self.tls(&self.certs.operator);
        self.node_client_as(&operator, n)
            .status(pb::NodeStatusRequest {})
            .await
            .unwrap_or_else(|e| panic!("agent {n} does not answer its status: {e:?}"))
            .into_inner()
    }

    /// Every service the harness started is still running (none stopped on an error).
    pub(crate) fn assert_running(&self) {
        for a in self.agents.values() {
            if let Some(r) = &a.running {
                assert!(!r.task.is_finished(), "agent {} stopped", a.id);
            }
        }
        if let Some(r) = &self.coordinator {
            assert!(!r.task.is_finished(), "the coordinator stopped");
        }
    }

    /// Agent `n`'s state directory.
    pub(crate) fn agent_state(&self, n: &NodeId) -> PathBuf {
        self.agent(n).state_dir.clone()
    }

    /// A channel to agent `n` authenticated with `tls` (for raw gRPC bytes).
    pub(crate) fn node_channel_as(&self, tls: &TlsMaterial, n: &NodeId) -> Channel {
        channel(tls, Peer::Node(n.clone()), &self.agent_addr(n).to_string(), &limits())
            .expect("a channel")
    }

    /// A channel to the coordinator authenticated with `tls` (for raw gRPC bytes).
    pub(crate) fn coordinator_channel_as(&self, tls: &TlsMaterial) -> Channel {
        channel(tls, Peer::Coordinator, &self.coordinator_addr().to_string(), &limits())
            .expect("a channel")
    }

    /// The coordinator's TLS material (its certificate is what may send Prepare and Commit).
    pub(crate) fn coordinator_tls(&self) -> TlsMaterial {
        self.tls(&self.certs.coordinator)
    }

    /// The operator's TLS material.
    pub(crate) fn operator_tls(&self) -> TlsMaterial {
        self.tls(&self.certs.operator)
    }

    /// A client of agent `n` that presents the coordinator's certificate.
    pub(crate) fn as_coordinator(
        &self,
        n: &NodeId,
    ) -> pb::node_agent_client::NodeAgentClient<Channel> {
        self.node_client_as(&self.coordinator_tls(), n)
    }

    /// Starts agent `n` with `config` and expects it to refuse; returns its error. Nothing
    /// is left running.
    pub(crate) async fn agent_refuses_to_start(
        &mut self,
        n: &NodeId,
        config: AgentConfig,
    ) -> String {
        match self.start_agent_with(n, config).await {
            Err(e) => e,
            Ok(()) => panic!("agent {n} started but should have refused"),
        }
    }
}

/// Asserts a node's typed refusal: the gRPC code and the `Refusal` in the details.
pub(crate) fn assert_refusal(e: &tonic::Status, code: Code, want: NodeError) {
    assert_eq!(e.code(), code, "{e:?}");
    assert_eq!(tq_wire::refusal::status_to_refusal(e), Some(want), "{e:?}");
}

/// Asserts an input refused before it reached the protocol: `InvalidArgument`, no refusal
/// details, and a message that says why.
pub(crate) fn assert_invalid_argument(e: &tonic::Status, says: &str) {
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert_eq!(tq_wire::refusal::status_to_refusal(e), None, "{e:?}");
    assert!(e.message().contains(says), "{e:?} should say {says:?}");
}

// ---------------------------------------------------------------------- dealing

/// One epoch dealt as the coordinator would (DESIGN §6.1/§6.2): a valid configuration and
/// every member's share.
pub(crate) struct Dealt {
    pub(crate) config: Arc<Configuration>,
    pub(crate) shares: BTreeMap<NodeId, Share>,
}

/// Deals `epoch` (after `previous`) to `members` with threshold `k`, from `seed`. The prior
/// secrets (present when `previous` is) seal an empty history: a node checks them only
/// when it unlocks, never when it prepares.
pub(crate) fn deal(
    cluster: ClusterId,
    epoch: u64,
    previous: Option<u64>,
    members: &[NodeId],
    k: usize,
    seed: u8,
) -> Dealt {
    use rand_core::SeedableRng;
    use tq_protocol::crypto::digest::share_digest;
    use tq_protocol::crypto::prior::{SecretHistory, seal};
    use tq_protocol::crypto::sharing::{deal, random_secret};
    use tq_protocol::{ConfigurationParts, Epoch, Threshold};

    let mut rng = rand_chacha::ChaCha20Rng::from_seed([seed; 32]);
    let mut ids = members.to_vec();
    ids.sort();
    let e = Epoch::new(epoch).expect("a valid epoch");
    let threshold = Threshold::new(k, ids.len()).expect("a valid threshold");
    let secret = random_secret(&mut rng);
    let dealing = deal(&secret, threshold, ids.len(), &mut rng);
    let parts = ConfigurationParts {
        cluster_id: cluster,
        epoch: e,
        previous_epoch: previous.map(|p| Epoch::new(p).expect("a valid epoch")),
        threshold: k,
        members: ids
            .iter()
            .zip(&dealing.shares)
            .map(|(id, s)| (id.clone(), u64::from(s.index().get()), share_digest(&cluster, e, s)))
            .collect(),
        commitments: dealing.commitments.as_bytes().to_vec(),
        prior_secrets: previous
            .map(|_| seal(&secret, &cluster, e, &SecretHistory::default(), [seed; 32])),
    };
    let config = Arc::new(Configuration::try_from(parts).expect("a valid configuration"));
    Dealt { config, shares: ids.into_iter().zip(dealing.shares).collect() }
}

impl Dealt {
    /// The wire configuration.
    pub(crate) fn config_pb(&self) -> pb::Configuration {
        tq_wire::convert::config_to_pb(&self.config)
    }

    /// `n`'s share on the wire.
    pub(crate) fn share_pb(&self, n: &NodeId) -> pb::Share {
        tq_wire::convert::share_to_pb(self.shares.get(n).expect("a member's share"))
    }

    /// The Prepare the coordinator would send `n`.
    pub(crate) fn prepare(&self, n: &NodeId) -> pb::PrepareRequest {
        pb::PrepareRequest { config: Some(self.config_pb()), share: Some(self.share_pb(n)) }
    }

    /// The configuration's digest.
    pub(crate) fn digest(&self) -> Vec<u8> {
        self.config.digest().0.to_vec()
    }

    /// The Commit the coordinator would send.
    pub(crate) fn commit(&self) -> pb::CommitRequest {
        pb::CommitRequest { epoch: self.config.epoch().get(), digest: self.digest() }
    }
}

// ---------------------------------------------------------------------- raw gRPC

/// A codec that sends and receives message bodies as they are: for bytes no prost type
/// would produce.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use prost::bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        use prost::bytes::Buf;
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

/// Sends `body` as the message of the unary call `path` (`/tq.v1.NodeAgent/Prepare`...).
pub(crate) async fn raw_unary(
    ch: Channel,
    path: &'static str,
    body: Vec<u8>,
) -> Result<Vec<u8>, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(ch);
    grpc.ready().await.map_err(|e| tonic::Status::unavailable(format!("not ready: {e}")))?;
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(path);
    grpc.unary(tonic::Request::new(body), path, RawCodec).await.map(tonic::Response::into_inner)
}

// ---------------------------------------------------------------------- raw TLS

/// How a TLS server treated a client.
#[derive(Debug)]
pub(crate) enum Handshake {
    /// The handshake completed and the server spoke HTTP/2.
    Accepted,
    /// The handshake was refused: the error our side saw (an alert from the server, or our
    /// own refusal of what the server offered).
    Refused(rustls::Error),
    /// The connection ended without either.
    Closed(String),
}

/// A rustls client configuration: `versions`, the client certificate `client` (PEM cert,
/// PEM key) or none, and a server verifier that accepts only `server` of this cluster.
pub(crate) fn client_tls(
    c: &Cluster,
    versions: &[&'static rustls::SupportedProtocolVersion],
    client: Option<(&str, &str)>,
    server: Peer,
) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(c.operator_tls().verifier_for(server));
    let mut cfg = match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .expect("certificate PEM");
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key PEM");
            builder.with_client_auth_cert(chain, key).expect("a client certificate")
        }
    };
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(cfg)
}

fn rustls_error(e: &std::io::Error) -> Option<rustls::Error> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()).cloned()
}

/// Connects to `addr` with `config` and reads the server's first bytes: a server that
/// accepted the client sends its HTTP/2 SETTINGS at once; one that refused it sends an alert
/// (with TLS 1.3 that comes after the client finished its side of the handshake).
pub(crate) async fn tls_handshake(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> Handshake {
    use tokio::io::AsyncReadExt;
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("TCP connects");
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("a name");
        let mut tls = match tokio_rustls::TlsConnector::from(config).connect(name, tcp).await {
            Ok(s) => s,
            Err(e) => {
                return match rustls_error(&e) {
                    Some(r) => Handshake::Refused(r),
                    None => Handshake::Closed(format!("connect: {e}")),
                };
            }
        };
        let mut buf = [0u8; 64];
        match tls.read(&mut buf).await {
            Ok(0) => Handshake::Closed("end of stream".into()),
            // An HTTP/2 frame header: 3 bytes of length, then the type (4 = SETTINGS).
            Ok(n) if n >= 4 && buf[3] == 4 => Handshake::Accepted,
            Ok(n) => Handshake::Closed(format!("unexpected bytes: {:?}", &buf[..n])),
            Err(e) => match rustls_error(&e) {
                Some(r) => Handshake::Refused(r),
                None => Handshake::Closed(format!("read: {e}")),
            },
        }
    };
    tokio::time::timeout(Duration::from_secs(4), attempt)
        .await
        .unwrap_or_else(|_| Handshake::Closed("timed out".into()))
}

/// Asserts the server refused the handshake with `alert`.
pub(crate) fn assert_alert(what: &str, h: &Handshake, alert: rustls::AlertDescription) {
    match h {
        Handshake::Refused(rustls::Error::AlertReceived(a)) if *a == alert => {}
        other => panic!("{what}: expected the server to refuse with {alert:?}, got {other:?}"),
    }
}

/// This cluster's CA as an rcgen issuer, for certificates `CertAuthority::issue` cannot make.
pub(crate) fn rcgen_issuer(c: &Cluster) -> rcgen::Issuer<'static, rcgen::KeyPair> {
    let pki = c.root.join("pki");
    let cert = std::fs::read_to_string(pki.join("ca.pem")).expect("CA certificate");
    let key = std::fs::read_to_string(pki.join("ca-key.pem")).expect("CA key");
    let key = rcgen::KeyPair::from_pem(&key).expect("CA key parses");
    rcgen::Issuer::from_ca_cert_pem(&cert, key).expect("CA issuer")
}

/// Parameters of a well-formed leaf with the given URI SANs (client and server usage,
/// valid now); returns them with a fresh key.
pub(crate) fn leaf_params(uris: &[String]) -> (rcgen::CertificateParams, rcgen::KeyPair) {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    for u in uris {
        params
            .subject_alt_names
            .push(rcgen::SanType::URI(u.clone().try_into().expect("a URI SAN")));
    }
    params.subject_alt_names.push(rcgen::SanType::DnsName("localhost".try_into().expect("dns")));
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
    ];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(1);
    (params, rcgen::KeyPair::generate().expect("a key"))
}

// ---------------------------------------------------------------------- damaged state directories

/// Replaces `dir`'s contents with `snap` exactly (files sled created since are removed).
pub(crate) fn restore(dir: &Path, snap: &Snapshot) {
    std::fs::remove_dir_all(dir).unwrap_or_else(|e| panic!("remove {}: {e}", dir.display()));
    for (rel, bytes) in snap {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("a directory");
        }
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
}

/// Truncates sled's data file (`db`) in `dir` to `len` bytes.
pub(crate) fn truncate_data_file(dir: &Path, len: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(dir.join("db")).expect("the data file");
    f.set_len(len).expect("truncate");
    f.sync_all().expect("sync");
}

/// Flips one bit of sled's data file (`db`) in `dir` at byte `at`.
pub(crate) fn flip_bit_of_data_file(dir: &Path, at: usize) {
    let path = dir.join("db");
    let mut b = std::fs::read(&path).expect("the data file");
    b[at] ^= 0x10;
    std::fs::write(&path, b).expect("write the data file");
}

/// The length of sled's data file in `dir`.
pub(crate) fn data_file_len(dir: &Path) -> usize {
    std::fs::metadata(dir.join("db")).expect("the data file").len() as usize
}
