//! Well-formed messages that break the protocol (DESIGN §6), against running services: the
//! node refuses with its typed reason (§6.3, §6.4, §6.6) or answers idempotently, and its
//! durable state is byte-for-byte unchanged; the coordinator refuses operator requests it
//! cannot carry out and treats answers it cannot understand as failures. No panic, and the
//! target still answers status.
//!
//! Prepares and Commits are sent with the coordinator's certificate, for epochs dealt here
//! the way the coordinator deals them (`common::deal`), to agent n1 of a cluster whose epoch
//! 1 (and for some cases epoch 2) was committed by the real coordinator.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Cluster, Target, assert_refusal, node, settled_snapshot};
use prost::Message;
use tonic::{Code, Status};
use tq_protocol::{ClusterId, Epoch, NodeError, NodeId, Peer, RequestKind};
use tq_wire::pb::{self, commit_response, get_share_response};

fn e(n: u64) -> Epoch {
    Epoch::new(n).expect("an epoch")
}

/// A cluster of `n` agents with epoch 1 committed on n1..n3 by the real coordinator.
async fn configured(name: &str, n: usize) -> (Cluster, Vec<NodeId>) {
    let (c, all) = Cluster::up(name, n).await;
    let members: Vec<NodeId> = all.iter().take(3).cloned().collect();
    c.reconfigure(&members, 2, 0).await.expect("initial configuration accepted");
    c.wait_committed(1, &members).await;
    (c, members)
}

/// The same, then epoch 2 committed too (n1 has discarded epoch 1, §6.4).
async fn committed_twice(name: &str) -> (Cluster, Vec<NodeId>) {
    let (c, all) = configured(name, 3).await;
    c.reconfigure(&all, 2, 1).await.expect("reconfiguration accepted");
    c.wait_committed(2, &all).await;
    (c, all)
}

fn committed_outcome(r: pb::CommitResponse) -> u64 {
    match r.outcome {
        Some(commit_response::Outcome::Committed(e)) => e,
        other => panic!("expected a commit ack, got {other:?}"),
    }
}

// ---------------------------------------------------------------------- Prepare (§6.3)

/// §6.3, I5: a Prepare replaying epoch 1 after epoch 2 committed: `StaleEpoch`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepare_replaying_an_epoch_older_than_the_committed_one() {
    let (c, all) = committed_twice("replay").await;
    let n1 = node(1);
    let guard = c.untouched(&[Target::Agent(n1.clone())]).await;
    let old = common::deal(c.id, 1, None, &all, 2, 1);
    let err = c.as_coordinator(&n1).prepare(old.prepare(&n1)).await.expect_err("epoch 1 is old");
    assert_refusal(
        &err,
        Code::FailedPrecondition,
        NodeError::StaleEpoch { epoch: e(1), committed: e(2) },
    );
    c.assert_untouched(guard).await;
    assert_eq!(c.node_status(&n1).await.alarms, 0);
    c.shutdown().await;
}

/// §6.3, I5: a Prepare for the committed epoch itself (another dealing of epoch 1):
/// `StaleEpoch`, checked before anything else about it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepare_of_the_committed_epoch() {
    let (c, all) = configured("recommit", 3).await;
    let n1 = node(1);
    let guard = c.untouched(&[Target::Agent(n1.clone())]).await;
    let again = common::deal(c.id, 1, None, &all, 2, 2);
    let err = c.as_coordinator(&n1).prepare(again.prepare(&n1)).await.expect_err("epoch 1");
    assert_refusal(
        &err,
        Code::FailedPrecondition,
        NodeError::StaleEpoch { epoch: e(1), committed: e(1) },
    );
    c.assert_untouched(guard).await;
    c.shutdown().await;
}

/// §6.3: epoch 2 prepared with configuration A, then a different configuration B for epoch
/// 2: `MismatchedConfiguration`, the alarm is kept, and A stays stored untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn different_configuration_for_an_already_prepared_epoch() {
    let (c, all) = configured("equivocate", 3).await;
    let n1 = node(1);
    let a = common::deal(c.id, 2, Some(1), &all, 2, 3);
    let b = common::deal(c.id, 2, Some(1), &all, 2, 4);
    let ack = c.as_coordinator(&n1).prepare(a.prepare(&n1)).await.expect("A is prepared");
    assert_eq!(ack.into_inner().digest, a.digest());
    let guard = c.untouched(&[Target::Agent(n1.clone())]).await;
    let err = c.as_coordinator(&n1).prepare(b.prepare(&n1)).await.expect_err("B equivocates");
    assert_refusal(&err, Code::FailedPrecondition, NodeError::MismatchedConfiguration(e(2)));
    c.assert_untouched(guard).await;
    let st = c.node_status(&n1).await;
    assert_eq!(st.alarms, 1, "{st:#?}");
    assert_eq!(st.prepared, Some(pb::EpochDigest { epoch: 2, digest: a.digest() }), "{st:#?}");
    c.shutdown().await;
}

