//! The node agent's peer service, for any handler of core requests: authenticates the caller
//! from its certificate, converts the request once (bad input → `InvalidArgument`, nothing
//! else happens), and converts the answer back.

use std::sync::Arc;

use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status};
use tq_protocol::{NodeId, Peer, Request, Response};

use crate::convert::{NodeRequest, NodeResponse, address_book_from_pb, request_from_pb};
use crate::identity::caller;
use crate::pb::{self, node_agent_server::NodeAgent};

/// What the agent does with an authenticated, validated request.
#[tonic::async_trait]
pub trait NodeHandler: Send + Sync + 'static {
    /// Handles one protocol request; refusals are `Response::Error`.
    async fn handle(&self, caller: Peer, request: Request) -> Result<Response, Status>;

    /// Stores the coordinator's address book (§6.13).
    async fn address_book(&self, caller: Peer, book: Vec<(NodeId, String)>) -> Result<(), Status>;

    /// The version string to report.
    fn version(&self) -> &str {
        crate::VERSION
    }
}

/// The tonic service over a handler.
pub struct NodeAgentService<H> {
    handler: Arc<H>,
}

impl<H: NodeHandler> NodeAgentService<H> {
    /// Serves `handler` (callers were identified by [`crate::server::tls_incoming`]).
    pub fn new(handler: Arc<H>) -> Self {
        NodeAgentService { handler }
    }

    async fn run<T>(
        &self,
        req: GrpcRequest<T>,
        wrap: impl FnOnce(T) -> NodeRequest,
    ) -> Result<NodeResponse, Status> {
        let who = caller(&req)?;
        let request = request_from_pb(wrap(req.into_inner()))?;
        let response = self.handler.handle(who, request).await?;
        NodeResponse::from_core(response, self.handler.version())
    }
}

fn unexpected() -> Status {
    Status::internal("the agent answered with the wrong kind of response")
}

#[tonic::async_trait]
impl<H: NodeHandler> NodeAgent for NodeAgentService<H> {
    async fn prepare(
        &self,
        req: GrpcRequest<pb::PrepareRequest>,
    ) -> Result<GrpcResponse<pb::PrepareAck>, Status> {
        match self.run(req, NodeRequest::Prepare).await? {
            NodeResponse::PrepareAck(a) => Ok(GrpcResponse::new(a)),
            _ => Err(unexpected()),
        }
    }

    async fn commit(
        &self,
        req: GrpcRequest<pb::CommitRequest>,
    ) -> Result<GrpcResponse<pb::CommitResponse>, Status> {
        match self.run(req, NodeRequest::Commit).await? {
            NodeResponse::Commit(c) => Ok(GrpcResponse::new(c)),
            _ => Err(unexpected()),
        }
    }

    async fn prepare_and_commit(
        &self,
        req: GrpcRequest<pb::PrepareAndCommitRequest>,
    ) -> Result<GrpcResponse<pb::CommitResponse>, Status> {
        match self.run(req, NodeRequest::PrepareAndCommit).await? {
            NodeResponse::Commit(c) => Ok(GrpcResponse::new(c)),
            _ => Err(unexpected()),
        }
    }

    async fn get_share(
        &self,
        req: GrpcRequest<pb::GetShareRequest>,
    ) -> Result<GrpcResponse<pb::GetShareResponse>, Status> {
        match self.run(req, NodeRequest::GetShare).await? {
            NodeResponse::GetShare(s) => Ok(GrpcResponse::new(s)),
            _ => Err(unexpected()),
        }
    }

    async fn get_legacy_share(
        &self,
        req: GrpcRequest<pb::GetLegacyShareRequest>,
    ) -> Result<GrpcResponse<pb::LegacyPackage>, Status> {
        match self.run(req, |_| NodeRequest::GetLegacyShare).await? {
            NodeResponse::Legacy(p) => Ok(GrpcResponse::new(p)),
            _ => Err(unexpected()),
        }
    }

    async fn status(
        &self,
        req: GrpcRequest<pb::NodeStatusRequest>,
    ) -> Result<GrpcResponse<pb::NodeStatus>, Status> {
        match self.run(req, |_| NodeRequest::Status).await? {
            NodeResponse::Status(s) => Ok(GrpcResponse::new(s)),
            _ => Err(unexpected()),
        }
    }

    async fn push_address_book(
        &self,
        req: GrpcRequest<pb::AddressBook>,
    ) -> Result<GrpcResponse<pb::AddressBookAck>, Status> {
        let who = caller(&req)?;
        if who != Peer::Coordinator {
            return Err(Status::permission_denied(format!("{who} may not push the address book")));
        }
        let book = address_book_from_pb(&req.into_inner())?;
        self.handler.address_book(who, book).await?;
        Ok(GrpcResponse::new(pb::AddressBookAck {}))
    }
}
