//! A served mutual-TLS connection with the identity its client certificate proves (DESIGN
//! §3), read once when the handshake completes. Parsing the X.509 leaf for every request
//! cost 6.5 µs each (BENCHMARKS.md, 2026-12-07): 3.5 % of the coordinator's CPU samples over
//! a benchmark run, mostly status polls, and every agent paid it on each of a re-key's
//! requests.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tonic::transport::server::Connected;
use tq_protocol::{ClusterId, Peer};

use crate::identity::{IdentityError, peer_from_cert};

/// Who is at the other end of a connection, as its leaf certificate says; tonic puts a copy
/// in the extensions of every request that arrives on it.
#[derive(Debug, Clone)]
pub struct ConnectionIdentity(Arc<Result<Peer, IdentityError>>);

impl ConnectionIdentity {
    /// The identity, or why the certificate names none of this cluster.
    pub fn peer(&self) -> Result<&Peer, &IdentityError> {
        self.0.as_ref().as_ref()
    }
}

/// A TLS connection whose client was identified when its handshake completed.
pub struct Authenticated {
    tls: TlsStream<TcpStream>,
    identity: ConnectionIdentity,
}

impl Authenticated {
    /// Reads the identity off `tls`'s client certificate (none is an error, not a panic: the
    /// server configuration requires one, so it never happens).
    pub fn new(tls: TlsStream<TcpStream>, cluster: &ClusterId) -> Self {
        let leaf = tls.get_ref().1.peer_certificates().and_then(|c| c.first());
        let identity = match leaf {
            Some(der) => peer_from_cert(der.as_ref(), cluster),
            None => Err(IdentityError::NoCertificate),
        };
        Authenticated { tls, identity: ConnectionIdentity(Arc::new(identity)) }
    }
}

impl Connected for Authenticated {
    type ConnectInfo = ConnectionIdentity;

    fn connect_info(&self) -> ConnectionIdentity {
        self.identity.clone()
    }
}

impl AsyncRead for Authenticated {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tls).poll_read(cx, buf)
    }
}

impl AsyncWrite for Authenticated {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tls).poll_write(cx, buf)
    }

    // Forwarded: hyper writes HTTP/2 frames as several buffers at once.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tls).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tls.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tls).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tls).poll_shutdown(cx)
    }
}
