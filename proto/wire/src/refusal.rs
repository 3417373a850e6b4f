//! The one place errors become gRPC statuses, and node refusals travel as typed details so
//! callers get the exact [`NodeError`] back.

use prost::Message;
use tonic::{Code, Status};
use tq_protocol::{Epoch, NodeError, NodeId, Peer, RequestKind};

use crate::pb::{self, RefusalKind};

/// A node's refusal as a gRPC error: a code a generic client understands, and a `Refusal`
/// in the details for tq clients.
pub fn refusal_to_status(err: &NodeError) -> Status {
    let mut r = pb::Refusal::default();
    let code = match err {
        NodeError::Unauthorized { caller, request } => {
            r.kind = RefusalKind::Unauthorized.into();
            r.caller = caller.to_string();
            r.request = format!("{request:?}");
            Code::PermissionDenied
        }
        NodeError::WrongCluster => {
            r.kind = RefusalKind::WrongCluster.into();
            Code::InvalidArgument
        }
        NodeError::Expunged(e) => {
            r.kind = RefusalKind::Expunged.into();
            r.epoch = e.get();
            Code::FailedPrecondition
        }
        NodeError::StaleEpoch { epoch, committed } => {
            r.kind = RefusalKind::StaleEpoch.into();
            r.epoch = epoch.get();
            r.other_epoch = committed.get();
            Code::FailedPrecondition
        }
        NodeError::Superseded { epoch, newer } => {
            r.kind = RefusalKind::Superseded.into();
            r.epoch = epoch.get();
            r.other_epoch = newer.get();
            Code::Aborted
        }
        NodeError::NotAMember { epoch, node } => {
            r.kind = RefusalKind::NotAMember.into();
            r.epoch = epoch.get();
            r.node_id = node.to_string();
            Code::FailedPrecondition
        }
        NodeError::ShareDigestMismatch(e) => {
            r.kind = RefusalKind::ShareDigestMismatch.into();
            r.epoch = e.get();
            Code::InvalidArgument
        }
        NodeError::ShareVerificationFailed(e) => {
            r.kind = RefusalKind::ShareVerificationFailed.into();
            r.epoch = e.get();
            Code::InvalidArgument
        }
        NodeError::MismatchedConfiguration(e) => {
            r.kind = RefusalKind::MismatchedConfiguration.into();
            r.epoch = e.get();
            Code::FailedPrecondition
        }
        NodeError::NotPrepared(e) => {
            r.kind = RefusalKind::NotPrepared.into();
            r.epoch = e.get();
            Code::FailedPrecondition
        }
        NodeError::NoShare(e) => {
            r.kind = RefusalKind::NoShare.into();
            r.epoch = e.get();
            Code::NotFound
        }
        NodeError::NoLegacyShare => {
            r.kind = RefusalKind::NoLegacyShare.into();
            Code::NotFound
        }
    };
    Status::with_details(code, err.to_string(), r.encode_to_vec().into())
}

/// The refusal carried by a status, if it is one of ours and well formed.
pub fn status_to_refusal(status: &Status) -> Option<NodeError> {
    let r = pb::Refusal::decode(status.details()).ok()?;
    let e = |n: u64| Epoch::new(n).ok();
    Some(match r.kind() {
        RefusalKind::Unspecified => return None,
        RefusalKind::Unauthorized => NodeError::Unauthorized {
            caller: peer_from_display(&r.caller)?,
            request: request_kind(&r.request)?,
        },
        RefusalKind::WrongCluster => NodeError::WrongCluster,
        RefusalKind::Expunged => NodeError::Expunged(e(r.epoch)?),
        RefusalKind::StaleEpoch => {
            NodeError::StaleEpoch { epoch: e(r.epoch)?, committed: e(r.other_epoch)? }
        }
        RefusalKind::Superseded => {
            NodeError::Superseded { epoch: e(r.epoch)?, newer: e(r.other_epoch)? }
        }
        RefusalKind::NotAMember => NodeError::NotAMember {
            epoch: e(r.epoch)?,
            node: NodeId::new(r.node_id.as_str()).ok()?,
        },
        RefusalKind::ShareDigestMismatch => NodeError::ShareDigestMismatch(e(r.epoch)?),
        RefusalKind::ShareVerificationFailed => NodeError::ShareVerificationFailed(e(r.epoch)?),
        RefusalKind::MismatchedConfiguration => NodeError::MismatchedConfiguration(e(r.epoch)?),
        RefusalKind::NotPrepared => NodeError::NotPrepared(e(r.epoch)?),
        RefusalKind::NoShare => NodeError::NoShare(e(r.epoch)?),
        RefusalKind::NoLegacyShare => NodeError::NoLegacyShare,
    })
}

