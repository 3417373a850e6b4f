//! Storage failures during a persist (issue 4, bad input: storage), injected through the
//! `agent-persist` and `coordinator-persist` failpoints into the real write path of real sled
//! stores. DESIGN §7: never ack on a failed write, stop instead; STYLE: storage failure is
//! fatal and the reason is written where it happens. So in every case the failing service
//! answers nothing that depends on the write, its `run` returns `StoreError::Write` naming the
//! step and the OS error (exit 74 in the binaries), nothing panics, the other services keep
//! answering, and once it is restarted without the fault the cluster completes the next
//! reconfiguration with the same secrets.
//!
//! `enospc` and `eio` refuse the write before it reaches sled: the store is byte-for-byte what
//! it was. `fsync-eio` fails after sled wrote the change into its data file: nothing is
//! answered or sent, and on restart the store holds either all of the change or none of it
//! (here all: the bytes are in the file, and the seal accepts one write beyond it, §7).
//!
//! State damaged at rest (a truncated or bit-flipped sled log, a directory restored from an
//! older copy) is refused when the service starts, and the cluster goes on once the good
//! files are back.

mod common;

use common::{Cluster, Target, assert_same_files, node, panics, settled_snapshot, watch_panics};
use tonic::Code;
use tq_coordinator::CoordinatorError;
use tq_node_agent::AgentError;
use tq_protocol::coordinator::AbortReason;
use tq_protocol::{Epoch, NodeId};
use tq_wire::durable::StoreError;
use tq_wire::failpoint::Failpoints;
use tq_wire::pb;

const ENOSPC: &str = "sled write: No space left on device (os error 28)";
const EIO: &str = "sled write: Input/output error (os error 5)";
const FSYNC_EIO: &str = "fsync of the data file: Input/output error (os error 5)";

fn e(n: u64) -> Epoch {
    Epoch::new(n).expect("an epoch")
}

/// The failed write's reason, which must be `StoreError::Write` saying `says`.
fn write_error(err: &StoreError, says: &str) {
    match err {
        StoreError::Write { why, .. } => assert_eq!(why, says, "{err}"),
        other => panic!("expected a write error saying {says:?}, got {other:?}"),
    }
}

fn agent_write_error(err: AgentError, says: &str) {
    match &err {
        AgentError::Store(s) => write_error(s, says),
        other => panic!("expected the agent to stop on its store, got {other:?}"),
    }
}

fn coordinator_write_error(err: CoordinatorError, says: &str) {
    match &err {
        CoordinatorError::Store(s) => write_error(s, says),
        other => panic!("expected the coordinator to stop on its ledger, got {other:?}"),
    }
}

/// The caller of the request whose write failed is told so, and not that it succeeded.
fn told_store_failed(status: &tonic::Status, service: &str) {
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let says = format!("the {service} stopped: a");
    assert!(status.message().starts_with(&says), "{status:?} should start with {says:?}");
    assert!(status.message().contains("write failed (its log says why)"), "{status:?}");
}

/// How every case ends: `epoch`, the reconfiguration after the restart, commits on every
/// member with no alarm, every member derives the same key from it and the same keys as
/// before from the `earlier` epochs, and nothing panicked.
async fn recovered(c: Cluster, all: &[NodeId], epoch: u64, earlier: &[(u64, Vec<u8>)]) {
    let s = c.wait_committed(epoch, all).await;
    assert_eq!(s.alarm_count, 0, "{s:#?}");
    c.same_key_everywhere(all, epoch).await;
    for (e, key) in earlier {
        assert_eq!(&c.same_key_everywhere(all, *e).await, key, "epoch {e}'s secret changed");
    }
    assert_eq!(panics(), 0, "something panicked (see the output above)");
    c.shutdown().await;
}

// ---------------------------------------------------------------------- the agent