/// §6.3, §6.8: epoch 3 prepared, then a Prepare of epoch 2 (an older attempt arriving
/// late): `Superseded`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepare_below_a_newer_prepared_epoch() {
    let (c, all) = configured("superseded", 3).await;
    let n1 = node(1);
    let newer = common::deal(c.id, 3, Some(1), &all, 2, 5);
    let older = common::deal(c.id, 2, Some(1), &all, 2, 6);
    c.as_coordinator(&n1).prepare(newer.prepare(&n1)).await.expect("epoch 3 is prepared");
    let guard = c.untouched(&[Target::Agent(n1.clone())]).await;
    let err = c.as_coordinator(&n1).prepare(older.prepare(&n1)).await.expect_err("epoch 2");
    assert_refusal(&err, Code::Aborted, NodeError::Superseded { epoch: e(2), newer: e(3) });
    c.assert_untouched(guard).await;
    c.shutdown().await;
}

/// §6.3: a Prepare for a configuration n1 is not a member of (n2, n3, n4), with n2's share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepare_to_a_node_not_among_the_members() {
    let (c, _) = configured("notmember", 4).await;
    let n1 = node(1);
    let guard = c.untouched(&[Target::Agent(n1.clone())]).await;
    let others = [node(2), node(3), node(4)];
    let dealt = common::deal(c.id, 2, Some(1), &others, 2, 7);
    let req = pb::PrepareRequest {
        config: Some(dealt.config_pb()),
        share: Some(dealt.share_pb(&node(2))),
    };
    let err = c.as_coordinator(&n1).prepare(req).await.expect_err("n1 is not a member");
    assert_refusal(
        &err,
        Code::FailedPrecondition,
        NodeError::NotAMember { epoch: e(2), node: n1.clone() },
    );
    // The same for a catch-up to it (§6.5).
    let err = c
        .as_coordinator(&n1)
        .prepare_and_commit(pb::PrepareAndCommitRequest { config: Some(dealt.config_pb()) })
        .await
        .expect_err("n1 is not a member");
    assert_refusal(
        &err,
        Code::FailedPrecondition,
        NodeError::NotAMember { epoch: e(2), node: n1.clone() },
    );
    c.assert_untouched(guard).await;
    c.shutdown().await;
}

/// §6.3: a configuration of another cluster (validly dealt for it): `WrongCluster`, for a
/// Prepare and for a PrepareAndCommit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_cluster_id() {
    let (c, all) = configured("wrongcluster", 3).await;
    let n1 = node(1);
    let guard = c.untouched(&[Target::Agent(n1.clone())]).await;
    let theirs = common::deal(ClusterId::from_bytes([9; 16]), 2, Some(1), &all, 2, 8);
    let err = c.as_coordinator(&n1).prepare(theirs.prepare(&n1)).await.expect_err("not ours");
    assert_refusal(&err, Code::InvalidArgument, NodeError::WrongCluster);
    let err = c
        .as_coordinator(&n1)
        .prepare_and_commit(pb::PrepareAndCommitRequest { config: Some(theirs.config_pb()) })
        .await
        .expect_err("not ours");
    assert_refusal(&err, Code::InvalidArgument, NodeError::WrongCluster);
    c.assert_untouched(guard).await;
    assert_eq!(c.node_status(&n1).await.alarms, 0);
    c.shutdown().await;
}

