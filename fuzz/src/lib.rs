//! # tq-fuzz
//!
//! The harnesses behind the cargo-fuzz targets in `fuzz_targets/`, one module per target,
//! each with `run(data)` (what libFuzzer calls) and `seeds()` (the hand-made inputs
//! `examples/seeds.rs` writes into `corpus/`, so the fuzzer starts past the decoders).
//!
//! A harness panics only when tq broke a rule: every panic is a finding. Nothing here uses
//! a clock or an unseeded RNG, so every crash input replays exactly.

pub mod codec;
pub mod coordinator_messages;
pub mod dealt;
pub mod input;
pub mod node_messages;
pub mod share_combine;
pub mod wire_decode;

/// Every fuzz target, by the name of its binary in `fuzz_targets/`.
pub const TARGETS: [&str; 5] =
    ["codec", "coordinator_messages", "node_messages", "share_combine", "wire_decode"];

/// Runs `data` through the harness of `target` (for replaying inputs outside libFuzzer).
pub fn run(target: &str, data: &[u8]) {
    match target {
        "codec" => codec::run(data),
        "coordinator_messages" => coordinator_messages::run(data),
        "node_messages" => node_messages::run(data),
        "share_combine" => share_combine::run(data),
        "wire_decode" => wire_decode::run(data),
        other => panic!("no fuzz target {other}"),
    }
}

/// The hand-made seed inputs of `target`.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    match target {
        "codec" => codec::seeds(),
        "coordinator_messages" => coordinator_messages::seeds(),
        "node_messages" => node_messages::seeds(),
        "share_combine" => share_combine::seeds(),
        "wire_decode" => wire_decode::seeds(),
        other => panic!("no fuzz target {other}"),
    }
}