/// §6.3, §7: agent n1's persist of a Prepare fails before anything reaches sled (`action`).
/// The Prepare's caller gets `Unavailable` saying the write failed (no ack), n1 stops with
/// the write error, its store is byte-for-byte unchanged and the coordinator still answers.
/// Restarted without the fault, n1 holds epoch 1 only, and the real coordinator then commits
/// epoch 2 on every member.
async fn agent_write_refused(name: &str, action: &str, says: &str) {
    watch_panics();
    let (mut c, all) = Cluster::configured(name, 4, 3).await;
    let key1 = c.same_key_everywhere(&all, 1).await;
    let n1 = node(1);
    let fp = Failpoints::new();
    c.restart_agent_with_failpoints(&n1, &fp).await;
    c.wait_key(&n1, 1).await;
    let dir = c.agent_state(&n1);
    let before = settled_snapshot(&dir).await;

    // An epoch 2 dealt as the coordinator would, sent with its certificate.
    let dealt = common::deal(c.id, 2, Some(1), &all, 3, 34);
    fp.arm(&format!("agent-persist={action}")).expect("a valid failpoint");
    let refused = c.as_coordinator(&n1).prepare(dealt.prepare(&n1)).await.expect_err("no ack");
    told_store_failed(&refused, "agent");
    agent_write_error(c.agent_failed(&n1).await, says);
    assert_same_files("n1 after its failed write", &before, &settled_snapshot(&dir).await);
    assert_eq!(panics(), 0, "something panicked (see the output above)");
    c.assert_answers(&Target::Coordinator).await;

    c.start_agent(&n1).await;
    let st = c.node_status(&n1).await;
    assert_eq!(st.committed.as_ref().map(|c| c.epoch), Some(1), "{st:#?}");
    assert_eq!(st.prepared.as_ref().map(|c| c.epoch), Some(1), "nothing of epoch 2: {st:#?}");
    let attempt = c.reconfigure(&all, 3, 1).await.expect("the next reconfiguration");
    assert_eq!(attempt.epoch, 2);
    recovered(c, &all, 2, &[(1, key1)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_enospc_persisting_a_prepare() {
    agent_write_refused("agent-enospc", "enospc", ENOSPC).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_eio_persisting_a_prepare() {
    agent_write_refused("agent-eio", "eio", EIO).await;
}

/// §6.3, §6.4, §6.5, §7: the fsync of n1's Prepare of epoch 2 (dealt by the real coordinator)
/// fails after sled wrote it: n1 stops without acking; the other three acks are K + Z = 3,
/// so epoch 2 commits without n1. n1's store then opens (the seal accepts the one write
/// beyond it) holding the whole Prepare, configuration and share, atomically; restarted, n1
/// commits epoch 2 with the others' secret, and epoch 3 commits on every member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_fsync_eio_persisting_a_prepare() {
    watch_panics();
    let (mut c, all) = Cluster::configured("agent-fsync", 4, 3).await;
    let key1 = c.same_key_everywhere(&all, 1).await;
    let n1 = node(1);
    let fp = Failpoints::new();
    c.restart_agent_with_failpoints(&n1, &fp).await;
    c.wait_key(&n1, 1).await;

    fp.arm("agent-persist=fsync-eio").expect("a valid failpoint");
    c.reconfigure(&all, 3, 1).await.expect("reconfiguration accepted");
    agent_write_error(c.agent_failed(&n1).await, FSYNC_EIO);
    assert_eq!(panics(), 0, "something panicked (see the output above)");
    let others: Vec<NodeId> = all.iter().filter(|n| **n != n1).cloned().collect();
    c.wait_committed(2, &others).await;

    let store = tq_node_agent::store::Store::open(&c.agent_state(&n1), &c.id, &n1)
        .expect("the store opens: one write beyond its seal is the crash window of §7");
    let state = store.load().expect("the state loads");
    assert_eq!(state.committed.iter().copied().collect::<Vec<_>>(), vec![e(1)]);
    assert!(state.configs.contains_key(&e(2)) && state.shares.contains_key(&e(2)));
    drop(store);

    c.start_agent(&n1).await;
    c.wait_committed(2, &all).await;
    let key2 = c.same_key_everywhere(&all, 2).await;
    c.reconfigure(&all, 3, 2).await.expect("the next reconfiguration");
    recovered(c, &all, 3, &[(1, key1), (2, key2)]).await;
}

// ---------------------------------------------------------------------- the coordinator

/// Every state directory of the cluster: the ledger and each agent's store.
fn everyone(all: &[NodeId]) -> Vec<Target> {
    std::iter::once(Target::Coordinator).chain(all.iter().cloned().map(Target::Agent)).collect()
}

/// A cluster of 3 under the manual commit policy with epoch 1 committed and epoch 2 acked
/// by every member, waiting for the operator's commit; the coordinator runs with `fp`.
async fn acked_awaiting_commit(name: &str, fp: &Failpoints) -> (Cluster, Vec<NodeId>, Vec<u8>) {
    let mut c = Cluster::new(name, 3);
    c.protocol.commit_policy = "manual".into();
    c.start_coordinator_with_failpoints(fp).await;
    c.start_agents().await;
    let all = c.nodes();
    c.wait_enrolled(&all).await;
    for (epoch, previous) in [(1, 0), (2, 1)] {
        c.reconfigure(&all, 2, previous).await.expect("reconfiguration accepted");
        c.wait_status(&format!("every member acked epoch {epoch}"), |s| {
            s.pending
                .as_ref()
                .is_some_and(|p| p.epoch == epoch && p.phase == "preparing" && p.acks == 3)
        })
        .await;
        if epoch == 1 {
            c.operator().commit(pb::CommitEpochRequest {}).await.expect("operator commit");
            c.wait_committed(1, &all).await;
        }
    }
    let key1 = c.same_key_everywhere(&all, 1).await;
    (c, all, key1)
}

/// Arms `action` on the ledger's writes and has the operator commit: the operator is told
/// the write failed, and the coordinator stops saying `says`.
async fn commit_refused(c: &mut Cluster, fp: &Failpoints, action: &str, says: &str) {
    fp.arm(&format!("coordinator-persist={action}")).expect("a valid failpoint");
    let refused = c.operator().commit(pb::CommitEpochRequest {}).await.expect_err("no commit");
    told_store_failed(&refused, "coordinator");
    coordinator_write_error(c.coordinator_failed().await, says);
}

/// Snapshots of every state directory once quiet.
async fn snapshots(c: &Cluster, targets: &[Target]) -> Vec<common::Snapshot> {
    let mut out = Vec::new();
    for t in targets {
        out.push(settled_snapshot(&c.state_dir(t)).await);
    }
    out
}

async fn assert_all_unchanged(c: &Cluster, targets: &[Target], before: &[common::Snapshot]) {
    for (t, b) in targets.iter().zip(before) {
        assert_same_files(&format!("{t:?}"), b, &settled_snapshot(&c.state_dir(t)).await);
    }
}

/// §6.4, §7: the ledger write of the operator's commit decision for epoch 2 fails with ENOSPC
/// before it reaches sled. The operator is told the write failed; the coordinator stops with
/// the write error; the ledger and every agent's store are byte-for-byte unchanged (no Commit
/// went out: the decision was not durable); the agents keep answering. Restarted without the
/// fault, the coordinator aborts epoch 2 (§6.8) and commits epoch 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_enospc_persisting_the_commit_decision() {
    watch_panics();
    let fp = Failpoints::new();
    let (mut c, all, key1) = acked_awaiting_commit("coord-enospc", &fp).await;
    let targets = everyone(&all);
    let before = snapshots(&c, &targets).await;

    commit_refused(&mut c, &fp, "enospc", ENOSPC).await;
    assert_all_unchanged(&c, &targets, &before).await;
    for n in &all {
        c.assert_answers(&Target::Agent(n.clone())).await;
    }
    assert_eq!(panics(), 0, "something panicked (see the output above)");

    // Restarting, the coordinator aborts epoch 2 for good, durably (§6.8).
    c.protocol.commit_policy = "auto".into();
    c.start_coordinator().await;
    c.stop_coordinator().await;
    let store = tq_coordinator::store::LedgerStore::open(c.coordinator_state(), &c.id)
        .expect("the ledger opens");
    assert_eq!(store.ledger().aborted.get(&e(2)), Some(&AbortReason::CoordinatorRestarted));
    assert!(!store.ledger().committed.contains_key(&e(2)), "epoch 2 was never decided");
    drop(store);

    c.start_coordinator().await;
    let attempt = c.reconfigure(&all, 2, 1).await.expect("the next reconfiguration");
    assert_eq!(attempt.epoch, 3, "aborted epoch 2 is skipped forever (§6.8)");
    c.wait_committed(3, &all).await;
    for n in &all {
        let e2 = common::derive(&mut c.keys(n).await, 2).await.expect_err("never committed");
        assert_eq!(e2.code(), Code::NotFound, "{n}: {e2:?}");
    }
    recovered(c, &all, 3, &[(1, key1)]).await;
}

/// §6.1, §6.2, §7: the ledger write reserving epoch 2 fails with EIO before it reaches sled.
/// The operator's Reconfigure is told the write failed; the coordinator stops; the ledger and
/// every store are byte-for-byte unchanged (no share was asked for, no Prepare sent). Once
/// restarted, the coordinator reserves epoch 2 (never durable, never seen by anyone) and
/// commits it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_eio_reserving_an_epoch() {
    watch_panics();
    let (mut c, all) = Cluster::configured("coord-eio", 3, 2).await;
    let key1 = c.same_key_everywhere(&all, 1).await;
    let fp = Failpoints::new();
    c.stop_coordinator().await;
    c.start_coordinator_with_failpoints(&fp).await;
    let targets = everyone(&all);
    let before = snapshots(&c, &targets).await;

    fp.arm("coordinator-persist=eio").expect("a valid failpoint");
    let refused = c.reconfigure(&all, 2, 1).await.expect_err("not started");
    told_store_failed(&refused, "coordinator");
    coordinator_write_error(c.coordinator_failed().await, EIO);
    assert_all_unchanged(&c, &targets, &before).await;
    for n in &all {
        c.assert_answers(&Target::Agent(n.clone())).await;
    }
    assert_eq!(panics(), 0, "something panicked (see the output above)");

    c.start_coordinator().await;
    let attempt = c.reconfigure(&all, 2, 1).await.expect("the next reconfiguration");
    assert_eq!(attempt.epoch, 2, "the reservation never became durable");
    recovered(c, &all, 2, &[(1, key1)]).await;
}

/// §6.4, §7: the fsync of the commit decision for epoch 2 fails after sled wrote it. The
/// operator is told the write failed and the coordinator stops before sending any Commit:
/// every agent's store is byte-for-byte unchanged. The ledger opens (one write beyond its
/// seal) with the decision in it, so once restarted the coordinator fans the commit out, and
/// epoch 3 commits after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_fsync_eio_persisting_the_commit_decision() {
    watch_panics();
    let fp = Failpoints::new();
    let (mut c, all, key1) = acked_awaiting_commit("coord-fsync", &fp).await;
    let agents: Vec<Target> = all.iter().cloned().map(Target::Agent).collect();
    let before = snapshots(&c, &agents).await;

    commit_refused(&mut c, &fp, "fsync-eio", FSYNC_EIO).await;
    assert_all_unchanged(&c, &agents, &before).await;
    assert_eq!(panics(), 0, "something panicked (see the output above)");

    let store = tq_coordinator::store::LedgerStore::open(c.coordinator_state(), &c.id)
        .expect("the ledger opens: one write beyond its seal is the crash window of §7");
    assert!(store.ledger().committed.contains_key(&e(2)), "the decision reached the file");
    drop(store);

    c.start_coordinator().await;
    c.wait_committed(2, &all).await;
    let key2 = c.same_key_everywhere(&all, 2).await;
    c.reconfigure(&all, 2, 2).await.expect("the next reconfiguration");
    c.wait_status("every member acked epoch 3", |s| {
        s.pending.as_ref().is_some_and(|p| p.epoch == 3 && p.acks == 3)
    })
    .await;
    c.operator().commit(pb::CommitEpochRequest {}).await.expect("operator commit");
    recovered(c, &all, 3, &[(1, key1), (2, key2)]).await;
}

