//! Node-agent requests and responses.

use std::collections::BTreeMap;

use tonic::Status;
use tq_protocol::crypto::legacy::{LegacyPackage, LegacyShare};
use tq_protocol::{Digest, Epoch, NodeStatusReport, Request, RequestKind, Response, Threshold};

use super::config::{config_from_pb, config_to_pb, share_from_pb, share_to_pb};
use super::{WireError, epoch, fixed, node_id};
use crate::pb::{self, commit_response, get_share_response};
use crate::refusal::{refusal_to_status, status_to_refusal};

/// A node-agent request as it arrived, one variant per RPC.
#[derive(Debug)]
pub enum NodeRequest {
    /// Prepare.
    Prepare(pb::PrepareRequest),
    /// Commit.
    Commit(pb::CommitRequest),
    /// PrepareAndCommit.
    PrepareAndCommit(pb::PrepareAndCommitRequest),
    /// GetShare.
    GetShare(pb::GetShareRequest),
    /// GetLegacyShare.
    GetLegacyShare,
    /// Status.
    Status,
}

/// A node-agent answer, one variant per RPC result type.
#[derive(Debug)]
pub enum NodeResponse {
    /// To Prepare.
    PrepareAck(pb::PrepareAck),
    /// To Commit and PrepareAndCommit.
    Commit(pb::CommitResponse),
    /// To GetShare.
    GetShare(pb::GetShareResponse),
    /// To GetLegacyShare.
    Legacy(pb::LegacyPackage),
    /// To Status.
    Status(pb::NodeStatus),
}

fn digest(field: &'static str, b: &[u8]) -> Result<Digest, WireError> {
    fixed(field, b).map(Digest)
}

/// A wire request, validated.
pub fn request_from_pb(r: NodeRequest) -> Result<Request, WireError> {
    Ok(match r {
        NodeRequest::Prepare(p) => Request::Prepare {
            config: config_from_pb(p.config.as_ref().ok_or(WireError::Missing("config"))?)?,
            share: share_from_pb(p.share.as_ref())?,
        },
        NodeRequest::Commit(c) => Request::Commit {
            epoch: epoch("epoch", c.epoch)?,
            digest: digest("digest", &c.digest)?,
        },
        NodeRequest::PrepareAndCommit(p) => Request::PrepareAndCommit {
            config: config_from_pb(p.config.as_ref().ok_or(WireError::Missing("config"))?)?,
        },
        NodeRequest::GetShare(g) => Request::GetShare {
            epoch: epoch("epoch", g.epoch)?,
            digest: if g.digest.is_empty() { None } else { Some(digest("digest", &g.digest)?) },
        },
        NodeRequest::GetLegacyShare => Request::GetLegacyShare,
        NodeRequest::Status => Request::Status,
    })
}

/// A request for the wire.
pub fn request_to_pb(r: &Request) -> NodeRequest {
    match r {
        Request::Prepare { config, share } => NodeRequest::Prepare(pb::PrepareRequest {
            config: Some(config_to_pb(config)),
            share: Some(share_to_pb(share)),
        }),
        Request::Commit { epoch, digest } => {
            NodeRequest::Commit(pb::CommitRequest { epoch: epoch.get(), digest: digest.0.to_vec() })
        }
        Request::PrepareAndCommit { config } => {
            NodeRequest::PrepareAndCommit(pb::PrepareAndCommitRequest {
                config: Some(config_to_pb(config)),
            })
        }
        Request::GetShare { epoch, digest } => NodeRequest::GetShare(pb::GetShareRequest {
            epoch: epoch.get(),
            digest: digest.map(|d| d.0.to_vec()).unwrap_or_default(),
        }),
        Request::GetLegacyShare => NodeRequest::GetLegacyShare,
        Request::Status => NodeRequest::Status,
    }
}

fn epoch_digest(e: Option<(Epoch, Digest)>) -> Option<pb::EpochDigest> {
    e.map(|(e, d)| pb::EpochDigest { epoch: e.get(), digest: d.0.to_vec() })
}

