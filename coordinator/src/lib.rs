//! # tq-coordinator
//!
//! The coordinator (DESIGN §2): keeps the ledger (configurations, commit decisions, aborts,
//! known nodes; never a secret at rest), deals new configurations, counts acks, decides and
//! fans out commits, tracks staleness, and serves the control plane. Also `tqctl`.

pub mod actor;
pub mod config;
mod service;
pub mod store;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Instant;

use slog::{Logger, info};
use tokio::net::TcpListener;
use tq_protocol::coordinator::{Coordinator, LedgerError};
use tq_protocol::{Peer, Time};
use tq_wire::pb::coordinator_server::CoordinatorServer;
use tq_wire::server::{builder, tls_incoming};
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

/// Runs the coordinator until `shutdown` resolves or it must stop.
pub async fn run(
    config: CoordinatorConfig,
    log: Logger,
    ready: impl FnOnce(Ready) + Send,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), CoordinatorError> {
    let started = Instant::now();
    let (cluster, options) = config.validate()?;
    let tls = TlsMaterial::load(&config.tls, cluster, Some(&Peer::Coordinator))?;
    let store = LedgerStore::open(&config.state_dir, &cluster)?;
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
    let (actor, handle) = Actor::new(core, store, tls.clone(), started, log.clone());
    let mut actor_task = tokio::spawn(actor.run(first));

    let max = config.limits.max_message_bytes;
    let service = service::ControlService { handle: handle.clone(), cluster };
    let server = builder(&config.limits)
        .add_service(
            CoordinatorServer::new(service)
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .serve_with_incoming(tls_incoming(
            listener,
            tls.server_config()?,
            &config.limits,
            log.clone(),
        ));
    let mut server = tokio::spawn(server);
    info!(log, "coordinator started"; "cluster" => %cluster, "listen" => %listen,
        "state_dir" => %config.state_dir.display(), "latest_committed_epoch" => ?latest.map(|e| e.get()),
        "known_nodes" => known, "version" => tq_wire::VERSION);
    ready(Ready { listen, handle: handle.clone() });
    drop(handle);

    let res = tokio::select! {
        r = &mut actor_task => match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(CoordinatorError::Store(e)),
            Err(e) => Err(CoordinatorError::Serve(format!("coordinator task: {e}"))),
        },
        r = &mut server => Err(CoordinatorError::Serve(format!("control service stopped: {r:?}"))),
        () = shutdown => Ok(()),
    };
    server.abort();
    info!(log, "coordinator stopped"; "result" => ?res.as_ref().err().map(ToString::to_string));
    res
}