// ---------------------------------------------------------------------- damaged state (§7)

/// §7: stops n1 (epoch 1 committed), damages its state directory with `damage`, and
/// expects the agent to refuse to start saying `says`, twice (the refusal must not depend on
/// what sled did to the files during the first attempt). With the good files back it starts
/// with its state and the cluster's key.
///
/// (Before the seal in `tq_wire::durable`, sled recovered every one of these damaged logs to
/// an older prefix and the agent started silently rolled back, mostly with no protocol
/// state at all.)
async fn agent_refuses_damaged_state(name: &str, damage: impl Fn(&std::path::Path), says: &str) {
    let (mut c, all) = Cluster::configured(name, 3, 2).await;
    let n1 = node(1);
    c.stop_agent(&n1).await;
    let dir = c.agent_state(&n1);
    let good = common::snapshot(&dir);
    watch_panics();
    damage(&dir);
    let first = c.agent_refuses_to_start(&n1, c.agent_config(&n1)).await;
    let second = c.agent_refuses_to_start(&n1, c.agent_config(&n1)).await;
    assert!(first.contains(&format!("is inconsistent: {says}")), "{first}");
    assert_eq!(first, second, "the second attempt must refuse for the same reason");
    common::restore(&dir, &good);
    c.start_agent(&n1).await;
    assert_eq!(c.node_status(&n1).await.committed.map(|e| e.epoch), Some(1));
    c.same_key_everywhere(&all, 1).await;
    assert_eq!(panics(), 0);
    c.shutdown().await;
}

