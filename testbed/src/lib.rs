//! # tq-testbed
//!
//! Drives everything in tq: the deterministic cluster simulation (`sim`, `replay`, from
//! tq-sim) over the real protocol state machines; local clusters of the real service
//! processes (`up`, `restart`, `demo`); fault runs against them (`faults`, `netfaults`) and
//! benchmarks.

pub mod bench;
pub mod demo;
pub mod faults;
pub mod local;
pub mod netfaults;
pub mod up;
