//! Prepares that decode but break DESIGN §4/§5 or §6.3, field by field, sent to agent n1 of a
//! cluster where epoch 1 committed, as the coordinator would send epoch 2 (with its
//! certificate). Wire conversion refuses each one once ("parse, don't validate") or the node
//! refuses it with its typed reason; n1's durable state stays byte-for-byte unchanged and it
//! still answers status. The other malformed messages are in t31.

mod common;

use common::{
    Cluster, Dealt, Target, assert_invalid_argument, assert_refusal, configured_and_dealt, node,
    prepared_config,
};
use tonic::{Code, Status};
use tq_protocol::{Epoch, NodeError, NodeId};
use tq_wire::pb;

fn e(n: u64) -> Epoch {
    Epoch::new(n).expect("an epoch")
}

/// Sends `req` to n1 as the coordinator and runs `check` on the refusal; n1's store must be
/// unchanged.
async fn prepare_refused(
    name: &str,
    change: impl FnOnce(&Dealt, &mut pb::PrepareRequest),
    check: impl FnOnce(&Status),
) -> Cluster {
    let (c, dealt) = configured_and_dealt(name).await;
    let n1 = node(1);
    let guard = c.untouched(&[Target::Agent(n1.clone())]).await;
    let mut req = dealt.prepare(&n1);
    change(&dealt, &mut req);
    let e = c.as_coordinator(&n1).prepare(req).await.expect_err("the Prepare must be refused");
    check(&e);
    c.assert_untouched(guard).await;
    c
}

fn share(req: &mut pb::PrepareRequest) -> &mut pb::Share {
    req.share.as_mut().expect("a share")
}

/// §6.3: a Prepare without its configuration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepare_without_configuration() {
    let c = prepare_refused(
        "noconfig",
        |_, r| r.config = None,
        |e| assert_invalid_argument(e, "missing config"),
    )
    .await;
    c.shutdown().await;
}

/// A Prepare whose configuration is present but empty (every field at its default).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepare_with_empty_configuration() {
    let c = prepare_refused(
        "emptyconfig",
        |_, r| r.config = Some(pb::Configuration::default()),
        |e| assert_invalid_argument(e, "cluster_id must be 16 bytes, got 0"),
    )
    .await;
    c.shutdown().await;
}

/// A Prepare without the recipient's share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepare_without_share() {
    let c = prepare_refused(
        "noshare",
        |_, r| r.share = None,
        |e| assert_invalid_argument(e, "missing share"),
    )
    .await;
    c.shutdown().await;
}

/// A Prepare whose share is present but empty (x = 0, no y).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepare_with_empty_share() {
    let c = prepare_refused(
        "emptyshare",
        |_, r| r.share = Some(pb::Share::default()),
        |e| assert_invalid_argument(e, "share index 0 is not allowed"),
    )
    .await;
    c.shutdown().await;
}

/// §5: a share value of 31 bytes (and of 33).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_of_wrong_length() {
    let (c, dealt) = configured_and_dealt("sharelen").await;
    let n1 = node(1);
    let guard = c.untouched(&[Target::Agent(n1.clone())]).await;
    for len in [31, 33] {
        let mut req = dealt.prepare(&n1);
        share(&mut req).y.resize(len, 0);
        let e = c.as_coordinator(&n1).prepare(req).await.expect_err("a share of the wrong length");
        assert_invalid_argument(&e, &format!("share value must be 32 bytes, got {len}"));
    }
    c.assert_untouched(guard).await;
    c.shutdown().await;
}

/// §5: x = 0 is the secret's own point, never a share (here with n1's real y).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_with_x_zero() {
    let c = prepare_refused(
        "xzero",
        |_, r| share(r).x = 0,
        |e| assert_invalid_argument(e, "share index 0 is not allowed"),
    )
    .await;
    c.shutdown().await;
}

/// An x beyond the largest configuration (1024).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_index_beyond_the_largest_configuration() {
    let c = prepare_refused(
        "xhuge",
        |_, r| share(r).x = 70_000,
        |e| assert_invalid_argument(e, "share index 70000 is beyond the largest configuration"),
    )
    .await;
    c.shutdown().await;
}

/// A y that is not a canonical Ristretto255 scalar.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_not_a_canonical_scalar() {
    let c = prepare_refused(
        "noncanonical",
        |_, r| share(r).y = vec![0xff; 32],
        |e| assert_invalid_argument(e, "not a canonical scalar"),
    )
    .await;
    c.shutdown().await;
}

/// §5, §6.3: n1's share with one bit flipped no longer matches the digest the configuration
/// records: typed `ShareDigestMismatch`, and the node keeps a `BadShareFromCoordinator`
/// alarm (§8).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_whose_digest_does_not_match() {
    let c = prepare_refused(
        "digest",
        |_, r| share(r).y[0] ^= 1,
        |e| {
            assert_refusal(
                e,
                Code::InvalidArgument,
                NodeError::ShareDigestMismatch(Epoch::new(2).expect("e2")),
            )
        },
    )
    .await;
    assert_eq!(c.node_status(&node(1)).await.alarms, 1, "the bad share is an alarm");
    c.shutdown().await;
}

