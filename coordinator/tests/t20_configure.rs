//! Configuring a cluster of real services: the initial configuration (DESIGN §6.1, §6.4,
//! §6.7, §8) and a reconfiguration that adds one member and removes another (§6.2, §5 prior
//! secrets, §6.9 expunge).

mod common;

use common::{Cluster, derive, ids, member, node};
use tq_wire::pb;

/// §6.1 + §6.4 + §8: the first configuration commits on every member, and §6.7: every
/// member rebuilt the same secret (they derive the same key, §5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_configuration_commits_everywhere_and_every_member_derives_the_same_key() {
    let mut c = Cluster::new("initial", 3);
    c.start_coordinator().await;
    c.start_agents().await;
    let members = c.nodes();
    c.wait_enrolled(&members).await;

    let attempt = c.reconfigure(&members, 2, 0).await.expect("initial configuration accepted");
    assert_eq!(attempt.epoch, 1, "the first epoch is 1 (§4)");
    assert_eq!(attempt.kind, "initial");
    assert_eq!(attempt.threshold, 2);
    assert_eq!(attempt.acks_needed, 2, "N=3 has Z=0, so K+Z = 2 (§4)");

    let s = c.wait_committed(1, &members).await;
    assert_eq!(s.cluster_id, c.id.to_string());
    let last = s.last_attempt.as_ref().expect("the attempt is reported");
    assert_eq!((last.epoch, last.phase.as_str()), (1, "committed"), "{s:#?}");
    assert!(s.pending.is_none(), "nothing is pending once every member committed: {s:#?}");
    assert_eq!(s.members.len(), 3, "{s:#?}");
    for m in &s.members {
        assert!(!m.stale, "{} is stale: {s:#?}", m.node_id);
        assert!(m.prepared_at_ms > 0 && m.committed_at_ms >= m.prepared_at_ms, "{m:#?}");
    }
    assert_eq!(s.alarm_count, 0, "an honest run raises no alarm (I7): {s:#?}");

    let key = c.same_key_everywhere(&members, 1).await;
    // "Latest" is epoch 1, and another purpose or length is another key (§5).
    let mut keys = c.keys(&node(1)).await;
    let latest = derive(&mut keys, 0).await.expect("derive the latest");
    assert_eq!((latest.epoch, &latest.key), (1, &key));
    let other = keys
        .derive_key(pb::DeriveKeyRequest {
            purpose: "mesh".into(),
            context: common::CONTEXT.to_vec(),
            epoch: 1,
            length: 64,
        })
        .await
        .expect("derive for another purpose")
        .into_inner();
    assert_eq!(other.key.len(), 64);
    assert_ne!(&other.key[..32], &key[..], "another purpose must give another key");
    // No secret for an epoch that does not exist.
    let missing = derive(&mut keys, 2).await.expect_err("epoch 2 does not exist");
    assert_eq!(missing.code(), tonic::Code::NotFound, "{missing:?}");

    // The coordinator's node list agrees: every node committed and unlocked epoch 1.
    let nodes = common::wait_until("every node reports epoch 1 unlocked", || {
        let c = &c;
        async move {
            let nodes = c.operator().nodes(pb::NodesRequest {}).await.ok()?.into_inner();
            nodes.nodes.iter().all(|n| n.committed_epoch == 1 && n.unlocked == 1).then_some(nodes)
        }
    })
    .await;
    assert_eq!(nodes.nodes.len(), 3, "{nodes:#?}");
    c.shutdown().await;
}

