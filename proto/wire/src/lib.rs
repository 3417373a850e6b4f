//! # tq-wire
//!
//! Everything between `tq-protocol` and the network: the `tq.v1` protobuf schema and its
//! generated gRPC code, conversions into core types (once, with typed errors), the one place
//! node refusals become gRPC statuses, and the mTLS transport with identities taken from
//! certificates' SPIFFE URI SANs (DESIGN §3). Also the logging and process hardening both
//! services share.

pub mod client;
pub mod convert;
pub mod durable;
pub mod failpoint;
pub mod harden;
pub mod identity;
pub mod logging;
pub mod node_service;
pub mod pb;
pub mod pki;
pub mod process;
pub mod refusal;
pub mod serde_duration;
pub mod server;
pub mod tls;

/// This build's version, reported by agents and the coordinator.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
