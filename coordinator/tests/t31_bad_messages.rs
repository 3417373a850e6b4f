//! Malformed messages against running services: bytes that are not protobuf, messages over
//! the size cap (DESIGN §3), and messages that decode but break §4/§5 (wire conversion
//! refuses them once, "parse, don't validate", or the node refuses with a typed reason).
//! Each case checks the answer's code (and typed refusal, for node refusals), that the
//! target's durable state is byte-for-byte unchanged, that nothing panicked and that the
//! target still answers status.
//!
//! The node cases run against agent n1 of a cluster where epoch 1 committed, sending what
//! the coordinator would send (with the coordinator's certificate) for a new epoch 2; the
//! control-plane cases against the coordinator with the operator's certificate. Prepares
//! broken field by field are in t36.

mod common;

use common::{
    Cluster, Target, assert_invalid_argument, configured_and_dealt, node, prepared_config,
};
use prost::Message;
use tonic::{Code, Status};
use tq_wire::pb;

const PREPARE: &str = "/tq.v1.NodeAgent/Prepare";
const COMMIT: &str = "/tq.v1.NodeAgent/Commit";
const NODE_STATUS: &str = "/tq.v1.NodeAgent/Status";
const RECONFIGURE: &str = "/tq.v1.Coordinator/Reconfigure";
const STATUS: &str = "/tq.v1.Coordinator/Status";

/// The server's cap (`ServerLimits::max_message_bytes`, the harness uses the default).
const CAP: usize = 4 * 1024 * 1024;

/// Sends raw bytes to both services at once: `node_body` to n1's `node_path` as the
/// coordinator, `control_body` to the coordinator's `control_path` as the operator.
async fn raw_to_both(
    c: &Cluster,
    node_path: &'static str,
    node_body: Vec<u8>,
    control_path: &'static str,
    control_body: Vec<u8>,
) -> (Result<Vec<u8>, Status>, Result<Vec<u8>, Status>) {
    let n =
        common::raw_unary(c.node_channel_as(&c.coordinator_tls(), &node(1)), node_path, node_body);
    let co =
        common::raw_unary(c.coordinator_channel_as(&c.operator_tls()), control_path, control_body);
    (n.await, co.await)
}

fn both() -> [Target; 2] {
    [Target::Coordinator, Target::Agent(node(1))]
}

fn reconfigure_bytes() -> Vec<u8> {
    pb::ReconfigureRequest {
        members: vec!["n1".into(), "n2".into(), "n3".into()],
        threshold: 2,
        previous_epoch: 1,
    }
    .encode_to_vec()
}

/// Asserts a protobuf decode failure: tonic's codec answers `Internal` (the gRPC status code
/// convention for a message that does not parse) before any handler runs.
fn assert_not_protobuf(what: &str, r: Result<Vec<u8>, Status>, says: &str) {
    let e = r.expect_err(what);
    assert_eq!(e.code(), Code::Internal, "{what}: {e:?}");
    assert!(e.message().contains("failed to decode Protobuf message"), "{what}: {e:?}");
    assert!(e.message().contains(says), "{what}: {e:?} should say {says:?}");
}

// ---------------------------------------------------------------------- not protobuf

/// A Prepare cut in the middle of its share, and a Reconfigure cut inside a member name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_protobuf() {
    let (c, dealt) = configured_and_dealt("truncated").await;
    let guard = c.untouched(&both()).await;
    let mut prepare = dealt.prepare(&node(1)).encode_to_vec();
    prepare.truncate(prepare.len() - 10);
    let mut reconfigure = reconfigure_bytes();
    reconfigure.truncate(3); // 0a 02 "n": the name "n1" is cut after one byte
    let (n, co) = raw_to_both(&c, PREPARE, prepare, RECONFIGURE, reconfigure).await;
    assert_not_protobuf("n1 Prepare", n, "buffer underflow");
    assert_not_protobuf("coordinator Reconfigure", co, "buffer underflow");
    c.assert_untouched(guard).await;
    c.shutdown().await;
}

/// A varint of eleven bytes (more than 64 bits) for the epoch / threshold field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_varint() {
    let (c, _) = configured_and_dealt("varint").await;
    let guard = c.untouched(&both()).await;
    let long = |tag: u8| {
        let mut b = vec![tag];
        b.extend([0xff; 10]);
        b.push(0x01);
        b
    };
    // CommitRequest.epoch is field 1; ReconfigureRequest.threshold is field 2 (varints).
    let (n, co) = raw_to_both(&c, COMMIT, long(0x08), RECONFIGURE, long(0x10)).await;
    assert_not_protobuf("n1 Commit", n, "invalid varint");
    assert_not_protobuf("coordinator Reconfigure", co, "invalid varint");
    c.assert_untouched(guard).await;
    c.shutdown().await;
}

