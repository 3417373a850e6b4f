//! Resource abuse (issue 4): connections that never handshake and floods of HTTP/2 streams
//! are shed, and the control plane's status call keeps answering meanwhile (§3 limits).

mod common;

use std::time::{Duration, Instant};

use common::Cluster;
use tokio::net::TcpStream;
use tq_wire::pb;

/// How long one status call may take while the service is under abuse: generous for a
/// noisy 2-core machine, far below what a stalled accept loop or exhausted server would cost.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);

async fn status_answers(
    c: &Cluster,
    client: &mut pb::coordinator_client::CoordinatorClient<tonic::transport::Channel>,
    what: &str,
) {
    let t = Instant::now();
    let s = tokio::time::timeout(ANSWER_WITHIN, client.status(pb::StatusRequest::default()))
        .await
        .unwrap_or_else(|_| panic!("{what}: status did not answer within {ANSWER_WITHIN:?}"))
        .unwrap_or_else(|e| panic!("{what}: status failed: {e:?}"));
    assert_eq!(s.into_inner().cluster_id, c.id.to_string(), "{what}");
    eprintln!("{what}: status answered in {:?}", t.elapsed());
}

/// 1000 TCP connections that never start a TLS handshake: an established client keeps being
/// served, and a new client gets through once the handshake timeout sheds the idle ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_connections_are_shed_and_status_keeps_answering() {
    let (c, _) = Cluster::up("idleconns", 3).await;
    let mut warm = c.operator();
    status_answers(&c, &mut warm, "before the flood").await;

    let addr = c.coordinator_addr();
    let mut idle = Vec::with_capacity(1000);
    for _ in 0..1000 {
        idle.push(TcpStream::connect(addr).await.expect("loopback connect"));
    }
    status_answers(&c, &mut warm, "established client during the flood").await;

    // Idle connections hold handshake slots, but the oldest is dropped for each newcomer:
    // a real client gets through at once, not after the idle ones time out (5 s).
    let fresh_started = Instant::now();
    let mut fresh = c.operator();
    let s = tokio::time::timeout(Duration::from_secs(12), async {
        loop {
            match fresh.status(pb::StatusRequest::default()).await {
                Ok(s) => return s,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
    .await
    .expect("a new client got through within 12 s of a 1000-connection flood");
    assert_eq!(s.into_inner().cluster_id, c.id.to_string());
    let waited = fresh_started.elapsed();
    eprintln!("new client during the flood: answered after {waited:?}");
    assert!(waited < Duration::from_secs(2), "a new client waited {waited:?} behind idle sockets");

    // The idle connections still holding a slot are closed at the handshake timeout.
    tokio::time::sleep(Duration::from_secs(6)).await;

    // Every idle connection was closed by the server (read returns 0 or an error).
    let mut closed = 0;
    for s in &idle {
        let mut buf = [0u8; 1];
        match tokio::time::timeout(Duration::from_millis(50), s.readable()).await {
            Ok(Ok(())) => match s.try_read(&mut buf) {
                Ok(0) | Err(_) => closed += 1,
                Ok(_) => {}
            },
            Ok(Err(_)) => closed += 1,
            Err(_) => {}
        }
    }
    assert!(closed >= 990, "only {closed} of 1000 idle connections were shed");
    drop(idle);
    status_answers(&c, &mut warm, "after the flood").await;
    c.shutdown().await;
}

/// 2000 long-lived Watch streams asked for at once on one connection: the server's
/// advertised limit (`max_concurrent_streams` = 128, HTTP/2 SETTINGS) holds, so at most 128
/// are open and the rest wait in the client, and another client's status call is answered
/// meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_stream_flood_is_capped_and_status_keeps_answering() {
    let (c, _) = Cluster::up("streamflood", 3).await;
    let cap = tq_wire::server::ServerLimits::default().max_concurrent_streams as usize;
    let mut flood = c.operator();
    // Connected first, so the server's SETTINGS (its stream limit) reached the client.
    status_answers(&c, &mut flood, "flooding client before the flood").await;
    let mut calls = Vec::new();
    for _ in 0..2000 {
        let mut f = flood.clone();
        calls.push(tokio::spawn(async move {
            tokio::time::timeout(Duration::from_secs(3), f.watch(pb::WatchRequest {})).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut other = c.operator();
    status_answers(&c, &mut other, "second client during a 2000-stream flood").await;
    // Every answered stream is kept open until the end: dropping one would close it and let
    // a waiting one open in its place.
    let (mut open, mut waited) = (Vec::new(), 0);
    for call in calls {
        match call.await.expect("a watch task") {
            Ok(Ok(stream)) => open.push(stream),
            Ok(Err(e)) => panic!("a watch stream failed instead of waiting: {e:?}"),
            Err(_elapsed) => waited += 1,
        }
    }
    eprintln!("{} of 2000 watch streams open at once, {waited} waited 3 s", open.len());
    assert!(!open.is_empty(), "no watch stream was served during the flood");
    assert!(open.len() <= cap, "{} streams open on one connection (cap {cap})", open.len());
    assert_eq!(open.len() + waited, 2000);
    status_answers(&c, &mut other, "after the flood").await;
    c.shutdown().await;
}
