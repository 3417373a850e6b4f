//! Coordinator rules with exact effects (DESIGN §6.1–§6.4, §6.8–§6.10; staleness in
//! `staleness.rs`), driven against real [`Node`]s through a synchronous in-memory router.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::*;
use crate::crypto::legacy::{self, LegacyPackage};
use crate::node::{Node, NodeOptions, NodeOutput, NodeState};
use crate::testutil::{CLUSTER, e, id};
use crate::{NodeError, QuorumError, RequestKind, Secret};
use rand_core::SeedableRng;

mod foreign_ledger;
mod manual_policy;
mod staleness;

const FIVE: [&str; 5] = ["a", "b", "c", "d", "e"];

fn entropy(seed: u8) -> Entropy {
    Entropy::from_bytes(&mut [seed; 32])
}

fn members(names: &[&str]) -> BTreeSet<NodeId> {
    names.iter().map(|n| id(n)).collect()
}

struct Cluster {
    now: Time,
    c: Coordinator,
    nodes: BTreeMap<NodeId, Node>,
    /// Nodes that drop everything (down).
    down: BTreeSet<NodeId>,
    persisted: Vec<LedgerChange>,
}

impl Cluster {
    fn new(names: &[&str], options: CoordinatorOptions) -> Self {
        let (c, out) = Coordinator::restore(Time::ZERO, Ledger::new(CLUSTER), options).unwrap();
        assert!(out.is_empty());
        let nodes = names
            .iter()
            .map(|n| {
                (
                    id(n),
                    Node::restore(id(n), CLUSTER, NodeState::default(), NodeOptions::default())
                        .unwrap(),
                )
            })
            .collect();
        let mut cl =
            Cluster { now: Time::ZERO, c, nodes, down: BTreeSet::new(), persisted: Vec::new() };
        for n in names {
            cl.enroll(n);
        }
        cl
    }

    /// The node's agent (re)starts and enrolls with its state summary.
    fn enroll(&mut self, n: &str) {
        let summary = self.nodes[&id(n)].status();
        for o in self.c.enroll(self.now, format!("{n}:1"), summary) {
            if let CoordinatorOutput::Persist(change) = o {
                self.persisted.push(change);
            }
        }
    }

    /// Carries out coordinator outputs, delivering sends and feeding answers back, until quiet.
    fn run(&mut self, out: Vec<CoordinatorOutput>) {
        let mut queue: std::collections::VecDeque<CoordinatorOutput> = out.into();
        while let Some(o) = queue.pop_front() {
            match o {
                CoordinatorOutput::Persist(change) => self.persisted.push(change),
                CoordinatorOutput::Send { to, request } => {
                    if self.down.contains(&to) {
                        continue;
                    }
                    let outs = self.nodes.get_mut(&to).unwrap().handle_request(
                        self.now,
                        &Peer::Coordinator,
                        request,
                    );
                    let mut node_sends = Vec::new();
                    for no in outs {
                        match no {
                            NodeOutput::Reply(r) => {
                                queue.extend(self.c.handle_response(self.now, &to, self.now, r))
                            }
                            NodeOutput::Send { to: peer, request } => {
                                node_sends.push((to.clone(), peer, request))
                            }
                            _ => {}
                        }
                    }
                    for (from, peer, request) in node_sends {
                        self.node_to_node(from, peer, request);
                    }
                }
            }
        }
    }

    fn node_to_node(&mut self, from: NodeId, to: NodeId, request: Request) {
        if self.down.contains(&to) {
            return;
        }
        let outs = self.nodes.get_mut(&to).unwrap().handle_request(
            self.now,
            &Peer::Node(from.clone()),
            request,
        );
        for o in outs {
            if let NodeOutput::Reply(r) = o {
                let more = self.nodes.get_mut(&from).unwrap().handle_response(self.now, &to, r);
                for m in more {
                    if let NodeOutput::Send { to: peer, request } = m {
                        self.node_to_node(from.clone(), peer, request);
                    }
                }
            }
        }
    }

