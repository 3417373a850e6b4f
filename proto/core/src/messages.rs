//! Requests and responses between coordinator and nodes, and between nodes (DESIGN §6).
//! These are already validated: the wire layer converts into them once, with typed errors.

use std::sync::Arc;

use crate::config::Configuration;
use crate::crypto::legacy::LegacyPackage;
use crate::crypto::{Digest, Share};
use crate::epoch::Epoch;
use crate::ids::{NodeId, Peer};

/// A request to a node agent.
#[derive(Debug)]
pub enum Request {
    /// Store this configuration and share, then ack (§6.3). Coordinator only.
    Prepare {
        /// The configuration.
        config: Arc<Configuration>,
        /// The recipient's share.
        share: Share,
    },
    /// Commit an epoch this node prepared (§6.4). Coordinator only.
    Commit {
        /// The epoch.
        epoch: Epoch,
        /// The digest of the configuration being committed.
        digest: Digest,
    },
    /// This configuration is committed; catch up to it (§6.5). Coordinator only.
    PrepareAndCommit {
        /// The committed configuration.
        config: Arc<Configuration>,
    },
    /// Send your share of `epoch` (§6.6).
    GetShare {
        /// The epoch.
        epoch: Epoch,
        /// The digest of the configuration the requester holds for it (none for the
        /// coordinator, whose ledger is the reference).
        digest: Option<Digest>,
    },
    /// Send your legacy share package (§6.10).
    GetLegacyShare,
    /// Report your state (§6.11).
    Status,
}

/// Which request a response answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RequestKind {
    /// [`Request::Prepare`].
    Prepare,
    /// [`Request::Commit`].
    Commit,
    /// [`Request::PrepareAndCommit`].
    PrepareAndCommit,
    /// [`Request::GetShare`].
    GetShare,
    /// [`Request::GetLegacyShare`].
    GetLegacyShare,
    /// [`Request::Status`].
    Status,
}

impl Request {
    /// Which kind of request this is.
    pub fn kind(&self) -> RequestKind {
        match self {
            Request::Prepare { .. } => RequestKind::Prepare,
            Request::Commit { .. } => RequestKind::Commit,
            Request::PrepareAndCommit { .. } => RequestKind::PrepareAndCommit,
            Request::GetShare { .. } => RequestKind::GetShare,
            Request::GetLegacyShare => RequestKind::GetLegacyShare,
            Request::Status => RequestKind::Status,
        }
    }

    /// The epoch it is about, if any.
    pub fn epoch(&self) -> Option<Epoch> {
        match self {
            Request::Prepare { config, .. } | Request::PrepareAndCommit { config } => {
                Some(config.epoch())
            }
            Request::Commit { epoch, .. } | Request::GetShare { epoch, .. } => Some(*epoch),
            Request::GetLegacyShare | Request::Status => None,
        }
    }

    /// A copy (the network may duplicate; a share inside is copied deliberately).
    pub fn duplicate(&self) -> Request {
        match self {
            Request::Prepare { config, share } => {
                Request::Prepare { config: config.clone(), share: share.duplicate() }
            }
            Request::Commit { epoch, digest } => Request::Commit { epoch: *epoch, digest: *digest },
            Request::PrepareAndCommit { config } => {
                Request::PrepareAndCommit { config: config.clone() }
            }
            Request::GetShare { epoch, digest } => {
                Request::GetShare { epoch: *epoch, digest: *digest }
            }
            Request::GetLegacyShare => Request::GetLegacyShare,
            Request::Status => Request::Status,
        }
    }
}

/// What a node reports about itself (§6.11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatusReport {
    /// The reporting node.
    pub node_id: NodeId,
    /// Its latest committed epoch and that configuration's digest.
    pub committed: Option<(Epoch, Digest)>,
    /// Its highest prepared epoch and digest (may equal the committed one).
    pub prepared: Option<(Epoch, Digest)>,
    /// Set when it learned it was left out of a committed epoch.
    pub expunged: Option<Epoch>,
    /// The epoch whose secrets it holds unlocked, if any.
    pub unlocked: Option<Epoch>,
    /// Whether it still holds a legacy share package.
    pub has_legacy_share: bool,
    /// How many alarms it has raised.
    pub alarms: u64,
}

