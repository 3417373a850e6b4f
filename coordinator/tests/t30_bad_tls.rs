//! Bad TLS and bad identities against running services (DESIGN §3). Each case ends in a
//! refused handshake (the alert the server sent) or a typed gRPC refusal, with the target's
//! durable state byte-for-byte unchanged, no panic, and the target still answering status.
//!
//! Certificate cases run against both servers (the coordinator and agent n1 share one TLS
//! stack, `tq_wire::tls` + `tq_wire::server`); identity cases against the service that
//! decides.

mod common;

use std::time::Duration;

use common::{
    Cluster, Handshake, Target, assert_alert, assert_refusal, client_tls, leaf_params, node,
    rcgen_issuer, tls_handshake,
};
use rustls::AlertDescription;
use tonic::Code;
use tq_protocol::{ClusterId, NodeError, Peer, RequestKind};
use tq_wire::identity::spiffe_id;
use tq_wire::pb::{
    self, coordinator_client::CoordinatorClient, node_agent_client::NodeAgentClient,
};
use tq_wire::pki::{CertAuthority, LeafOptions};

const TLS13: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

fn alice() -> Peer {
    Peer::Operator("alice".into())
}

/// The control for every handshake case below: the same raw client with a certificate of the
/// cluster CA completes the handshake and the server speaks HTTP/2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_a_valid_certificate_completes_the_raw_handshake() {
    let (c, _) = Cluster::up("tlscontrol", 3).await;
    let (cert, key) = c.ca().issue(&c.id, &alice(), &LeafOptions::default()).expect("a leaf");
    for (addr, server) in
        [(c.coordinator_addr(), Peer::Coordinator), (c.agent_addr(&node(1)), Peer::Node(node(1)))]
    {
        let h = tls_handshake(addr, client_tls(&c, TLS13, Some((&cert, &key)), server)).await;
        assert!(matches!(h, Handshake::Accepted), "{addr}: {h:?}");
    }
    c.shutdown().await;
}

/// §3: one cluster CA. A leaf of another CA naming this cluster's operator `alice` is refused
/// with `unknown_ca`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_from_another_ca() {
    let (c, _) = Cluster::up("otherca", 3).await;
    // A CA of another name (the name embeds a cluster id): the chain finds no anchor.
    let other = CertAuthority::generate(&ClusterId::from_bytes([1; 16])).expect("another CA");
    let (cert, key) = other.issue(&c.id, &alice(), &LeafOptions::default()).expect("a leaf");
    refuse_on(&c, &cert, &key, AlertDescription::UnknownCA).await;
    c.shutdown().await;
}

/// Another CA that copies the cluster CA's name: the anchor is found by name, and the
/// signature check fails (`decrypt_error`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_from_another_ca_with_the_cluster_cas_name() {
    let (c, _) = Cluster::up("sameca", 3).await;
    let other = CertAuthority::generate(&c.id).expect("another CA, same name");
    let (cert, key) = other.issue(&c.id, &alice(), &LeafOptions::default()).expect("a leaf");
    refuse_on(&c, &cert, &key, AlertDescription::DecryptError).await;
    c.shutdown().await;
}

/// An expired certificate of the cluster CA: `certificate_expired`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_certificate() {
    expired_or_early("expired", time::Duration::days(-3)).await;
}

/// A certificate whose validity starts tomorrow: `certificate_expired` too (RFC 8446: "has
/// expired or is not currently valid").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_yet_valid_certificate() {
    expired_or_early("notyetvalid", time::Duration::days(1)).await;
}

async fn expired_or_early(name: &str, valid_from: time::Duration) {
    let (c, _) = Cluster::up(name, 3).await;
    let opts = LeafOptions {
        valid_from,
        valid_for: Duration::from_secs(24 * 3600),
        ..LeafOptions::default()
    };
    let (cert, key) = c.ca().issue(&c.id, &alice(), &opts).expect("a leaf");
    refuse_on(&c, &cert, &key, AlertDescription::CertificateExpired).await;
    c.shutdown().await;
}

/// Presents `cert`/`key` (TLS 1.3) to the coordinator and to agent n1; each must refuse the
/// handshake with `alert`, and neither may change its state.
async fn refuse_on(c: &Cluster, cert: &str, key: &str, alert: AlertDescription) {
    let n1 = node(1);
    let guard = c.untouched(&[Target::Coordinator, Target::Agent(n1.clone())]).await;
    for (what, addr, server) in [
        ("coordinator", c.coordinator_addr(), Peer::Coordinator),
        ("agent n1", c.agent_addr(&n1), Peer::Node(n1.clone())),
    ] {
        let h = tls_handshake(addr, client_tls(c, TLS13, Some((cert, key)), server)).await;
        assert_alert(what, &h, alert);
    }
    c.assert_untouched(guard).await;
}

