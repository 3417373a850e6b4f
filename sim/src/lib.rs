//! # tq-sim
//!
//! The deterministic cluster simulation (issue: protocol core and simulation).
//!
//! A case is a setup and a list of events. [`world::World`] applies events to the real
//! state machines of `tq-protocol`, a simulated network and simulated disks; the checker
//! tests DESIGN §9's invariants after every output. Every random choice is drawn from the
//! run's seed and recorded in the event log, so `replay` reproduces a failure exactly.

pub mod bugs;
pub(crate) mod checker;
pub mod cli;
pub mod event;
pub(crate) mod generate;
pub(crate) mod legacy_damage;
pub(crate) mod liveness;
pub(crate) mod network;
pub mod replay;
pub mod run;
pub(crate) mod tamper;
pub(crate) mod world;
