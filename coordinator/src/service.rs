//! The control service (DESIGN §3, §8): operator calls, status polls and watches, and agent
//! enrollment. Callers are authorized by their certificate's identity.

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::WatchStream;
use tonic::{Request, Response, Status};
use tq_protocol::{Epoch, NodeId, Peer};
use tq_wire::convert::report_from_pb;
use tq_wire::identity::caller;
use tq_wire::pb;
use tq_wire::refusal::{
    abort_error_to_status, commit_error_to_status, reconfigure_error_to_status,
};
use tq_wire::status_bytes::{Coordinator, EncodedStatus};

use crate::actor::{CoordinatorHandle, Operation, OperationError};

pub(crate) struct ControlService {
    pub(crate) handle: CoordinatorHandle,
}

impl ControlService {
    fn operator<T>(&self, req: &Request<T>) -> Result<Peer, Status> {
        match caller(req)? {
            p @ Peer::Operator(_) => Ok(p),
            other => {
                Err(Status::permission_denied(format!("{other} may not call the control service")))
            }
        }
    }

    async fn operate(&self, op: Operation) -> Result<Response<pb::Attempt>, Status> {
        self.handle.operate(op).await.map(Response::new).map_err(|e| match &e {
            OperationError::Reconfigure(r) => reconfigure_error_to_status(r),
            OperationError::Commit(c) => commit_error_to_status(c),
            OperationError::Abort(a) => abort_error_to_status(a),
            OperationError::Entropy(_) => Status::internal(e.to_string()),
            OperationError::Stopped | OperationError::StoreFailed => {
                Status::unavailable(e.to_string())
            }
        })
    }
}

fn members(names: &[String]) -> Result<BTreeSet<NodeId>, Status> {
    let mut out = BTreeSet::new();
    for n in names {
        // A name can be as long as the request (4 MiB): quoted whole it would outgrow the
        // HTTP/2 header the status travels in, and the caller would see ResourceExhausted.
        let shown: String = n.chars().take(80).collect();
        let id = NodeId::new(n.as_str())
            .map_err(|e| Status::invalid_argument(format!("member {shown:?}: {e}")))?;
        if !out.insert(id) {
            return Err(Status::invalid_argument(format!("member {n} is listed twice")));
        }
    }
    Ok(out)
}

#[tonic::async_trait]
impl Coordinator for ControlService {
    async fn enroll(
        &self,
        req: Request<pb::EnrollRequest>,
    ) -> Result<Response<pb::AddressBook>, Status> {
        let who = caller(&req)?;
        let r = req.into_inner();
        let summary = report_from_pb(
            r.summary.as_ref().ok_or_else(|| Status::invalid_argument("missing summary"))?,
        )?;
        if who != Peer::Node(summary.node_id.clone()) {
            return Err(Status::permission_denied(format!(
                "{who} may not enroll as node {}",
                summary.node_id
            )));
        }
        if r.address.is_empty() || r.address.len() > 255 {
            return Err(Status::invalid_argument("address must be host:port"));
        }
        let version = r.summary.map(|s| s.version).unwrap_or_default();
        let book = self
            .handle
            .enroll(r.address, version, summary)
            .await
            .ok_or_else(|| Status::unavailable("the coordinator is stopping"))?;
        Ok(Response::new(pb::AddressBook {
            entries: book
                .into_iter()
                .map(|(id, address)| pb::AddressEntry { node_id: id.to_string(), address })
                .collect(),
        }))
    }

    async fn reconfigure(
        &self,
        req: Request<pb::ReconfigureRequest>,
    ) -> Result<Response<pb::Attempt>, Status> {
        self.operator(&req)?;
        let r = req.into_inner();
        let previous_epoch = match r.previous_epoch {
            0 => None,
            n => Some(Epoch::new(n).map_err(|e| Status::invalid_argument(e.to_string()))?),
        };
        self.operate(Operation::Reconfigure {
            members: members(&r.members)?,
            threshold: r.threshold as usize,
            previous_epoch,
        })
        .await
    }

    async fn upgrade_from_legacy(
        &self,
        req: Request<pb::UpgradeFromLegacyRequest>,
    ) -> Result<Response<pb::Attempt>, Status> {
        self.operator(&req)?;
        let r = req.into_inner();
        self.operate(Operation::UpgradeFromLegacy {
            members: members(&r.members)?,
            threshold: r.threshold as usize,
        })
        .await
    }

    async fn abort(&self, req: Request<pb::AbortRequest>) -> Result<Response<pb::Attempt>, Status> {
        self.operator(&req)?;
        self.operate(Operation::Abort).await
    }

    async fn commit(
        &self,
        req: Request<pb::CommitEpochRequest>,
    ) -> Result<Response<pb::Attempt>, Status> {
        self.operator(&req)?;
        self.operate(Operation::Commit).await
    }

    async fn status(
        &self,
        req: Request<pb::StatusRequest>,
    ) -> Result<Response<EncodedStatus>, Status> {
        self.operator(&req)?;
        let if_version = req.get_ref().if_version;
        let status = self.handle.status().borrow().clone();
        if if_version != 0 && if_version == status.version() {
            return Ok(Response::new(EncodedStatus::not_modified(if_version)));
        }
        Ok(Response::new(status))
    }

    type WatchStream = Pin<Box<dyn Stream<Item = Result<EncodedStatus, Status>> + Send>>;

    async fn watch(
        &self,
        req: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        self.operator(&req)?;
        let mut last = 0;
        let stream = WatchStream::new(self.handle.status()).filter_map(move |s| {
            // Only changes: republishing for fresher contact times is not one.
            (s.version() != last).then(|| {
                last = s.version();
                Ok(s)
            })
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn nodes(
        &self,
        req: Request<pb::NodesRequest>,
    ) -> Result<Response<pb::NodesResponse>, Status> {
        self.operator(&req)?;
        Ok(Response::new(Arc::unwrap_or_clone(self.handle.nodes())))
    }
}