/// A self-signed leaf naming the operator: no chain to the cluster CA, `unknown_ca`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_signed_leaf() {
    let (c, _) = Cluster::up("selfsigned", 3).await;
    let (params, key) = leaf_params(&[spiffe_id(&c.id, &alice())]);
    let cert = params.self_signed(&key).expect("a self-signed leaf");
    refuse_on(&c, &cert.pem(), &key.serialize_pem(), AlertDescription::UnknownCA).await;
    c.shutdown().await;
}

/// A leaf of the cluster CA marked as a CA itself: webpki refuses a CA as an end entity
/// (`CaUsedAsEndEntity`), which rustls reports as `certificate_unknown`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaf_that_is_a_ca() {
    let (c, _) = Cluster::up("leafca", 3).await;
    let opts = LeafOptions { is_ca: true, ..LeafOptions::default() };
    let (cert, key) = c.ca().issue(&c.id, &alice(), &opts).expect("a leaf");
    refuse_on(&c, &cert, &key, AlertDescription::CertificateUnknown).await;
    c.shutdown().await;
}

/// A leaf of the cluster CA with server-auth usage only: `unsupported_certificate`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaf_without_client_auth_usage() {
    let (c, _) = Cluster::up("noclientauth", 3).await;
    let opts = LeafOptions { client_auth: false, ..LeafOptions::default() };
    let (cert, key) = c.ca().issue(&c.id, &alice(), &opts).expect("a leaf");
    refuse_on(&c, &cert, &key, AlertDescription::UnsupportedCertificate).await;
    c.shutdown().await;
}

/// §3: client certificates are required. A client that offers none: `certificate_required`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_client_certificate() {
    let (c, _) = Cluster::up("nocert", 3).await;
    let n1 = node(1);
    let guard = c.untouched(&[Target::Coordinator, Target::Agent(n1.clone())]).await;
    for (what, addr, server) in [
        ("coordinator", c.coordinator_addr(), Peer::Coordinator),
        ("agent n1", c.agent_addr(&n1), Peer::Node(n1.clone())),
    ] {
        let h = tls_handshake(addr, client_tls(&c, TLS13, None, server)).await;
        assert_alert(what, &h, AlertDescription::CertificateRequired);
    }
    c.assert_untouched(guard).await;
    c.shutdown().await;
}

/// §3: TLS 1.3 only. A client that offers only TLS 1.2 (with a valid certificate) is
/// refused during the handshake with `protocol_version`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls12_only_client() {
    let (c, _) = Cluster::up("tls12", 3).await;
    let (cert, key) = c.ca().issue(&c.id, &alice(), &LeafOptions::default()).expect("a leaf");
    let n1 = node(1);
    let guard = c.untouched(&[Target::Coordinator, Target::Agent(n1.clone())]).await;
    for (what, addr, server) in [
        ("coordinator", c.coordinator_addr(), Peer::Coordinator),
        ("agent n1", c.agent_addr(&n1), Peer::Node(n1.clone())),
    ] {
        let cfg = client_tls(&c, &[&rustls::version::TLS12], Some((&cert, &key)), server);
        let h = tls_handshake(addr, cfg).await;
        assert_alert(what, &h, AlertDescription::ProtocolVersion);
    }
    c.assert_untouched(guard).await;
    c.shutdown().await;
}

