//! An in-process cluster for the integration tests: a real coordinator and real node agents,
//! each started with its library `run` on the test's runtime and stopped through a shutdown
//! future the harness controls; real mTLS certificates from `tq_wire::pki`; real sled stores;
//! every listener on 127.0.0.1 (port 0 the first time; a restarted service takes its old
//! port back, as a real machine would, so address books stay valid).
//!
//! Every log line of every service is captured and, when the cluster shuts down or is
//! dropped, searched for every secret and share the process made (`leaks`): a hit fails the
//! test. Set `TQ_IT_LOG=debug` (or another level) to see the services' logs, and
//! `TQ_IT_KEEP=1` to keep the temporary directory.

// Each test binary uses part of the harness.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use slog::{Logger, o};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Code;
use tonic::transport::Channel;
use tq_coordinator::config::ProtocolConfig;
use tq_coordinator::{CoordinatorConfig, CoordinatorError};
use tq_node_agent::{AgentConfig, AgentError};
use tq_protocol::{ClusterId, Configuration, NodeError, NodeId, Peer, Share};
use tq_wire::client::{ClientLimits, channel};
use tq_wire::pb::{
    self, coordinator_client::CoordinatorClient, local_keys_client::LocalKeysClient,
};
use tq_wire::pki::{CertAuthority, ClusterCerts, init_cluster_certs};
use tq_wire::process::LogConfig;
use tq_wire::server::ServerLimits;
use tq_wire::tls::{TlsFiles, TlsMaterial};

use self::logs::{Captured, capturing_logger, tracing_capture};

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
    /// Every line `log` was given.
    logs: Captured,
    /// The test's name, for the leak report.
    test: String,
    /// Whether lines written through [`Cluster::test_log`] may leak (tests of the scan).
    test_log_may_leak: bool,
    /// Whether the final leak scan ran.
    scanned: bool,
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

    /// [`Cluster::up`] with the manual commit policy: nothing commits until the operator says so.
    pub(crate) async fn up_manual(name: &str, n: usize) -> (Cluster, Vec<NodeId>) {
        let mut c = Cluster::new(name, n);
        c.protocol.commit_policy = "manual".into();
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
        tq_protocol::recorded::danger_start_recording();
        tracing_capture();
        let id = ClusterId::from_bytes(random_bytes());
        let root = std::env::temp_dir().join(format!(
            "tq-it-{name}-{}-{}",
            std::process::id(),
            hex(&random_bytes::<4>())
        ));
        std::fs::create_dir_all(&root).expect("temporary directory");
        let ids: Vec<NodeId> = (1..=nodes).map(node).collect();
        let logs = Captured::default();
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
            log: capturing_logger(&logs),
            logs,
            test: std::thread::current().name().unwrap_or(name).to_string(),
            test_log_may_leak: false,
            scanned: false,
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
            failpoints: Default::default(),
        }
    }

    /// Starts the coordinator (on its previous address if it ran before).
    pub(crate) async fn start_coordinator(&mut self) {
        self.try_start_coordinator().await.unwrap_or_else(|e| panic!("{e}"));
    }

    /// Starts the coordinator with its usual configuration; Err says why it did not start.
    pub(crate) async fn try_start_coordinator(&mut self) -> Result<(), String> {
        let config = self.coordinator_config();
        self.start_coordinator_with(config).await
    }

    /// Starts the coordinator with `config`; Err says why it did not start.
    pub(crate) async fn start_coordinator_with(
        &mut self,
        config: CoordinatorConfig,
    ) -> Result<(), String> {
        assert!(self.coordinator.is_none(), "the coordinator is already running");
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
            rekey_delay: Duration::from_millis(20),
            tls: a.tls.clone(),
            peers: Vec::new(),
            log: LogConfig::default(),
            limits: ServerLimits::default(),
            failpoints: Default::default(),
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
        let scan = self.final_scan();
        assert!(scan.leaks.is_empty(), "{}", leak_report(&self.test, &scan));
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
        if !self.scanned {
            let scan = self.final_scan();
            if !scan.leaks.is_empty() {
                // A second panic while unwinding would abort the test process.
                if std::thread::panicking() {
                    eprintln!("{}", leak_report(&self.test, &scan));
                } else {
                    panic!("{}", leak_report(&self.test, &scan));
                }
            }
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

mod damage;
mod deal;
mod failed;
mod leaks;
mod logs;
mod lookup;
mod raw;
mod untouched;

#[allow(unused_imports)] // each test binary uses part of the harness
pub(crate) use damage::*;
#[allow(unused_imports)] // each test binary uses part of the harness
pub(crate) use deal::*;
#[allow(unused_imports)] // each test binary uses part of the harness
pub(crate) use failed::*;
#[allow(unused_imports)] // each test binary uses part of the harness
pub(crate) use leaks::*;
#[allow(unused_imports)] // each test binary uses part of the harness
pub(crate) use lookup::*;
#[allow(unused_imports)] // each test binary uses part of the harness
pub(crate) use raw::*;
#[allow(unused_imports)] // each test binary uses part of the harness
pub(crate) use untouched::*;
