//! # tq-node-agent
//!
//! The agent every machine runs (DESIGN §2): it holds this node's shares in sled, answers the
//! coordinator and its peers over mTLS, unlocks the cluster secret from its peers with or
//! without a coordinator, and serves derived keys to its own host on a Unix socket.

pub mod actor;
pub mod config;
mod enroll;
pub mod import;
mod keys;
pub mod legacy_file;
mod peers;
mod service;
pub mod store;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use slog::{Logger, info, o};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tq_protocol::node::{Node, NodeOptions, StateError};
use tq_protocol::{NodeId, Peer};
use tq_wire::node_service::NodeAgentService;
use tq_wire::pb::node_agent_server::NodeAgentServer;
use tq_wire::server::{builder, tls_incoming};
use tq_wire::tls::{TlsError, TlsMaterial};

pub use actor::AgentHandle;
pub use config::AgentConfig;

use crate::actor::Actor;
use crate::store::Store;
use tq_wire::durable::StoreError;

/// Why the agent did not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] tq_wire::process::ConfigError),
    /// The TLS files are unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The store will not open, or a write failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored state fails its consistency check: refusing to start (DESIGN §7).
    #[error("stored state is inconsistent, refusing to start: {0}")]
    State(#[from] StateError),
    /// A socket could not be bound.
    #[error("cannot listen on {what}: {why}")]
    Bind {
        /// Which socket.
        what: String,
        /// Why.
        why: String,
    },
    /// A server failed.
    #[error("server failed: {0}")]
    Serve(String),
}

/// Where a started agent can be reached.
#[derive(Debug, Clone)]
pub struct Ready {
    /// The peer service's bound address.
    pub listen: SocketAddr,
    /// The handle to the agent (for in-process tests and benchmarks).
    pub handle: AgentHandle,
}

/// Runs the agent until `shutdown` resolves or it must stop. `ready` is called once both
/// servers listen. When it returns the agent has stopped: its listeners are closed, its
/// connections closed (or cut after a short grace) and its store closed.
pub async fn run(
    config: AgentConfig,
    log: Logger,
    ready: impl FnOnce(Ready) + Send,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), AgentError> {
    let started = Instant::now();
    let id = config.validate()?;
    let log = log.new(o!("node" => id.node.to_string()));
    let tls = TlsMaterial::load(&config.tls, id.cluster, Some(&Peer::Node(id.node.clone())))?;
    let store = Store::open(&config.state_dir, &id.cluster, &id.node)?
        .with_failpoints(config.failpoints.clone());
    let state = store.load()?;
    let book = store.address_book()?;
    let opts =
        NodeOptions { retry_interval: config.retry_interval, rekey_delay: config.rekey_delay };
    let node = Node::restore(id.node.clone(), id.cluster, state, opts)?;
    let summary = node.status();

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| AgentError::Bind { what: config.listen.to_string(), why: e.to_string() })?;
    let listen = listener
        .local_addr()
        .map_err(|e| AgentError::Bind { what: config.listen.to_string(), why: e.to_string() })?;
    let advertise = config.advertise.clone().unwrap_or_else(|| listen.to_string());
    let key_incoming = keys::bind(&config.key_socket).map_err(|e| AgentError::Bind {
        what: config.key_socket.display().to_string(),
        why: e.to_string(),
    })?;

    let configured: BTreeMap<NodeId, String> = config
        .peers
        .iter()
        .filter_map(|p| NodeId::new(p.node_id.as_str()).ok().map(|id| (id, p.address.clone())))
        .collect();
    let peers = peers::Peers::new(tls.clone(), configured, book, log.new(o!("part" => "peers")));
    let (actor, handle) =
        Actor::new(id.cluster, node, store, peers, started, log.clone(), config.failpoints.clone());
    let (stop_actor, actor_stop) = oneshot::channel();
    let mut actor_task = tokio::spawn(actor.run(actor_stop));
    // Both servers stop accepting and close their connections when this fires.
    let (stop_servers, servers_stop) = watch::channel(());

    let service = NodeAgentService::new(Arc::new(service::Handler(handle.clone())));
    let max = config.limits.max_message_bytes;
    let peer_server = builder(&config.limits)
        .add_service(
            NodeAgentServer::new(service)
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .serve_with_incoming_shutdown(
            tls_incoming(listener, &tls, &config.limits, log.new(o!("part" => "tls")))?,
            signalled(servers_stop.clone()),
        );
    let key_server = tonic::transport::Server::builder()
        .add_service(keys::server(handle.clone()))
        .serve_with_incoming_shutdown(key_incoming, signalled(servers_stop));
    let mut peer_server = tokio::spawn(peer_server);
    let mut key_server = tokio::spawn(key_server);

    info!(log, "agent started";
        "cluster" => %id.cluster, "listen" => %listen, "advertise" => &advertise,
        "key_socket" => %config.key_socket.display(), "state_dir" => %config.state_dir.display(),
        "committed_epoch" => ?summary.committed.map(|c| c.0.get()), "prepared_epoch" => ?summary.prepared.map(|c| c.0.get()),
        "expunged" => ?summary.expunged.map(|e| e.get()), "version" => tq_wire::VERSION);
    let enroll_task = config.coordinator.clone().map(|coordinator| {
        tokio::spawn(enroll::enroll(
            handle.clone(),
            tls.clone(),
            coordinator,
            advertise,
            log.clone(),
        ))
    });
    if config.unlock_on_start {
        let _ = handle.unlock().await;
    }
    ready(Ready { listen, handle: handle.clone() });
    drop(handle);

    let (mut res, actor_ended) = tokio::select! {
        r = &mut actor_task => (actor_result(r), true),
        r = &mut peer_server => {
            (Err(AgentError::Serve(format!("peer service stopped: {r:?}"))), false)
        }
        r = &mut key_server => {
            (Err(AgentError::Serve(format!("key service stopped: {r:?}"))), false)
        }
        () = shutdown => (Ok(()), false),
    };
    // Stop everything before returning: no protocol work after `run` returns, the store is
    // closed (the directory can be opened again) and the ports are free.
    if let Some(t) = enroll_task {
        t.abort();
    }
    let _ = stop_servers.send(());
    let _ = stop_actor.send(());
    if !actor_ended {
        let ended = actor_result(actor_task.await);
        if res.is_ok() {
            res = ended;
        }
    }
    drain(peer_server).await;
    drain(key_server).await;
    let _ = std::fs::remove_file(&config.key_socket);
    info!(log, "agent stopped"; "result" => ?res.as_ref().err().map(ToString::to_string));
    res
}

fn actor_result(
    r: Result<Result<(), StoreError>, tokio::task::JoinError>,
) -> Result<(), AgentError> {
    match r {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(AgentError::Store(e)),
        Err(e) => Err(AgentError::Serve(format!("agent task: {e}"))),
    }
}

/// Resolves when the server shutdown signal fires (or its sender is gone).
async fn signalled(mut rx: watch::Receiver<()>) {
    let _ = rx.changed().await;
}

/// How long connections get to close after the shutdown signal; then they are cut.
const DRAIN: Duration = Duration::from_secs(2);

/// Waits for a signalled server to close its connections, for at most [`DRAIN`].
async fn drain<T>(mut server: tokio::task::JoinHandle<T>) {
    if !server.is_finished() && tokio::time::timeout(DRAIN, &mut server).await.is_err() {
        server.abort();
    }
}