    fn reconfigure(&mut self, names: &[&str], k: usize, seed: u8) {
        let req = ReconfigureRequest {
            members: members(names),
            threshold: k,
            previous_epoch: self.c.ledger().latest_committed(),
            entropy: entropy(seed),
        };
        let out = self.c.reconfigure(self.now, req).unwrap();
        self.run(out);
    }

    fn tick(&mut self, by: Duration) {
        self.now = self.now + by;
        let out = self.c.tick(self.now);
        self.run(out);
    }

    fn secret_of(&self, who: &str) -> Secret {
        let n = &self.nodes[&id(who)];
        let mut n2 =
            Node::restore(n.id().clone(), CLUSTER, n.state().duplicate(), NodeOptions::default())
                .unwrap();
        let out = n2.unlock(self.now);
        // Route the unlock among a copy of the cluster's nodes.
        let mut nodes: BTreeMap<NodeId, Node> = self
            .nodes
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    Node::restore(
                        k.clone(),
                        CLUSTER,
                        v.state().duplicate(),
                        NodeOptions::default(),
                    )
                    .unwrap(),
                )
            })
            .collect();
        nodes.insert(id(who), n2);
        let mut tmp = Cluster {
            now: self.now,
            c: Coordinator::restore(self.now, Ledger::new(CLUSTER), CoordinatorOptions::default())
                .unwrap()
                .0,
            nodes,
            down: self.down.clone(),
            persisted: vec![],
        };
        for o in out {
            if let NodeOutput::Send { to, request } = o {
                tmp.node_to_node(id(who), to, request);
            }
        }
        tmp.nodes[&id(who)].unlocked().unwrap().secrets.0.values().next_back().unwrap().duplicate()
    }
}

#[test]
fn initial_configuration_effects_section_6_1() {
    let mut cl = Cluster::new(&FIVE, CoordinatorOptions::default());
    let req = ReconfigureRequest {
        members: members(&FIVE),
        threshold: 3,
        previous_epoch: None,
        entropy: entropy(1),
    };
    let out = cl.c.reconfigure(Time::ZERO, req).unwrap();
    assert!(
        matches!(out[0], CoordinatorOutput::Persist(LedgerChange::EpochReserved(ep)) if ep == e(1))
    );
    let prepares: Vec<&NodeId> = out[1..]
        .iter()
        .map(|o| match o {
            CoordinatorOutput::Send { to, request: Request::Prepare { .. } } => to,
            other => panic!("expected a Prepare, got {other:?}"),
        })
        .collect();
    assert_eq!(prepares.len(), 5);
    cl.run(out);
    // N = 5, K = 3 → Z = 1: commit after 4 acks; all 5 were up, so all committed.
    let decisions: Vec<_> =
        cl.persisted.iter().filter(|c| matches!(c, LedgerChange::Committed { .. })).collect();
    assert_eq!(decisions.len(), 1);
    assert_eq!(cl.c.ledger().latest_committed(), Some(e(1)));
    for n in cl.nodes.values() {
        assert_eq!(n.state().latest_committed(), Some(e(1)));
    }
    let s = cl.c.status(cl.now);
    assert_eq!(s.attempt.unwrap().phase, status::PhaseStatus::Committed);
    assert!(s.members.iter().all(|m| m.state == status::MemberState::Committed));
}