fn epoch_digest_from(
    field: &'static str,
    e: Option<&pb::EpochDigest>,
) -> Result<Option<(Epoch, Digest)>, WireError> {
    e.map(|e| Ok((epoch(field, e.epoch)?, digest(field, &e.digest)?))).transpose()
}

fn opt_epoch(field: &'static str, n: u64) -> Result<Option<Epoch>, WireError> {
    if n == 0 { Ok(None) } else { epoch(field, n).map(Some) }
}

/// A node's status report for the wire.
pub fn report_to_pb(r: &NodeStatusReport, version: &str) -> pb::NodeStatus {
    pb::NodeStatus {
        node_id: r.node_id.to_string(),
        committed: epoch_digest(r.committed),
        prepared: epoch_digest(r.prepared),
        expunged: r.expunged.map_or(0, Epoch::get),
        unlocked: r.unlocked.map_or(0, Epoch::get),
        has_legacy_share: r.has_legacy_share,
        alarms: r.alarms,
        version: version.to_string(),
    }
}

/// A wire status report, validated.
pub fn report_from_pb(s: &pb::NodeStatus) -> Result<NodeStatusReport, WireError> {
    Ok(NodeStatusReport {
        node_id: node_id("node_id", &s.node_id)?,
        committed: epoch_digest_from("committed", s.committed.as_ref())?,
        prepared: epoch_digest_from("prepared", s.prepared.as_ref())?,
        expunged: opt_epoch("expunged", s.expunged)?,
        unlocked: opt_epoch("unlocked", s.unlocked)?,
        has_legacy_share: s.has_legacy_share,
        alarms: s.alarms,
    })
}

/// A legacy package for the wire (carries a secret share).
pub fn legacy_to_pb(p: &LegacyPackage) -> pb::LegacyPackage {
    pb::LegacyPackage {
        threshold: p.threshold.get() as u32,
        share: p.share.expose().to_vec(),
        digests: p
            .digests
            .iter()
            .map(|(id, d)| pb::LegacyDigest { node_id: id.to_string(), digest: d.0.to_vec() })
            .collect(),
    }
}

/// A wire legacy package, validated: each member listed once, 2 ≤ K < N (DESIGN §4).
pub fn legacy_from_pb(p: &pb::LegacyPackage) -> Result<LegacyPackage, WireError> {
    let mut digests = BTreeMap::new();
    for d in &p.digests {
        let node = node_id("legacy digest node_id", &d.node_id)?;
        let digest = digest("legacy digest", &d.digest)?;
        if digests.insert(node.clone(), digest).is_some() {
            return Err(WireError::Duplicate { field: "legacy digests", node });
        }
    }
    let threshold = Threshold::new(p.threshold as usize, digests.len())
        .map_err(tq_protocol::config::ConfigError::from)?;
    Ok(LegacyPackage { threshold, share: LegacyShare::from_bytes(&p.share)?, digests })
}

impl NodeResponse {
    /// The wire form of a node's answer; a refusal becomes an error status.
    pub fn from_core(r: Response, version: &str) -> Result<NodeResponse, Status> {
        Ok(match r {
            Response::PrepareAck { epoch, digest } => NodeResponse::PrepareAck(pb::PrepareAck {
                epoch: epoch.get(),
                digest: digest.0.to_vec(),
            }),
            Response::CommitAck { epoch } => NodeResponse::Commit(pb::CommitResponse {
                outcome: Some(commit_response::Outcome::Committed(epoch.get())),
            }),
            Response::CatchingUp { epoch } => NodeResponse::Commit(pb::CommitResponse {
                outcome: Some(commit_response::Outcome::CatchingUp(epoch.get())),
            }),
            Response::Share { epoch, digest, share } => {
                NodeResponse::GetShare(pb::GetShareResponse {
                    reply: Some(get_share_response::Reply::Share(pb::ShareReply {
                        epoch: epoch.get(),
                        digest: digest.0.to_vec(),
                        share: Some(share_to_pb(&share)),
                    })),
                })
            }
            Response::CommitAdvance { config } => NodeResponse::GetShare(pb::GetShareResponse {
                reply: Some(get_share_response::Reply::CommitAdvance(config_to_pb(&config))),
            }),
            Response::Expunged { epoch } => NodeResponse::GetShare(pb::GetShareResponse {
                reply: Some(get_share_response::Reply::Expunged(epoch.get())),
            }),
            Response::LegacyShare(p) => NodeResponse::Legacy(legacy_to_pb(&p)),
            Response::Status(s) => NodeResponse::Status(report_to_pb(&s, version)),
            Response::Error { error, .. } => return Err(refusal_to_status(&error)),
        })
    }
}

