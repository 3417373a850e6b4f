//! The manual commit policy (DESIGN §6.4, §6.8): the operator commits at K acks or more;
//! the prepare timeout aborts an epoch short of K + Z acks, one that has them waits.

use std::time::Duration;

use super::*;

/// FIVE under the manual policy, preparing epoch 1 (K = 3, K + Z = 4) with only `up` up.
fn preparing_with(up: &[&str]) -> Cluster {
    let opts = CoordinatorOptions {
        commit_policy: CommitPolicy::Manual,
        prepare_timeout: Duration::from_secs(60),
        ..Default::default()
    };
    let mut cl = Cluster::new(&FIVE, opts);
    cl.down = FIVE.iter().filter(|n| !up.contains(n)).map(|n| id(n)).collect();
    cl.reconfigure(&FIVE, 3, 1);
    let a = cl.c.attempt_status().unwrap();
    assert_eq!((a.acks, a.acks_needed), (up.len(), 4));
    cl
}

/// Nothing committed yet; the operator's commit takes.
fn operator_commits(cl: &mut Cluster) {
    assert_eq!(cl.c.ledger().latest_committed(), None, "manual policy never commits by itself");
    let out = cl.c.commit(cl.now).unwrap();
    assert!(matches!(
        out[0],
        CoordinatorOutput::Persist(LedgerChange::Committed { by_operator: true, .. })
    ));
}

#[test]
fn commit_needs_k_acks_section_6_4() {
    let mut cl = preparing_with(&["a", "b"]);
    assert_eq!(
        cl.c.commit(cl.now).unwrap_err(),
        CommitError::NotEnoughAcks { epoch: e(1), acks: 2, needed: 3 }
    );
    cl.down.remove(&id("c"));
    cl.tick(Duration::from_secs(3));
    operator_commits(&mut cl);
}

/// Ticks past the prepare timeout in steps short enough that the up members stay fresh.
fn outlive_the_timeout(cl: &mut Cluster) {
    for _ in 0..14 {
        cl.tick(Duration::from_secs(5));
    }
}

#[test]
fn an_epoch_with_its_acks_waits_for_the_operator_section_6_8() {
    let mut cl = preparing_with(&["a", "b", "c", "d"]);
    outlive_the_timeout(&mut cl);
    assert_eq!(cl.c.ledger().aborted.get(&e(1)), None);
    operator_commits(&mut cl);
}

#[test]
fn an_epoch_short_of_k_plus_z_acks_times_out_section_6_8() {
    let mut cl = preparing_with(&["a", "b", "c"]);
    outlive_the_timeout(&mut cl);
    assert_eq!(cl.c.ledger().aborted.get(&e(1)), Some(&AbortReason::Timeout));
}

/// An ack that went stale no longer holds the epoch open: with "d" silent the acks fall
/// short of K + Z, and the timeout aborts it.
#[test]
fn an_epoch_whose_acks_went_stale_times_out_section_6_8() {
    let mut cl = preparing_with(&["a", "b", "c", "d"]);
    cl.down.insert(id("d"));
    outlive_the_timeout(&mut cl);
    assert_eq!(cl.c.ledger().aborted.get(&e(1)), Some(&AbortReason::Timeout));
}
