//! Staleness and the status version (DESIGN §6.11, §8): what the coordinator shows of each
//! node, and when a poller sees it change.

use std::time::Duration;

use super::*;

/// Found by the `coordinator_messages` fuzz target: a commit ack for an epoch that is not
/// the attempt's (here after a restart, from a member catching up) raised the member's
/// committed epoch in status without moving the status version.
#[test]
fn a_commit_ack_moves_the_status_version_section_8() {
    let mut cl = Cluster::new(&FIVE, CoordinatorOptions::default());
    cl.reconfigure(&FIVE, 3, 1);
    let (mut c, out) =
        Coordinator::restore(cl.now, cl.c.ledger().clone(), CoordinatorOptions::default()).unwrap();
    assert!(out.is_empty());
    let v = c.status_version();
    c.handle_response(cl.now, &id("a"), cl.now, Response::CommitAck { epoch: e(1) });
    assert!(c.status_version() > v, "the status changed: its version must move");
    let a = c.status(cl.now).members.into_iter().find(|m| m.node_id == id("a")).unwrap();
    assert_eq!(a.committed_epoch, Some(e(1)));
}

/// Epoch 1 committed while "e" was down, and "e" silent for 40 s since: stale for no
/// contact, and lagging for longer than `lag_grace`.
fn cluster_with_e_silent() -> Cluster {
    let mut cl = Cluster::new(&FIVE, CoordinatorOptions::default());
    cl.down.insert(id("e"));
    cl.reconfigure(&FIVE, 3, 1);
    for _ in 0..20 {
        cl.tick(Duration::from_secs(2));
    }
    cl
}

/// Why `who` is stale, as status shows it.
fn stale_reason(cl: &Cluster, who: &str) -> Option<&'static str> {
    let m = cl.c.status(cl.now).members.into_iter().find(|m| m.node_id == id(who)).unwrap();
    m.stale.map(|r| r.as_str())
}

/// Found by the `coordinator_messages` fuzz target: a stale node that answered between ticks
/// showed as fresh without a new status version, and when it fell silent again the next
/// tick compared against the old stale set and did not move the version either, so a
/// conditional poll kept seeing it fresh.
#[test]
fn staleness_seen_between_ticks_moves_the_status_version_section_8() {
    let mut cl = Cluster::new(&FIVE, CoordinatorOptions::default());
    cl.reconfigure(&FIVE, 3, 1);
    cl.down.insert(id("a"));
    for _ in 0..8 {
        cl.tick(Duration::from_secs(2));
    }
    assert_eq!(stale_reason(&cl, "a"), Some("no_contact"));
    // An answer that changes nothing but the contact time.
    let v = cl.c.status_version();
    cl.c.handle_response(cl.now, &id("a"), cl.now, Response::CatchingUp { epoch: e(1) });
    assert_eq!(stale_reason(&cl, "a"), None);
    assert!(cl.c.status_version() > v, "the node became fresh: the version must move");
    loop {
        let v = cl.c.status_version();
        cl.tick(Duration::from_secs(2));
        if stale_reason(&cl, "a").is_some() {
            assert!(cl.c.status_version() > v, "stale again: the version must move");
            break;
        }
    }
}

/// Found by the `coordinator_messages` fuzz target, with the test above: a node's stale
/// reason could change (no contact → lagging) under one version.
#[test]
fn a_new_stale_reason_moves_the_status_version_section_8() {
    let mut cl = cluster_with_e_silent();
    assert_eq!(stale_reason(&cl, "e"), Some("no_contact"));
    let v = cl.c.status_version();
    let report = cl.nodes[&id("e")].status();
    cl.c.handle_response(cl.now, &id("e"), cl.now, Response::Status(report));
    assert_eq!(stale_reason(&cl, "e"), Some("lagging"), "heard from, but still behind");
    assert!(cl.c.status_version() > v, "the reason changed: the version must move");
}

