//! The peer service's handler: every verified request goes to the actor.

use tonic::Status;
use tq_protocol::{NodeId, Peer, Request, Response};
use tq_wire::node_service::NodeHandler;

use crate::actor::AgentHandle;

pub(crate) struct Handler(pub(crate) AgentHandle);

#[tonic::async_trait]
impl NodeHandler for Handler {
    async fn handle(&self, caller: Peer, request: Request) -> Result<Response, Status> {
        self.0.request(caller, request).await.map_err(|e| Status::unavailable(e.to_string()))
    }

    async fn address_book(&self, _caller: Peer, book: Vec<(NodeId, String)>) -> Result<(), Status> {
        self.0.address_book(book).await.map_err(|e| Status::unavailable(e.to_string()))
    }
}