/// §6.3: the same Prepare delivered twice is acked twice with the same digest; the second
/// delivery writes nothing. (The first one must write: that is what makes the byte
/// comparison meaningful.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_prepare_delivery() {
    let (c, all) = configured("dupprepare", 3).await;
    let n1 = node(1);
    let dealt = common::deal(c.id, 2, Some(1), &all, 2, 9);
    let dir = c.agent_state(&n1);
    let before = settled_snapshot(&dir).await;
    let first = c.as_coordinator(&n1).prepare(dealt.prepare(&n1)).await.expect("prepared");
    assert_ne!(settled_snapshot(&dir).await, before, "the first Prepare was not stored");
    let guard = c.untouched(&[Target::Agent(n1.clone())]).await;
    let second = c.as_coordinator(&n1).prepare(dealt.prepare(&n1)).await.expect("acked again");
    let (first, second) = (first.into_inner(), second.into_inner());
    assert_eq!((second.epoch, &second.digest), (2, &dealt.digest()));
    assert_eq!(first, second);
    c.assert_untouched(guard).await;
    c.shutdown().await;
}

// ---------------------------------------------------------------------- Commit (§6.4)

/// §6.4: a Commit for epoch 2 before its Prepare arrived: `NotPrepared` (the coordinator
/// then sends PrepareAndCommit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_before_prepare() {
    let (c, all) = configured("commitfirst", 3).await;
    let n1 = node(1);
    let guard = c.untouched(&[Target::Agent(n1.clone())]).await;
    let dealt = common::deal(c.id, 2, Some(1), &all, 2, 10);
    let err = c.as_coordinator(&n1).commit(dealt.commit()).await.expect_err("not prepared");
    assert_refusal(&err, Code::FailedPrecondition, NodeError::NotPrepared(e(2)));
    c.assert_untouched(guard).await;
    c.shutdown().await;
}

/// §6.4: the commit of epoch 1 delivered again (with its real digest) is acked again and
/// writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_commit_delivery() {
    let (c, _) = configured("dupcommit", 3).await;
    let n1 = node(1);
    let digest = c.node_status(&n1).await.committed.expect("epoch 1 is committed").digest;
    let guard = c.untouched(&[Target::Agent(n1.clone())]).await;
    for _ in 0..2 {
        let r = c
            .as_coordinator(&n1)
            .commit(pb::CommitRequest { epoch: 1, digest: digest.clone() })
            .await
            .expect("a repeated commit is acked");
        assert_eq!(committed_outcome(r.into_inner()), 1);
    }
    c.assert_untouched(guard).await;
    assert_eq!(c.node_status(&n1).await.alarms, 0);
    c.shutdown().await;
}

/// §6.4: a Commit of an epoch nobody dealt (5), and of the last epoch there is
/// (`u64::MAX`): `NotPrepared`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_of_an_unknown_epoch() {
    let (c, _) = configured("commitunknown", 3).await;
    let n1 = node(1);
    let guard = c.untouched(&[Target::Agent(n1.clone())]).await;
    for n in [5, u64::MAX] {
        let err = c
            .as_coordinator(&n1)
            .commit(pb::CommitRequest { epoch: n, digest: vec![3; 32] })
            .await
            .expect_err("never prepared");
        assert_refusal(&err, Code::FailedPrecondition, NodeError::NotPrepared(e(n)));
    }
    c.assert_untouched(guard).await;
    c.shutdown().await;
}

/// §6.4, I5: a Commit of epoch 1 after epoch 2 committed: `StaleEpoch`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_below_the_committed_epoch() {
    let (c, _) = committed_twice("commitold").await;
    let n1 = node(1);
    let guard = c.untouched(&[Target::Agent(n1.clone())]).await;
    let err = c
        .as_coordinator(&n1)
        .commit(pb::CommitRequest { epoch: 1, digest: vec![3; 32] })
        .await
        .expect_err("epoch 1 is below the committed one");
    assert_refusal(
        &err,
        Code::FailedPrecondition,
        NodeError::StaleEpoch { epoch: e(1), committed: e(2) },
    );
    c.assert_untouched(guard).await;
    c.shutdown().await;
}

/// §6.4: a Commit of the committed epoch with another digest: `MismatchedConfiguration`,
/// and the alarm is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_of_the_committed_epoch_with_another_digest() {
    let (c, _) = configured("commitdigest", 3).await;
    let n1 = node(1);
    let guard = c.untouched(&[Target::Agent(n1.clone())]).await;
    let err = c
        .as_coordinator(&n1)
        .commit(pb::CommitRequest { epoch: 1, digest: vec![3; 32] })
        .await
        .expect_err("another digest");
    assert_refusal(&err, Code::FailedPrecondition, NodeError::MismatchedConfiguration(e(1)));
    c.assert_untouched(guard).await;
    assert_eq!(c.node_status(&n1).await.alarms, 1);
    c.shutdown().await;
}