/// A node's answer to a request.
#[derive(Debug)]
pub enum Response {
    /// Prepared (configuration and share are durable).
    PrepareAck {
        /// The epoch.
        epoch: Epoch,
        /// The digest of the stored configuration.
        digest: Digest,
    },
    /// Committed (durable).
    CommitAck {
        /// The epoch.
        epoch: Epoch,
    },
    /// PrepareAndCommit accepted: the node is rebuilding its share from peers.
    CatchingUp {
        /// The epoch.
        epoch: Epoch,
    },
    /// A share of `epoch`.
    Share {
        /// The epoch.
        epoch: Epoch,
        /// The digest of the configuration the sender holds for it.
        digest: Digest,
        /// The sender's share.
        share: Share,
    },
    /// The sender has committed a later epoch that includes the requester.
    CommitAdvance {
        /// That configuration.
        config: Arc<Configuration>,
    },
    /// The requester was left out of committed epoch `epoch`.
    Expunged {
        /// The epoch that left it out.
        epoch: Epoch,
    },
    /// The sender's legacy share package.
    LegacyShare(LegacyPackage),
    /// The sender's state.
    Status(NodeStatusReport),
    /// Refused, with a typed reason.
    Error {
        /// The request refused.
        request: RequestKind,
        /// The epoch it was about.
        epoch: Option<Epoch>,
        /// Why.
        error: NodeError,
    },
}

impl Response {
    /// A copy (the network may duplicate; a share inside is copied deliberately).
    pub fn duplicate(&self) -> Response {
        match self {
            Response::PrepareAck { epoch, digest } => {
                Response::PrepareAck { epoch: *epoch, digest: *digest }
            }
            Response::CommitAck { epoch } => Response::CommitAck { epoch: *epoch },
            Response::CatchingUp { epoch } => Response::CatchingUp { epoch: *epoch },
            Response::Share { epoch, digest, share } => {
                Response::Share { epoch: *epoch, digest: *digest, share: share.duplicate() }
            }
            Response::CommitAdvance { config } => {
                Response::CommitAdvance { config: config.clone() }
            }
            Response::Expunged { epoch } => Response::Expunged { epoch: *epoch },
            Response::LegacyShare(p) => Response::LegacyShare(p.duplicate()),
            Response::Status(s) => Response::Status(s.clone()),
            Response::Error { request, epoch, error } => {
                Response::Error { request: *request, epoch: *epoch, error: error.clone() }
            }
        }
    }
}

/// Why a node refused a request. Every refusal leaves its durable state unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// The caller's identity may not make this call (DESIGN §3).
    #[error("{caller} may not call {request:?}")]
    Unauthorized {
        /// Who called.
        caller: Peer,
        /// What.
        request: RequestKind,
    },
    /// The configuration is for another cluster.
    #[error("configuration is for another cluster")]
    WrongCluster,
    /// This node was expunged and does no protocol work until wiped (§6.9).
    #[error("this node was expunged at epoch {0}")]
    Expunged(Epoch),
    /// The epoch is not after this node's latest committed one.
    #[error("epoch {epoch} is not after the committed epoch {committed}")]
    StaleEpoch {
        /// The epoch asked about.
        epoch: Epoch,
        /// This node's latest committed epoch.
        committed: Epoch,
    },
    /// A newer attempt was already prepared.
    #[error("epoch {epoch} is superseded by prepared epoch {newer}")]
    Superseded {
        /// The epoch asked about.
        epoch: Epoch,
        /// The newer prepared epoch.
        newer: Epoch,
    },
    /// This node (or the requester) is not a member of the epoch.
    #[error("{node} is not a member of epoch {epoch}")]
    NotAMember {
        /// The epoch.
        epoch: Epoch,
        /// Who is not a member.
        node: NodeId,
    },
    /// The share does not match its digest in the configuration.
    #[error("share does not match its digest in epoch {0}")]
    ShareDigestMismatch(Epoch),
    /// The share fails the Feldman check.
    #[error("share fails verification against epoch {0}'s commitments")]
    ShareVerificationFailed(Epoch),
    /// A different configuration is already stored for this epoch.
    #[error("a different configuration is stored for epoch {0}")]
    MismatchedConfiguration(Epoch),
    /// Commit of an epoch this node has not prepared.
    #[error("epoch {0} was not prepared here")]
    NotPrepared(Epoch),
    /// No share is held for this epoch.
    #[error("no share held for epoch {0}")]
    NoShare(Epoch),
    /// No legacy share package is held.
    #[error("no legacy share held")]
    NoLegacyShare,
}