/// Plaintext HTTP/2 (prior knowledge) to a TLS port: the server answers the connection
/// preface with a TLS alert record and closes; a plaintext gRPC client gets an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_http2_to_the_tls_port() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (c, _) = Cluster::up("plaintext", 3).await;
    let n1 = node(1);
    let guard = c.untouched(&[Target::Coordinator, Target::Agent(n1.clone())]).await;
    for (what, addr) in [("coordinator", c.coordinator_addr()), ("agent n1", c.agent_addr(&n1))] {
        // Raw: the HTTP/2 preface and an empty SETTINGS frame.
        let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("TCP connects");
        tcp.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
            .await
            .expect("write");
        let mut got = Vec::new();
        tokio::time::timeout(Duration::from_secs(4), tcp.read_to_end(&mut got))
            .await
            .expect("the server closes the connection")
            .ok();
        // A TLS record of type alert (21), fatal (2), decode_error (50) — never an HTTP/2
        // frame. (Some kernels may reset instead: then nothing arrives at all.)
        assert!(
            got.is_empty() || (got.len() == 7 && got[0] == 21 && got[5] == 2 && got[6] == 50),
            "{what}: the server answered plaintext with {got:?}"
        );

        // A plaintext gRPC client: the call fails at the transport (the code varies with
        // when hyper sees the close, STACK.md, or with hyper reading the alert record as a
        // frame header: FRAME_SIZE_ERROR, `Internal`).
        let ch = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("an endpoint")
            .timeout(Duration::from_secs(3))
            .connect_lazy();
        let e = if what == "coordinator" {
            CoordinatorClient::new(ch).status(pb::StatusRequest::default()).await.map(|_| ())
        } else {
            NodeAgentClient::new(ch).status(pb::NodeStatusRequest {}).await.map(|_| ())
        }
        .expect_err("plaintext must not get an answer");
        assert!(
            matches!(
                e.code(),
                Code::Unavailable | Code::Unknown | Code::Cancelled | Code::Internal
            ),
            "{what}: {e:?}"
        );
    }
    c.assert_untouched(guard).await;
    c.shutdown().await;
}

/// The client side of §3: a server whose certificate names another node than the one
/// dialled is refused by `tq_wire`'s verifier (here: dialling agent n1's port expecting n2,
/// as an agent or the coordinator would after a stale address book).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_certificate_naming_another_node() {
    let (c, _) = Cluster::up("impostor", 3).await;
    let (cert, key) = c.ca().issue(&c.id, &alice(), &LeafOptions::default()).expect("a leaf");
    let n1 = node(1);
    let guard = c.untouched(&[Target::Agent(n1.clone())]).await;
    let cfg = client_tls(&c, TLS13, Some((&cert, &key)), Peer::Node(node(2)));
    match tls_handshake(c.agent_addr(&n1), cfg).await {
        Handshake::Refused(rustls::Error::General(why)) => {
            assert!(why.contains("/node/n1") && why.contains("/node/n2"), "{why}")
        }
        other => panic!("the client must refuse n1 posing as n2: {other:?}"),
    }
    // The same through the client the services use.
    let mut client = c.node_client_as(&c.operator_tls(), &node(2));
    let wrong = tq_wire::client::channel(
        &c.operator_tls(),
        Peer::Node(node(2)),
        &c.agent_addr(&n1).to_string(),
        &tq_wire::client::ClientLimits::default(),
    )
    .expect("a channel");
    let e = NodeAgentClient::new(wrong)
        .status(pb::NodeStatusRequest {})
        .await
        .expect_err("n1 must not be taken for n2");
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    client.status(pb::NodeStatusRequest {}).await.expect("n2 itself answers");
    c.assert_untouched(guard).await;
    c.shutdown().await;
}

/// §3: a certificate of the cluster CA for another cluster id passes TLS but names nobody
/// here: `PermissionDenied` from both services.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_for_another_cluster_id() {
    let (c, _) = Cluster::up("othercluster", 3).await;
    let other = ClusterId::from_bytes([7; 16]);
    let (cert, key) = c.ca().issue(&other, &alice(), &LeafOptions::default()).expect("a leaf");
    identity_refused(&c, &cert, &key, "cluster").await;
    c.shutdown().await;
}

/// A certificate of the cluster CA without any SPIFFE ID: `PermissionDenied`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_without_a_spiffe_id() {
    let (c, _) = Cluster::up("nospiffe", 3).await;
    let (params, key) = leaf_params(&["https://example.com/alice".into()]);
    let cert = params.signed_by(&key, &rcgen_issuer(&c)).expect("a leaf");
    identity_refused(&c, &cert.pem(), &key.serialize_pem(), "no spiffe").await;
    c.shutdown().await;
}

/// A certificate of the cluster CA with two SPIFFE IDs (the operator and the coordinator):
/// ambiguous, `PermissionDenied` — never the more privileged of the two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_with_two_spiffe_ids() {
    let (c, _) = Cluster::up("twospiffe", 3).await;
    let uris = [spiffe_id(&c.id, &alice()), spiffe_id(&c.id, &Peer::Coordinator)];
    let (params, key) = leaf_params(&uris);
    let cert = params.signed_by(&key, &rcgen_issuer(&c)).expect("a leaf");
    identity_refused(&c, &cert.pem(), &key.serialize_pem(), "several").await;
    c.shutdown().await;
}

