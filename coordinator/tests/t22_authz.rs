//! Who may call what, on real services (DESIGN §3): the transport refuses certificates of
//! another CA; the control service and the agents authorize by the identity in the verified
//! certificate, never by a field of the message.

mod common;

use common::{Cluster, node};
use tonic::Code;
use tq_protocol::{ClusterId, NodeError, Peer, RequestKind};
use tq_wire::pb::{
    self, coordinator_client::CoordinatorClient, node_agent_client::NodeAgentClient,
};
use tq_wire::pki::{CertAuthority, LeafOptions};
use tq_wire::refusal::status_to_refusal;

/// §3: one cluster CA. An operator certificate from another CA (same cluster id, same name)
/// is refused by the coordinator's and the agents' TLS, below any authorization check; the
/// same client with the cluster's own certificate gets through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_another_ca_is_refused_by_the_tls_handshake() {
    let (c, _) = Cluster::up("foreignca", 3).await;

    let foreign = CertAuthority::generate(&c.id).expect("another CA");
    let alice = Peer::Operator("alice".into());
    let (cert, key) = foreign.issue(&c.id, &alice, &LeafOptions::default()).expect("a leaf");
    let (real_cert, real_key) = c.ca().issue(&c.id, &alice, &LeafOptions::default()).expect("leaf");

    // The control: the same client path with a certificate of the cluster CA works.
    let ch = c.raw_channel(c.coordinator_addr(), &real_cert, &real_key).await.expect("connects");
    CoordinatorClient::new(ch).status(pb::StatusRequest::default()).await.expect("status");
    let ch = c.raw_channel(c.agent_addr(&node(1)), &real_cert, &real_key).await.expect("connects");
    NodeAgentClient::new(ch).status(pb::NodeStatusRequest {}).await.expect("node status");

    for (what, addr) in
        [("coordinator", c.coordinator_addr()), ("agent n1", c.agent_addr(&node(1)))]
    {
        // With TLS 1.3 the client may finish its side before the server rejects its
        // certificate: then the first call fails (STACK.md).
        match c.raw_channel(addr, &cert, &key).await {
            Err(_) => {} // refused while connecting
            Ok(ch) => {
                let res = if addr == c.coordinator_addr() {
                    CoordinatorClient::new(ch)
                        .status(pb::StatusRequest::default())
                        .await
                        .map(|_| ())
                } else {
                    NodeAgentClient::new(ch).status(pb::NodeStatusRequest {}).await.map(|_| ())
                };
                let e = res.expect_err("a certificate of another CA must be refused");
                // A transport failure (the server's TLS closed the session; the code varies,
                // STACK.md), not a refusal by the service, which would mean TLS accepted it.
                assert!(
                    matches!(e.code(), Code::Unknown | Code::Cancelled | Code::Unavailable),
                    "{what}: not refused by the handshake: {e:?}"
                );
            }
        }
    }
    c.shutdown().await;
}

/// §3 table: only operators make control calls. A node's certificate and the coordinator's own
/// get `PermissionDenied` for every one, and nothing happens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_and_coordinator_certificates_may_not_make_operator_calls() {
    let (c, all) = Cluster::up("operatoronly", 3).await;

    let n1 = c.tls_of(&c.agent_tls(&node(1)));
    let coordinator = c.tls_of(&c.certs.coordinator);
    for (who, tls) in [("node n1", &n1), ("the coordinator", &coordinator)] {
        let mut client = c.coordinator_client_as(tls);
        let members: Vec<String> = all.iter().map(ToString::to_string).collect();
        let calls: Vec<(&str, Result<(), tonic::Status>)> = vec![
            ("Status", client.status(pb::StatusRequest::default()).await.map(|_| ())),
            ("Nodes", client.nodes(pb::NodesRequest {}).await.map(|_| ())),
            ("Watch", client.watch(pb::WatchRequest {}).await.map(|_| ())),
            (
                "Reconfigure",
                client
                    .reconfigure(pb::ReconfigureRequest {
                        members,
                        threshold: 2,
                        previous_epoch: 0,
                    })
                    .await
                    .map(|_| ()),
            ),
            ("Abort", client.abort(pb::AbortRequest {}).await.map(|_| ())),
            ("Commit", client.commit(pb::CommitEpochRequest {}).await.map(|_| ())),
            (
                "UpgradeFromLegacy",
                client
                    .upgrade_from_legacy(pb::UpgradeFromLegacyRequest {
                        members: vec!["n1".into(), "n2".into(), "n3".into()],
                        threshold: 2,
                    })
                    .await
                    .map(|_| ()),
            ),
        ];
        for (call, res) in calls {
            let e = res.expect_err(&format!("{who} must not call {call}"));
            assert_eq!(e.code(), Code::PermissionDenied, "{who} calling {call}: {e:?}");
        }
    }

    // Nothing was started on their behalf.
    let s = c.status().await;
    assert!(s.last_attempt.is_none() && s.latest_committed_epoch == 0, "{s:#?}");
    // The operator may.
    c.reconfigure(&all, 2, 0).await.expect("the operator reconfigures");
    c.wait_committed(1, &all).await;
    c.shutdown().await;
}