/// §3 table: Commit (with the real digest of the committed epoch) from a node and from the
/// operator: `Unauthorized`, whoever it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_from_a_non_coordinator() {
    let (c, _) = configured("commitauthz", 3).await;
    let n1 = node(1);
    let digest = c.node_status(&n1).await.committed.expect("epoch 1 is committed").digest;
    let guard = c.untouched(&[Target::Agent(n1.clone())]).await;
    let n2 = c.tls_of(&c.agent_tls(&node(2)));
    for (caller, tls) in
        [(Peer::Node(node(2)), n2), (Peer::Operator("alice".into()), c.operator_tls())]
    {
        let err = c
            .node_client_as(&tls, &n1)
            .commit(pb::CommitRequest { epoch: 1, digest: digest.clone() })
            .await
            .expect_err("only the coordinator commits");
        assert_refusal(
            &err,
            Code::PermissionDenied,
            NodeError::Unauthorized { caller, request: RequestKind::Commit },
        );
    }
    c.assert_untouched(guard).await;
    c.shutdown().await;
}

/// §4: the last epoch there is, `u64::MAX`, where nobody prepared it: a Commit is
/// `NotPrepared`, a member's GetShare `NoShare`, and an operator naming it as the previous
/// epoch is refused (`FailedPrecondition`); nothing is stored anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epoch_u64_max() {
    let (c, _) = configured("epochmax", 3).await;
    let n1 = node(1);
    let guard = c.untouched(&[Target::Coordinator, Target::Agent(n1.clone())]).await;
    let max = e(u64::MAX);
    let err = c
        .as_coordinator(&n1)
        .commit(pb::CommitRequest { epoch: u64::MAX, digest: vec![3; 32] })
        .await
        .expect_err("Commit(u64::MAX)");
    assert_refusal(&err, Code::FailedPrecondition, NodeError::NotPrepared(max));
    let n2 = c.tls_of(&c.agent_tls(&node(2)));
    let err = c
        .node_client_as(&n2, &n1)
        .get_share(pb::GetShareRequest { epoch: u64::MAX, digest: vec![] })
        .await
        .expect_err("GetShare(u64::MAX)");
    assert_refusal(&err, Code::NotFound, NodeError::NoShare(max));
    let err = c
        .reconfigure(&[node(1), node(2), node(3)], 2, u64::MAX)
        .await
        .expect_err("previous epoch u64::MAX");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("not Some(e18446744073709551615)"), "{err:?}");
    c.assert_untouched(guard).await;
    c.shutdown().await;
}

// ---------------------------------------------------------------------- GetShare (§6.6)

/// §6.6: a member asking for epoch 1 with a digest that is not n1's: `MismatchedConfiguration`
/// and an alarm on n1, no share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_share_with_another_configuration_digest() {
    let (c, _) = configured("sharedigest", 3).await;
    let n1 = node(1);
    let guard = c.untouched(&[Target::Agent(n1.clone())]).await;
    let n2 = c.tls_of(&c.agent_tls(&node(2)));
    let err = c
        .node_client_as(&n2, &n1)
        .get_share(pb::GetShareRequest { epoch: 1, digest: vec![3; 32] })
        .await
        .expect_err("another configuration");
    assert_refusal(&err, Code::FailedPrecondition, NodeError::MismatchedConfiguration(e(1)));
    c.assert_untouched(guard).await;
    assert_eq!(c.node_status(&n1).await.alarms, 1);
    c.shutdown().await;
}

/// §6.6: node n4 (enrolled, never a member) asks n1 for its share of committed epoch 1. It
/// gets no share: n1 answers `Expunged(1)` (it cannot tell a never-member from a removed one
/// once older configurations are discarded) and writes nothing. Asking for an epoch n1
/// never saw, or for the last epoch there is, is `NoShare`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_share_from_a_non_member() {
    let (c, _) = configured("sharenonmember", 4).await;
    let n1 = node(1);
    let guard = c.untouched(&[Target::Agent(n1.clone())]).await;
    let n4 = c.tls_of(&c.agent_tls(&node(4)));
    let reply = c
        .node_client_as(&n4, &n1)
        .get_share(pb::GetShareRequest { epoch: 1, digest: vec![] })
        .await
        .expect("an answer")
        .into_inner();
    assert_eq!(reply.reply, Some(get_share_response::Reply::Expunged(1)), "{reply:?}");
    for n in [7, u64::MAX] {
        let err = c
            .node_client_as(&n4, &n1)
            .get_share(pb::GetShareRequest { epoch: n, digest: vec![] })
            .await
            .expect_err("no such epoch");
        assert_refusal(&err, Code::NotFound, NodeError::NoShare(e(n)));
    }
    c.assert_untouched(guard).await;
    c.shutdown().await;
}

