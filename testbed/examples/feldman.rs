//! What one member's check of a Prepare costs (BENCHMARKS.md, "mesh rotation"): decoding
//! the K + 1 commitments and the Feldman check of its share, at the thresholds of a
//! 32-node rack and of 256- and 1024-member meshes. Here, not in the core: the core reads
//! no clock.
//!
//!     cargo run --release -p tq-testbed --example feldman

use std::time::{Duration, Instant};

use rand_chacha::rand_core::SeedableRng;
use tq_protocol::Threshold;
use tq_protocol::crypto::sharing::{Commitments, deal, random_secret, verify_share};

/// The median of `runs` timings of `f`.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut t: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    t.sort();
    t[runs / 2]
}

fn main() {
    println!("{:>5} {:>5} {:>14} {:>22}", "N", "K", "decode K+1", "Feldman check (x = N)");
    for (n, k) in [(32usize, 17usize), (256, 129), (1024, 513)] {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(n as u64);
        let threshold = Threshold::new(k, n).expect("a valid threshold");
        let d = deal(&random_secret(&mut rng), threshold, n, &mut rng);
        let bytes = d.commitments.as_bytes().to_vec();
        let decode = median(51, || {
            let c = Commitments::from_bytes(threshold, bytes.clone()).expect("they decode");
            std::hint::black_box(c);
        });
        // The largest x costs the most doublings.
        let share = d.shares.last().expect("n shares");
        let check = median(51, || verify_share(share, &d.commitments).expect("a valid share"));
        println!("{n:>5} {k:>5} {:>11.3} ms {:>19.3} ms", ms(decode), ms(check));
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
