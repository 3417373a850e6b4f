//! # tq-testbed
//!
//! Drives everything in tq: the deterministic cluster simulation (`sim`, `replay`) over the
//! real protocol state machines.

pub mod sim;