#[test]
fn commit_waits_for_k_plus_z_and_is_durable_before_commits_section_6_4() {
    let mut cl = Cluster::new(&FIVE, CoordinatorOptions::default());
    cl.down = members(&["d", "e"]);
    cl.reconfigure(&FIVE, 3, 1);
    // Only 3 acks: K = 3 but K + Z = 4: no decision.
    assert_eq!(cl.c.ledger().latest_committed(), None);
    assert_eq!(cl.c.status(cl.now).attempt.unwrap().acks, 3);
    cl.down.remove(&id("d"));
    let mut out = cl.c.tick(cl.now + Duration::from_secs(3));
    cl.now = cl.now + Duration::from_secs(3);
    // The retried Prepare to d brings the 4th ack; the decision precedes every Commit.
    let mut order = Vec::new();
    let first: Vec<_> = std::mem::take(&mut out);
    cl.run(first);
    for change in &cl.persisted {
        order.push(matches!(change, LedgerChange::Committed { .. }));
    }
    assert!(order.contains(&true));
    assert_eq!(cl.c.ledger().latest_committed(), Some(e(1)));
    // e was down: it gets PrepareAndCommit when back, and catches up from peers.
    cl.down.clear();
    cl.tick(Duration::from_secs(3));
    assert_eq!(cl.nodes[&id("e")].state().latest_committed(), Some(e(1)));
}

#[test]
fn refusals_leave_the_ledger_untouched_section_6_2() {
    let mut cl = Cluster::new(&FIVE, CoordinatorOptions::default());
    let before = format!("{:?}", cl.c.ledger());
    let mut try_req = |m: &[&str], k: usize, prev: Option<Epoch>| {
        let req = ReconfigureRequest {
            members: members(m),
            threshold: k,
            previous_epoch: prev,
            entropy: entropy(1),
        };
        cl.c.reconfigure(Time::ZERO, req).unwrap_err()
    };
    assert_eq!(
        try_req(&FIVE, 3, Some(e(1))),
        ReconfigureError::PreviousEpochMismatch { claimed: Some(e(1)), actual: None }
    );
    assert_eq!(
        try_req(&FIVE, 2, None),
        ReconfigureError::Quorum(QuorumError::BelowMajority { k: 2, n: 5, min: 3 })
    );
    assert_eq!(
        try_req(&FIVE, 5, None),
        ReconfigureError::Quorum(QuorumError::Threshold { k: 5, n: 5 })
    );
    assert_eq!(try_req(&["a", "b"], 1, None), ReconfigureError::Quorum(QuorumError::Members(2)));
    assert_eq!(try_req(&["a", "b", "zz"], 2, None), ReconfigureError::UnknownNode(id("zz")));
    assert_eq!(format!("{:?}", cl.c.ledger()), before);
    cl.down = members(&["c", "d", "e"]);
    cl.reconfigure(&FIVE, 3, 1);
    let req = ReconfigureRequest {
        members: members(&FIVE),
        threshold: 3,
        previous_epoch: None,
        entropy: entropy(2),
    };
    assert_eq!(cl.c.reconfigure(cl.now, req).unwrap_err(), ReconfigureError::Busy(e(1)));
}

#[test]
fn reconfiguration_carries_every_prior_secret_section_6_2() {
    let mut cl = Cluster::new(&["a", "b", "c", "d", "e", "f"], CoordinatorOptions::default());
    cl.reconfigure(&["a", "b", "c", "d"], 3, 1);
    let s1 = cl.secret_of("a");
    // Add two, remove one, change K.
    cl.reconfigure(&["b", "c", "d", "e", "f"], 3, 2);
    assert_eq!(cl.c.ledger().latest_committed(), Some(e(2)));
    let s2 = cl.secret_of("f");
    assert!(!s1.ct_eq(&s2), "a fresh secret");
    // Rotate with the same members.
    cl.reconfigure(&["b", "c", "d", "e", "f"], 4, 3);
    let n = &cl.nodes[&id("e")];
    assert_eq!(n.state().latest_committed(), Some(e(3)));
    let config = n.state().committed_config().unwrap().clone();
    let s3 = cl.secret_of("e");
    let history =
        crate::crypto::prior::open(&s3, &CLUSTER, e(3), config.prior_secrets().unwrap()).unwrap();
    assert!(history.0[&e(1)].ct_eq(&s1));
    assert!(history.0[&e(2)].ct_eq(&s2));
}