/// A varint field sent as length-delimited (and the reverse).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_wire_type() {
    let (c, _) = configured_and_dealt("wiretype").await;
    let guard = c.untouched(&both()).await;
    // CommitRequest.epoch (field 1, varint) as wire type 2 with one byte of payload.
    let commit = vec![0x0a, 0x01, 0x02];
    // ReconfigureRequest.members (field 1, length-delimited) as a varint.
    let reconfigure = vec![0x08, 0x05];
    let (n, co) = raw_to_both(&c, COMMIT, commit, RECONFIGURE, reconfigure).await;
    assert_not_protobuf("n1 Commit", n, "invalid wire type");
    assert_not_protobuf("coordinator Reconfigure", co, "invalid wire type");
    c.assert_untouched(guard).await;
    c.shutdown().await;
}

// ---------------------------------------------------------------------- size cap (§3)

/// A 5 MiB message: refused from its length prefix (`OutOfRange`, tonic's code for a
/// message over the decode limit), before the body is decoded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_of_5_mib() {
    let (c, _) = configured_and_dealt("fivemib").await;
    let guard = c.untouched(&both()).await;
    let body = vec![0u8; 5 * 1024 * 1024];
    let (n, co) = raw_to_both(&c, PREPARE, body.clone(), RECONFIGURE, body).await;
    for (what, r) in [("n1 Prepare", n), ("coordinator Reconfigure", co)] {
        let e = r.expect_err(what);
        assert_eq!(e.code(), Code::OutOfRange, "{what}: {e:?}");
        assert!(e.message().contains("found 5242880 bytes, the limit is: 4194304"), "{e:?}");
    }
    c.assert_untouched(guard).await;
    c.shutdown().await;
}

/// An (empty) status request padded with an unknown field to exactly `len` bytes.
fn padded_status_request(len: usize) -> Vec<u8> {
    // Field 15, wire type 2: one tag byte, a 4-byte varint length (the pad is between 2^21
    // and 2^28 bytes), then the pad.
    let pad = len - 5;
    assert!((1 << 21..1 << 28).contains(&pad));
    let mut b = vec![0x7a];
    let mut v = pad;
    for _ in 0..4 {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        b.push(if b.len() < 4 { byte | 0x80 } else { byte });
    }
    b.resize(len, 0);
    b
}

/// At the cap a message is decoded (unknown fields skipped) and answered; one byte over it
/// is refused with `OutOfRange`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_just_over_the_cap() {
    let (c, _) = configured_and_dealt("overcap").await;
    let guard = c.untouched(&both()).await;
    let (n, co) = raw_to_both(
        &c,
        NODE_STATUS,
        padded_status_request(CAP),
        STATUS,
        padded_status_request(CAP),
    )
    .await;
    let st = pb::NodeStatus::decode(n.expect("n1 answers a message at the cap").as_slice())
        .expect("a NodeStatus");
    assert_eq!(st.node_id, "n1");
    let s = pb::ClusterStatus::decode(co.expect("the coordinator answers at the cap").as_slice())
        .expect("a ClusterStatus");
    assert_eq!(s.latest_committed_epoch, 1);

    let over = padded_status_request(CAP + 1);
    let (n, co) = raw_to_both(&c, NODE_STATUS, over.clone(), STATUS, over).await;
    for (what, r) in [("n1 Status", n), ("coordinator Status", co)] {
        let e = r.expect_err(what);
        assert_eq!(e.code(), Code::OutOfRange, "{what}: {e:?}");
        assert!(e.message().contains("found 4194305 bytes"), "{e:?}");
    }
    c.assert_untouched(guard).await;
    c.shutdown().await;
}

// ---------------------------------------------------------------------- bounds of §4, both services

/// Sends n1 the epoch-2 Prepare changed by `change` (wire conversion must refuse it, saying
/// `node_says`), and the coordinator `reconfigure` (it must refuse with InvalidArgument,
/// saying `control_says`). Neither store changes.
async fn bounds_refused(
    name: &str,
    change: impl FnOnce(&mut pb::Configuration),
    node_says: &str,
    reconfigure: pb::ReconfigureRequest,
    control_says: &str,
) {
    let (c, dealt) = configured_and_dealt(name).await;
    let n1 = node(1);
    let guard = c.untouched(&both()).await;
    let mut req = dealt.prepare(&n1);
    change(prepared_config(&mut req));
    let e = c.as_coordinator(&n1).prepare(req).await.expect_err("n1 must refuse");
    assert_invalid_argument(&e, node_says);
    let e = c.operator().reconfigure(reconfigure).await.expect_err("the coordinator must refuse");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains(control_says), "{e:?} should say {control_says:?}");
    let s = c.status().await;
    assert_eq!(s.last_attempt.as_ref().map(|a| a.epoch), Some(1), "nothing started: {s:#?}");
    c.assert_untouched(guard).await;
    c.shutdown().await;
}