/// Found by the `coordinator_messages` fuzz target, with the tests above: a commit that left
/// out a member whose lag clock was still running showed it lagging at once, but the next
/// tick compared against staleness from before the commit and did not move the version
/// when it stopped lagging.
#[test]
fn staleness_after_a_commit_moves_the_status_version_section_8() {
    let mut cl = cluster_with_e_silent();
    // Back: it catches up to epoch 1 and reports it, but its lag clock runs until a tick.
    cl.down.clear();
    cl.tick(Duration::from_secs(2));
    assert_eq!(stale_reason(&cl, "e"), None);
    cl.reconfigure(&["a", "b", "c", "d"], 3, 2);
    assert_eq!(stale_reason(&cl, "e"), Some("lagging"));
    let v = cl.c.status_version();
    // Too soon for polls or retries: only the lag clock moves.
    cl.tick(Duration::from_millis(1));
    assert_eq!(stale_reason(&cl, "e"), None, "left out of the latest epoch, it no longer lags");
    assert!(cl.c.status_version() > v, "the status changed: its version must move");
}

#[test]
fn staleness_reasons_section_6_11() {
    let opts = CoordinatorOptions::default();
    let mut cl = Cluster::new(&FIVE, opts);
    cl.reconfigure(&FIVE, 3, 1);
    cl.tick(Duration::from_secs(1));
    let stale = |cl: &Cluster, who: &str| {
        cl.c.status(cl.now).members.into_iter().find(|m| m.node_id == id(who)).unwrap().stale
    };
    assert_eq!(stale(&cl, "a"), None);
    cl.down.insert(id("a"));
    for _ in 0..8 {
        cl.tick(Duration::from_secs(2));
    }
    assert!(matches!(stale(&cl, "a"), Some(StaleReason::NoContact { .. })));
    let v = cl.c.status_version();
    cl.down.clear();
    cl.tick(Duration::from_secs(2));
    cl.tick(Duration::from_secs(2));
    assert_eq!(stale(&cl, "a"), None);
    assert!(cl.c.status_version() > v, "staleness changing moves the status version");
    cl.down.insert(id("a"));
    for _ in 0..8 {
        cl.tick(Duration::from_secs(2));
    }
    assert_eq!(stale(&cl, "b"), None);
    // A node that reports older state than before is rolled back.
    cl.down.clear();
    let d = cl.nodes.remove(&id("d")).unwrap();
    drop(d);
    cl.nodes.insert(
        id("d"),
        Node::restore(id("d"), CLUSTER, NodeState::default(), NodeOptions::default()).unwrap(),
    );
    cl.down.insert(id("d")); // keep it from catching up during this check
    let report = cl.nodes[&id("d")].status();
    let asked = cl.now + Duration::from_millis(1);
    cl.c.handle_response(asked, &id("d"), asked, Response::Status(report));
    assert!(matches!(stale(&cl, "d"), Some(StaleReason::RolledBack { .. })));
}

#[test]
fn a_commit_ack_counts_as_a_report_of_the_committed_epoch_section_6_11() {
    let mut cl = Cluster::new(&FIVE, CoordinatorOptions::default());
    cl.reconfigure(&FIVE, 3, 1);
    assert_eq!(cl.c.ledger().latest_committed(), Some(e(1)));
    // No status poll since the commit: "d" said it committed epoch 1 only by its commit ack.
    // It comes back with its state rolled back to before the commit.
    let d = Node::restore(id("d"), CLUSTER, NodeState::default(), NodeOptions::default()).unwrap();
    cl.nodes.insert(id("d"), d);
    let asked = cl.now + Duration::from_millis(1);
    cl.now = asked + Duration::from_millis(1);
    let report = cl.nodes[&id("d")].status();
    cl.c.handle_response(cl.now, &id("d"), asked, Response::Status(report));
    let d = cl.c.status(cl.now).members.into_iter().find(|m| m.node_id == id("d")).unwrap();
    assert_eq!(d.stale, Some(StaleReason::RolledBack { was: e(1), now: None }));
}

/// The answer to a poll sent before a commit ack arrived can reach the coordinator after
/// it, on its own stream, with the state the node had before it committed: that is no
/// rollback (§6.11), and the node keeps counting and showing its commit. Seen in
/// `t20_configure` as a member marked stale `rolled_back` right after the first commit.
#[test]
fn a_poll_answered_before_a_commit_and_delivered_after_its_ack_is_no_rollback_section_6_11() {
    let mut cl = Cluster::new(&FIVE, CoordinatorOptions::default());
    let before = cl.nodes[&id("d")].status();
    let asked = cl.now;
    cl.now = cl.now + Duration::from_millis(5);
    cl.reconfigure(&FIVE, 3, 1);
    cl.now = cl.now + Duration::from_millis(5);
    cl.c.handle_response(cl.now, &id("d"), asked, Response::Status(before));
    let d = cl.c.status(cl.now).members.into_iter().find(|m| m.node_id == id("d")).unwrap();
    assert_eq!(d.stale, None);
    assert_eq!(d.committed_epoch, Some(e(1)));
    // An enrollment's summary is taken before it travels: the same holds, and the
    // coordinator polls the node to find out.
    let mut summary = cl.nodes[&id("d")].status();
    summary.committed = None;
    let out = cl.c.enroll(cl.now, "d.test:1".into(), summary);
    let polled = |o: &CoordinatorOutput| matches!(o, CoordinatorOutput::Send { to, request: Request::Status } if *to == id("d"));
    assert!(out.iter().any(polled));
    assert_eq!(stale_reason(&cl, "d"), None);
}

