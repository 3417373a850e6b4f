//! `wire_decode`: arbitrary bytes as every protobuf message the services accept or receive
//! (DESIGN §3, §6), decoded with prost, then converted into core types by tq-wire's
//! `convert`, `node_service` and `refusal` modules.
//!
//! Input: one byte picks the message type, one byte is a parameter (the request an answer
//! is for, a gRPC code), the rest is the encoded message. Checked: no panic; prost decodes
//! its own re-encoding to the same message; a conversion yields a typed error or a value
//! that converts back to exactly the wire message (nothing silently dropped or changed) and
//! obeys its type's rules (a legacy package has 2 ≤ K < N distinct members, §4); a refusal
//! survives the round trip; an answer that does not convert is `InvalidArgument`.

use prost::Message;
use tonic::{Code, Status};
use tq_protocol::crypto::derive::{DeriveError, MAX_DERIVED_LEN, derive_key};
use tq_protocol::{Epoch, NodeError, Request, RequestKind, Response, Secret};
use tq_wire::convert::{
    NodeRequest, NodeResponse, address_book_from_pb, config_from_pb, config_to_pb, report_from_pb,
    report_to_pb, request_from_pb, request_to_pb, response_from_rpc, share_from_pb, share_to_pb,
};
use tq_wire::pb;
use tq_wire::refusal::{refusal_to_status, status_to_refusal};

use crate::dealt::{CLUSTER, Dealt, id};
use crate::input::REQUEST_KINDS;

/// The message types, in the order the selector byte picks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `PrepareRequest` (node service).
    Prepare,
    /// `CommitRequest`.
    Commit,
    /// `PrepareAndCommitRequest`.
    PrepareAndCommit,
    /// `GetShareRequest`.
    GetShare,
    /// `GetLegacyShareRequest`.
    GetLegacyShare,
    /// `NodeStatusRequest`.
    NodeStatusRequest,
    /// `AddressBook` (pushed to agents, returned by Enroll).
    AddressBook,
    /// `PrepareAck` (answer).
    PrepareAck,
    /// `CommitResponse` (answer).
    CommitResponse,
    /// `GetShareResponse` (answer).
    GetShareResponse,
    /// `LegacyPackage` (answer).
    LegacyPackage,
    /// `NodeStatus` (answer).
    NodeStatus,
    /// `Refusal`, as the details of an error status (answer).
    Refusal,
    /// `EnrollRequest` (coordinator service).
    Enroll,
    /// `ReconfigureRequest`.
    Reconfigure,
    /// `UpgradeFromLegacyRequest`.
    Upgrade,
    /// `DeriveKeyRequest` (local key service).
    DeriveKey,
    /// Every other message: decoded only (no tq-wire conversion exists for them).
    Other,
}

const KINDS: [Kind; 18] = [
    Kind::Prepare,
    Kind::Commit,
    Kind::PrepareAndCommit,
    Kind::GetShare,
    Kind::GetLegacyShare,
    Kind::NodeStatusRequest,
    Kind::AddressBook,
    Kind::PrepareAck,
    Kind::CommitResponse,
    Kind::GetShareResponse,
    Kind::LegacyPackage,
    Kind::NodeStatus,
    Kind::Refusal,
    Kind::Enroll,
    Kind::Reconfigure,
    Kind::Upgrade,
    Kind::DeriveKey,
    Kind::Other,
];