fn reconfigure(members: &[&str], k: u32) -> pb::ReconfigureRequest {
    pb::ReconfigureRequest {
        members: members.iter().map(ToString::to_string).collect(),
        threshold: k,
        previous_epoch: 1,
    }
}

const N3: &[&str] = &["n1", "n2", "n3"];

/// §4: K = 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threshold_zero() {
    bounds_refused("k0", |c| c.threshold = 0, "K=0 with N=3", reconfigure(N3, 0), "K=0 with N=3")
        .await;
}

/// §4: K = 1 (one member alone would hold the secret).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threshold_one() {
    bounds_refused("k1", |c| c.threshold = 1, "K=1 with N=3", reconfigure(N3, 1), "K=1 with N=3")
        .await;
}

/// §4: K = N (no member may be lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threshold_equal_to_n() {
    bounds_refused("kn", |c| c.threshold = 3, "K=3 with N=3", reconfigure(N3, 3), "K=3 with N=3")
        .await;
}

/// §4: K = N + 1 (the secret could never be rebuilt).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threshold_above_n() {
    bounds_refused("kn1", |c| c.threshold = 4, "K=4 with N=3", reconfigure(N3, 4), "K=4 with N=3")
        .await;
}

/// §4: N = 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members() {
    bounds_refused(
        "n2",
        |c| {
            c.members.pop();
        },
        "3 to 1024 members, got 2",
        reconfigure(&["n1", "n2"], 2),
        "3 to 1024 members, got 2",
    )
    .await;
}

/// §4: N = 1025, one above the maximum.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_members_than_the_maximum() {
    let names: Vec<String> = (0..1025).map(|i| format!("m{i:04}")).collect();
    let members: Vec<pb::Member> = names
        .iter()
        .enumerate()
        .map(|(i, id)| pb::Member {
            node_id: id.clone(),
            x: i as u32 + 1,
            share_digest: vec![0; 32],
        })
        .collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    bounds_refused(
        "n1025",
        |c| c.members = members,
        "3 to 1024 members, got 1025",
        reconfigure(&refs, 513),
        "3 to 1024 members, got 1025",
    )
    .await;
}

/// §4: a member listed twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_member() {
    bounds_refused(
        "dup",
        |c| c.members[1].node_id = c.members[0].node_id.clone(),
        "member n1 is listed twice",
        reconfigure(&["n1", "n1", "n2", "n3"], 2),
        "member n1 is listed twice",
    )
    .await;
}

/// §4: a member name of 1 MiB. The refusal quotes only its start: quoted whole, it outgrew
/// the HTTP/2 header the gRPC status travels in and the caller saw ResourceExhausted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_name_of_1_mib() {
    let (c, _dealt) = configured_and_dealt("long-name").await;
    let guard = c.untouched(&both()).await;
    let long = "x".repeat(1 << 20);
    let req = reconfigure(&["n1", "n2", &long], 2);
    let e = c.operator().reconfigure(req).await.expect_err("the coordinator must refuse");
    assert_eq!(e.code(), Code::InvalidArgument, "{:?}", e.code());
    assert!(e.message().len() < 300, "{} bytes of message", e.message().len());
    let s = c.status().await;
    assert_eq!(s.last_attempt.as_ref().map(|a| a.epoch), Some(1), "nothing started");
    c.assert_untouched(guard).await;
    c.shutdown().await;
}

// ---------------------------------------------------------------------- epoch 0 (§4)

/// §4: epoch 0 is never valid: in a Commit, a GetShare, a Prepare's configuration, and as a
/// configuration's previous epoch it is refused by wire conversion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epoch_zero() {
    let (c, dealt) = configured_and_dealt("epoch0").await;
    let n1 = node(1);
    let guard = c.untouched(&[Target::Agent(n1.clone())]).await;
    let mut co = c.as_coordinator(&n1);
    let e = co
        .commit(pb::CommitRequest { epoch: 0, digest: dealt.digest() })
        .await
        .expect_err("Commit(0)");
    assert_invalid_argument(&e, "epoch 0 is not valid");
    let e = co
        .get_share(pb::GetShareRequest { epoch: 0, digest: vec![] })
        .await
        .expect_err("GetShare(0)");
    assert_invalid_argument(&e, "epoch 0 is not valid");
    let mut req = dealt.prepare(&n1);
    prepared_config(&mut req).epoch = 0;
    let e = co.prepare(req).await.expect_err("Prepare of epoch 0");
    assert_invalid_argument(&e, "epoch 0 is not valid");
    let e = co
        .prepare_and_commit(pb::PrepareAndCommitRequest {
            config: Some(pb::Configuration { epoch: 0, ..dealt.config_pb() }),
        })
        .await
        .expect_err("PrepareAndCommit of epoch 0");
    assert_invalid_argument(&e, "epoch 0 is not valid");
    c.assert_untouched(guard).await;
    c.shutdown().await;
}