fn peer_from_display(s: &str) -> Option<Peer> {
    Some(match s.split_once('/') {
        None if s == "coordinator" => Peer::Coordinator,
        Some(("node", id)) => Peer::Node(NodeId::new(id).ok()?),
        Some(("operator", name)) => Peer::Operator(name.to_string()),
        _ => return None,
    })
}

fn request_kind(s: &str) -> Option<RequestKind> {
    Some(match s {
        "Prepare" => RequestKind::Prepare,
        "Commit" => RequestKind::Commit,
        "PrepareAndCommit" => RequestKind::PrepareAndCommit,
        "GetShare" => RequestKind::GetShare,
        "GetLegacyShare" => RequestKind::GetLegacyShare,
        "Status" => RequestKind::Status,
        _ => return None,
    })
}

/// An operator request the coordinator refused, as a gRPC status. Nothing was persisted.
pub fn reconfigure_error_to_status(e: &tq_protocol::coordinator::ReconfigureError) -> Status {
    use tq_protocol::coordinator::ReconfigureError as E;
    let code = match e {
        E::Quorum(_) => Code::InvalidArgument,
        E::Epoch(_) => Code::ResourceExhausted,
        E::Busy(_)
        | E::PreviousEpochMismatch { .. }
        | E::UnknownNode(_)
        | E::Removed(_)
        | E::ForeignState { .. }
        | E::AlreadyUpgraded(_) => Code::FailedPrecondition,
    };
    Status::new(code, e.to_string())
}

/// An operator commit the coordinator refused.
pub fn commit_error_to_status(e: &tq_protocol::coordinator::CommitError) -> Status {
    Status::failed_precondition(e.to_string())
}

/// An operator abort the coordinator refused.
pub fn abort_error_to_status(e: &tq_protocol::coordinator::AbortError) -> Status {
    Status::failed_precondition(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_survives_the_wire() {
        let e = |n| Epoch::new(n).unwrap();
        let all = [
            NodeError::Unauthorized {
                caller: Peer::Operator("op".into()),
                request: RequestKind::Prepare,
            },
            NodeError::Unauthorized {
                caller: Peer::Node(NodeId::new("n1").unwrap()),
                request: RequestKind::Commit,
            },
            NodeError::Unauthorized {
                caller: Peer::Coordinator,
                request: RequestKind::GetLegacyShare,
            },
            NodeError::WrongCluster,
            NodeError::Expunged(e(3)),
            NodeError::StaleEpoch { epoch: e(2), committed: e(4) },
            NodeError::Superseded { epoch: e(2), newer: e(5) },
            NodeError::NotAMember { epoch: e(2), node: NodeId::new("n9").unwrap() },
            NodeError::ShareDigestMismatch(e(2)),
            NodeError::ShareVerificationFailed(e(2)),
            NodeError::MismatchedConfiguration(e(2)),
            NodeError::NotPrepared(e(2)),
            NodeError::NoShare(e(2)),
            NodeError::NoLegacyShare,
        ];
        for err in all {
            let status = refusal_to_status(&err);
            assert_eq!(status_to_refusal(&status), Some(err.clone()), "{err:?}");
        }
        assert_eq!(status_to_refusal(&Status::internal("x")), None);
    }
}