/// TLS accepts the chain; the coordinator's Status and agent n1's Status and Prepare answer
/// `PermissionDenied` saying `says`; nothing changes.
async fn identity_refused(c: &Cluster, cert: &str, key: &str, says: &str) {
    let n1 = node(1);
    let guard = c.untouched(&[Target::Coordinator, Target::Agent(n1.clone())]).await;
    let ch = c.raw_channel(c.coordinator_addr(), cert, key).await.expect("TLS accepts the chain");
    let e = CoordinatorClient::new(ch)
        .status(pb::StatusRequest::default())
        .await
        .expect_err("the coordinator must refuse");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains(says), "{e:?}");
    let ch = c.raw_channel(c.agent_addr(&n1), cert, key).await.expect("TLS accepts the chain");
    let mut agent = NodeAgentClient::new(ch);
    let e = agent.status(pb::NodeStatusRequest {}).await.expect_err("the agent must refuse");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains(says), "{e:?}");
    let dealt = common::deal(c.id, 2, Some(1), &c.nodes(), 2, 1);
    let e = agent.prepare(dealt.prepare(&n1)).await.expect_err("the agent must refuse");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    c.assert_untouched(guard).await;
}

/// §3, §6.13: identity is the certificate's, never the message's. Node n1's certificate
/// enrolling with a summary that names n2 (and n2's address moved) is refused and the
/// ledger is unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uri_san_naming_another_node_than_the_message() {
    let (c, _) = Cluster::up("enrollas", 3).await;
    let guard = c.untouched(&[Target::Coordinator]).await;
    let n1 = c.tls_of(&c.agent_tls(&node(1)));
    let req = pb::EnrollRequest {
        address: "127.0.0.1:9".into(),
        summary: Some(pb::NodeStatus { node_id: "n2".into(), ..Default::default() }),
    };
    let e = c.coordinator_client_as(&n1).enroll(req).await.expect_err("n1 enrolling as n2");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("node/n1") && e.message().contains("n2"), "{e:?}");
    let nodes = c.operator().nodes(pb::NodesRequest {}).await.expect("nodes").into_inner();
    let n2 = nodes.nodes.iter().find(|n| n.node_id == "n2").expect("n2 is known");
    assert_eq!(n2.address, c.agent_addr(&node(2)).to_string(), "{nodes:#?}");
    c.assert_untouched(guard).await;
    c.shutdown().await;
}

/// §3 table: node n2's certificate used to act as the coordinator toward n1 — Prepare,
/// Commit, PrepareAndCommit with a valid dealing — gets the typed `Unauthorized` refusal,
/// and the address book push `PermissionDenied`; n1's store is unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_certificate_acting_for_the_coordinator() {
    let (c, all) = Cluster::configured("nodeascoord", 3, 2).await;
    let n1 = node(1);
    let guard = c.untouched(&[Target::Agent(n1.clone())]).await;
    let n2 = c.tls_of(&c.agent_tls(&node(2)));
    let mut client = c.node_client_as(&n2, &n1);
    let dealt = common::deal(c.id, 2, Some(1), &all, 2, 2);
    let caller = Peer::Node(node(2));
    let unauthorized = |request| NodeError::Unauthorized { caller: caller.clone(), request };
    let e = client.prepare(dealt.prepare(&n1)).await.expect_err("n2 may not prepare n1");
    assert_refusal(&e, Code::PermissionDenied, unauthorized(RequestKind::Prepare));
    let e = client.commit(dealt.commit()).await.expect_err("n2 may not commit n1");
    assert_refusal(&e, Code::PermissionDenied, unauthorized(RequestKind::Commit));
    let e = client
        .prepare_and_commit(pb::PrepareAndCommitRequest { config: Some(dealt.config_pb()) })
        .await
        .expect_err("n2 may not make n1 catch up");
    assert_refusal(&e, Code::PermissionDenied, unauthorized(RequestKind::PrepareAndCommit));
    let book = pb::AddressBook {
        entries: vec![pb::AddressEntry { node_id: "n3".into(), address: "127.0.0.1:9".into() }],
    };
    let e = client.push_address_book(book).await.expect_err("n2 may not push n1's book");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    c.assert_untouched(guard).await;
    c.shutdown().await;
}