// ---------------------------------------------------------------------- other messages

/// §6.13: an address book entry whose node id is not one, pushed with the coordinator's
/// certificate: refused whole, the stored book unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn address_book_with_an_invalid_node_id() {
    let (c, _) = configured_and_dealt("book").await;
    let n1 = node(1);
    let guard = c.untouched(&[Target::Agent(n1.clone())]).await;
    let entry = |id: &str, a: &str| pb::AddressEntry { node_id: id.into(), address: a.into() };
    for (book, says) in [
        (vec![entry("n2", "127.0.0.1:9"), entry("N3!", "127.0.0.1:9")], "node id"),
        (vec![entry("n2", "")], "bad address for n2"),
    ] {
        let e = c
            .as_coordinator(&n1)
            .push_address_book(pb::AddressBook { entries: book })
            .await
            .expect_err("a bad address book");
        assert_invalid_argument(&e, says);
    }
    c.assert_untouched(guard).await;
    c.shutdown().await;
}

/// §6.13: enrollments without a summary, with an empty or oversized address, or a summary
/// that does not validate: `InvalidArgument`, and the ledger is unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_enrollment() {
    let (c, _) = configured_and_dealt("enroll").await;
    let guard = c.untouched(&[Target::Coordinator]).await;
    let n1 = c.tls_of(&c.agent_tls(&node(1)));
    let summary = || pb::NodeStatus { node_id: "n1".into(), ..Default::default() };
    let cases = [
        (pb::EnrollRequest { address: "127.0.0.1:9".into(), summary: None }, "missing summary"),
        (pb::EnrollRequest { address: String::new(), summary: Some(summary()) }, "host:port"),
        (pb::EnrollRequest { address: "x".repeat(256), summary: Some(summary()) }, "host:port"),
        (
            pb::EnrollRequest {
                address: "127.0.0.1:9".into(),
                summary: Some(pb::NodeStatus {
                    committed: Some(pb::EpochDigest { epoch: 1, digest: vec![0; 31] }),
                    ..summary()
                }),
            },
            "committed must be 32 bytes",
        ),
    ];
    for (req, says) in cases {
        let e = c.coordinator_client_as(&n1).enroll(req).await.expect_err(says);
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        assert!(e.message().contains(says), "{e:?} should say {says:?}");
    }
    c.assert_untouched(guard).await;
    c.shutdown().await;
}

/// A GetShare whose digest is neither empty nor 32 bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_share_with_a_digest_of_wrong_length() {
    let (c, _) = configured_and_dealt("sharedigest").await;
    let n1 = node(1);
    let guard = c.untouched(&[Target::Agent(n1.clone())]).await;
    let n2 = c.tls_of(&c.agent_tls(&node(2)));
    let e = c
        .node_client_as(&n2, &n1)
        .get_share(pb::GetShareRequest { epoch: 1, digest: vec![1; 5] })
        .await
        .expect_err("a 5-byte digest");
    assert_invalid_argument(&e, "digest must be 32 bytes, got 5");
    c.assert_untouched(guard).await;
    c.shutdown().await;
}

/// The control for the raw-bytes cases: the raw codec's bytes of a valid message are
/// answered by both services.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_raw_bytes_of_a_valid_message_are_answered() {
    let (c, _) = configured_and_dealt("rawcontrol").await;
    let (n, co) = raw_to_both(
        &c,
        NODE_STATUS,
        pb::NodeStatusRequest {}.encode_to_vec(),
        STATUS,
        pb::StatusRequest::default().encode_to_vec(),
    )
    .await;
    let st = pb::NodeStatus::decode(n.expect("n1 answers").as_slice()).expect("a NodeStatus");
    assert_eq!(st.committed.map(|e| e.epoch), Some(1));
    let s =
        pb::ClusterStatus::decode(co.expect("the coordinator answers").as_slice()).expect("status");
    assert_eq!(s.latest_committed_epoch, 1);
    c.shutdown().await;
}

/// A method neither service has: `Unimplemented`, nothing else happens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_method() {
    let (c, _) = configured_and_dealt("nomethod").await;
    let guard = c.untouched(&both()).await;
    let (n, co) =
        raw_to_both(&c, "/tq.v1.NodeAgent/Expunge", vec![], "/tq.v1.Coordinator/Wipe", vec![])
            .await;
    for (what, r) in [("n1", n), ("coordinator", co)] {
        let e = r.expect_err(what);
        assert_eq!(e.code(), Code::Unimplemented, "{what}: {e:?}");
    }
    c.assert_untouched(guard).await;
    c.shutdown().await;
}
