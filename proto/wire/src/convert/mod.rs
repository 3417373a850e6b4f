//! Wire messages into `tq-protocol` types, once, with typed errors (parse, don't validate),
//! and back.

mod address_book;
mod config;
mod node;
mod status;

pub use address_book::address_book_from_pb;
pub use config::{config_from_pb, config_to_pb, share_from_pb, share_to_pb};
pub use node::{
    NodeRequest, NodeResponse, legacy_from_pb, legacy_to_pb, report_from_pb, report_to_pb,
    request_from_pb, request_to_pb, response_from_rpc,
};
pub use status::{WallClock, attempt_to_pb, cluster_status_to_pb};

use tonic::Status;
use tq_protocol::EpochError;
use tq_protocol::config::ConfigError;
use tq_protocol::crypto::ShareError;
use tq_protocol::crypto::legacy::LegacyError;
use tq_protocol::ids::NodeIdError;

/// A message that does not convert. Becomes `InvalidArgument`; nothing is changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// A required field is absent.
    #[error("missing {0}")]
    Missing(&'static str),
    /// A fixed-size field of the wrong size.
    #[error("{field} must be {expected} bytes, got {got}")]
    Length {
        /// The field.
        field: &'static str,
        /// Its size.
        expected: usize,
        /// What arrived.
        got: usize,
    },
    /// An epoch that is not valid.
    #[error("{field}: {error}")]
    Epoch {
        /// The field.
        field: &'static str,
        /// Why.
        error: EpochError,
    },
    /// A node id that is not valid.
    #[error("{field}: {error}")]
    NodeId {
        /// The field.
        field: &'static str,
        /// Why.
        error: NodeIdError,
    },
    /// A node listed twice where each may appear once.
    #[error("{field}: node {node} is listed twice")]
    Duplicate {
        /// The field.
        field: &'static str,
        /// The node.
        node: tq_protocol::NodeId,
    },
    /// A configuration that breaks DESIGN §4.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// A malformed share.
    #[error("invalid share: {0}")]
    Share(#[from] ShareError),
    /// A malformed legacy package.
    #[error("invalid legacy share: {0}")]
    Legacy(#[from] LegacyError),
}

impl From<WireError> for Status {
    fn from(e: WireError) -> Status {
        Status::invalid_argument(e.to_string())
    }
}

pub(crate) fn fixed<const N: usize>(field: &'static str, b: &[u8]) -> Result<[u8; N], WireError> {
    b.try_into().map_err(|_| WireError::Length { field, expected: N, got: b.len() })
}

pub(crate) fn epoch(field: &'static str, n: u64) -> Result<tq_protocol::Epoch, WireError> {
    tq_protocol::Epoch::new(n).map_err(|error| WireError::Epoch { field, error })
}

pub(crate) fn node_id(field: &'static str, s: &str) -> Result<tq_protocol::NodeId, WireError> {
    tq_protocol::NodeId::new(s).map_err(|error| WireError::NodeId { field, error })
}
