//! Failures and restarts of real services: a member down while an epoch prepares (DESIGN
//! §6.4, §6.5), unlock without any coordinator (§6.7), an agent restart (§7), and a
//! coordinator restart in the middle of a prepare (§2, §6.8), and status versions across it
//! (§8).

mod common;

use common::{Cluster, derive, ids, member, node};
use tq_protocol::Epoch;
use tq_protocol::coordinator::AbortReason;
use tq_wire::pb;

/// §6.4: with n4 stopped, epoch 2 still commits on K + Z = 3 acks of 4; §6.5: when n4 comes
/// back it is sent PrepareAndCommit, rebuilds its share from its peers and commits epoch 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_down_during_prepare_commits_without_it_and_it_catches_up() {
    let (mut c, all) = Cluster::configured("catchup", 4, 3).await;
    let key1 = c.same_key_everywhere(&all, 1).await;

    let down = node(4);
    c.stop_agent(&down).await;
    let attempt = c.reconfigure(&all, 3, 1).await.expect("reconfiguration accepted");
    assert_eq!((attempt.epoch, attempt.acks_needed), (2, 3), "N=4: Z=0, K+Z = 3 (§4)");
    let up = ids(&["n1", "n2", "n3"]);
    let s = c
        .wait_status("epoch 2 is committed by n1..n3 while n4 is down", |s| {
            s.latest_committed_epoch == 2
                && up.iter().all(|n| member(s, n).is_some_and(|m| m.state == "committed"))
        })
        .await;
    let n4 = member(&s, &down).expect("n4 is listed");
    assert_ne!(n4.state, "committed", "n4 was down: it cannot have committed: {s:#?}");
    assert_eq!(
        s.last_attempt.as_ref().map(|a| (a.epoch, a.phase.as_str())),
        Some((2, "committing")),
        "the fan-out waits for n4: {s:#?}"
    );
    let key2 = c.same_key_everywhere(&up, 2).await;

    // n4 comes back with its state (epoch 1 only) and is brought to epoch 2 (§6.5).
    c.start_agent(&down).await;
    let s = c.wait_committed(2, &all).await;
    assert_eq!(s.last_attempt.as_ref().map(|a| a.phase.as_str()), Some("committed"), "{s:#?}");
    assert_eq!(s.alarm_count, 0, "{s:#?}");
    assert_eq!(c.wait_key(&down, 2).await, key2, "n4 computed a share of another secret");
    assert_eq!(c.wait_key(&down, 1).await, key1, "n4 lost epoch 1's key");

    // Its own report says the same: committed 2, nothing older kept (§6.4).
    let operator = c.tls_of(&c.certs.operator);
    let st = c
        .node_client_as(&operator, &down)
        .status(pb::NodeStatusRequest {})
        .await
        .expect("n4's status")
        .into_inner();
    assert_eq!(st.committed.as_ref().map(|e| e.epoch), Some(2), "{st:#?}");
    assert_eq!(st.unlocked, 2, "{st:#?}");
    c.shutdown().await;
}

/// §6.7: with no coordinator up, members unlock from each other: after Lock, Unlock rebuilds
/// the secret, and after a restart of every agent (a cold boot) they unlock again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_unlock_from_each_other_with_the_coordinator_stopped() {
    let (mut c, all) = Cluster::configured("unlock", 3, 2).await;
    let key = c.same_key_everywhere(&all, 1).await;

    c.stop_coordinator().await;

    // Lock and unlock every member with the coordinator gone.
    for n in &all {
        let mut keys = c.keys(n).await;
        keys.lock(pb::LockRequest {}).await.expect("lock");
        let locked = derive(&mut keys, 1).await.expect_err("locked: no key");
        assert_eq!(locked.code(), tonic::Code::FailedPrecondition, "{n}: {locked:?}");
    }
    for n in &all {
        let mut keys = c.keys(n).await;
        let u = keys
            .unlock(pb::UnlockRequest { wait_ms: 5000 })
            .await
            .unwrap_or_else(|e| panic!("{n} did not unlock without the coordinator: {e:?}"))
            .into_inner();
        assert_eq!((u.latest, u.epochs.as_slice()), (1, &[1][..]), "{n}");
    }
    assert_eq!(c.same_key_everywhere(&all, 1).await, key);

    // A cold boot: every agent restarts (same state, same address), still no coordinator.
    for n in &all {
        c.stop_agent(n).await;
    }
    for n in &all {
        c.start_agent(n).await;
    }
    assert_eq!(c.same_key_everywhere(&all, 1).await, key, "the secret changed across a restart");
    c.shutdown().await;
}

