//! Serving gRPC over mTLS (DESIGN §3): TCP_NODELAY on every connection, a handshake timeout,
//! a cap on handshakes in progress, request timeouts, per-connection concurrency and message
//! size caps.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use slog::{Logger, debug, warn};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Server;

use crate::authenticated::Authenticated;
use crate::tls::{TlsError, TlsMaterial};

/// Limits every tq server applies.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerLimits {
    /// Largest message decoded or encoded, in bytes.
    pub max_message_bytes: usize,
    /// A TLS handshake must finish within this.
    #[serde(with = "crate::serde_duration")]
    pub handshake_timeout: Duration,
    /// A request must be answered within this.
    #[serde(with = "crate::serde_duration")]
    pub request_timeout: Duration,
    /// Requests in flight per connection.
    pub per_connection_concurrency: usize,
    /// HTTP/2 streams per connection.
    pub max_concurrent_streams: u32,
    /// TLS handshakes in progress at once; past it, the oldest is dropped for the newest.
    pub max_pending_handshakes: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            // A configuration of 1024 members is about 150 KiB; leave room, refuse the absurd.
            max_message_bytes: 4 * 1024 * 1024,
            handshake_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            per_connection_concurrency: 64,
            max_concurrent_streams: 128,
            max_pending_handshakes: 256,
        }
    }
}

/// Accepts TCP connections on `listener` and completes their TLS handshakes off the accept
/// loop, with `tls`'s server configuration; yields only connections that finished the
/// handshake in time, each with its client's identity. The listener closes when the stream
/// is dropped (the server stopped).
pub fn tls_incoming(
    listener: TcpListener,
    tls: &TlsMaterial,
    limits: &ServerLimits,
    log: Logger,
) -> Result<ReceiverStream<Result<Authenticated, std::io::Error>>, TlsError> {
    // Bounded: a connection waits here only while tonic picks it up.
    let (tx, rx) = mpsc::channel(64);
    let acceptor = TlsAcceptor::from(tls.server_config()?);
    let cluster = tls.cluster;
    let (max_pending, timeout) = (limits.max_pending_handshakes.max(1), limits.handshake_timeout);
    // Handshakes in progress, oldest first. When full, the oldest is dropped, not the
    // newest: connections that never handshake (a flood of idle sockets) then only push
    // each other out, while a real client, whose handshake takes milliseconds, gets
    // through. Refusing the newest let 1000 idle sockets lock every client out until
    // they timed out (4.9 s; t33).
    let mut pending: VecDeque<(AbortHandle, Arc<AtomicBool>)> =
        VecDeque::with_capacity(max_pending);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                // The server dropped the stream: stop accepting, so the port is free again.
                () = tx.closed() => return,
                a = listener.accept() => a,
            };
            let (tcp, peer) = match accepted {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and friends: back off rather than spin.
                    warn!(log, "accept failed"; "error" => %e);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            pending.retain(|(h, done)| !h.is_finished() && !done.load(Ordering::Relaxed));
            if pending.len() >= max_pending
                && let Some((oldest, _)) = pending.pop_front()
            {
                oldest.abort();
                debug!(log, "too many TLS handshakes in progress: the oldest was dropped");
            }
            let _ = tcp.set_nodelay(true);
            let (acceptor, tx, log) = (acceptor.clone(), tx.clone(), log.clone());
            let done = Arc::new(AtomicBool::new(false));
            let finished = done.clone();
            let handshake = tokio::spawn(async move {
                let res = tokio::time::timeout(timeout, acceptor.accept(tcp)).await;
                // Handshaken: no longer one to drop for a newer connection.
                finished.store(true, Ordering::Relaxed);
                match res {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(Ok(Authenticated::new(tls, &cluster))).await;
                    }
                    Ok(Err(e)) => handshake_failed(&log, peer, &e.to_string()),
                    Err(_) => handshake_failed(&log, peer, "timed out"),
                }
            });
            pending.push_back((handshake.abort_handle(), done));
        }
    });
    Ok(ReceiverStream::new(rx))
}

fn handshake_failed(log: &Logger, peer: SocketAddr, why: &str) {
    debug!(log, "TLS handshake failed"; "peer" => %peer, "error" => why);
}

/// A tonic server builder with the limits applied (the services add message size caps).
pub fn builder(limits: &ServerLimits) -> Server {
    Server::builder()
        .timeout(limits.request_timeout)
        .concurrency_limit_per_connection(limits.per_connection_concurrency)
        .max_concurrent_streams(limits.max_concurrent_streams)
        .http2_keepalive_interval(Some(Duration::from_secs(20)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .tcp_nodelay(true)
}
