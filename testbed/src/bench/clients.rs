//! The benchmark's own clients, made the way the services make theirs (tq-wire's mTLS
//! channels, the local key socket), and the waits built on them. Every RPC they time goes
//! through [`SlowRpcs`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tonic::Streaming;
use tonic::transport::Channel;
use tq_protocol::{ClusterId, NodeId, Peer};
use tq_wire::client::{ClientLimits, channel};
use tq_wire::pb::{
    self, coordinator_client::CoordinatorClient, local_keys_client::LocalKeysClient,
    node_agent_client::NodeAgentClient,
};
use tq_wire::tls::TlsMaterial;

use super::stats::SlowRpcs;

/// A reconfiguration or an unlock that takes longer than this has failed.
pub(super) const SCENARIO_TIMEOUT: Duration = Duration::from_secs(60);

/// The operator's TLS material and where everything listens.
pub(super) struct Clients {
    tls: TlsMaterial,
    coordinator: String,
    /// Every agent and its peer service address, in node order.
    pub(super) agents: Vec<(NodeId, String)>,
    /// Where every timed RPC is recorded.
    pub(super) slow: Arc<SlowRpcs>,
}

/// `tonic::Status` as a message.
pub(super) fn rpc_err(what: &str) -> impl Fn(tonic::Status) -> String + '_ {
    move |s| format!("{what}: {} ({:?})", s.message(), s.code())
}