#[test]
fn abort_and_timeout_section_6_8() {
    let opts =
        CoordinatorOptions { prepare_timeout: Duration::from_secs(60), ..Default::default() };
    let mut cl = Cluster::new(&FIVE, opts);
    cl.down = members(&["c", "d", "e"]);
    cl.reconfigure(&FIVE, 3, 1);
    let out = cl.c.abort().unwrap();
    assert!(
        matches!(&out[..], [CoordinatorOutput::Persist(LedgerChange::Aborted { epoch, reason: AbortReason::Operator })] if *epoch == e(1))
    );
    assert_eq!(cl.c.abort().unwrap_err(), AbortError::NothingInProgress);
    // The next attempt skips the aborted epoch; this one times out.
    cl.reconfigure(&FIVE, 3, 2);
    assert_eq!(cl.c.status(cl.now).attempt.unwrap().epoch, e(2));
    cl.tick(Duration::from_secs(61));
    assert_eq!(cl.c.ledger().aborted.get(&e(2)), Some(&AbortReason::Timeout));
    cl.down.clear();
    cl.reconfigure(&FIVE, 3, 3);
    assert_eq!(cl.c.ledger().latest_committed(), Some(e(3)));
    assert_eq!(cl.c.abort().unwrap_err(), AbortError::AlreadyCommitted(e(3)));
}

#[test]
fn restart_mid_prepare_aborts_that_epoch_section_2() {
    let mut cl = Cluster::new(&FIVE, CoordinatorOptions::default());
    cl.down = members(&["c", "d", "e"]);
    cl.reconfigure(&FIVE, 3, 1);
    let mut ledger = Ledger::new(CLUSTER);
    for change in &cl.persisted {
        ledger.apply(change);
    }
    let (c2, out) = Coordinator::restore(cl.now, ledger, CoordinatorOptions::default()).unwrap();
    assert!(
        matches!(&out[..], [CoordinatorOutput::Persist(LedgerChange::Aborted { epoch, reason: AbortReason::CoordinatorRestarted })] if *epoch == e(1))
    );
    cl.c = c2;
    cl.down.clear();
    cl.reconfigure(&FIVE, 3, 2);
    assert_eq!(cl.c.ledger().latest_committed(), Some(e(2)));
}

/// Found by the `coordinator_messages` fuzz target: a NotPrepared refusal of a Commit that
/// was never sent, from a node outside the committed epoch, was answered with a
/// PrepareAndCommit to that node (§6.4 sends them only to members).
#[test]
fn not_prepared_from_a_non_member_sends_nothing_section_6_4() {
    let mut cl = Cluster::new(&FIVE, CoordinatorOptions::default());
    cl.reconfigure(&["a", "b", "c", "d"], 3, 1);
    let refusal = || Response::Error {
        request: RequestKind::Commit,
        epoch: Some(e(1)),
        error: NodeError::NotPrepared(e(1)),
    };
    let out = cl.c.handle_response(cl.now, &id("e"), cl.now, refusal());
    assert!(out.is_empty(), "{out:?}");
    let out = cl.c.handle_response(cl.now, &id("a"), cl.now, refusal());
    assert!(
        matches!(
            &out[..],
            [CoordinatorOutput::Send { to, request: Request::PrepareAndCommit { .. } }] if *to == id("a")
        ),
        "{out:?}"
    );
}

/// Gives every node of `cl` its package of a K = 3 legacy split of a fixed secret, after
/// `damage`; returns the secret.
fn give_legacy_split(cl: &mut Cluster, damage: impl Fn(&NodeId, &mut LegacyPackage)) -> Secret {
    let mut rng = rand_chacha::ChaCha20Rng::from_seed([4; 32]);
    let legacy_secret = Secret::from_bytes(&mut [0x42; 32]);
    let ids: Vec<NodeId> = FIVE.iter().map(|n| id(n)).collect();
    let pkgs = legacy::split(&legacy_secret, Threshold::new(3, 5).unwrap(), &ids, &mut rng);
    for (who, mut pkg) in pkgs {
        damage(&who, &mut pkg);
        let n = cl.nodes.get_mut(&who).unwrap();
        let mut st = n.state().duplicate();
        st.legacy = Some(pkg);
        *n = Node::restore(who.clone(), CLUSTER, st, NodeOptions::default()).unwrap();
    }
    legacy_secret
}

