//! The fault proxy of `tq-testbed netfaults` (testbed/src/netfaults/proxy.rs) against an
//! echo server on loopback: each fault does what its documentation says, and only on the
//! link it was set on (the connecting process is told apart by its socket's owner).

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tq_testbed::netfaults::proxy::{Fabric, Link, Proxy};

/// This test process, as the proxy names it.
const ME: &str = "tester";
/// The process behind the proxy.
const ECHO: &str = "echo";

/// An echo server; counts the connections it accepted.
async fn echo() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let _ = s.set_nodelay(true);
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    (addr, accepted)
}

/// A fabric that knows this process as [`ME`], and a proxy in front of an echo server.
async fn setup(seed: u64, rto: Duration) -> (Arc<Fabric>, Proxy, Arc<AtomicUsize>) {
    let me = std::process::id();
    let fabric = Fabric::new(seed, rto, Box::new(move || vec![(me, ME.to_string())]));
    let proxy = Proxy::start(fabric.clone(), ECHO).await.expect("proxy");
    let (addr, accepted) = echo().await;
    proxy.set_target(addr);
    (fabric, proxy, accepted)
}

/// [`setup`], a connection that has carried one round trip, then `link` on this process's
/// link to the echo server.
async fn open_then(link: Link) -> (Arc<Fabric>, Proxy, Arc<AtomicUsize>, TcpStream) {
    let (fabric, proxy, accepted) = setup(1, Duration::from_millis(200)).await;
    let mut open = connect(&proxy).await;
    round_trip(&mut open, b"warm").await;
    fabric.set(ME, ECHO, link);
    (fabric, proxy, accepted, open)
}

async fn connect(proxy: &Proxy) -> TcpStream {
    let s = TcpStream::connect(proxy.addr()).await.expect("connect");
    s.set_nodelay(true).expect("nodelay");
    s
}

/// Sends `msg` and reads its echo; returns how long that took.
async fn round_trip(s: &mut TcpStream, msg: &[u8]) -> Duration {
    let t = Instant::now();
    s.write_all(msg).await.expect("write");
    let mut back = vec![0; msg.len()];
    s.read_exact(&mut back).await.expect("read the echo");
    assert_eq!(back, msg);
    t.elapsed()
}

/// Whether the next read is a reset (within 2 s); returns what it got.
async fn read_is_reset(s: &mut TcpStream) -> (bool, std::io::Result<usize>) {
    let mut buf = [0u8; 16];
    let r =
        tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await.expect("an answer");
    (r.as_ref().is_err_and(is_reset), r)
}

