//! Node rules, one test each (DESIGN §6.3–§6.9). Each refusal asserts: the typed error, no
//! `Persist`, and unchanged durable state.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use super::*;
use crate::crypto::prior::SecretHistory;
use crate::crypto::{Digest, Share, ShareIndex};
use crate::testutil::{CLUSTER, Dealt, dealt, e, id};
use crate::{ClusterId, Configuration};

const FIVE: [&str; 5] = ["a", "b", "c", "d", "e"];
const T0: Time = Time::ZERO;

fn node(name: &str) -> Node {
    Node::restore(id(name), CLUSTER, NodeState::default(), NodeOptions::default()).unwrap()
}

fn reply(out: &[NodeOutput]) -> &Response {
    let replies: Vec<&Response> = out
        .iter()
        .filter_map(|o| if let NodeOutput::Reply(r) = o { Some(r) } else { None })
        .collect();
    assert_eq!(replies.len(), 1, "exactly one reply: {out:?}");
    replies[0]
}

fn persisted(out: &[NodeOutput]) -> usize {
    out.iter().filter(|o| matches!(o, NodeOutput::Persist(_))).count()
}

fn prepare(n: &mut Node, d: &Dealt, who: &str) -> Vec<NodeOutput> {
    let req = Request::Prepare { config: d.config.clone(), share: d.share(who) };
    n.handle_request(T0, &Peer::Coordinator, req)
}

fn commit(n: &mut Node, d: &Dealt) -> Vec<NodeOutput> {
    let req = Request::Commit { epoch: d.config.epoch(), digest: d.config.digest() };
    n.handle_request(T0, &Peer::Coordinator, req)
}

/// Asserts a refusal: that error, nothing persisted, durable state as before.
fn refused(n: &mut Node, from: &Peer, req: Request, want: NodeError) {
    let before = format!("{:?}", n.state());
    let out = n.handle_request(T0, from, req);
    assert_eq!(persisted(&out), 0, "a refusal persists nothing: {out:?}");
    match reply(&out) {
        Response::Error { error, .. } => assert_eq!(*error, want),
        other => panic!("expected {want:?}, got {other:?}"),
    }
    assert_eq!(format!("{:?}", n.state()), before, "durable state unchanged");
}

fn committed_node(name: &str, d: &Dealt) -> Node {
    let mut n = node(name);
    prepare(&mut n, d, name);
    commit(&mut n, d);
    n
}

#[test]
fn prepare_persists_then_acks_section_6_3() {
    let d = dealt(1, None, &FIVE, 3, &SecretHistory::default(), 1);
    let mut n = node("a");
    let out = prepare(&mut n, &d, "a");
    assert!(matches!(out[0], NodeOutput::Persist(NodeChange::Prepared { .. })), "{out:?}");
    assert!(matches!(
        out[1],
        NodeOutput::Reply(Response::PrepareAck { epoch, digest }) if epoch == e(1) && digest == d.config.digest()
    ));
    assert_eq!(out.len(), 2);
    assert_eq!(n.state().highest_prepared(), Some(e(1)));
}

#[test]
fn prepare_from_non_coordinator_is_refused_section_6_3() {
    let d = dealt(1, None, &FIVE, 3, &SecretHistory::default(), 1);
    let mut n = node("a");
    for caller in [Peer::Node(id("b")), Peer::Operator("op".into())] {
        let req = Request::Prepare { config: d.config.clone(), share: d.share("a") };
        let want =
            NodeError::Unauthorized { caller: caller.clone(), request: RequestKind::Prepare };
        refused(&mut n, &caller, req, want);
    }
}

#[test]
fn prepare_for_another_cluster_is_refused_section_6_3() {
    let d = dealt(1, None, &FIVE, 3, &SecretHistory::default(), 1);
    let mut n = Node::restore(
        id("a"),
        ClusterId::from_bytes([9; 16]),
        NodeState::default(),
        NodeOptions::default(),
    )
    .unwrap();
    let req = Request::Prepare { config: d.config.clone(), share: d.share("a") };
    refused(&mut n, &Peer::Coordinator, req, NodeError::WrongCluster);
}

#[test]
fn prepare_when_expunged_is_refused_section_6_3() {
    let d = dealt(1, None, &FIVE, 3, &SecretHistory::default(), 1);
    let state = NodeState { expunged: Some(e(4)), ..Default::default() };
    let mut n = Node::restore(id("a"), CLUSTER, state, NodeOptions::default()).unwrap();
    let req = Request::Prepare { config: d.config.clone(), share: d.share("a") };
    refused(&mut n, &Peer::Coordinator, req, NodeError::Expunged(e(4)));
}

