//! What one status poll costs the coordinator before the bytes reach TLS (BENCHMARKS.md):
//! cloning and encoding the published `ClusterStatus`, as every poll did, against copying
//! the `EncodedStatus` encoded once per publication; and what a client spends decoding it.
//!
//!     cargo run --release -p tq-wire --example status_cost

use std::time::{Duration, Instant};

use prost::Message;
use tq_wire::pb;
use tq_wire::status_bytes::EncodedStatus;

/// A status of `n` members, all committed, none stale: what a quiet mesh publishes.
fn status(n: usize) -> pb::ClusterStatus {
    let members = (0..n)
        .map(|i| pb::MemberStatus {
            node_id: format!("node-{i:04}"),
            state: "committed".into(),
            prepared_at_ms: 1_764_800_000_000,
            committed_at_ms: 1_764_800_000_100,
            last_contact_ms: 1_764_800_000_200,
            committed_epoch: 12,
            ..Default::default()
        })
        .collect();
    pb::ClusterStatus {
        cluster_id: "0123456789abcdef0123456789abcdef".into(),
        latest_committed_epoch: 12,
        members,
        version: 99,
        ..Default::default()
    }
}

/// Mean time of `f` over enough runs for about 50 ms.
fn mean(mut f: impl FnMut() -> usize) -> Duration {
    let start = Instant::now();
    let (mut runs, mut sink) = (0u32, 0usize);
    while start.elapsed() < Duration::from_millis(50) {
        sink = sink.wrapping_add(f());
        runs += 1;
    }
    std::hint::black_box(sink);
    start.elapsed() / runs
}

fn main() {
    println!(
        "{:>5} {:>7} {:>16} {:>14} {:>14}",
        "N", "bytes", "clone + encode", "encoded copy", "client decode"
    );
    for n in [32usize, 256, 1024] {
        let s = status(n);
        let encoded = EncodedStatus::new(&s);
        // tonic encodes each response into a fresh buffer.
        let clone_encode = mean(|| std::hint::black_box(s.clone().encode_to_vec()).len());
        let copy = mean(|| std::hint::black_box(encoded.clone().encode_to_vec()).len());
        let wire = s.encode_to_vec();
        let decode = mean(|| pb::ClusterStatus::decode(&wire[..]).map_or(0, |d| d.members.len()));
        let us = |d: Duration| format!("{:.1} µs", d.as_secs_f64() * 1e6);
        println!(
            "{n:>5} {:>7} {:>16} {:>14} {:>14}",
            wire.len(),
            us(clone_encode),
            us(copy),
            us(decode)
        );
    }
}
