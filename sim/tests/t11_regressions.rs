//! Event logs of failures the simulation found, replayed against today's code: each must
//! now run clean. Every log was captured by putting the fixed bug back and letting the
//! simulation find it again.
//!
//! - `stale-commit-advance-alarm`: a late answer to an old GetShare (CommitAdvance to an
//!   epoch the coordinator committed) raised an alarm with an honest coordinator (I7).
//! - `lag-after-catch-up`: a node that had caught up still counted as lagging until the next
//!   tick, so its ack did not count and the operator's commit was refused (I9).
//! - `readd-removed-node`: a node removed and expunged was named again without a wipe; it
//!   refuses all work forever and the cluster never converged (I9).
//! - `removed-member-stays-fresh`: a member that enrolled with empty state kept that standing
//!   after a commit left it out, was re-added, and was sent a share while expunged (I8).
//! - `late-poll-answer-rollback`: the answer to a Status poll sent before a member
//!   committed arrived after its CommitAck, and the coordinator showed the member rolled
//!   back (I5 as status shows it, §6.11).
//! - `wipe-during-attempt`: a wiped node, named again, acked the attempt's Prepare and
//!   restarted; the coordinator then counted it removed (its state was not empty), and the
//!   simulated operator wiped it, so that epoch committed with K − 1 durable shares (I6).
//!   Now a node holding only that attempt's Prepare stays the newcomer it was, and the
//!   operator never wipes a member of the attempt in flight (either alone passes).

use tq_sim::replay::violations;
use tq_sim::run::CaseLog;

#[test]
fn every_recorded_failure_now_runs_clean() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("regressions directory")
        .flatten()
        .map(|e| e.path())
        .collect();
    names.sort();
    assert!(names.len() >= 6, "regression logs missing from {}", dir.display());
    for path in names {
        let body = std::fs::read(&path).expect("readable log");
        let log: CaseLog = serde_json::from_slice(&body).expect("a case log");
        let v = violations(&log);
        assert!(v.is_empty(), "{} breaks again: {v:?}", path.display());
    }
}
