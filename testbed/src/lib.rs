//! # tq-testbed
//!
//! Drives everything in tq: the deterministic cluster simulation (`sim`, `replay`) over the
//! real protocol state machines; local clusters of the real service processes (`up`,
//! `restart`, `demo`).

pub mod bench;
pub mod demo;
pub mod faults;
pub mod local;
pub mod sim;
pub mod up;