/// Polls are answered on separate streams, so the answer to an earlier poll can arrive after
/// the answer to a later one. §6.11 keeps the highest prepared epoch reported: the older
/// answer must not replace the newer one (the node would seem to have lost its prepare, and
/// be sent PrepareAndCommit where Commit does).
#[test]
fn an_answer_to_an_earlier_poll_does_not_replace_a_later_one_section_6_11() {
    let report = |prepared: u64| NodeStatusReport {
        node_id: id("d"),
        committed: Some((e(1), Digest([1; 32]))),
        prepared: Some((e(prepared), Digest([prepared as u8; 32]))),
        expunged: None,
        unlocked: None,
        has_legacy_share: false,
        alarms: 0,
    };
    let at = Time::from_millis;
    let mut t = Tracker::default();
    assert!(t.record_report(at(10), Some(at(8)), report(2)));
    assert!(!t.record_report(at(11), Some(at(5)), report(1)), "an older answer changes nothing");
    assert_eq!(t.report.as_ref().and_then(|r| r.prepared).map(|(e, _)| e), Some(e(2)));
    assert_eq!(t.last_contact, Some(at(11)), "it still counts as contact");
    // An answer to a later poll is taken, whatever it says.
    assert!(t.record_report(at(12), Some(at(9)), report(1)));
    assert_eq!(t.report.as_ref().and_then(|r| r.prepared).map(|(e, _)| e), Some(e(1)));
    // An enrollment's summary (asked at an unknown time) does not reset the order.
    assert!(t.record_report(at(13), None, report(3)));
    assert!(!t.record_report(at(14), Some(at(7)), report(2)));
    assert_eq!(t.report.as_ref().and_then(|r| r.prepared).map(|(e, _)| e), Some(e(3)));
}

/// Found in review: a member restored from a backup taken before it prepared still counted
/// its ack, so an operator's commit could rest on K acks with one of the shares gone (I6).
/// Its enrollment's summary (taken at an unknown time) calls for a poll; the poll's answer,
/// taken after the ack, takes the ack back (§6.11: older state than it reported).
#[test]
fn a_member_that_lost_its_acked_prepare_stops_counting_section_6_11() {
    let three = ["a", "b", "c"];
    let opts = CoordinatorOptions { commit_policy: CommitPolicy::Manual, ..Default::default() };
    let mut cl = Cluster::new(&three, opts);
    let backups: BTreeMap<NodeId, NodeState> =
        cl.nodes.iter().map(|(id, n)| (id.clone(), n.state().duplicate())).collect();
    cl.reconfigure(&three, 2, 1);
    let acks = |cl: &Cluster| cl.c.attempt_status().map(|a| a.acks);
    assert_eq!(acks(&cl), Some(3));
    for n in ["b", "c"] {
        let restored = backups[&id(n)].duplicate();
        let node = Node::restore(id(n), CLUSTER, restored, NodeOptions::default()).unwrap();
        cl.nodes.insert(id(n), node);
        cl.now = cl.now + Duration::from_millis(10);
        let out = cl.c.enroll(cl.now, format!("{n}:1"), cl.nodes[&id(n)].status());
        let poll = |o: &CoordinatorOutput| match o {
            CoordinatorOutput::Send { to, request: Request::Status } => *to == id(n),
            _ => false,
        };
        assert!(out.iter().any(poll), "{n}'s summary lacks its Prepare: poll it: {out:?}");
        cl.run(out);
    }
    assert_eq!(acks(&cl), Some(1));
    assert_eq!(
        cl.c.commit(cl.now).unwrap_err(),
        CommitError::NotEnoughAcks { epoch: e(1), acks: 1, needed: 2 }
    );
    assert_eq!(cl.c.ledger().latest_committed(), None);
}