/// §3: identity comes from the verified certificate, never from the message. A node cannot
/// enroll as another, an operator cannot enroll at all, and a certificate of the right CA for
/// another cluster id is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_is_the_certificates_not_the_messages() {
    let (c, _) = Cluster::up("identity", 3).await;

    let summary = |id: &str| pb::EnrollRequest {
        address: "127.0.0.1:1".into(),
        summary: Some(pb::NodeStatus { node_id: id.into(), ..Default::default() }),
    };
    let n1 = c.tls_of(&c.agent_tls(&node(1)));
    let e = c.coordinator_client_as(&n1).enroll(summary("n2")).await.expect_err("n1 as n2");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let e = c.operator().enroll(summary("n2")).await.expect_err("an operator enrolling");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    // n2's address was not replaced by the forged enrollments.
    let nodes = c.operator().nodes(pb::NodesRequest {}).await.expect("nodes").into_inner();
    let n2 = nodes.nodes.iter().find(|n| n.node_id == "n2").expect("n2 is known");
    assert_eq!(n2.address, c.agent_addr(&node(2)).to_string(), "{nodes:#?}");

    // The cluster CA, but a SPIFFE ID of another cluster.
    let other = ClusterId::from_bytes([7; 16]);
    let (cert, key) = c
        .ca()
        .issue(&other, &Peer::Operator("alice".into()), &LeafOptions::default())
        .expect("a leaf");
    let ch = c.raw_channel(c.coordinator_addr(), &cert, &key).await.expect("TLS accepts the chain");
    let e = CoordinatorClient::new(ch)
        .status(pb::StatusRequest::default())
        .await
        .expect_err("another cluster's operator");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("cluster"), "{e:?}");
    c.shutdown().await;
}

/// §3 table for node calls: only the coordinator sends Prepare/Commit/PrepareAndCommit and
/// pushes the address book; operators may not fetch shares; members may (for unlock, §6.7).
/// Refusals carry the typed reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_authorize_each_call_by_the_callers_certificate() {
    let (c, _) = Cluster::configured("nodeauthz", 3, 2).await;

    let n1 = node(1);
    let operator = c.tls_of(&c.certs.operator);
    let n2 = c.tls_of(&c.agent_tls(&node(2)));
    let commit = pb::CommitRequest { epoch: 1, digest: vec![0; 32] };
    for (caller, tls) in [(Peer::Operator("alice".into()), &operator), (Peer::Node(node(2)), &n2)] {
        let e = c
            .node_client_as(tls, &n1)
            .commit(commit.clone())
            .await
            .expect_err("only the coordinator commits");
        assert_eq!(e.code(), Code::PermissionDenied, "{caller}: {e:?}");
        assert_eq!(
            status_to_refusal(&e),
            Some(NodeError::Unauthorized { caller: caller.clone(), request: RequestKind::Commit }),
            "{caller}: {e:?}"
        );
        let e = c
            .node_client_as(tls, &n1)
            .push_address_book(pb::AddressBook { entries: vec![] })
            .await
            .expect_err("only the coordinator pushes the address book");
        assert_eq!(e.code(), Code::PermissionDenied, "{caller}: {e:?}");
    }
    let get_share = pb::GetShareRequest { epoch: 1, digest: vec![] };
    let e = c
        .node_client_as(&operator, &n1)
        .get_share(get_share.clone())
        .await
        .expect_err("an operator never sees a share");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(
        matches!(status_to_refusal(&e), Some(NodeError::Unauthorized { .. })),
        "the refusal is typed: {e:?}"
    );
    // A member of epoch 1 may fetch n1's share of it (that is how peers unlock, §6.7).
    let reply = c
        .node_client_as(&n2, &n1)
        .get_share(get_share)
        .await
        .expect("a member fetches a share")
        .into_inner();
    assert!(matches!(reply.reply, Some(pb::get_share_response::Reply::Share(_))), "{reply:?}");

    // Nothing changed on n1, and no alarm was raised anywhere.
    let st = c.node_client_as(&operator, &n1).status(pb::NodeStatusRequest {}).await;
    let st = st.expect("status").into_inner();
    assert_eq!((st.committed.map(|e| e.epoch), st.alarms), (Some(1), 0));
    let s = c.status().await;
    assert_eq!(s.alarm_count, 0, "{s:#?}");
    c.shutdown().await;
}
