//! # tq-wire
//!
//! Everything between `tq-protocol` and the network: the `tq.v1` protobuf schema and its
//! generated gRPC code, conversions into core types (once, with typed errors), the one place
//! node refusals become gRPC statuses, and the mTLS transport with identities taken from
//! certificates' SPIFFE URI SANs (DESIGN §3). Also the logging and process hardening both
//! services share.
//!
//! Without the default `transport` feature only the schema's messages, the conversions and
//! the refusals build, with none of the network stack: that is all the fuzz targets need.

#[cfg(feature = "transport")]
pub mod authenticated;
#[cfg(feature = "transport")]
pub mod client;
pub mod convert;
#[cfg(feature = "transport")]
pub mod durable;
#[cfg(feature = "transport")]
pub mod failpoint;
#[cfg(feature = "transport")]
pub mod harden;
#[cfg(feature = "transport")]
pub mod identity;
#[cfg(feature = "transport")]
pub mod logging;
#[cfg(feature = "transport")]
pub mod node_service;
pub mod pb;
#[cfg(feature = "transport")]
pub mod pki;
#[cfg(feature = "transport")]
pub mod process;
pub mod refusal;
#[cfg(feature = "transport")]
pub mod serde_duration;
#[cfg(feature = "transport")]
pub mod server;
#[cfg(feature = "transport")]
pub mod status_bytes;
#[cfg(feature = "transport")]
pub mod tls;

/// This build's version, reported by agents and the coordinator.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