fn is_reset(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pass_through_is_byte_exact_both_ways_and_forwards_end_of_stream() {
    let (_fabric, proxy, _) = setup(1, Duration::from_millis(200)).await;
    let mut s = connect(&proxy).await;
    let data: Vec<u8> =
        (0..1_000_003u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let (mut r, mut w) = s.split();
    let send = async {
        w.write_all(&data).await.expect("write");
        w.shutdown().await.expect("shutdown");
    };
    let mut back = Vec::new();
    let recv = r.read_to_end(&mut back);
    let (_, got) = tokio::join!(send, recv);
    got.expect("read to the end");
    assert_eq!(back.len(), data.len());
    assert!(back == data, "the echo differs from what was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_resets_new_connections_before_reaching_the_server() {
    let (fabric, proxy, accepted) = setup(1, Duration::from_millis(200)).await;
    fabric.set(ME, ECHO, Link::Partition);
    // The kernel completes the handshake before the proxy resets: the reset may already be
    // there when the client sets its first option, or only at its first read.
    let r = async {
        let mut s = TcpStream::connect(proxy.addr()).await?;
        s.set_nodelay(true)?;
        let _ = s.write_all(b"hello").await;
        let mut buf = [0u8; 16];
        tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await.expect("an answer")
    }
    .await;
    assert!(r.as_ref().is_err_and(is_reset), "a partitioned connect should be reset, got {r:?}");
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "the server saw a connection");
    assert_eq!(fabric.counters().resets, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_resets_open_connections() {
    let (_fabric, _proxy, _, mut s) = open_then(Link::Partition).await;
    let (reset, r) = read_is_reset(&mut s).await;
    assert!(reset, "an open connection should be reset by a partition, got {r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blackhole_forwards_nothing_keeps_sockets_open_and_delivers_in_order_on_heal() {
    let (fabric, proxy, accepted, mut open) = open_then(Link::Blackhole).await;
    let mut new = connect(&proxy).await;
    for s in [&mut open, &mut new] {
        s.write_all(b"one").await.expect("write");
        s.write_all(b"two").await.expect("write");
    }
    let mut buf = [0u8; 16];
    for s in [&mut open, &mut new] {
        let r = tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf)).await;
        assert!(r.is_err(), "a blackhole answered (data, end of stream or reset): {r:?}");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "the held connection reached the server");
    fabric.heal();
    for s in [&mut open, &mut new] {
        let mut back = [0u8; 6];
        tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut back))
            .await
            .expect("delivered after heal")
            .expect("read");
        assert_eq!(&back, b"onetwo");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_holds_each_chunk_per_direction_and_keeps_order() {
    let (fabric, proxy, _) = setup(1, Duration::from_millis(200)).await;
    let mut s = connect(&proxy).await;
    let fast = round_trip(&mut s, b"ping").await;
    fabric.set(ME, ECHO, Link::Slow { delay: Duration::from_millis(100), loss: 0.0 });
    let slow = round_trip(&mut s, b"ping").await;
    assert!(slow >= Duration::from_millis(200), "a round trip over 2 × 100 ms took {slow:?}");
    assert!(slow < Duration::from_millis(400) + fast * 4, "a round trip took {slow:?}");
    // Chunks written apart come back in order, each delayed, not serialized behind another.
    let t = Instant::now();
    for part in [b"a", b"b", b"c"] {
        s.write_all(part).await.expect("write");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut back = [0u8; 3];
    s.read_exact(&mut back).await.expect("read");
    assert_eq!(&back, b"abc");
    let took = t.elapsed();
    assert!(took < Duration::from_millis(400), "three pipelined chunks took {took:?}");
}

/// Ping-pongs through a lossy link; returns how many round trips met a retransmission
/// timeout, and the proxy's count of lost chunks.
async fn lossy_round_trips(seed: u64) -> (usize, u64) {
    let rto = Duration::from_millis(100);
    let (fabric, proxy, _) = setup(seed, rto).await;
    let mut s = connect(&proxy).await;
    fabric.set(ME, ECHO, Link::Slow { delay: Duration::ZERO, loss: 0.3 });
    let mut delayed = 0;
    for _ in 0..40 {
        if round_trip(&mut s, b"x").await >= rto {
            delayed += 1;
        }
    }
    (delayed, fabric.counters().lost)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loss_costs_a_retransmission_timeout_on_a_seeded_share_of_chunks() {
    let (delayed, lost) = lossy_round_trips(7).await;
    // Each round trip is two chunks, each lost with p = 0.3: about half meet a timeout.
    assert!((8..=32).contains(&delayed), "{delayed} of 40 round trips were delayed");
    assert!(lost as usize >= delayed, "{lost} chunks lost, {delayed} round trips delayed");
    assert_eq!(lossy_round_trips(7).await.1, lost, "the same seed lost a different number");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_applies_only_to_the_link_it_was_set_on() {
    let (fabric, proxy, _) = setup(1, Duration::from_millis(200)).await;
    fabric.set("someone-else", ECHO, Link::Partition);
    fabric.set(ME, "another-server", Link::Blackhole);
    let mut s = connect(&proxy).await;
    let t = round_trip(&mut s, b"through").await;
    assert!(t < Duration::from_millis(100), "a round trip on a passing link took {t:?}");
    fabric.set(ME, ECHO, Link::Partition);
    let (reset, r) = read_is_reset(&mut s).await;
    assert!(reset, "this process's link was partitioned, got {r:?}");
}