// ---------------------------------------------------------------------- the coordinator

/// Operator requests the coordinator cannot carry out (§6.2, §6.8, §6.13, §4 policy):
/// each refused with its code, the ledger unchanged and nothing started.
async fn operator_refused(
    name: &str,
    call: impl AsyncFnOnce(&Cluster) -> Result<pb::Attempt, Status>,
    code: Code,
    says: &str,
) {
    let (c, _) = configured(name, 4).await;
    let guard = c.untouched(&[Target::Coordinator]).await;
    let before = c.status().await;
    let err = call(&c).await.expect_err("the coordinator must refuse");
    assert_eq!(err.code(), code, "{err:?}");
    assert!(err.message().contains(says), "{err:?} should say {says:?}");
    let after = c.status().await;
    assert_eq!(after.last_attempt, before.last_attempt, "nothing started: {after:#?}");
    assert_eq!(after.latest_committed_epoch, 1);
    c.assert_untouched(guard).await;
    c.shutdown().await;
}

/// §6.8: `previous_epoch` must be the latest committed epoch: 0 (none), an older, a newer
/// and the last epoch there is are all refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconfigure_with_a_wrong_previous_epoch() {
    for previous in [0, 2, u64::MAX] {
        operator_refused(
            &format!("previous{}", previous % 100),
            async move |c| c.reconfigure(&[node(1), node(2), node(3)], 2, previous).await,
            Code::FailedPrecondition,
            "previous epoch is Some(e1)",
        )
        .await;
    }
}

/// §6.13: a reconfiguration may only name enrolled nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconfigure_naming_an_unknown_node() {
    operator_refused(
        "unknownnode",
        async |c| c.reconfigure(&[node(1), node(2), node(9)], 2, 1).await,
        Code::FailedPrecondition,
        "node n9 has not enrolled",
    )
    .await;
}

/// §4: under the default policy K ≥ ⌊N/2⌋ + 1; K = 2 of 4 is below it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconfigure_below_the_majority_policy() {
    operator_refused(
        "majority",
        async |c| c.reconfigure(&[node(1), node(2), node(3), node(4)], 2, 1).await,
        Code::InvalidArgument,
        "below a majority",
    )
    .await;
}

/// §6.4: an operator Commit with nothing preparing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commit_with_nothing_preparing() {
    operator_refused(
        "nothingcommit",
        async |c| c.operator().commit(pb::CommitEpochRequest {}).await.map(|r| r.into_inner()),
        Code::FailedPrecondition,
        "no epoch is preparing",
    )
    .await;
}

/// §6.4, §6.8: a commit decision is never undone: an Abort after epoch 1 committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_abort_after_the_commit() {
    operator_refused(
        "abortcommitted",
        async |c| c.operator().abort(pb::AbortRequest {}).await.map(|r| r.into_inner()),
        Code::FailedPrecondition,
        "epoch 1 is already committed",
    )
    .await;
}

// ---------------------------------------------------------------------- an unknown enum value

/// A node agent that answers every protocol request with a refusal whose `RefusalKind` is
/// a value this build does not know (99), and counts the Prepares it got.
struct UnknownRefusals {
    prepares: Arc<AtomicUsize>,
}

fn unknown_refusal(epoch: u64) -> Status {
    let r = pb::Refusal { kind: 99, epoch, ..Default::default() };
    Status::with_details(Code::FailedPrecondition, "from the future", r.encode_to_vec().into())
}