/// Runs one input: selector byte, parameter byte, encoded message.
pub fn run(data: &[u8]) {
    let [which, param, body @ ..] = data else { return };
    let asked = REQUEST_KINDS[usize::from(*param) % REQUEST_KINDS.len()];
    let asked_epoch = Epoch::new(u64::from(*param)).ok();
    match KINDS[usize::from(*which) % KINDS.len()] {
        Kind::Prepare => {
            if let Some(m) = decode::<pb::PrepareRequest>(body) {
                if let (Some(c), Some(s)) = (&m.config, &m.share)
                    && let (Ok(config), Ok(share)) = (config_from_pb(c), share_from_pb(Some(s)))
                {
                    assert_eq!(config_to_pb(&config), *c, "configuration changed in conversion");
                    assert_eq!(share_to_pb(&share), *s, "share changed in conversion");
                }
                request(NodeRequest::Prepare(m));
            }
        }
        Kind::Commit => decode(body).map_or((), |m| request(NodeRequest::Commit(m))),
        Kind::PrepareAndCommit => {
            decode(body).map_or((), |m| request(NodeRequest::PrepareAndCommit(m)))
        }
        Kind::GetShare => decode(body).map_or((), |m| request(NodeRequest::GetShare(m))),
        Kind::GetLegacyShare => {
            if decode::<pb::GetLegacyShareRequest>(body).is_some() {
                request(NodeRequest::GetLegacyShare);
            }
        }
        Kind::NodeStatusRequest => {
            if decode::<pb::NodeStatusRequest>(body).is_some() {
                request(NodeRequest::Status);
            }
        }
        Kind::AddressBook => {
            if let Some(m) = decode::<pb::AddressBook>(body) {
                if let Ok(book) = address_book_from_pb(&m) {
                    assert_eq!(book.len(), m.entries.len(), "address book entries dropped");
                } else {
                    assert!(!m.entries.is_empty(), "an empty address book was refused");
                }
            }
        }
        Kind::PrepareAck => decode(body).map_or((), |m| answer(asked, NodeResponse::PrepareAck(m))),
        Kind::CommitResponse => decode(body).map_or((), |m| answer(asked, NodeResponse::Commit(m))),
        Kind::GetShareResponse => {
            decode(body).map_or((), |m| answer(asked, NodeResponse::GetShare(m)))
        }
        Kind::LegacyPackage => decode(body).map_or((), |m| answer(asked, NodeResponse::Legacy(m))),
        Kind::NodeStatus => decode(body).map_or((), |m| answer(asked, NodeResponse::Status(m))),
        Kind::Refusal => refusal(asked, asked_epoch, *param, body),
        Kind::Enroll => {
            if let Some(m) = decode::<pb::EnrollRequest>(body)
                && let Some(s) = &m.summary
                && let Ok(report) = report_from_pb(s)
            {
                assert_eq!(report_to_pb(&report, &s.version), *s, "summary changed");
            }
        }
        Kind::Reconfigure => {
            decode::<pb::ReconfigureRequest>(body);
        }
        Kind::Upgrade => {
            decode::<pb::UpgradeFromLegacyRequest>(body);
        }
        Kind::DeriveKey => {
            if let Some(m) = decode::<pb::DeriveKeyRequest>(body) {
                derive(&m);
            }
        }
        Kind::Other => other(*param, body),
    }
}

/// Decodes `body` as `M`; prost must decode its own encoding of the result to the same.
fn decode<M: Message + Default + PartialEq>(body: &[u8]) -> Option<M> {
    let m = M::decode(body).ok()?;
    let again = M::decode(m.encode_to_vec().as_slice())
        .unwrap_or_else(|e| panic!("prost does not decode its own encoding: {e}"));
    assert!(again == m, "prost changed a message through its own encoding");
    Some(m)
}

/// A node-service request: converts to a typed error, or to a request that goes back to
/// the wire and converts again to the same.
fn request(r: NodeRequest) {
    let Ok(req) = request_from_pb(r) else { return };
    let again = request_from_pb(request_to_pb(&req))
        .unwrap_or_else(|e| panic!("a converted request does not convert back: {e}"));
    assert!(same_request(&req, &again), "{req:?} changed through the wire: {again:?}");
}

fn same_request(a: &Request, b: &Request) -> bool {
    match (a, b) {
        (
            Request::Prepare { config: c1, share: s1 },
            Request::Prepare { config: c2, share: s2 },
        ) => c1 == c2 && s1.ct_eq(s2),
        (Request::Commit { epoch: e1, digest: d1 }, Request::Commit { epoch: e2, digest: d2 }) => {
            e1 == e2 && d1 == d2
        }
        (Request::PrepareAndCommit { config: c1 }, Request::PrepareAndCommit { config: c2 }) => {
            c1 == c2
        }
        (
            Request::GetShare { epoch: e1, digest: d1 },
            Request::GetShare { epoch: e2, digest: d2 },
        ) => e1 == e2 && d1 == d2,
        (Request::GetLegacyShare, Request::GetLegacyShare) | (Request::Status, Request::Status) => {
            true
        }
        _ => false,
    }
}