/// §7: an agent's committed epoch and shares survive a stop and start on the same state
/// directory, and it unlocks again; a state directory of another node is refused (fail
/// closed, never start empty over existing data).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_restart_keeps_its_state() {
    let (mut c, all) = Cluster::configured("restart", 3, 2).await;
    let key = c.same_key_everywhere(&all, 1).await;

    let n1 = node(1);
    c.restart_agent(&n1).await;
    assert_eq!(c.wait_key(&n1, 1).await, key, "n1 rebuilt another secret after its restart");
    let operator = c.tls_of(&c.certs.operator);
    let st = c
        .node_client_as(&operator, &n1)
        .status(pb::NodeStatusRequest {})
        .await
        .expect("n1's status")
        .into_inner();
    assert_eq!(st.committed.as_ref().map(|e| e.epoch), Some(1), "{st:#?}");
    assert_eq!(st.prepared.as_ref().map(|e| e.epoch), Some(1), "{st:#?}");
    assert_eq!((st.expunged, st.unlocked), (0, 1), "{st:#?}");
    // The coordinator sees it back, committed, not stale.
    c.wait_status("n1 is back, committed and fresh", |s| {
        member(s, &n1).is_some_and(|m| m.state == "committed" && m.committed_epoch == 1 && !m.stale)
    })
    .await;

    // n2's agent pointed at n1's state directory must refuse to start (§7).
    c.stop_agent(&n1).await;
    let n2 = node(2);
    c.stop_agent(&n2).await;
    let mut wrong = c.agent_config(&n2);
    wrong.state_dir = c.agent_config(&n1).state_dir;
    let err = c.start_agent_with(&n2, wrong).await.expect_err("n2 must not open n1's store");
    assert!(err.contains("belongs to another node"), "{err}");
    c.start_agent(&n2).await;
    c.start_agent(&n1).await;
    c.same_key_everywhere(&all, 1).await;
    c.shutdown().await;
}

/// §2, §6.8: a coordinator that restarts while epoch 2 is preparing aborts it for good
/// (reason `coordinator_restarted`); the next reconfiguration uses epoch 3 and commits, and
/// no member ever holds a secret for epoch 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_restart_during_prepare_aborts_the_epoch_and_the_next_succeeds() {
    let (mut c, all) = Cluster::up_manual("crestart", 3).await;
    c.reconfigure(&all, 2, 0).await.expect("initial configuration accepted");
    // Manual policy: every member acks, nothing commits until the operator says so.
    c.wait_status("every member acked epoch 1", |s| {
        s.pending.as_ref().is_some_and(|p| p.phase == "preparing" && p.acks == 3)
    })
    .await;
    c.operator().commit(pb::CommitEpochRequest {}).await.expect("operator commit");
    c.wait_committed(1, &all).await;
    let key1 = c.same_key_everywhere(&all, 1).await;

    let attempt = c.reconfigure(&all, 2, 1).await.expect("reconfiguration accepted");
    assert_eq!(attempt.epoch, 2);
    let s = c
        .wait_status("every member acked epoch 2", |s| {
            s.pending
                .as_ref()
                .is_some_and(|p| p.epoch == 2 && p.phase == "preparing" && p.acks == 3)
        })
        .await;
    assert_eq!(s.latest_committed_epoch, 1);
    let before = s.version;

    // The coordinator restarts (with the automatic policy) before committing epoch 2.
    c.stop_coordinator().await;
    c.protocol.commit_policy = "auto".into();
    c.start_coordinator().await;
    // The very first status after the restart is already the ledger's (not an empty one).
    let s = c.status().await;
    assert_eq!(s.cluster_id, c.id.to_string(), "{s:#?}");
    // §8: a version seen before the restart never comes back, or a control plane polling
    // with it would be told `not_modified` and keep showing epoch 2 as preparing.
    assert!(s.version > before, "version {} after the restart, {before} before", s.version);
    // And exact as a JSON number read into a double.
    assert!(s.version < 1 << 53, "version {}", s.version);
    let polled = c
        .operator()
        .status(pb::StatusRequest { if_version: before })
        .await
        .expect("a conditional poll")
        .into_inner();
    assert!(!polled.not_modified && polled.version >= s.version, "{polled:#?}");
    assert_eq!(s.latest_committed_epoch, 1, "epoch 2 must not commit: {s:#?}");
    assert!(s.pending.is_none(), "nothing is in flight after a restart: {s:#?}");
    // Nothing to commit or abort any more.
    let commit =
        c.operator().commit(pb::CommitEpochRequest {}).await.expect_err("nothing to commit");
    assert_eq!(commit.code(), tonic::Code::FailedPrecondition, "{commit:?}");

    let attempt = c.reconfigure(&all, 2, 1).await.expect("the next reconfiguration is accepted");
    assert_eq!(attempt.epoch, 3, "aborted epoch 2 is skipped forever (§6.8)");
    c.wait_committed(3, &all).await;
    let key3 = c.same_key_everywhere(&all, 3).await;
    assert_ne!(key3, key1);
    assert_eq!(c.same_key_everywhere(&all, 1).await, key1, "epoch 1 is carried forward");
    for n in &all {
        let mut keys = c.keys(n).await;
        let e2 = derive(&mut keys, 2).await.expect_err("epoch 2 never committed");
        assert_eq!(e2.code(), tonic::Code::NotFound, "{n}: {e2:?}");
    }

    // The ledger recorded why epoch 2 ended.
    c.stop_coordinator().await;
    let store = tq_coordinator::store::LedgerStore::open(c.coordinator_state(), &c.id)
        .expect("the ledger opens after the coordinator stopped");
    let ledger = store.ledger();
    let e = |n| Epoch::new(n).expect("epoch");
    assert_eq!(ledger.aborted.get(&e(2)), Some(&AbortReason::CoordinatorRestarted));
    assert_eq!(ledger.committed.keys().copied().collect::<Vec<_>>(), vec![e(1), e(3)]);
    assert_eq!(ledger.highest_epoch, Some(e(3)));
    drop(store);
    c.shutdown().await;
}
