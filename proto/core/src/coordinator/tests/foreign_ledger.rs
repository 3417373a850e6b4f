//! A coordinator started on a ledger that is not the cluster's latest (DESIGN §6.1, §6.2,
//! §7): it refuses to deal over members that hold epochs it never made.

use super::*;

/// Epochs 1 and 2 committed on FIVE; the ledger as it was after epoch 1, too.
fn committed_twice() -> (Cluster, Ledger) {
    let mut cl = Cluster::new(&FIVE, CoordinatorOptions::default());
    cl.reconfigure(&FIVE, 3, 1);
    let after_one = cl.c.ledger().clone();
    cl.reconfigure(&FIVE, 3, 2);
    assert_eq!(cl.c.ledger().latest_committed(), Some(e(2)));
    (cl, after_one)
}

/// The coordinator restarts on `ledger`, and every agent enrolls with its state.
fn restart_on(cl: &mut Cluster, ledger: Ledger) {
    let (c, _) = Coordinator::restore(cl.now, ledger, CoordinatorOptions::default()).unwrap();
    cl.c = c;
    for n in FIVE {
        cl.enroll(n);
    }
}

fn foreign(node: &str, epoch: u64, what: &'static str) -> ReconfigureError {
    ReconfigureError::ForeignState { node: id(node), epoch: e(epoch), what }
}

/// An empty ledger (a mistyped `state_dir`, a replaced disk) would hand out epochs 1, 2, …:
/// refused as stale until one passed the members' epoch 2, then accepted as an initial
/// configuration, and their secrets replaced. It is refused before any epoch is reserved.
#[test]
fn an_empty_ledger_does_not_deal_over_a_committed_cluster_section_6_1() {
    let (mut cl, _) = committed_twice();
    restart_on(&mut cl, Ledger::new(CLUSTER));
    let before = format!("{:?}", cl.c.ledger());
    let req = |seed| ReconfigureRequest {
        members: members(&FIVE),
        threshold: 3,
        previous_epoch: None,
        entropy: entropy(seed),
    };
    assert_eq!(cl.c.reconfigure(cl.now, req(3)).unwrap_err(), foreign("a", 2, "committed"));
    let legacy = cl.c.upgrade_from_legacy(cl.now, &members(&FIVE), 3, entropy(4)).unwrap_err();
    assert_eq!(legacy, foreign("a", 2, "committed"));
    assert_eq!(format!("{:?}", cl.c.ledger()), before, "nothing was reserved");
    assert!(cl.nodes.values().all(|n| n.state().latest_committed() == Some(e(2))));
}

/// A ledger restored from a backup taken before epoch 2 committed: the members hold a
/// commit it never made (and, after a prepare, an epoch it never handed out).
#[test]
fn a_ledger_older_than_the_cluster_is_refused_section_7() {
    let (mut cl, after_one) = committed_twice();
    restart_on(&mut cl, after_one.clone());
    let req = ReconfigureRequest {
        members: members(&FIVE),
        threshold: 3,
        previous_epoch: Some(e(1)),
        entropy: entropy(5),
    };
    assert_eq!(cl.c.reconfigure(cl.now, req).unwrap_err(), foreign("a", 2, "committed"));

    // The latest ledger again: the same request goes through.
    let latest = {
        let mut l = Ledger::new(CLUSTER);
        cl.persisted.iter().for_each(|c| l.apply(c));
        l
    };
    restart_on(&mut cl, latest);
    cl.reconfigure(&FIVE, 3, 6);
    assert_eq!(cl.c.ledger().latest_committed(), Some(e(3)));
}