/// A node's answer as the caller receives it: converts to exactly the wire message, or is
/// refused as `InvalidArgument`.
fn answer(asked: RequestKind, r: NodeResponse) {
    let original = format!("{r:?}");
    let version = match &r {
        NodeResponse::Status(s) => s.version.clone(),
        _ => String::new(),
    };
    // A legacy package's digests are a map: only their order may change.
    let wire = match &r {
        NodeResponse::Legacy(p) => {
            let mut sorted = p.clone();
            sorted.digests.sort_by(|a, b| a.node_id.cmp(&b.node_id));
            sorted.encode_to_vec()
        }
        r => encode(r),
    };
    match response_from_rpc(asked, None, Ok(r)) {
        Err(status) => assert_eq!(status.code(), Code::InvalidArgument, "{status:?}"),
        Ok(Response::Error { .. }) => panic!("a successful answer became a refusal"),
        Ok(resp) => {
            if let Response::LegacyShare(p) = &resp {
                let (k, n) = (p.threshold.get(), p.digests.len());
                assert!(2 <= k && k < n, "§4: legacy package with K = {k} of {n} members");
            }
            let back = NodeResponse::from_core(resp, &version)
                .unwrap_or_else(|s| panic!("a converted answer does not go back: {s:?}"));
            assert_eq!(encode(&back), wire, "{original} changed through conversion");
        }
    }
}

/// The wire bytes of an answer, for comparing.
fn encode(r: &NodeResponse) -> Vec<u8> {
    match r {
        NodeResponse::PrepareAck(m) => m.encode_to_vec(),
        NodeResponse::Commit(m) => m.encode_to_vec(),
        NodeResponse::GetShare(m) => m.encode_to_vec(),
        NodeResponse::Legacy(m) => m.encode_to_vec(),
        NodeResponse::Status(m) => m.encode_to_vec(),
    }
}

/// An error status with `body` as its details: a well-formed refusal survives the round
/// trip and reaches the caller as `Response::Error`; anything else stays a transport error.
fn refusal(asked: RequestKind, epoch: Option<Epoch>, code: u8, body: &[u8]) {
    let status =
        Status::with_details(Code::from(i32::from(code % 17)), "refused", body.to_vec().into());
    let refused = status_to_refusal(&status);
    if let Some(err) = &refused {
        let again = status_to_refusal(&refusal_to_status(err));
        assert_eq!(again.as_ref(), Some(err), "a refusal changed through the wire");
    }
    match response_from_rpc(asked, epoch, Err(status)) {
        Ok(Response::Error { request, epoch: e, error }) => {
            assert_eq!((request, e, Some(error)), (asked, epoch, refused));
        }
        Ok(other) => panic!("an error status became {other:?}"),
        Err(_) => assert!(refused.is_none(), "a refusal was returned as a transport error"),
    }
}

/// The local key service's request: an out-of-range purpose or length is a typed error.
fn derive(m: &pb::DeriveKeyRequest) {
    let len = if m.length == 0 { 32 } else { m.length as usize };
    let secret = Secret::from_bytes(&mut [7; 32]);
    match derive_key(&secret, &CLUSTER, &m.purpose, &m.context, len) {
        Ok(key) => assert_eq!(key.len(), len),
        Err(DeriveError::Purpose(n)) => assert!(n == m.purpose.len() && (n == 0 || n > 255)),
        Err(DeriveError::Length(n)) => assert!(n == len && (n == 0 || n > MAX_DERIVED_LEN)),
    }
}

/// Messages that are only decoded: the rest of the services' inputs and outputs.
fn other(param: u8, body: &[u8]) {
    let _decoded = match param % 17 {
        0 => decode::<pb::AbortRequest>(body).is_some(),
        1 => decode::<pb::CommitEpochRequest>(body).is_some(),
        2 => decode::<pb::StatusRequest>(body).is_some(),
        3 => decode::<pb::WatchRequest>(body).is_some(),
        4 => decode::<pb::NodesRequest>(body).is_some(),
        5 => decode::<pb::ClusterStatus>(body).is_some(),
        6 => decode::<pb::NodesResponse>(body).is_some(),
        7 => decode::<pb::Attempt>(body).is_some(),
        8 => decode::<pb::DeriveKeyResponse>(body).is_some(),
        9 => decode::<pb::WatchEpochsRequest>(body).is_some(),
        10 => decode::<pb::EpochsUnlocked>(body).is_some(),
        11 => decode::<pb::UnlockRequest>(body).is_some(),
        12 => decode::<pb::LockRequest>(body).is_some(),
        13 => decode::<pb::LockResponse>(body).is_some(),
        14 => decode::<pb::AddressBookAck>(body).is_some(),
        15 => decode::<pb::Share>(body).is_some(),
        _ => decode::<pb::Configuration>(body).is_some(),
    };
}