const LOST: &str = "it lost durable writes";

/// The data file cut to half its length.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_data_file_truncated() {
    let half = |dir: &std::path::Path| {
        common::truncate_data_file(dir, common::data_file_len(dir) as u64 / 2)
    };
    agent_refuses_damaged_state("truncated", half, LOST).await;
}

/// The data file's last 30 bytes cut (a torn tail: the last write lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_data_file_missing_its_last_write() {
    let torn = |dir: &std::path::Path| {
        common::truncate_data_file(dir, common::data_file_len(dir) as u64 - 30)
    };
    agent_refuses_damaged_state("torntail", torn, LOST).await;
}

/// One bit flipped in the middle of the data file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_data_file_with_a_bit_flipped() {
    let flip =
        |dir: &std::path::Path| common::flip_bit_of_data_file(dir, common::data_file_len(dir) / 2);
    agent_refuses_damaged_state("bitflip", flip, LOST).await;
}

/// One bit flipped in the data file's last write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_data_file_with_a_bit_flipped_in_its_last_write() {
    let flip =
        |dir: &std::path::Path| common::flip_bit_of_data_file(dir, common::data_file_len(dir) - 5);
    agent_refuses_damaged_state("bitfliptail", flip, LOST).await;
}

/// The seal file removed: the data holds more writes than a missing seal accounts for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_seal_file_removed() {
    let remove = |dir: &std::path::Path| {
        std::fs::remove_file(dir.join("tq-seal")).expect("the seal file exists")
    };
    agent_refuses_damaged_state("noseal", remove, "its seal records write 0").await;
}

