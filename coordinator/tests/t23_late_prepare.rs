//! A member whose Prepare is still on its way when the commit is decided (DESIGN §6.4):
//! its Prepare's answer gets it a Commit, and the PrepareAndCommit the decision would send
//! it goes out only if that Prepare fails.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Cluster, node};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tq_protocol::NodeId;
use tq_wire::pb;

/// A TCP relay in front of an agent: bytes towards the agent wait while it is shut, and
/// [`Gate::cut`] drops every connection relayed so far.
struct Gate {
    addr: SocketAddr,
    open: watch::Sender<bool>,
    cuts: watch::Sender<u64>,
}

impl Gate {
    async fn new(agent: SocketAddr) -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the relay");
        let addr = listener.local_addr().expect("relay address");
        let (open, _) = watch::channel(true);
        let (cuts, _) = watch::channel(0);
        let (o, k) = (open.clone(), cuts.clone());
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let Ok(outbound) = TcpStream::connect(agent).await else { continue };
                tokio::spawn(relay(inbound, outbound, o.subscribe(), k.subscribe()));
            }
        });
        Gate { addr, open, cuts }
    }

    fn shut(&self) {
        self.open.send_replace(false);
    }

    fn open(&self) {
        self.open.send_replace(true);
    }

    fn cut(&self) {
        self.cuts.send_modify(|n| *n += 1);
    }
}

/// Copies both ways until either side closes or the connection is cut; what goes to the
/// agent waits while the gate is shut.
async fn relay(
    inbound: TcpStream,
    outbound: TcpStream,
    mut open: watch::Receiver<bool>,
    mut cuts: watch::Receiver<u64>,
) {
    let _ = (inbound.set_nodelay(true), outbound.set_nodelay(true));
    let (mut from_client, mut to_client) = inbound.into_split();
    let (mut from_agent, mut to_agent) = outbound.into_split();
    let towards_agent = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match from_client.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if open.wait_for(|o| *o).await.is_err() || to_agent.write_all(&buf[..n]).await.is_err()
            {
                return;
            }
        }
    };
    let towards_client = async {
        let _ = tokio::io::copy(&mut from_agent, &mut to_client).await;
    };
    tokio::select! {
        () = towards_agent => {}
        () = towards_client => {}
        _ = cuts.changed() => {}
    }
}

/// Restarts agent 3 behind a gate (it advertises the relay's address) and waits until the
/// coordinator has heard from it through the relay: its connection is up, so what it sends
/// next is on the wire (a request queued behind a connection still being opened would be
/// sent again on the next one).
async fn behind_a_gate(c: &mut Cluster) -> Gate {
    let n3 = node(3);
    let gate = Gate::new(c.agent_addr(&n3)).await;
    c.stop_agent(&n3).await;
    let mut config = c.agent_config(&n3);
    config.advertise = Some(gate.addr.to_string());
    c.start_agent_with(&n3, config).await.expect("agent 3 starts again");
    let want = gate.addr.to_string();
    common::wait_until("the coordinator knows agent 3 by the relay's address", || {
        let (c, want) = (&*c, &want);
        async move {
            let nodes = c.operator().nodes(pb::NodesRequest {}).await.ok()?.into_inner();
            nodes.nodes.iter().any(|n| n.node_id == "n3" && n.address == *want).then_some(())
        }
    })
    .await;
    let since = unix_ms();
    common::wait_until("the coordinator polled agent 3 through the relay", || {
        let c = &*c;
        async move {
            let nodes = c.operator().nodes(pb::NodesRequest {}).await.ok()?.into_inner();
            nodes.nodes.iter().any(|n| n.node_id == "n3" && n.last_contact_ms > since).then_some(())
        }
    })
    .await;
    gate
}

fn unix_ms() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.map_or(0, |d| d.as_millis() as i64)
}

/// Three agents with epoch 1 committed, n3 behind a shut gate, and epoch 2 decided on the
/// acks of n1 and n2 (K + Z = 2): n3's Prepare is held up in the relay.
async fn decided_without_n3(name: &str) -> (Cluster, Vec<NodeId>, Gate) {
    let (mut c, all) = Cluster::configured(name, 3, 2).await;
    let gate = behind_a_gate(&mut c).await;
    c.wait_committed(1, &all).await;
    gate.shut();
    c.reconfigure(&all, 2, 1).await.expect("epoch 2 accepted");
    c.wait_status("epoch 2 is decided", |s| s.latest_committed_epoch == 2).await;
    (c, all, gate)
}

/// §6.4: with n3's Prepare held up, n1 and n2 make K + Z = 2 acks and the commit is decided;
/// once n3's Prepare gets through, its ack gets a Commit and n3 commits, and it is never sent
/// the PrepareAndCommit (before, it got one too and decoded the configuration twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_prepare_is_late_at_the_decision_gets_a_commit_not_a_prepare_and_commit() {
    let (c, all, gate) = decided_without_n3("lateprepare").await;
    // Time for a PrepareAndCommit sent at the decision to reach the relay.
    tokio::time::sleep(Duration::from_millis(300)).await;
    gate.open();
    c.wait_committed(2, &all).await;

    let n3 = "agent n3";
    assert_eq!(c.lines_with(n3, &["request", "kind: Prepare,", "epoch: Some(e2)"]), 1);
    assert_eq!(
        c.lines_with(n3, &["request", "kind: PrepareAndCommit", "epoch: Some(e2)"]),
        0,
        "n3 acked its Prepare after the decision: a Commit is all it needs"
    );
    assert!(c.lines_with(n3, &["request", "kind: Commit,", "epoch: Some(e2)"]) >= 1);
    c.same_key_everywhere(&all, 2).await;
    c.shutdown().await;
}

/// §6.4 + §6.5: when the Prepare held up at the decision fails instead (its connection is
/// cut before n3 read it), the PrepareAndCommit goes out at once: n3 catches up from its
/// peers, commits, and derives the same key as the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_late_prepare_fails_gets_the_prepare_and_commit() {
    let (c, all, gate) = decided_without_n3("lostprepare").await;
    gate.cut();
    gate.open();
    c.wait_committed(2, &all).await;

    let n3 = "agent n3";
    assert_eq!(
        c.lines_with(n3, &["request", "kind: Prepare,", "epoch: Some(e2)"]),
        0,
        "the Prepare was cut before n3 read it"
    );
    assert!(c.lines_with(n3, &["request", "kind: PrepareAndCommit", "epoch: Some(e2)"]) >= 1);
    assert_eq!(c.lines_with(n3, &["INFO caught up and committed", "epoch: 2"]), 1);
    c.same_key_everywhere(&all, 2).await;
    c.shutdown().await;
}