/// Damage for [`give_legacy_split`]: the packages of `holders` describe another split (one
/// other holder's digest changed), yet each stays consistent with its own share.
fn misdescribed(holders: &'static [&'static str]) -> impl Fn(&NodeId, &mut LegacyPackage) {
    move |who, pkg| {
        if holders.iter().any(|h| *who == id(h)) {
            let other = if *who == id("a") { id("b") } else { id("a") };
            pkg.digests.insert(other, Digest([7; 32]));
        }
    }
}

/// The coordinator's alarms, without their times.
fn alarms(cl: &Cluster) -> Vec<Alarm> {
    cl.c.status(cl.now).alarms.into_iter().map(|(_, a)| a).collect()
}

/// The legacy secret `who` holds as epoch 1's, after committing epoch 2.
fn carried_legacy_secret(cl: &Cluster, who: &str) -> Secret {
    let n = &cl.nodes[&id(who)];
    let config = n.state().committed_config().unwrap().clone();
    let s2 = cl.secret_of(who);
    let mut history =
        crate::crypto::prior::open(&s2, &CLUSTER, e(2), config.prior_secrets().unwrap()).unwrap();
    history.0.remove(&Epoch::FIRST).unwrap()
}

#[test]
fn legacy_upgrade_carries_the_legacy_secret_as_epoch_1_section_6_10() {
    let mut cl = Cluster::new(&FIVE, CoordinatorOptions::default());
    let legacy_secret = give_legacy_split(&mut cl, |_, _| {});
    let out = cl.c.upgrade_from_legacy(cl.now, &members(&FIVE), 3, entropy(9)).unwrap();
    assert!(
        matches!(out[0], CoordinatorOutput::Persist(LedgerChange::EpochReserved(ep)) if ep == e(2))
    );
    cl.run(out);
    assert_eq!(cl.c.ledger().latest_committed(), Some(e(2)));
    assert!(cl.nodes[&id("a")].state().legacy.is_none(), "legacy shares deleted on commit");
    assert!(carried_legacy_secret(&cl, "a").ct_eq(&legacy_secret));
    assert!(cl.c.status(cl.now).alarms.is_empty());
    assert_eq!(
        cl.c.upgrade_from_legacy(cl.now, &members(&FIVE), 3, entropy(9)).unwrap_err(),
        ReconfigureError::AlreadyUpgraded(e(2))
    );
}

/// The first package to arrive used to define the split for all the others: a damaged one
/// (here a's, which describes another split yet is consistent with its own share) made
/// every honest package look inconsistent, raised alarms naming b … e, and stalled the
/// upgrade until it timed out. Packages are grouped by the split they describe; K + 1 that
/// agree and rebuild one secret decide, and only a is named.
#[test]
fn a_damaged_legacy_package_that_answers_first_is_named_and_outvoted_section_6_10() {
    let mut cl = Cluster::new(&FIVE, CoordinatorOptions::default());
    let legacy_secret = give_legacy_split(&mut cl, misdescribed(&["a"]));
    let out = cl.c.upgrade_from_legacy(cl.now, &members(&FIVE), 3, entropy(9)).unwrap();
    let asked: Vec<&NodeId> = out
        .iter()
        .filter_map(|o| match o {
            CoordinatorOutput::Send { to, request: Request::GetLegacyShare } => Some(to),
            _ => None,
        })
        .collect();
    assert_eq!(asked.first(), Some(&&id("a")), "a answers first");
    cl.run(out);
    assert_eq!(cl.c.ledger().latest_committed(), Some(e(2)));
    assert!(carried_legacy_secret(&cl, "c").ct_eq(&legacy_secret));
    let alarms = alarms(&cl);
    assert_eq!(alarms, [Alarm::LegacyInconsistent { from: Peer::Node(id("a")) }]);
}

