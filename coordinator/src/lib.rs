//! # tq-coordinator
//!
//! The coordinator (DESIGN §2): keeps the ledger (configurations, commit decisions, aborts,
//! known nodes; never a secret at rest), deals new configurations, counts acks, decides and
//! fans out commits, tracks staleness, and serves the control plane. Also `tqctl`.

pub mod actor;
pub mod cluster_file;
pub mod config;
mod service;
pub mod store;

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use slog::{Logger, info};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tq_protocol::coordinator::{Coordinator, LedgerError};
use tq_protocol::{Peer, Time};
use tq_wire::server::{builder, tls_incoming};
use tq_wire::status_bytes::CoordinatorServer;
use tq_wire::tls::{TlsError, TlsMaterial};

pub use actor::CoordinatorHandle;
pub use config::CoordinatorConfig;

use crate::actor::Actor;
use crate::store::LedgerStore;
use tq_wire::durable::StoreError;

/// Why the coordinator did not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum CoordinatorError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] tq_wire::process::ConfigError),
    /// The TLS files are unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The ledger will not open, or a write failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored ledger fails its consistency check: refusing to start (DESIGN §7).
    #[error("stored ledger is inconsistent, refusing to start: {0}")]
    Ledger(#[from] LedgerError),
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {why}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        why: String,
    },
    /// A server failed.
    #[error("server failed: {0}")]
    Serve(String),
}

/// A started coordinator.
#[derive(Debug, Clone)]
pub struct Ready {
    /// The control service's bound address.
    pub listen: SocketAddr,
    /// The handle (for in-process tests and benchmarks).
    pub handle: CoordinatorHandle,
}

/// Runs the coordinator until `shutdown` resolves or it must stop. When it returns the
/// coordinator has stopped: its listener is closed, its connections closed (or cut after a
/// short grace) and its ledger closed.
pub async fn run(
    config: CoordinatorConfig,
    log: Logger,
    ready: impl FnOnce(Ready) + Send,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), CoordinatorError> {
    let started = Instant::now();
    let (cluster, options) = config.validate()?;
    let tls = TlsMaterial::load(&config.tls, cluster, Some(&Peer::Coordinator))?;
    let store =
        LedgerStore::open(&config.state_dir, &cluster)?.with_failpoints(config.failpoints.clone());
    let ledger = store.ledger().clone();
    let (core, first) = Coordinator::restore(Time::ZERO, ledger, options)?;
    let latest = core.ledger().latest_committed();
    let known = core.ledger().known.len();

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| CoordinatorError::Bind { addr: config.listen, why: e.to_string() })?;
    let listen = listener
        .local_addr()
        .map_err(|e| CoordinatorError::Bind { addr: config.listen, why: e.to_string() })?;
    let (mut actor, handle) =
        Actor::new(core, store, tls.clone(), started, log.clone(), config.failpoints.clone());
    actor.start(first)?;
    let (stop_actor, actor_stop) = oneshot::channel();
    let mut actor_task = tokio::spawn(actor.run(actor_stop));
    // The server stops accepting and closes its connections when this fires.
    let (stop_server, server_stop) = oneshot::channel::<()>();

    let max = config.limits.max_message_bytes;
    let service = service::ControlService { handle: handle.clone() };
    let server = builder(&config.limits)
        .add_service(
            CoordinatorServer::new(service)
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .serve_with_incoming_shutdown(
            tls_incoming(listener, &tls, &config.limits, log.clone())?,
            async move {
                let _ = server_stop.await;
            },
        );
    let mut server = tokio::spawn(server);
    info!(log, "coordinator started"; "cluster" => %cluster, "listen" => %listen,
        "state_dir" => %config.state_dir.display(), "latest_committed_epoch" => ?latest.map(|e| e.get()),
        "known_nodes" => known, "version" => tq_wire::VERSION);
    ready(Ready { listen, handle: handle.clone() });
    drop(handle);

    let (mut res, actor_ended) = tokio::select! {
        r = &mut actor_task => (actor_result(r), true),
        r = &mut server => {
            (Err(CoordinatorError::Serve(format!("control service stopped: {r:?}"))), false)
        }
        () = shutdown => (Ok(()), false),
    };
    // Stop everything before returning: no protocol work after `run` returns, the ledger is
    // closed (the directory can be opened again) and the port is free.
    let _ = stop_server.send(());
    let _ = stop_actor.send(());
    if !actor_ended {
        let ended = actor_result(actor_task.await);
        if res.is_ok() {
            res = ended;
        }
    }
    // Connections get a short grace to close (watch streams end with the actor), then are cut.
    if !server.is_finished()
        && tokio::time::timeout(Duration::from_secs(2), &mut server).await.is_err()
    {
        server.abort();
    }
    info!(log, "coordinator stopped"; "result" => ?res.as_ref().err().map(ToString::to_string));
    res
}

fn actor_result(
    r: Result<Result<(), StoreError>, tokio::task::JoinError>,
) -> Result<(), CoordinatorError> {
    match r {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(CoordinatorError::Store(e)),
        Err(e) => Err(CoordinatorError::Serve(format!("coordinator task: {e}"))),
    }
}