#[test]
fn prepare_at_or_below_committed_is_refused_section_6_3() {
    let d1 = dealt(1, None, &FIVE, 3, &SecretHistory::default(), 1);
    let d2 = dealt(2, Some(1), &FIVE, 3, &SecretHistory::default(), 2);
    let mut n = committed_node("a", &d1);
    prepare(&mut n, &d2, "a");
    commit(&mut n, &d2);
    for d in [&d1, &d2] {
        let req = Request::Prepare { config: d.config.clone(), share: d.share("a") };
        let want = NodeError::StaleEpoch { epoch: d.config.epoch(), committed: e(2) };
        refused(&mut n, &Peer::Coordinator, req, want);
    }
}

#[test]
fn prepare_older_than_a_prepared_epoch_is_refused_section_6_3() {
    let d2 = dealt(2, None, &FIVE, 3, &SecretHistory::default(), 2);
    let d3 = dealt(3, None, &FIVE, 3, &SecretHistory::default(), 3);
    let mut n = node("a");
    prepare(&mut n, &d3, "a");
    let req = Request::Prepare { config: d2.config.clone(), share: d2.share("a") };
    refused(&mut n, &Peer::Coordinator, req, NodeError::Superseded { epoch: e(2), newer: e(3) });
}

#[test]
fn prepare_to_a_non_member_is_refused_section_6_3() {
    let d = dealt(1, None, &["a", "b", "c"], 2, &SecretHistory::default(), 1);
    let mut n = node("z");
    let req = Request::Prepare { config: d.config.clone(), share: d.share("a") };
    refused(&mut n, &Peer::Coordinator, req, NodeError::NotAMember { epoch: e(1), node: id("z") });
}

#[test]
fn prepare_with_another_members_share_is_refused_and_alarmed_section_6_3() {
    let d = dealt(1, None, &FIVE, 3, &SecretHistory::default(), 1);
    let mut n = node("a");
    let req = Request::Prepare { config: d.config.clone(), share: d.share("b") };
    refused(&mut n, &Peer::Coordinator, req, NodeError::ShareDigestMismatch(e(1)));
    assert_eq!(n.alarms().total(), 1);
}

#[test]
fn prepare_with_share_off_the_polynomial_is_refused_section_6_3() {
    // A faulty coordinator records the digest of a bad share: the digest check passes, the
    // Feldman check must not.
    let d = dealt(1, None, &FIVE, 3, &SecretHistory::default(), 1);
    let bad = Share::from_bytes(ShareIndex::new(1).unwrap(), &[5; 32]).unwrap();
    let mut parts = d.config.to_parts();
    parts.members[0].2 = crate::crypto::digest::share_digest(&CLUSTER, e(1), &bad);
    let forged = Arc::new(Configuration::try_from(parts).unwrap());
    let mut n = node("a");
    let req = Request::Prepare { config: forged, share: bad };
    refused(&mut n, &Peer::Coordinator, req, NodeError::ShareVerificationFailed(e(1)));
    assert!(matches!(n.alarms().kept()[0].1, Alarm::BadShareFromCoordinator { .. }));
}

#[test]
fn a_second_configuration_for_an_epoch_is_refused_and_alarmed_section_6_3() {
    let d = dealt(1, None, &FIVE, 3, &SecretHistory::default(), 1);
    let other = dealt(1, None, &FIVE, 3, &SecretHistory::default(), 9);
    let mut n = node("a");
    prepare(&mut n, &d, "a");
    let req = Request::Prepare { config: other.config.clone(), share: other.share("a") };
    refused(&mut n, &Peer::Coordinator, req, NodeError::MismatchedConfiguration(e(1)));
    assert!(matches!(n.alarms().kept()[0].1, Alarm::MismatchedConfiguration { .. }));
}

#[test]
fn identical_prepare_acks_again_without_persisting_section_6_3() {
    let d = dealt(1, None, &FIVE, 3, &SecretHistory::default(), 1);
    let mut n = node("a");
    prepare(&mut n, &d, "a");
    let out = prepare(&mut n, &d, "a");
    assert_eq!(persisted(&out), 0);
    assert!(matches!(reply(&out), Response::PrepareAck { .. }));
    assert_eq!(n.alarms().total(), 0);
}

