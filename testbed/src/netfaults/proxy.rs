//! A userspace TCP proxy that injects network faults (the kernel here has no netem and no
//! packet filter). One [`Proxy`] listens in front of each process; every connection to that
//! process crosses it. A connection's *link* is (the process that opened it, the process it
//! reaches); its fault is looked up in the shared [`Fabric`] for every chunk and whenever
//! the rules change, so a fault reaches connections that are already open.
//!
//! What each [`Link`] emulates, and how:
//! - `Pass`: bytes are forwarded as read, in order, both ways (each chunk is whatever one
//!   `read` returned, at most [`CHUNK`] bytes).
//! - `Partition`: a path that answers with resets, as a peer's stack or a router rejecting
//!   the traffic does. New connections are accepted by the kernel (a listener cannot refuse
//!   per source) and reset at once, before any byte is forwarded, so a client sees its
//!   connect or its first read fail; open connections are reset on both sides. A partition
//!   that silently drops packets is a `Blackhole`.
//! - `Blackhole`: silence. New connections are accepted and held unconnected; open ones stop
//!   delivering in both directions; nothing is reset or closed, and the held bytes stay
//!   queued (in the proxy and, once its small queue is full, in the kernel's buffers, as
//!   an unacknowledged send queue would). On heal the held bytes are delivered in order,
//!   as TCP's retransmissions would deliver them.
//! - `Slow { delay, loss }`: each chunk is held `delay` per direction, order kept. TCP
//!   turns loss into retransmission, so a lost segment is emulated as what the application
//!   sees of it: on a random share `loss` of chunks (a seeded RNG per connection and
//!   direction), an extra delay of one retransmission timeout ([`Fabric::new`]'s `rto`,
//!   Linux's minimum is 200 ms), and every later chunk of that direction waits behind it
//!   (in-order delivery). Nothing is dropped or reordered, and there is no congestion
//!   control, no bandwidth limit and no duplicate.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::RngExt;
use rand_core::SeedableRng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::whois;

/// The most bytes forwarded as one chunk.
pub const CHUNK: usize = 16 * 1024;
/// Chunks read but not yet delivered, per direction, before the proxy stops reading (and
/// the kernel's buffers, then the sender, take the backpressure).
const IN_FLIGHT: usize = 64;
/// The label of a connection from a process no candidate owns.
pub const OTHER: &str = "other";

/// The fault on one link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Link {
    /// Forward as is.
    Pass,
    /// Reset new and open connections.
    Partition,
    /// Accept, forward nothing, answer nothing, keep every socket open.
    Blackhole,
    /// Delay every chunk; delay a share of them by one more retransmission timeout.
    Slow {
        /// Per direction.
        delay: Duration,
        /// The share of chunks "lost" (0 to 1).
        loss: f64,
    },
}

/// Who may have opened a connection: (PID, process name) pairs, asked at every accept.
pub type Candidates = Box<dyn Fn() -> Vec<(u32, String)> + Send + Sync>;

type Rules = BTreeMap<(String, String), Link>;

/// The rules every proxy follows, and what they did.
pub struct Fabric {
    rules: watch::Sender<Rules>,
    candidates: Candidates,
    rto: Duration,
    /// Seeds one RNG per connection and direction, in the order connections are accepted.
    seeds: Mutex<rand_chacha::ChaCha8Rng>,
    counters: [AtomicU64; 6],
}

/// What the proxies did since the fabric was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Connections accepted.
    pub connections: u64,
    /// Connections reset by a partition.
    pub resets: u64,
    /// Chunks delivered.
    pub chunks: u64,
    /// Chunks given a retransmission timeout (emulated losses).
    pub lost: u64,
    /// Chunks held by a blackhole (delivered on heal, or never).
    pub held: u64,
    /// Connections no candidate was found to own (labelled [`OTHER`]).
    pub unattributed: u64,
}

impl Fabric {
    /// Every link passes until told otherwise. `seed` fixes the loss pattern of each
    /// connection (which chunks there are still depends on timing); `candidates` names the
    /// processes a connection may come from (any other is [`OTHER`]).
    pub fn new(seed: u64, rto: Duration, candidates: Candidates) -> Arc<Fabric> {
        Arc::new(Fabric {
            rules: watch::Sender::new(Rules::new()),
            candidates,
            rto,
            seeds: Mutex::new(rand_chacha::ChaCha8Rng::seed_from_u64(seed)),
            counters: Default::default(),
        })
    }

    /// Sets the fault on connections `from` opens to `to`.
    pub fn set(&self, from: &str, to: &str, link: Link) {
        self.rules.send_modify(|r| {
            if link == Link::Pass {
                r.remove(&(from.to_string(), to.to_string()));
            } else {
                r.insert((from.to_string(), to.to_string()), link);
            }
        });
    }

    /// Every link passes again.
    pub fn heal(&self) {
        self.rules.send_modify(Rules::clear);
    }

    /// What the proxies did so far.
    pub fn counters(&self) -> Counters {
        let [connections, resets, chunks, lost, held, unattributed] =
            self.counters.each_ref().map(|c| c.load(Ordering::Relaxed));
        Counters { connections, resets, chunks, lost, held, unattributed }
    }

    fn count(&self, which: usize) {
        self.counters[which].fetch_add(1, Ordering::Relaxed);
    }

    fn rng(&self) -> rand_chacha::ChaCha8Rng {
        let seed = self.seeds.lock().map(|mut r| r.random::<u64>()).unwrap_or_default();
        rand_chacha::ChaCha8Rng::seed_from_u64(seed)
    }
}