/// §6.2: a reconfiguration adding n4 and removing n1 commits epoch 2; §8/§6.9: n1 is reported
/// expunged and learns it when it next asks; §5/§6.7: the new member derives the same key
/// as the others for epoch 2, and for epoch 1 too (prior secrets are carried forward).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconfiguration_adds_and_removes_members_and_carries_prior_secrets() {
    let (c, _) = Cluster::up("reconfigure", 4).await;
    let first = ids(&["n1", "n2", "n3"]);
    let second = ids(&["n2", "n3", "n4"]);

    c.reconfigure(&first, 2, 0).await.expect("initial configuration accepted");
    c.wait_committed(1, &first).await;
    let key1 = c.same_key_everywhere(&first, 1).await;
    // n4 is not a member of epoch 1: it holds nothing.
    let mut n4 = c.keys(&node(4)).await;
    let locked = derive(&mut n4, 0).await.expect_err("n4 holds no secret yet");
    assert_eq!(locked.code(), tonic::Code::FailedPrecondition, "{locked:?}");

    // §6.8: the caller must name the latest committed epoch.
    let stale = c.reconfigure(&second, 2, 0).await.expect_err("previous epoch 0 is wrong");
    assert_eq!(stale.code(), tonic::Code::FailedPrecondition, "{stale:?}");

    let attempt = c.reconfigure(&second, 2, 1).await.expect("reconfiguration accepted");
    assert_eq!((attempt.epoch, attempt.kind.as_str()), (2, "reconfigure"));
    let s = c.wait_committed(2, &second).await;
    let n1 = member(&s, &node(1)).expect("the removed member is still listed");
    assert_eq!(n1.state, "expunged", "n1 was left out of committed epoch 2 (§8): {s:#?}");
    assert_eq!(s.last_attempt.as_ref().map(|a| a.phase.as_str()), Some("committed"));
    assert_eq!(s.alarm_count, 0, "{s:#?}");

    let key2 = c.same_key_everywhere(&second, 2).await;
    assert_ne!(key1, key2, "a new epoch has a new secret (§1)");
    // Prior secrets (§5): every member of epoch 2, n4 included, still derives epoch 1's key.
    let old = c.same_key_everywhere(&second, 1).await;
    assert_eq!(old, key1, "epoch 1's key changed after the reconfiguration");

    // §6.9: n1 learns it was removed when it next asks its peers (unlocking again).
    let mut k1 = c.keys(&node(1)).await;
    k1.lock(pb::LockRequest {}).await.expect("lock n1");
    k1.unlock(pb::UnlockRequest { wait_ms: 0 }).await.expect("unlock n1");
    common::wait_until("n1 reports itself expunged at epoch 2", || {
        let c = &c;
        async move {
            let nodes = c.operator().nodes(pb::NodesRequest {}).await.ok()?.into_inner();
            nodes.nodes.iter().find(|n| n.node_id == "n1" && n.expunged == 2).map(|_| ())
        }
    })
    .await;
    let refused = derive(&mut k1, 0).await.expect_err("an expunged node holds no secret");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition, "{refused:?}");
    // An expunged node that kept its state cannot be named again (§6.9, §6.13).
    let back = c.reconfigure(&ids(&["n1", "n2", "n3", "n4"]), 3, 2).await;
    let back = back.expect_err("n1 must be wiped before it rejoins");
    assert_eq!(back.code(), tonic::Code::FailedPrecondition, "{back:?}");
    assert!(back.message().contains("n1"), "{back:?}");
    c.shutdown().await;
}