#[test]
fn commit_rules_section_6_4() {
    let d1 = dealt(1, None, &FIVE, 3, &SecretHistory::default(), 1);
    let d2 = dealt(2, Some(1), &FIVE, 3, &SecretHistory::default(), 2);
    let mut n = node("a");
    // Commit before Prepare.
    let req = Request::Commit { epoch: e(1), digest: d1.config.digest() };
    refused(&mut n, &Peer::Coordinator, req, NodeError::NotPrepared(e(1)));
    // From a node.
    let req = Request::Commit { epoch: e(1), digest: d1.config.digest() };
    let caller = Peer::Node(id("b"));
    let want = NodeError::Unauthorized { caller: caller.clone(), request: RequestKind::Commit };
    refused(&mut n, &caller, req, want);
    prepare(&mut n, &d1, "a");
    // Wrong digest.
    let req = Request::Commit { epoch: e(1), digest: Digest([1; 32]) };
    refused(&mut n, &Peer::Coordinator, req, NodeError::MismatchedConfiguration(e(1)));
    assert_eq!(n.alarms().total(), 1);
    // Commit, then a duplicate: acked, persisted once.
    let out = commit(&mut n, &d1);
    assert!(matches!(out[0], NodeOutput::Persist(NodeChange::Committed { .. })));
    assert!(matches!(reply(&out), Response::CommitAck { .. }));
    let out = commit(&mut n, &d1);
    assert_eq!(persisted(&out), 0);
    assert!(matches!(reply(&out), Response::CommitAck { .. }));
    // A later commit discards the earlier share; committing below it is refused.
    prepare(&mut n, &d2, "a");
    commit(&mut n, &d2);
    assert_eq!(n.state().shares.keys().copied().collect::<Vec<_>>(), vec![e(2)]);
    let req = Request::Commit { epoch: e(1), digest: d1.config.digest() };
    refused(
        &mut n,
        &Peer::Coordinator,
        req,
        NodeError::StaleEpoch { epoch: e(1), committed: e(2) },
    );
}

#[test]
fn get_share_answers_section_6_6() {
    let d1 = dealt(1, None, &["a", "b", "c", "x"], 3, &SecretHistory::default(), 1);
    let mut n = committed_node("a", &d1);
    // A member gets the share, with the digest.
    let out = n.handle_request(
        T0,
        &Peer::Node(id("b")),
        Request::GetShare { epoch: e(1), digest: Some(d1.config.digest()) },
    );
    assert!(
        matches!(reply(&out), Response::Share { share, .. } if share.ct_eq(&d1.shares[&id("a")]))
    );
    // A non-member is refused.
    let req = Request::GetShare { epoch: e(1), digest: None };
    let out = n.handle_request(T0, &Peer::Node(id("q")), req);
    assert!(matches!(reply(&out), Response::Expunged { epoch } if *epoch == e(1)));
    // An operator may not ask.
    let op = Peer::Operator("op".into());
    let want = NodeError::Unauthorized { caller: op.clone(), request: RequestKind::GetShare };
    refused(&mut n, &op, Request::GetShare { epoch: e(1), digest: None }, want);
    // A requester holding another configuration raises the alarm and gets nothing.
    let req = Request::GetShare { epoch: e(1), digest: Some(Digest([3; 32])) };
    refused(&mut n, &Peer::Node(id("b")), req, NodeError::MismatchedConfiguration(e(1)));
    assert_eq!(n.alarms().total(), 1);
    // So does a non-member holding another configuration of e1, which may list it: it is
    // not told it was expunged, which it would keep until wiped.
    let req = Request::GetShare { epoch: e(1), digest: Some(Digest([4; 32])) };
    refused(&mut n, &Peer::Node(id("q")), req, NodeError::MismatchedConfiguration(e(1)));
    assert_eq!(n.alarms().total(), 2);

    // After epoch 2 (without x) commits: behind members get CommitAdvance, x gets Expunged.
    let d2 = dealt(2, Some(1), &["a", "b", "c", "d"], 3, &SecretHistory::default(), 2);
    prepare(&mut n, &d2, "a");
    commit(&mut n, &d2);
    let out =
        n.handle_request(T0, &Peer::Node(id("b")), Request::GetShare { epoch: e(1), digest: None });
    assert!(matches!(reply(&out), Response::CommitAdvance { config } if config.epoch() == e(2)));
    let out =
        n.handle_request(T0, &Peer::Node(id("x")), Request::GetShare { epoch: e(1), digest: None });
    assert!(matches!(reply(&out), Response::Expunged { epoch } if *epoch == e(2)));
}