fn link(rules: &Rules, from: &str, to: &str) -> Link {
    rules.get(&(from.to_string(), to.to_string())).copied().unwrap_or(Link::Pass)
}

const CONNECTIONS: usize = 0;
const RESETS: usize = 1;
const CHUNKS: usize = 2;
const LOST: usize = 3;
const HELD: usize = 4;
const UNATTRIBUTED: usize = 5;

/// One listener in front of one process. Dropping it stops the listener and every
/// connection it relays.
pub struct Proxy {
    addr: SocketAddr,
    target: watch::Sender<Option<SocketAddr>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on 127.0.0.1 (a port of the kernel's choosing) in front of the process named
    /// `to`. Connections wait until [`Proxy::set_target`] says where it listens.
    pub async fn start(fabric: Arc<Fabric>, to: &str) -> io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let target = watch::Sender::new(None);
        let task = tokio::spawn(accept(listener, fabric, to.to_string(), target.subscribe()));
        Ok(Proxy { addr, target, task })
    }

    /// Where clients should connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the process behind the proxy listens.
    pub fn set_target(&self, addr: SocketAddr) {
        self.target.send_replace(Some(addr));
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // The accept task owns every connection's task: aborting it ends them all.
        self.task.abort();
    }
}

async fn accept(
    listener: TcpListener,
    fabric: Arc<Fabric>,
    to: String,
    target: watch::Receiver<Option<SocketAddr>>,
) {
    let mut relays = JoinSet::new();
    loop {
        tokio::select! {
            r = listener.accept() => {
                let Ok((client, _)) = r else {
                    // Out of descriptors, say: let connections close before trying again.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                fabric.count(CONNECTIONS);
                relays.spawn(relay(fabric.clone(), to.clone(), client, target.clone()));
            }
            Some(_) = relays.join_next(), if !relays.is_empty() => {}
        }
    }
}

/// How a relayed connection ended.
enum End {
    Closed,
    Reset,
}

async fn relay(
    fabric: Arc<Fabric>,
    to: String,
    mut client: TcpStream,
    mut target: watch::Receiver<Option<SocketAddr>>,
) {
    let from = whois::owner(&client, &(fabric.candidates)()).unwrap_or_else(|| {
        fabric.count(UNATTRIBUTED);
        OTHER.into()
    });
    let mut rules = fabric.rules.subscribe();
    // A blackholed link holds the new connection unconnected; a partition resets it.
    let partitioned = rules
        .wait_for(|r| link(r, &from, &to) != Link::Blackhole)
        .await
        .map(|r| link(&r, &from, &to) == Link::Partition)
        .unwrap_or(true);
    let Ok(Some(addr)) = target.wait_for(Option::is_some).await.map(|a| *a) else { return };
    let server = match partitioned {
        true => None,
        false => TcpStream::connect(addr).await.ok(),
    };
    let Some(mut server) = server else {
        fabric.count(RESETS);
        reset(client);
        return;
    };
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    let end = {
        let (cr, cw) = client.split();
        let (sr, sw) = server.split();
        let both = async {
            // A failed direction (a reset, say) ends both, as it would end the connection.
            match tokio::try_join!(
                pump(cr, sw, &fabric, &from, &to, fabric.rng()),
                pump(sr, cw, &fabric, &from, &to, fabric.rng()),
            ) {
                Ok(_) => End::Closed,
                Err(_) => End::Reset,
            }
        };
        let mut rules = fabric.rules.subscribe();
        tokio::select! {
            end = both => end,
            _ = rules.wait_for(|r| link(r, &from, &to) == Link::Partition) => {
                fabric.count(RESETS);
                End::Reset
            }
        }
    };
    if let End::Reset = end {
        reset(client);
        reset(server);
    }
}

/// Copies one direction: a reader that stamps each chunk with when it is due, and a writer
/// that delivers them in order once due and while the link is not blackholed. The write
/// side is shut down (FIN) after the read side's end of stream.
async fn pump(
    mut r: ReadHalf<'_>,
    mut w: WriteHalf<'_>,
    fabric: &Fabric,
    from: &str,
    to: &str,
    mut rng: rand_chacha::ChaCha8Rng,
) -> io::Result<()> {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(IN_FLIGHT);
    let rules = fabric.rules.subscribe();
    let read = async move {
        let mut buf = vec![0; CHUNK];
        loop {
            let n = r.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, io::Error>(());
            }
            let mut due = Instant::now();
            if let Link::Slow { delay, loss } = link(&rules.borrow(), from, to) {
                due += delay;
                if rng.random_bool(loss.clamp(0.0, 1.0)) {
                    fabric.count(LOST);
                    due += fabric.rto;
                }
            }
            if tx.send((due, buf[..n].to_vec())).await.is_err() {
                return Ok(());
            }
        }
    };
    let mut rules = fabric.rules.subscribe();
    let write = async move {
        while let Some((due, bytes)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if link(&rules.borrow(), from, to) == Link::Blackhole {
                fabric.count(HELD);
            }
            rules
                .wait_for(|r| link(r, from, to) != Link::Blackhole)
                .await
                .map_err(|_| io::Error::other("the fabric is gone"))?;
            w.write_all(&bytes).await?;
            fabric.count(CHUNKS);
        }
        w.shutdown().await
    };
    tokio::try_join!(read, write).map(drop)
}

/// Closes with a reset (RST), not a FIN, as a rejecting path does.
fn reset(s: TcpStream) {
    // Deprecated because a non-zero linger blocks the closing thread; a zero linger never
    // blocks: the kernel discards the queue and sends RST at once.
    #[allow(deprecated)]
    let _ = s.set_linger(Some(Duration::ZERO));
    drop(s);
}