/// §6.7: a host asking for the keys of an epoch its node has just committed gets them at
/// once, even while the node's re-key is deferred (`rekey_delay`): the request starts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_of_a_just_committed_epoch_is_served_during_the_deferred_rekey() {
    let mut c = Cluster::new("rekey-on-demand", 3);
    c.start_coordinator().await;
    for n in c.nodes() {
        let mut config = c.agent_config(&n);
        config.rekey_delay = std::time::Duration::from_secs(30);
        c.start_agent_with(&n, config).await.unwrap_or_else(|e| panic!("{e}"));
    }
    let members = c.nodes();
    c.wait_enrolled(&members).await;
    c.reconfigure(&members, 2, 0).await.expect("initial configuration accepted");
    c.wait_committed(1, &members).await;
    let first = c.same_key_everywhere(&members, 1).await;

    c.reconfigure(&members, 2, 1).await.expect("rotation accepted");
    c.wait_committed(2, &members).await;
    let mut keys = c.keys(&node(1)).await;
    let latest = derive(&mut keys, 0).await.expect("derive the latest unlocked");
    assert_eq!(latest.epoch, 1, "the re-key waits 30 s, so epoch 1 is still the latest held");
    let started = std::time::Instant::now();
    let k2 = derive(&mut keys, 2).await.expect("epoch 2 is committed: its key is served");
    assert_eq!(k2.epoch, 2);
    assert!(started.elapsed().as_secs() < 10, "it did not wait out the 30 s delay");
    assert_ne!(k2.key, first, "a rotation gives a new secret");
    assert_eq!(c.same_key_everywhere(&members, 2).await, k2.key, "every member agrees");
    let beyond = derive(&mut keys, 3).await.expect_err("epoch 3 was never committed");
    assert_eq!(beyond.code(), tonic::Code::NotFound, "{beyond:?}");
    c.shutdown().await;
}

/// §6.7: a host that asks for its key while its node is still collecting the K − 1 shares
/// gets the key once they arrive (the demo's first derive raced the first unlock and was
/// told "not unlocked"). A host that locked its node is told so at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_asked_for_while_the_unlock_is_collecting_shares_is_served_when_it_completes() {
    let (mut c, members) = Cluster::configured("derive-while-unlocking", 3, 2).await;
    let first = c.same_key_everywhere(&members, 1).await;
    c.stop_agent(&node(2)).await;
    c.stop_agent(&node(3)).await;
    let mut keys = c.keys(&node(1)).await;
    keys.lock(pb::LockRequest {}).await.expect("lock n1");
    let started = std::time::Instant::now();
    let locked = derive(&mut keys, 1).await.expect_err("n1 was locked by its host");
    assert_eq!(locked.code(), tonic::Code::FailedPrecondition, "{locked:?}");
    assert!(started.elapsed().as_secs() < 2, "a locked node answers at once");

    // No peer is up: the unlock cannot finish until n2 is back.
    keys.unlock(pb::UnlockRequest { wait_ms: 0 }).await.expect("unlock n1");
    let mut waiting = keys.clone();
    let asked = tokio::spawn(async move { derive(&mut waiting, 0).await });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!asked.is_finished(), "the derive waits for the unlock instead of failing");
    c.start_agent(&node(2)).await;
    let got = asked.await.expect("the derive task").expect("served once a peer answered");
    assert_eq!((got.epoch, &got.key), (1, &first), "the key of the latest committed epoch");
    c.shutdown().await;
}

/// §8: a control plane that polls right after its own call sees what the call did, also
/// when the status was just published and the next publication is throttled (answers to
/// the Prepares keep it busy here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_polled_right_after_an_operator_call_shows_the_call() {
    let (c, all) = Cluster::up_manual("readwrites", 3).await;
    let mut op = c.operator();
    let members: Vec<String> = all.iter().map(ToString::to_string).collect();
    let status = |s: pb::ClusterStatus| {
        let pending = s.pending.map(|p| (p.epoch, p.phase));
        (pending, s.last_attempt.map(|l| (l.epoch, l.phase)))
    };
    for round in 0..100 {
        let req =
            pb::ReconfigureRequest { members: members.clone(), threshold: 2, previous_epoch: 0 };
        let a = op.reconfigure(req).await.expect("reconfigure").into_inner();
        let s = op.status(pb::StatusRequest { if_version: 0 }).await.expect("status");
        let (pending, _) = status(s.into_inner());
        assert_eq!(pending.map(|p| p.0), Some(a.epoch), "round {round}");
        op.abort(pb::AbortRequest {}).await.expect("abort");
        let s = op.status(pb::StatusRequest { if_version: 0 }).await.expect("status");
        let (pending, last) = status(s.into_inner());
        assert_eq!((pending, last), (None, Some((a.epoch, "aborted".into()))), "round {round}");
    }
    c.shutdown().await;
}