/// Packages that describe two splits, neither with K + 1 holders among the members: the
/// upgrade cannot succeed. Once every member has answered it stops at once, naming both
/// groups (nothing shows which is right), instead of waiting out the prepare timeout.
#[test]
fn legacy_packages_of_two_splits_stop_the_upgrade_and_name_both_groups_section_6_10() {
    let mut cl = Cluster::new(&FIVE, CoordinatorOptions::default());
    give_legacy_split(&mut cl, misdescribed(&["d", "e"]));
    let out = cl.c.upgrade_from_legacy(cl.now, &members(&FIVE), 3, entropy(9)).unwrap();
    cl.run(out);
    assert_eq!(cl.c.ledger().aborted.get(&e(2)), Some(&AbortReason::ShareCollectionFailed));
    assert_eq!(cl.c.ledger().latest_committed(), None);
    assert!(cl.nodes.values().all(|n| n.state().configs.is_empty()), "nothing was prepared");
    let alarms = alarms(&cl);
    let holders = vec![vec![id("a"), id("b"), id("c")], vec![id("d"), id("e")]];
    assert_eq!(alarms, [Alarm::LegacySplitsDisagree { holders }]);
}

/// Legacy shares are asked of every known node, not only the new members: with d's package
/// damaged, a, b, c and d answering leave the honest split one share short, and e, a holder
/// that is not a member of the new epoch, completes it. Counting only the members would have
/// stopped the upgrade there.
#[test]
fn a_legacy_holder_outside_the_new_members_can_still_complete_the_split_section_6_10() {
    let mut cl = Cluster::new(&FIVE, CoordinatorOptions::default());
    let legacy_secret = give_legacy_split(&mut cl, misdescribed(&["d"]));
    let four = members(&["a", "b", "c", "d"]);
    let out = cl.c.upgrade_from_legacy(cl.now, &four, 3, entropy(9)).unwrap();
    cl.run(out);
    assert_eq!(cl.c.ledger().latest_committed(), Some(e(2)));
    assert!(carried_legacy_secret(&cl, "a").ct_eq(&legacy_secret));
    let alarms = alarms(&cl);
    assert_eq!(alarms, [Alarm::LegacyInconsistent { from: Peer::Node(id("d")) }]);
}

/// The same disagreement with a member silent: it might still complete the larger group,
/// so the upgrade waits, and at the prepare timeout the groups are named.
#[test]
fn a_legacy_upgrade_timing_out_among_disagreeing_packages_names_the_groups_section_6_10() {
    let opts =
        CoordinatorOptions { prepare_timeout: Duration::from_secs(60), ..Default::default() };
    let mut cl = Cluster::new(&FIVE, opts);
    give_legacy_split(&mut cl, misdescribed(&["d"]));
    cl.down = members(&["e"]);
    let out = cl.c.upgrade_from_legacy(cl.now, &members(&FIVE), 3, entropy(9)).unwrap();
    cl.run(out);
    assert!(cl.c.ledger().aborted.is_empty(), "e may still answer");
    cl.tick(Duration::from_secs(61));
    assert_eq!(cl.c.ledger().aborted.get(&e(2)), Some(&AbortReason::Timeout));
    let alarms = alarms(&cl);
    let holders = vec![vec![id("a"), id("b"), id("c")], vec![id("d")]];
    assert_eq!(alarms, [Alarm::LegacySplitsDisagree { holders }]);
}