#[test]
fn a_prepared_epoch_share_is_served_before_commit_section_6_6() {
    let d = dealt(1, None, &FIVE, 3, &SecretHistory::default(), 1);
    let mut n = node("a");
    prepare(&mut n, &d, "a");
    let out =
        n.handle_request(T0, &Peer::Node(id("b")), Request::GetShare { epoch: e(1), digest: None });
    assert!(matches!(reply(&out), Response::Share { .. }));
    let out =
        n.handle_request(T0, &Peer::Node(id("q")), Request::GetShare { epoch: e(1), digest: None });
    assert!(matches!(reply(&out), Response::Error { error: NodeError::NotAMember { .. }, .. }));
}

/// Delivers every `Send` between nodes until nothing is in flight; returns all outputs.
fn route(
    nodes: &mut BTreeMap<NodeId, Node>,
    from: &str,
    first: Vec<NodeOutput>,
) -> Vec<(NodeId, NodeOutput)> {
    let mut queue: VecDeque<(NodeId, NodeOutput)> =
        first.into_iter().map(|o| (id(from), o)).collect();
    let mut seen = Vec::new();
    while let Some((sender, o)) = queue.pop_front() {
        if let NodeOutput::Send { to, request } = &o {
            let out = nodes.get_mut(to).unwrap().handle_request(
                T0,
                &Peer::Node(sender.clone()),
                request.duplicate(),
            );
            for r in out {
                if let NodeOutput::Reply(resp) = r {
                    let more = nodes.get_mut(&sender).unwrap().handle_response(T0, to, resp);
                    queue.extend(more.into_iter().map(|m| (sender.clone(), m)));
                } else {
                    queue.push_back((to.clone(), r));
                }
            }
        }
        seen.push((sender, o));
    }
    seen
}

#[test]
fn prepare_and_commit_catches_up_from_peers_section_6_5() {
    let d = dealt(1, None, &FIVE, 3, &SecretHistory::default(), 1);
    let mut nodes: BTreeMap<NodeId, Node> =
        ["a", "b", "c", "d"].iter().map(|n| (id(n), committed_node(n, &d))).collect();
    nodes.insert(id("e"), node("e"));
    let out = nodes.get_mut(&id("e")).unwrap().handle_request(
        T0,
        &Peer::Coordinator,
        Request::PrepareAndCommit { config: d.config.clone() },
    );
    assert!(matches!(reply(&out), Response::CatchingUp { .. }));
    assert_eq!(persisted(&out), 0, "nothing durable until the share is computed");
    let all = route(&mut nodes, "e", out);
    assert!(
        all.iter().any(|(who, o)| *who == id("e")
            && matches!(o, NodeOutput::Persist(NodeChange::CaughtUp { .. })))
    );
    let e_node = &nodes[&id("e")];
    assert_eq!(e_node.state().latest_committed(), Some(e(1)));
    assert!(e_node.state().shares[&e(1)].ct_eq(&d.shares[&id("e")]));
}

/// The `share_combine` fuzz target found that interpolating at the x of a given share
/// panicked. In a catching-up node such a share can only come as an answer claiming to be
/// from the node itself; a node never asks itself, so that answer is ignored.
#[test]
fn catch_up_ignores_a_share_from_itself_section_6_5() {
    let d = dealt(1, None, &FIVE, 3, &SecretHistory::default(), 1);
    let mut n = node("e");
    let req = Request::PrepareAndCommit { config: d.config.clone() };
    n.handle_request(T0, &Peer::Coordinator, req);
    let share =
        |who: &str| Response::Share { epoch: e(1), digest: d.config.digest(), share: d.share(who) };
    assert!(n.handle_response(T0, &id("e"), share("e")).is_empty(), "its own share is ignored");
    assert!(n.handle_response(T0, &id("a"), share("a")).is_empty());
    assert!(n.handle_response(T0, &id("b"), share("b")).is_empty(), "two of the three needed");
    let out = n.handle_response(T0, &id("c"), share("c"));
    assert!(matches!(out[0], NodeOutput::Persist(NodeChange::CaughtUp { .. })), "{out:?}");
    assert!(n.state().shares[&e(1)].ct_eq(&d.shares[&id("e")]));
    assert_eq!(n.alarms().total(), 0);
}