/// §3 table, "coordinator identity not the coordinator": the operator's certificate with a
/// validly dealt Prepare and its Commit: typed `Unauthorized`, nothing stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_certificate_acting_for_the_coordinator() {
    let (c, all) = Cluster::configured("opascoord", 3, 2).await;
    let n1 = node(1);
    let guard = c.untouched(&[Target::Agent(n1.clone())]).await;
    let mut client = c.node_client_as(&c.operator_tls(), &n1);
    let dealt = common::deal(c.id, 2, Some(1), &all, 2, 3);
    let unauthorized = |request| NodeError::Unauthorized { caller: alice(), request };
    let e = client.prepare(dealt.prepare(&n1)).await.expect_err("an operator may not prepare");
    assert_refusal(&e, Code::PermissionDenied, unauthorized(RequestKind::Prepare));
    let e = client.commit(dealt.commit()).await.expect_err("an operator may not commit");
    assert_refusal(&e, Code::PermissionDenied, unauthorized(RequestKind::Commit));
    c.assert_untouched(guard).await;
    c.shutdown().await;
}

/// Node n1's certificate installed on agent n2: n2 refuses to start (TLS identity check,
/// before its store is opened), and its state directory is unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_started_with_another_nodes_certificate() {
    let (mut c, _) = Cluster::configured("wrongcert", 3, 2).await;
    let n2 = node(2);
    c.stop_agent(&n2).await;
    let before = common::snapshot(&c.agent_state(&n2));
    common::watch_panics();
    let mut config = c.agent_config(&n2);
    config.tls = c.agent_tls(&node(1));
    let err = c.agent_refuses_to_start(&n2, config).await;
    assert!(err.contains("certificate is for node/n1, this process is node/n2"), "{err}");
    common::assert_same_files("n2", &before, &common::snapshot(&c.agent_state(&n2)));
    assert_eq!(common::panics(), 0);
    // With its own certificate it starts and answers.
    c.start_agent(&n2).await;
    c.assert_answers(&Target::Agent(n2)).await;
    c.shutdown().await;
}

/// §3 handshake timeout: a client that connects and sends nothing, and one that stops in
/// the middle of its ClientHello, are cut once the handshake timeout (300 ms here) passes;
/// the agent keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_client_is_cut_after_the_handshake_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut c, _) = Cluster::up("slowloris", 3).await;
    let n1 = node(1);
    c.stop_agent(&n1).await;
    let mut config = c.agent_config(&n1);
    config.limits.handshake_timeout = Duration::from_millis(300);
    c.start_agent_with(&n1, config).await.expect("n1 restarts");
    let guard = c.untouched(&[Target::Agent(n1.clone())]).await;
    // A TLS handshake record header announcing 512 bytes, then nothing.
    for (what, prefix) in [("silent", &[][..]), ("half a ClientHello", &[22u8, 3, 1, 2, 0][..])] {
        let started = std::time::Instant::now();
        let mut tcp = tokio::net::TcpStream::connect(c.agent_addr(&n1)).await.expect("connects");
        tcp.write_all(prefix).await.expect("write");
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(3), tcp.read_to_end(&mut buf)).await;
        let waited = started.elapsed();
        assert!(read.is_ok(), "{what}: the connection was not cut within 3 s");
        assert!(waited >= Duration::from_millis(250), "{what}: cut after only {waited:?}");
        assert!(
            buf.is_empty() || buf[0] == 21,
            "{what}: the server sent something other than an alert: {buf:?}"
        );
    }
    c.assert_untouched(guard).await;
    c.shutdown().await;
}

/// After a good handshake, bytes that are not HTTP/2: the server closes the connection and
/// keeps serving others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_http2_after_the_handshake() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (c, _) = Cluster::up("nothttp2", 3).await;
    let (cert, key) = c.ca().issue(&c.id, &alice(), &LeafOptions::default()).expect("a leaf");
    let n1 = node(1);
    let guard = c.untouched(&[Target::Coordinator, Target::Agent(n1.clone())]).await;
    for (what, addr, server) in [
        ("coordinator", c.coordinator_addr(), Peer::Coordinator),
        ("agent n1", c.agent_addr(&n1), Peer::Node(n1.clone())),
    ] {
        let cfg = client_tls(&c, TLS13, Some((&cert, &key)), server);
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connects");
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("a name");
        let mut tls =
            tokio_rustls::TlsConnector::from(cfg).connect(name, tcp).await.expect("handshake");
        tls.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(4), tls.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "{what}: the connection stayed open");
        // Whatever came back is HTTP/2 (the server's SETTINGS, maybe a GOAWAY), never an
        // HTTP/1 answer.
        assert!(!buf.starts_with(b"HTTP/1"), "{what}: {buf:?}");
    }
    c.assert_untouched(guard).await;
    c.shutdown().await;
}