#[test]
fn a_removed_node_rejoins_only_after_a_wipe_section_6_9() {
    let mut cl = Cluster::new(&FIVE, CoordinatorOptions::default());
    cl.reconfigure(&FIVE, 3, 1);
    cl.reconfigure(&["a", "b", "c", "d"], 3, 2);
    let req = |seed| ReconfigureRequest {
        members: members(&FIVE),
        threshold: 3,
        previous_epoch: Some(e(2)),
        entropy: entropy(seed),
    };
    assert_eq!(cl.c.reconfigure(cl.now, req(3)).unwrap_err(), ReconfigureError::Removed(id("e")));
    // Restarting with its old state is not enough.
    cl.enroll("e");
    assert_eq!(cl.c.reconfigure(cl.now, req(3)).unwrap_err(), ReconfigureError::Removed(id("e")));
    // Wiped and enrolled again: it may come back, and catches up like a new member.
    cl.nodes.insert(
        id("e"),
        Node::restore(id("e"), CLUSTER, NodeState::default(), NodeOptions::default()).unwrap(),
    );
    cl.enroll("e");
    let out = cl.c.reconfigure(cl.now, req(3)).unwrap();
    cl.run(out);
    assert_eq!(cl.c.ledger().latest_committed(), Some(e(3)));
    assert_eq!(cl.nodes[&id("e")].state().latest_committed(), Some(e(3)));
    assert!(!cl.c.ledger().known[&id("e")].fresh, "a commit makes it a member again");
}

#[test]
fn a_readded_node_restarting_after_its_prepare_is_still_the_newcomer_section_6_9() {
    let mut cl = Cluster::new(&FIVE, CoordinatorOptions::default());
    cl.reconfigure(&FIVE, 3, 1);
    cl.reconfigure(&["a", "b", "c", "d"], 3, 2);
    cl.nodes.insert(
        id("e"),
        Node::restore(id("e"), CLUSTER, NodeState::default(), NodeOptions::default()).unwrap(),
    );
    cl.enroll("e");
    // Named again, e prepares; with d down, K = 4 of 5 needs every ack, so nothing commits.
    cl.down = members(&["d"]);
    cl.reconfigure(&FIVE, 4, 3);
    assert!(cl.nodes[&id("e")].state().digest(e(3)).is_some());
    // Its agent restarts and reports that Prepare: the wiped newcomer it was, not a removed
    // member back with old state (whose retries would stop, and whom an operator would be
    // told to wipe while its ack counts).
    cl.enroll("e");
    assert!(cl.c.ledger().known[&id("e")].fresh);
    assert!(!cl.c.ledger().is_removed(&id("e")));
    // After an abort it may be named again without another wipe.
    let out = cl.c.abort().unwrap();
    cl.run(out);
    cl.down.clear();
    cl.reconfigure(&FIVE, 3, 4);
    assert_eq!(cl.c.ledger().latest_committed(), Some(e(4)));
    assert_eq!(cl.nodes[&id("e")].state().latest_committed(), Some(e(4)));
}

#[test]
fn a_fresh_node_that_reports_expunged_loses_its_standing_section_6_9() {
    let mut cl = Cluster::new(&["a", "b", "c", "d", "e", "x"], CoordinatorOptions::default());
    assert!(cl.c.ledger().known[&id("x")].fresh);
    let mut report = cl.nodes[&id("x")].status();
    report.expunged = Some(e(3));
    let out = cl.c.handle_response(cl.now, &id("x"), cl.now, Response::Status(report));
    assert!(matches!(
        &out[..],
        [CoordinatorOutput::Persist(LedgerChange::NodeEnrolled { fresh: false, .. })]
    ));
    assert!(!cl.c.ledger().known[&id("x")].fresh);
}

/// Reconfigures all five with K = 3, holding back the Prepare to `late`.
fn reconfigure_holding_prepare(cl: &mut Cluster, late: &str) -> Vec<CoordinatorOutput> {
    let req = ReconfigureRequest {
        members: members(&FIVE),
        threshold: 3,
        previous_epoch: None,
        entropy: entropy(1),
    };
    let out = cl.c.reconfigure(cl.now, req).unwrap();
    let (held, rest): (Vec<_>, Vec<_>) = out.into_iter().partition(|o| {
        matches!(o, CoordinatorOutput::Send { to, request: Request::Prepare { .. } } if *to == id(late))
    });
    cl.run(rest);
    held
}