#[test]
fn unlock_rebuilds_every_secret_section_6_7() {
    let d1 = dealt(1, None, &FIVE, 3, &SecretHistory::default(), 1);
    let mut history = SecretHistory::default();
    history.0.insert(e(1), d1.secret.duplicate());
    let d2 = dealt(2, Some(1), &FIVE, 3, &history, 2);
    let mut nodes: BTreeMap<NodeId, Node> = FIVE
        .iter()
        .map(|n| {
            let mut node = committed_node(n, &d1);
            prepare(&mut node, &d2, n);
            commit(&mut node, &d2);
            (id(n), node)
        })
        .collect();
    let out = nodes.get_mut(&id("c")).unwrap().unlock(T0);
    assert_eq!(
        out.iter().filter(|o| matches!(o, NodeOutput::Send { .. })).count(),
        4,
        "asks all others at once"
    );
    let all = route(&mut nodes, "c", out);
    assert!(all.iter().any(|(_, o)| matches!(o, NodeOutput::Unlocked { epoch } if *epoch == e(2))));
    let u = nodes[&id("c")].unlocked().unwrap();
    assert_eq!(u.epoch, e(2));
    assert!(u.secrets.0[&e(2)].ct_eq(&d2.secret));
    assert!(u.secrets.0[&e(1)].ct_eq(&d1.secret));
}

#[test]
fn unlock_learns_of_a_later_commit_and_catches_up_section_6_5() {
    let d1 = dealt(1, None, &FIVE, 3, &SecretHistory::default(), 1);
    let mut history = SecretHistory::default();
    history.0.insert(e(1), d1.secret.duplicate());
    let d2 = dealt(2, Some(1), &FIVE, 3, &history, 2);
    let mut nodes: BTreeMap<NodeId, Node> = FIVE
        .iter()
        .map(|n| {
            let mut node = committed_node(n, &d1);
            if *n != "a" {
                prepare(&mut node, &d2, n);
                commit(&mut node, &d2);
            }
            (id(n), node)
        })
        .collect();
    let out = nodes.get_mut(&id("a")).unwrap().unlock(T0);
    route(&mut nodes, "a", out);
    let a = &nodes[&id("a")];
    assert_eq!(a.state().latest_committed(), Some(e(2)));
    assert_eq!(a.unlocked().unwrap().epoch, e(2));
    assert!(a.unlocked().unwrap().secrets.0[&e(1)].ct_eq(&d1.secret));
}

#[test]
fn a_node_left_out_learns_it_is_expunged_section_6_9() {
    let d1 = dealt(1, None, &FIVE, 3, &SecretHistory::default(), 1);
    let d2 = dealt(2, Some(1), &["b", "c", "d", "e"], 3, &SecretHistory::default(), 2);
    let mut nodes: BTreeMap<NodeId, Node> = FIVE
        .iter()
        .map(|n| {
            let mut node = committed_node(n, &d1);
            if *n != "a" {
                prepare(&mut node, &d2, n);
                commit(&mut node, &d2);
            }
            (id(n), node)
        })
        .collect();
    let out = nodes.get_mut(&id("a")).unwrap().unlock(T0);
    route(&mut nodes, "a", out);
    let a = nodes.get_mut(&id("a")).unwrap();
    assert_eq!(a.state().expunged, Some(e(2)));
    assert!(a.unlocked().is_none());
    // Then it refuses protocol work but still reports status.
    let req = Request::GetShare { epoch: e(1), digest: None };
    refused(a, &Peer::Node(id("b")), req, NodeError::Expunged(e(2)));
    let out = a.handle_request(T0, &Peer::Coordinator, Request::Status);
    assert!(matches!(reply(&out), Response::Status(s) if s.expunged == Some(e(2))));
}

#[test]
fn restore_fails_closed_on_inconsistent_state_section_7() {
    let d = dealt(1, None, &FIVE, 3, &SecretHistory::default(), 1);
    let mut s = NodeState::default();
    s.configs.insert(e(1), d.config.clone());
    s.shares.insert(e(1), d.share("b"));
    assert_eq!(
        Node::restore(id("a"), CLUSTER, s, NodeOptions::default()).err(),
        Some(StateError::BadShare(e(1)))
    );
    let mut s = NodeState::default();
    s.committed.insert(e(1));
    assert_eq!(
        Node::restore(id("a"), CLUSTER, s, NodeOptions::default()).err(),
        Some(StateError::MissingCommitted(e(1)))
    );
    let mut s = NodeState::default();
    s.configs.insert(e(1), d.config.clone());
    assert_eq!(
        Node::restore(id("a"), CLUSTER, s, NodeOptions::default()).err(),
        Some(StateError::Unpaired(e(1)))
    );
}
