//! The simulation as a property test (DESIGN §9): 320 random cases per run, split so the
//! test runner can spread them over cores. Each case checks I1–I8 after every event and I9
//! at the end. A failure names the case and its replayable event log.

use tq_sim::run::{Shape, run_case};

const SEED: u64 = 0x7a_5eed;
const CASES_PER_TEST: u64 = 40;

fn cases(batch: u64) {
    let shape = Shape { max_nodes: 16, min_actions: 300, max_actions: 2000 };
    for case in batch * CASES_PER_TEST..(batch + 1) * CASES_PER_TEST {
        let r = run_case(SEED, case, &shape, None);
        if let Some((invariant, event, detail)) = &r.first {
            let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
            let path = dir.join(format!("sim-case-{SEED}-{case}.json"));
            let body = serde_json::to_vec(&r.log).expect("event logs serialize");
            std::fs::write(&path, body).expect("the target directory is writable");
            panic!(
                "case {case}: {invariant} broken at event {event}: {detail}\n\
                 replay: cargo run -p tq-sim -- replay {}",
                path.display()
            );
        }
    }
}

#[test]
fn batch_0() {
    cases(0);
}
#[test]
fn batch_1() {
    cases(1);
}
#[test]
fn batch_2() {
    cases(2);
}
#[test]
fn batch_3() {
    cases(3);
}
#[test]
fn batch_4() {
    cases(4);
}
#[test]
fn batch_5() {
    cases(5);
}
#[test]
fn batch_6() {
    cases(6);
}
#[test]
fn batch_7() {
    cases(7);
}