/// §5: a share off the polynomial whose digest the (dishonest) coordinator recorded: the
/// digest passes, the Feldman check refuses it (`ShareVerificationFailed`), with an alarm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_off_the_polynomial_with_its_digest_recorded() {
    let c = prepare_refused(
        "feldman",
        |dealt, r| {
            let forged = tq_protocol::Share::from_bytes(
                tq_protocol::ShareIndex::new(1).expect("x"),
                &[7; 32],
            )
            .expect("a canonical scalar");
            let mut parts = dealt.config.to_parts();
            parts.members[0].2 =
                tq_protocol::crypto::digest::share_digest(&parts.cluster_id, e(2), &forged);
            let config = tq_protocol::Configuration::try_from(parts).expect("still valid");
            r.config = Some(tq_wire::convert::config_to_pb(&config));
            r.share = Some(tq_wire::convert::share_to_pb(&forged));
        },
        |e| {
            assert_refusal(e, Code::InvalidArgument, NodeError::ShareVerificationFailed(self::e(2)))
        },
    )
    .await;
    assert_eq!(c.node_status(&node(1)).await.alarms, 1, "the forged share is an alarm");
    c.shutdown().await;
}

/// §6.3: n2's (valid) share sent to n1: it is not the share recorded for n1's slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_of_another_member() {
    let c = prepare_refused(
        "othershare",
        |d, r| r.share = Some(d.share_pb(&node(2))),
        |e| assert_refusal(e, Code::InvalidArgument, NodeError::ShareDigestMismatch(self::e(2))),
    )
    .await;
    c.shutdown().await;
}

/// A point of the dealt polynomial at x = 4, a slot no member holds (a non-member's share):
/// it lies on the polynomial but is not n1's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_from_a_non_member_slot() {
    let c = prepare_refused(
        "nonmember",
        |d, r| {
            let k = d.config.threshold();
            let shares: Vec<&tq_protocol::Share> = d.shares.values().collect();
            let x4 = tq_protocol::ShareIndex::new(4).expect("x");
            let s = tq_protocol::crypto::sharing::interpolate_share(&shares, k, x4)
                .expect("a point of the polynomial");
            r.share = Some(tq_wire::convert::share_to_pb(&s));
        },
        |e| assert_refusal(e, Code::InvalidArgument, NodeError::ShareDigestMismatch(self::e(2))),
    )
    .await;
    c.shutdown().await;
}

/// §5: share digests bind the epoch. Epoch 3's configuration relabelled as epoch 2, with
/// n1's share of it: the digest recorded for n1 is epoch 3's, so the share does not match.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_for_the_wrong_epoch() {
    let c = prepare_refused(
        "wrongepoch",
        |d, r| {
            let all: Vec<NodeId> = d.shares.keys().cloned().collect();
            let cluster = *d.config.cluster_id();
            let e3 = common::deal(cluster, 3, Some(1), &all, 2, 43);
            let mut req = e3.prepare(&node(1));
            prepared_config(&mut req).epoch = 2;
            *r = req;
        },
        |e| assert_refusal(e, Code::InvalidArgument, NodeError::ShareDigestMismatch(self::e(2))),
    )
    .await;
    c.shutdown().await;
}

/// §4: a member id that is not a node id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_with_an_invalid_node_id() {
    let c = prepare_refused(
        "badid",
        |_, r| prepared_config(r).members[2].node_id = "N3!".into(),
        |e| assert_invalid_argument(e, "member node_id"),
    )
    .await;
    c.shutdown().await;
}

/// §4: members must be listed in sorted order with x = 1..N in that order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_out_of_order() {
    let c = prepare_refused(
        "order",
        |_, r| prepared_config(r).members.swap(0, 1),
        |e| assert_invalid_argument(e, "must have share index"),
    )
    .await;
    c.shutdown().await;
}

/// §4: K + 1 commitments; one missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commitment_missing() {
    let c = prepare_refused(
        "commitcount",
        |_, r| {
            prepared_config(r).commitments.pop();
        },
        |e| assert_invalid_argument(e, "expected 3 commitments (K + 1), got 2"),
    )
    .await;
    c.shutdown().await;
}

/// §5: a commitment that is not a Ristretto255 point.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commitment_not_a_point() {
    let c = prepare_refused(
        "commitpoint",
        |_, r| prepared_config(r).commitments[2] = vec![0xff; 32],
        |e| assert_invalid_argument(e, "commitment 2 is not a valid Ristretto255 point"),
    )
    .await;
    c.shutdown().await;
}

/// §4: prior secrets are present exactly when there is a previous epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prior_secrets_without_a_previous_epoch() {
    let c = prepare_refused(
        "priors",
        |_, r| prepared_config(r).previous_epoch = 0,
        |e| assert_invalid_argument(e, "prior secrets must be present exactly"),
    )
    .await;
    c.shutdown().await;
}

/// §4: previous_epoch must be before epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previous_epoch_not_before_epoch() {
    let c = prepare_refused(
        "previous",
        |_, r| prepared_config(r).previous_epoch = 2,
        |e| assert_invalid_argument(e, "previous epoch 2 is not before epoch 2"),
    )
    .await;
    c.shutdown().await;
}