#[test]
fn a_prepare_overtaken_by_the_catch_up_gets_its_commit_at_once_section_6_4() {
    let mut cl = Cluster::new(&FIVE, CoordinatorOptions::default());
    let held = reconfigure_holding_prepare(&mut cl, "e");
    // Four acks decided the commit; e got PrepareAndCommit instead and caught up from its
    // peers, but answered CatchingUp: the coordinator does not know it finished.
    assert_eq!(cl.c.ledger().latest_committed(), Some(e(1)));
    assert_eq!(cl.nodes[&id("e")].state().latest_committed(), Some(e(1)));
    assert_eq!(cl.c.status(cl.now).attempt.unwrap().phase, status::PhaseStatus::Committing);
    // The late Prepare is refused (e committed it already): Commit follows at once, without
    // waiting for a retry, and every member is known committed.
    cl.run(held);
    assert_eq!(cl.c.status(cl.now).attempt.unwrap().phase, status::PhaseStatus::Committed);
}

#[test]
fn a_prepare_acked_after_the_decision_gets_its_commit_at_once_section_6_4() {
    let mut cl = Cluster::new(&FIVE, CoordinatorOptions::default());
    cl.down = members(&["e"]);
    let held = reconfigure_holding_prepare(&mut cl, "e");
    assert_eq!(cl.c.ledger().latest_committed(), Some(e(1)));
    // e gets PrepareAndCommit while its peers cannot answer: it starts catching up.
    cl.down = members(&["a", "b", "c", "d"]);
    let config = cl.c.ledger().latest.clone().unwrap();
    cl.run(vec![CoordinatorOutput::Send {
        to: id("e"),
        request: Request::PrepareAndCommit { config },
    }]);
    assert_eq!(cl.nodes[&id("e")].state().latest_committed(), None);
    // Then its Prepare arrives and is acked: the Commit follows at once.
    cl.down.clear();
    cl.run(held);
    assert_eq!(cl.nodes[&id("e")].state().latest_committed(), Some(e(1)));
    assert_eq!(cl.c.status(cl.now).attempt.unwrap().phase, status::PhaseStatus::Committed);
}

#[test]
fn a_commit_ack_spares_the_member_a_prepare_and_commit_in_the_next_attempt_section_6_4() {
    let mut cl = Cluster::new(&FIVE, CoordinatorOptions::default());
    cl.reconfigure(&FIVE, 3, 1);
    // Every member acked the commit of epoch 1; none has been polled for its status since.
    assert_eq!(cl.c.status(cl.now).attempt.unwrap().phase, status::PhaseStatus::Committed);
    let req = ReconfigureRequest {
        members: members(&FIVE),
        threshold: 3,
        previous_epoch: Some(e(1)),
        entropy: entropy(2),
    };
    // Epoch 2's share requests are not answered: its attempt stays in flight.
    let _unanswered = cl.c.reconfigure(cl.now, req).unwrap();
    cl.now = cl.now + Duration::from_secs(3);
    let out = cl.c.tick(cl.now);
    let resent: Vec<_> = out
        .iter()
        .filter(|o| {
            matches!(o, CoordinatorOutput::Send { request: Request::PrepareAndCommit { config }, .. }
                if config.epoch() == e(1))
        })
        .collect();
    assert!(resent.is_empty(), "epoch 1 is known committed on every member: {resent:?}");
    // A status report of less than the acked commit (a rollback, §6.11) brings it back.
    let d = Node::restore(id("d"), CLUSTER, NodeState::default(), NodeOptions::default()).unwrap();
    cl.c.handle_response(cl.now, &id("d"), cl.now, Response::Status(d.status()));
    cl.now = cl.now + Duration::from_secs(3);
    let out = cl.c.tick(cl.now);
    assert!(out.iter().any(|o| matches!(o, CoordinatorOutput::Send { to, request: Request::PrepareAndCommit { config } }
        if *to == id("d") && config.epoch() == e(1))), "{out:?}");
}
