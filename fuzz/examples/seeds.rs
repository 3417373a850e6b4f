//! Writes the hand-made seed inputs into `corpus/<target>/`, named by content, so the
//! fuzzers start from real messages and protocol runs. From `fuzz/`:
//! `cargo run --release --example seeds`, then `./run --minimize` to fold them in.

use std::path::Path;

fn main() -> std::io::Result<()> {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for target in tq_fuzz::TARGETS {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir)?;
        let seeds = tq_fuzz::seeds(target);
        for seed in &seeds {
            // A seed that fails its own harness is a bug in the seed or in tq: stop here.
            tq_fuzz::run(target, seed);
            std::fs::write(dir.join(format!("seed-{:016x}", fnv1a(seed))), seed)?;
        }
        println!("{target}: {} seeds", seeds.len());
    }
    Ok(())
}

/// A stable content hash for file names (no dependency for something this small).
fn fnv1a(data: &[u8]) -> u64 {
    data.iter()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x1000_0000_01b3))
}
