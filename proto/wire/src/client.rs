//! Calling a node agent over mTLS, with the server's SPIFFE identity verified.

use std::time::Duration;

use tonic::Status;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tq_protocol::{Peer, Request, Response};

use crate::convert::{NodeRequest, NodeResponse, request_to_pb, response_from_rpc};
use crate::pb::node_agent_client::NodeAgentClient;
use crate::tls::TlsMaterial;

/// Client-side timeouts and caps.
#[derive(Debug, Clone, Copy)]
pub struct ClientLimits {
    /// Connecting (TCP and TLS).
    pub connect_timeout: Duration,
    /// One request.
    pub request_timeout: Duration,
    /// Largest message sent or accepted.
    pub max_message_bytes: usize,
}

impl Default for ClientLimits {
    fn default() -> Self {
        ClientLimits {
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
            max_message_bytes: 4 * 1024 * 1024,
        }
    }
}

/// A lazily connected channel to `peer` at `addr` (host:port); it reconnects by itself.
pub fn channel(
    tls: &TlsMaterial,
    peer: Peer,
    addr: &str,
    limits: &ClientLimits,
) -> Result<Channel, Status> {
    let endpoint = Endpoint::from_shared(format!("https://{addr}"))
        .map_err(|e| Status::invalid_argument(format!("bad address {addr:?}: {e}")))?
        .connect_timeout(limits.connect_timeout)
        .timeout(limits.request_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(20))
        .keep_alive_while_idle(true);
    // The verifier checks the identity; the name only fills in SNI.
    let config = ClientTlsConfig::new().identity(tls.client_identity()).domain_name("tq.cluster");
    let endpoint = endpoint
        .tls_config_with_verifier(config, tls.verifier_for(peer))
        .map_err(|e| Status::internal(format!("TLS client configuration: {e}")))?;
    Ok(endpoint.connect_lazy())
}

/// Sends one request to a node agent. A refusal comes back as `Response::Error`; a failure
/// to reach the node or a malformed answer as the error.
pub async fn call_node(
    channel: Channel,
    req: &Request,
    limits: &ClientLimits,
) -> Result<Response, Status> {
    let mut c = NodeAgentClient::new(channel)
        .max_decoding_message_size(limits.max_message_bytes)
        .max_encoding_message_size(limits.max_message_bytes);
    let res = match request_to_pb(req) {
        NodeRequest::Prepare(r) => {
            c.prepare(r).await.map(|r| NodeResponse::PrepareAck(r.into_inner()))
        }
        NodeRequest::Commit(r) => c.commit(r).await.map(|r| NodeResponse::Commit(r.into_inner())),
        NodeRequest::PrepareAndCommit(r) => {
            c.prepare_and_commit(r).await.map(|r| NodeResponse::Commit(r.into_inner()))
        }
        NodeRequest::GetShare(r) => {
            c.get_share(r).await.map(|r| NodeResponse::GetShare(r.into_inner()))
        }
        NodeRequest::GetLegacyShare => c
            .get_legacy_share(crate::pb::GetLegacyShareRequest {})
            .await
            .map(|r| NodeResponse::Legacy(r.into_inner())),
        NodeRequest::Status => c
            .status(crate::pb::NodeStatusRequest {})
            .await
            .map(|r| NodeResponse::Status(r.into_inner())),
    };
    response_from_rpc(req.kind(), req.epoch(), res)
}

/// A client of an agent's local key service on its Unix socket (no TLS: the socket's mode
/// 0600 is the access control, DESIGN §6.7).
pub async fn local_keys(
    socket: &std::path::Path,
) -> Result<crate::pb::local_keys_client::LocalKeysClient<Channel>, tonic::transport::Error> {
    let socket = socket.to_path_buf();
    // The URI is required by the API but unused: the connector dials the socket.
    let channel = Endpoint::from_static("http://local.keys")
        .connect_with_connector(tower::service_fn(move |_| {
            let socket = socket.clone();
            async move {
                tokio::net::UnixStream::connect(socket).await.map(hyper_util::rt::TokioIo::new)
            }
        }))
        .await?;
    Ok(crate::pb::local_keys_client::LocalKeysClient::new(channel))
}