/// The seal file altered (one bit flipped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_seal_file_damaged() {
    let flip = |dir: &std::path::Path| {
        let path = dir.join("tq-seal");
        let mut b = std::fs::read(&path).expect("the seal file");
        b[7] ^= 1;
        std::fs::write(&path, b).expect("write the seal");
    };
    agent_refuses_damaged_state("badseal", flip, "seal file: damaged").await;
}

/// §7 for the coordinator: its ledger's data file cut to half. It must refuse to start
/// (a ledger that forgot its epochs could hand out an epoch number twice, §6.1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_ledger_truncated() {
    let (mut c, _) = Cluster::configured("ledgertruncated", 3, 2).await;
    c.stop_coordinator().await;
    let dir = c.coordinator_state().to_path_buf();
    let good = common::snapshot(&dir);
    watch_panics();
    common::truncate_data_file(&dir, common::data_file_len(&dir) as u64 / 2);
    for attempt in 1..=2 {
        let err = c.try_start_coordinator().await.expect_err("the damaged ledger must be refused");
        assert!(
            err.contains("is inconsistent: it lost durable writes"),
            "attempt {attempt}: {err}"
        );
    }
    common::restore(&dir, &good);
    c.start_coordinator().await;
    let s = c.status().await;
    assert_eq!(s.latest_committed_epoch, 1, "{s:#?}");
    assert_eq!(panics(), 0);
    c.shutdown().await;
}

/// §7, §6.11, §6.5: n1's whole state directory restored from a copy taken before epoch 2
/// committed. The copy is self-consistent, so the agent starts (it cannot know). With its
/// peers down it reports epoch 1 and the coordinator marks it `rolled_back`; once a peer is
/// back, n1 learns of epoch 2 (CommitAdvance / PrepareAndCommit), catches up and derives
/// epoch 2's key again. (With its peers up it usually catches up before the coordinator
/// polls it: the rollback then heals before anyone sees it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_state_restored_from_before_the_last_commit() {
    let (mut c, all) = Cluster::configured("restored", 3, 2).await;
    let n1 = node(1);
    c.stop_agent(&n1).await;
    let dir = c.agent_state(&n1);
    let old = common::snapshot(&dir);
    c.start_agent(&n1).await;
    c.reconfigure(&all, 2, 1).await.expect("reconfiguration accepted");
    c.wait_committed(2, &all).await;
    let key2 = c.same_key_everywhere(&all, 2).await;
    let key1 = c.same_key_everywhere(&all, 1).await;

    for n in &all {
        c.stop_agent(n).await;
    }
    watch_panics();
    common::restore(&dir, &old);
    c.start_agent(&n1).await;
    assert_eq!(c.node_status(&n1).await.committed.map(|e| e.epoch), Some(1), "n1 went back");
    c.wait_status("the coordinator marks n1 rolled back", |s| {
        common::member(s, &n1).is_some_and(|m| {
            m.stale
                && m.stale_reason == "rolled_back"
                && m.stale_detail == "reported committed epoch 1 after 2"
        })
    })
    .await;

    c.start_agent(&node(2)).await;
    c.start_agent(&node(3)).await;
    c.wait_status("n1 is back at epoch 2 and fresh", |s| {
        common::member(s, &n1).is_some_and(|m| m.committed_epoch == 2 && !m.stale)
    })
    .await;
    assert_eq!(c.wait_key(&n1, 2).await, key2, "n1 caught up to another secret");
    assert_eq!(c.wait_key(&n1, 1).await, key1, "n1 lost epoch 1's key");
    assert_eq!(c.node_status(&n1).await.committed.map(|e| e.epoch), Some(2));
    assert_eq!(c.status().await.alarm_count, 0);
    assert_eq!(panics(), 0);
    c.shutdown().await;
}