#[tonic::async_trait]
impl pb::node_agent_server::NodeAgent for UnknownRefusals {
    async fn prepare(
        &self,
        req: tonic::Request<pb::PrepareRequest>,
    ) -> Result<tonic::Response<pb::PrepareAck>, Status> {
        self.prepares.fetch_add(1, Ordering::SeqCst);
        Err(unknown_refusal(req.into_inner().config.map_or(0, |c| c.epoch)))
    }
    async fn commit(
        &self,
        req: tonic::Request<pb::CommitRequest>,
    ) -> Result<tonic::Response<pb::CommitResponse>, Status> {
        Err(unknown_refusal(req.into_inner().epoch))
    }
    async fn prepare_and_commit(
        &self,
        _: tonic::Request<pb::PrepareAndCommitRequest>,
    ) -> Result<tonic::Response<pb::CommitResponse>, Status> {
        Err(unknown_refusal(1))
    }
    async fn get_share(
        &self,
        req: tonic::Request<pb::GetShareRequest>,
    ) -> Result<tonic::Response<pb::GetShareResponse>, Status> {
        Err(unknown_refusal(req.into_inner().epoch))
    }
    async fn get_legacy_share(
        &self,
        _: tonic::Request<pb::GetLegacyShareRequest>,
    ) -> Result<tonic::Response<pb::LegacyPackage>, Status> {
        Err(unknown_refusal(0))
    }
    async fn status(
        &self,
        _: tonic::Request<pb::NodeStatusRequest>,
    ) -> Result<tonic::Response<pb::NodeStatus>, Status> {
        Ok(tonic::Response::new(pb::NodeStatus { node_id: "n4".into(), ..Default::default() }))
    }
    async fn push_address_book(
        &self,
        _: tonic::Request<pb::AddressBook>,
    ) -> Result<tonic::Response<pb::AddressBookAck>, Status> {
        Ok(tonic::Response::new(pb::AddressBookAck {}))
    }
}

/// A refusal carrying an unknown enum value (a newer agent's `RefusalKind`) is not taken
/// for any known refusal: the coordinator counts no ack from that member, raises no alarm,
/// keeps retrying, and its ledger is unchanged by the answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_enum_value() {
    let mut c = Cluster::new("unknownenum", 4);
    c.protocol.commit_policy = "manual".into();
    c.start_coordinator().await;
    let real = [node(1), node(2), node(3)];
    for n in &real {
        c.start_agent(n).await;
    }
    // n4 is the fake, with n4's real certificate, enrolled like an agent.
    let n4 = c.tls_of(&c.agent_tls(&node(4)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let addr = listener.local_addr().expect("an address");
    let prepares = Arc::new(AtomicUsize::new(0));
    let limits = tq_wire::server::ServerLimits::default();
    let log = slog::Logger::root(slog::Discard, slog::o!());
    let incoming = tq_wire::server::tls_incoming(listener, &n4, &limits, log)
        .expect("n4's server configuration");
    let fake =
        pb::node_agent_server::NodeAgentServer::new(UnknownRefusals { prepares: prepares.clone() });
    let server = tokio::spawn(
        tq_wire::server::builder(&limits).add_service(fake).serve_with_incoming(incoming),
    );
    let summary = pb::NodeStatus { node_id: "n4".into(), ..Default::default() };
    c.coordinator_client_as(&n4)
        .enroll(pb::EnrollRequest { address: addr.to_string(), summary: Some(summary) })
        .await
        .expect("the fake enrolls");
    let all = [node(1), node(2), node(3), node(4)];
    c.wait_enrolled(&all).await;

    c.reconfigure(&all, 3, 0).await.expect("epoch 1 accepted");
    c.wait_status("n1..n3 acked epoch 1", |s| s.pending.as_ref().is_some_and(|p| p.acks == 3))
        .await;
    let guard = c.untouched(&[Target::Coordinator]).await;
    let seen = prepares.load(Ordering::SeqCst);
    assert!(seen >= 1, "the fake got no Prepare");
    // More refusals arrive while the coordinator retries.
    common::wait_until("the coordinator retried the Prepare", || {
        let p = prepares.clone();
        async move { (p.load(Ordering::SeqCst) > seen).then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let s = c.status().await;
    let p = s.pending.as_ref().expect("epoch 1 is still preparing");
    assert_eq!((p.epoch, p.phase.as_str(), p.acks), (1, "preparing", 3), "{s:#?}");
    let m4 = common::member(&s, &node(4)).expect("n4 is a member");
    assert_eq!(m4.state, "unacked", "{s:#?}");
    assert_eq!(s.alarm_count, 0, "{s:#?}");
    c.assert_untouched(guard).await;
    server.abort();
    c.shutdown().await;
}