/// The core form of an answer received for a request of `kind` about `epoch`. A refusal
/// becomes `Response::Error`; a transport failure or an answer that does not validate is
/// returned as the error (the caller retries or records it).
pub fn response_from_rpc(
    kind: RequestKind,
    epoch_asked: Option<Epoch>,
    res: Result<NodeResponse, Status>,
) -> Result<Response, Status> {
    let r = match res {
        Err(status) => {
            return match status_to_refusal(&status) {
                Some(error) => Ok(Response::Error { request: kind, epoch: epoch_asked, error }),
                None => Err(status),
            };
        }
        Ok(r) => r,
    };
    let converted: Result<Response, WireError> = (|| {
        Ok(match r {
            NodeResponse::PrepareAck(a) => Response::PrepareAck {
                epoch: epoch("epoch", a.epoch)?,
                digest: digest("digest", &a.digest)?,
            },
            NodeResponse::Commit(c) => match c.outcome.ok_or(WireError::Missing("outcome"))? {
                commit_response::Outcome::Committed(e) => {
                    Response::CommitAck { epoch: epoch("committed", e)? }
                }
                commit_response::Outcome::CatchingUp(e) => {
                    Response::CatchingUp { epoch: epoch("catching_up", e)? }
                }
            },
            NodeResponse::GetShare(g) => match g.reply.ok_or(WireError::Missing("reply"))? {
                get_share_response::Reply::Share(s) => Response::Share {
                    epoch: epoch("epoch", s.epoch)?,
                    digest: digest("digest", &s.digest)?,
                    share: share_from_pb(s.share.as_ref())?,
                },
                get_share_response::Reply::CommitAdvance(c) => {
                    Response::CommitAdvance { config: config_from_pb(&c)? }
                }
                get_share_response::Reply::Expunged(e) => {
                    Response::Expunged { epoch: epoch("expunged", e)? }
                }
            },
            NodeResponse::Legacy(p) => Response::LegacyShare(legacy_from_pb(&p)?),
            NodeResponse::Status(s) => Response::Status(report_from_pb(&s)?),
        })
    })();
    converted.map_err(|e| Status::invalid_argument(format!("malformed answer: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tq_protocol::quorum::QuorumError;

    fn package(names: &[&str], threshold: u32) -> pb::LegacyPackage {
        pb::LegacyPackage {
            threshold,
            share: [&[1u8][..], &[9; 32]].concat(),
            digests: names
                .iter()
                .map(|n| pb::LegacyDigest { node_id: (*n).into(), digest: vec![3; 32] })
                .collect(),
        }
    }

    /// Found by the `wire_decode` fuzz target: a member listed twice counted twice towards
    /// N, so K = 2 passed with two distinct members, and the second digest silently replaced
    /// the first (DESIGN §4: 2 ≤ K < N; §6.10: each member's digest is known).
    #[test]
    fn legacy_package_lists_each_member_once_section_4() {
        assert!(legacy_from_pb(&package(&["n0", "n1", "n2"], 2)).is_ok());
        let dup = node_id("n", "n1").unwrap();
        assert_eq!(
            legacy_from_pb(&package(&["n0", "n1", "n1"], 2)).err(),
            Some(WireError::Duplicate { field: "legacy digests", node: dup })
        );
        assert_eq!(
            legacy_from_pb(&package(&["n0", "n1"], 2)).err(),
            Some(WireError::Config(QuorumError::Members(2).into()))
        );
    }
}