/// Real encoded messages, for the seed corpus: the fuzzer starts past the decoder.
pub fn seeds() -> Vec<Vec<u8>> {
    let e1 = Dealt::new(CLUSTER, 1, None, &["n0", "n1", "n2"], 2, 1);
    let e2 = Dealt::new(CLUSTER, 2, Some(&e1), &["n0", "n1", "n2", "n3", "n4"], 3, 2);
    let share = |d: &Dealt, n: &str| d.shares.get(&id(n)).map(share_to_pb);
    let digest = e2.config.digest().0.to_vec();
    let report = pb::NodeStatus {
        node_id: "n1".into(),
        committed: Some(pb::EpochDigest { epoch: 1, digest: e1.config.digest().0.to_vec() }),
        prepared: Some(pb::EpochDigest { epoch: 2, digest: digest.clone() }),
        expunged: 0,
        unlocked: 1,
        has_legacy_share: false,
        alarms: 2,
        version: "0.1.0".into(),
    };
    let legacy = pb::LegacyPackage {
        threshold: 2,
        share: [&[1u8][..], &[9; 32]].concat(),
        digests: ["n0", "n1", "n2"]
            .iter()
            .map(|n| pb::LegacyDigest { node_id: (*n).into(), digest: vec![3; 32] })
            .collect(),
    };
    let kind = |k: Kind| KINDS.iter().position(|x| *x == k).unwrap_or(0) as u8;
    let mut out: Vec<(Kind, u8, Vec<u8>)> = vec![
        (
            Kind::Prepare,
            0,
            pb::PrepareRequest { config: Some(config_to_pb(&e2.config)), share: share(&e2, "n3") }
                .encode_to_vec(),
        ),
        (Kind::Commit, 0, pb::CommitRequest { epoch: 2, digest: digest.clone() }.encode_to_vec()),
        (
            Kind::PrepareAndCommit,
            0,
            pb::PrepareAndCommitRequest { config: Some(config_to_pb(&e1.config)) }.encode_to_vec(),
        ),
        (
            Kind::GetShare,
            0,
            pb::GetShareRequest { epoch: 2, digest: digest.clone() }.encode_to_vec(),
        ),
        (
            Kind::AddressBook,
            0,
            pb::AddressBook {
                entries: vec![pb::AddressEntry { node_id: "n1".into(), address: "h:1".into() }],
            }
            .encode_to_vec(),
        ),
        (Kind::PrepareAck, 0, pb::PrepareAck { epoch: 2, digest: digest.clone() }.encode_to_vec()),
        (
            Kind::CommitResponse,
            1,
            pb::CommitResponse { outcome: Some(pb::commit_response::Outcome::CatchingUp(2)) }
                .encode_to_vec(),
        ),
        (
            Kind::GetShareResponse,
            3,
            pb::GetShareResponse {
                reply: Some(pb::get_share_response::Reply::Share(pb::ShareReply {
                    epoch: 2,
                    digest,
                    share: share(&e2, "n0"),
                })),
            }
            .encode_to_vec(),
        ),
        (
            Kind::GetShareResponse,
            3,
            pb::GetShareResponse {
                reply: Some(pb::get_share_response::Reply::CommitAdvance(config_to_pb(&e2.config))),
            }
            .encode_to_vec(),
        ),
        (Kind::LegacyPackage, 4, legacy.encode_to_vec()),
        (Kind::NodeStatus, 5, report.encode_to_vec()),
        (
            Kind::Enroll,
            0,
            pb::EnrollRequest { address: "h:1".into(), summary: Some(report) }.encode_to_vec(),
        ),
        (
            Kind::Reconfigure,
            0,
            pb::ReconfigureRequest {
                members: vec!["n0".into(), "n1".into(), "n2".into()],
                threshold: 2,
                previous_epoch: 1,
            }
            .encode_to_vec(),
        ),
        (
            Kind::DeriveKey,
            0,
            pb::DeriveKeyRequest {
                purpose: "disk".into(),
                context: b"sda".to_vec(),
                epoch: 0,
                length: 64,
            }
            .encode_to_vec(),
        ),
    ];
    let e = |n| Epoch::new(n).unwrap_or(Epoch::FIRST);
    for (code, err) in [
        (9, NodeError::StaleEpoch { epoch: e(2), committed: e(3) }),
        (9, NodeError::NotAMember { epoch: e(2), node: id("n9") }),
        (
            7,
            NodeError::Unauthorized {
                caller: tq_protocol::Peer::Node(id("n1")),
                request: RequestKind::Commit,
            },
        ),
        (5, NodeError::NoShare(e(4))),
    ] {
        out.push((Kind::Refusal, code, refusal_to_status(&err).details().to_vec()));
    }
    out.into_iter()
        .map(|(k, param, body)| {
            let mut seed = vec![kind(k), param];
            seed.extend(body);
            seed
        })
        .collect()
}