impl Clients {
    /// Loads the operator's material from the cluster file and asks the coordinator for
    /// every enrolled agent's address.
    pub(super) async fn new(
        cluster_file: &std::path::Path,
        slow: Arc<SlowRpcs>,
    ) -> Result<Clients, String> {
        let (file, cluster): (_, ClusterId) =
            tq_coordinator::cluster_file::ClusterFile::load(cluster_file)?;
        let tls = TlsMaterial::load(&file.tls, cluster, None)
            .map_err(|e| format!("operator TLS: {e}"))?;
        let mut c = Clients { tls, coordinator: file.coordinator, agents: Vec::new(), slow };
        let nodes = c.operator()?.nodes(pb::NodesRequest {}).await.map_err(rpc_err("nodes"))?;
        let mut agents: Vec<(NodeId, String)> = nodes
            .into_inner()
            .nodes
            .into_iter()
            .map(|n| NodeId::new(n.node_id).map(|id| (id, n.address)).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        // node-2 before node-10.
        agents.sort_by_key(|(id, _)| {
            id.as_str().trim_start_matches("node-").parse::<u64>().unwrap_or(u64::MAX)
        });
        c.agents = agents;
        Ok(c)
    }

    fn limits() -> ClientLimits {
        ClientLimits { request_timeout: Duration::from_secs(20), ..ClientLimits::default() }
    }

    /// A new (lazily connecting) channel to the coordinator's control service.
    pub(super) fn operator(&self) -> Result<CoordinatorClient<Channel>, String> {
        let ch = channel(&self.tls, Peer::Coordinator, &self.coordinator, &Self::limits())
            .map_err(rpc_err("coordinator channel"))?;
        Ok(CoordinatorClient::new(ch))
    }

    /// A new channel to the coordinator, connected (its first Status answered).
    pub(super) async fn connected_operator(&self) -> Result<CoordinatorClient<Channel>, String> {
        let mut op = self.operator()?;
        op.status(pb::StatusRequest { if_version: 0 }).await.map_err(rpc_err("status"))?;
        Ok(op)
    }

    /// A new (lazily connecting) channel to every agent's peer service, in node order.
    pub(super) fn nodes(&self) -> Result<Vec<NodeAgentClient<Channel>>, String> {
        (0..self.agents.len()).map(|i| self.node(i)).collect()
    }

    /// A new (lazily connecting) channel to the `i`-th agent's peer service.
    pub(super) fn node(&self, i: usize) -> Result<NodeAgentClient<Channel>, String> {
        let (id, addr) = self.agents.get(i).ok_or_else(|| format!("no agent #{i}"))?;
        channel(&self.tls, Peer::Node(id.clone()), addr, &Self::limits())
            .map(NodeAgentClient::new)
            .map_err(rpc_err("agent channel"))
    }

    /// The latest committed epoch, from the coordinator's status.
    pub(super) async fn latest_committed(
        &self,
        op: &mut CoordinatorClient<Channel>,
    ) -> Result<u64, String> {
        let s = op.status(pb::StatusRequest { if_version: 0 }).await.map_err(rpc_err("status"))?;
        Ok(s.into_inner().latest_committed_epoch)
    }

    /// The empty RPC of the floor: NodeAgent Status to every agent in `to` at once, each in
    /// its own task (as the coordinator fans out). Returns how long the slowest took.
    pub(super) async fn fanout(&self, to: &[NodeAgentClient<Channel>]) -> Result<Duration, String> {
        let start = Instant::now();
        let mut set = JoinSet::new();
        for c in to {
            let mut c = c.clone();
            let slow = self.slow.clone();
            set.spawn(async move {
                let t = Instant::now();
                let r = c.status(pb::NodeStatusRequest {}).await;
                slow.record("NodeAgent/Status", t.elapsed());
                r.map(drop).map_err(rpc_err("node status"))
            });
        }
        while let Some(r) = set.join_next().await {
            r.map_err(|e| format!("fan-out task: {e}"))??;
        }
        Ok(start.elapsed())
    }

    /// Every agent's status at once (None for those that did not answer).
    pub(super) async fn node_statuses(
        &self,
        to: &[NodeAgentClient<Channel>],
    ) -> Vec<Option<pb::NodeStatus>> {
        let mut set = JoinSet::new();
        for (i, c) in to.iter().enumerate() {
            let mut c = c.clone();
            set.spawn(async move {
                let r = tokio::time::timeout(
                    Duration::from_secs(2),
                    c.status(pb::NodeStatusRequest {}),
                )
                .await;
                (i, r.ok().and_then(Result::ok).map(tonic::Response::into_inner))
            });
        }
        let mut out = vec![None; to.len()];
        while let Some(Ok((i, s))) = set.join_next().await {
            out[i] = s;
        }
        out
    }

    /// Waits until every agent in `to` holds `epoch`'s secret (each re-unlocks after every
    /// commit it sees): the rotation's aftermath has settled. Returns how long it took.
    pub(super) async fn wait_unlocked(
        &self,
        to: &[NodeAgentClient<Channel>],
        epoch: u64,
        every: Duration,
    ) -> Result<Duration, String> {
        let start = Instant::now();
        loop {
            let s = self.node_statuses(to).await;
            let behind = s.iter().filter(|s| s.as_ref().is_none_or(|s| s.unlocked < epoch)).count();
            if behind == 0 {
                return Ok(start.elapsed());
            }
            if start.elapsed() > SCENARIO_TIMEOUT {
                return Err(format!(
                    "{behind} of {} agents had not unlocked epoch {epoch} after {SCENARIO_TIMEOUT:?}",
                    to.len()
                ));
            }
            tokio::time::sleep(every).await;
        }
    }

    /// A client of an agent's local key service (connected).
    pub(super) async fn keys(
        &self,
        socket: &std::path::Path,
    ) -> Result<LocalKeysClient<Channel>, String> {
        tq_wire::client::local_keys(socket)
            .await
            .map_err(|e| format!("key socket {}: {e}", socket.display()))
    }
}

/// When a reconfiguration was decided (K + Z acks, durable) and when every member had
/// committed it, as seen on a watch stream.
pub(super) struct Committed {
    /// The commit decision.
    pub(super) decided: Instant,
    /// Every member committed.
    pub(super) all: Instant,
}

/// Reads `watch` until epoch `epoch` is committed on every member (the attempt's phase is
/// `committed`), as `tqctl reconfigure --wait` does.
pub(super) async fn wait_committed(
    watch: &mut Streaming<pb::ClusterStatus>,
    epoch: u64,
) -> Result<Committed, String> {
    let deadline = tokio::time::sleep(SCENARIO_TIMEOUT);
    tokio::pin!(deadline);
    let mut decided = None;
    loop {
        let next = tokio::select! {
            () = &mut deadline => {
                return Err(format!("epoch {epoch} not committed everywhere after {SCENARIO_TIMEOUT:?}"))
            }
            n = watch.message() => n.map_err(rpc_err("watch"))?,
        };
        let Some(s) = next else { return Err("the coordinator closed the watch".into()) };
        let Some(a) = s.last_attempt.filter(|a| a.epoch == epoch) else { continue };
        match a.phase.as_str() {
            "committing" => {
                decided.get_or_insert_with(Instant::now);
            }
            "committed" => {
                let now = Instant::now();
                return Ok(Committed { decided: decided.unwrap_or(now), all: now });
            }
            "aborted" => return Err(format!("epoch {epoch} aborted: {}", a.abort_reason)),
            _ => {}
        }
    }
}
