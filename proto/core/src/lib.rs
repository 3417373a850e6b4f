//! # tq-protocol
//!
//! The trust-quorum protocol of `DESIGN.md` as a pure library: the types of §4, the
//! cryptography of §5, and the node and coordinator state machines of §6, with the status
//! model of §8.
//!
//! Nothing here does I/O, reads a clock or owns a random number generator: time arrives as
//! [`Time`], randomness as [`Entropy`]. Every collection iterates in a fixed order. That is
//! what lets `tq-testbed` simulate a whole cluster reproducibly from one seed; guard it.
//!
//! Both state machines share one shape: inputs are method calls, outputs are returned as an
//! ordered list whose `Persist` entries must be durable before anything after them takes
//! effect (DESIGN §7). See [`node::Node`] and [`coordinator::Coordinator`].

#![deny(missing_docs)]

pub mod alarm;
pub mod bugs;
pub mod codec;
pub mod config;
pub mod coordinator;
pub mod crypto;
pub mod epoch;
pub mod ids;
pub mod messages;
pub mod node;
pub mod quorum;
pub mod recorded;
pub mod time;

#[cfg(test)]
mod testutil;

pub use alarm::{Alarm, Alarms};
pub use bugs::DANGER_BUGS_COMPILED;
pub use config::{ConfigError, Configuration, ConfigurationParts, Member};
pub use crypto::{Digest, Entropy, Secret, Share, ShareIndex};
pub use epoch::{Epoch, EpochError};
pub use ids::{ClusterId, NodeId, Peer};
pub use messages::{NodeError, NodeStatusReport, Request, RequestKind, Response};
pub use quorum::{QuorumError, Threshold, ThresholdPolicy};
pub use recorded::DANGER_RECORD_SECRETS_COMPILED;
pub use time::Time;
