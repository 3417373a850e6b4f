//! The floors, measured in the same run as the scenarios: what the transport and the store
//! cost at least, so each result can be read as a multiple of what it cannot beat.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tq_wire::durable::Durable;
use tq_wire::pb;

use super::Bench;
use super::clients::rpc_err;
use super::stats::{Samples, round};
use super::status::{CLIENTS, SATURATE_FOR, saturate};

/// A persist's payload: about what a Prepare stores at N = 32 (configuration + share).
const PERSIST_BYTES: usize = 2048;

/// The floors of one run.
pub(super) struct Floors {
    /// One NodeAgent Status, sequentially, over a warm channel.
    pub(super) rpc: Samples,
    /// N of them at once over warm channels (one per agent).
    pub(super) fanout: Samples,
    /// N of them at once over new channels (TCP + mutual TLS 1.3 handshake each).
    pub(super) fanout_cold: Samples,
    /// A sled insert made durable the way both stores do it (`Durable::sync`: flush, fsync
    /// of sled's data file, then the seal file's write + fdatasync), on the same directory.
    pub(super) persist: Samples,
    /// NodeAgent Status at saturation from [`CLIENTS`] closed-loop clients: RPCs per second.
    pub(super) rpc_per_s: f64,
}

impl Floors {
    /// What a reconfiguration cannot beat: three fan-outs (GetShare, Prepare, Commit) and
    /// four persists in sequence (epoch reserved, Prepare, commit decision, Commit).
    pub(super) fn reconfigure_ms(&self) -> f64 {
        3.0 * self.fanout.p50() + 4.0 * self.persist.p50()
    }

    /// The same when the first fan-out has to open every connection.
    pub(super) fn reconfigure_cold_ms(&self) -> f64 {
        self.fanout_cold.p50() + 2.0 * self.fanout.p50() + 4.0 * self.persist.p50()
    }

    /// As JSON.
    pub(super) fn summary(&self) -> Value {
        json!({
            "rpc": self.rpc.summary(),
            "fanout": self.fanout.summary(),
            "fanout_cold": self.fanout_cold.summary(),
            "persist": self.persist.summary(),
            "rpc_saturated_per_s": self.rpc_per_s.round(),
            "reconfigure_ms": round(self.reconfigure_ms()),
            "reconfigure_cold_ms": round(self.reconfigure_cold_ms()),
            "persist_bytes": PERSIST_BYTES,
        })
    }
}

impl Bench {
    /// Measures every floor.
    pub(super) async fn floors(&mut self) -> Result<Floors, String> {
        // Warm the channels (and the agents' handlers) first.
        for _ in 0..5 {
            self.clients.fanout(&self.nodes).await?;
        }
        let mut rpc = Samples::new();
        let mut one = self.nodes[0].clone();
        for _ in 0..500 {
            let t = Instant::now();
            one.status(pb::NodeStatusRequest {}).await.map_err(rpc_err("node status"))?;
            let d = t.elapsed();
            self.slow.record("NodeAgent/Status", d);
            rpc.push(d);
        }
        let mut fanout = Samples::new();
        let warm = if self.mesh { self.runs } else { self.runs.max(100) };
        for _ in 0..warm {
            fanout.push(self.clients.fanout(&self.nodes).await?);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let mut fanout_cold = Samples::new();
        let cold = if self.mesh { 3 } else { self.runs.clamp(10, 30) };
        for _ in 0..cold {
            let fresh = self.clients.nodes()?;
            fanout_cold.push(self.clients.fanout(&fresh).await?);
            drop(fresh);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let persist = tokio::task::block_in_place(|| persist_floor(self.c.dir(), 300))?;
        // One channel (one connection) per client, all to the first agent.
        let target: Vec<_> =
            (0..CLIENTS).map(|_| self.clients.node(0)).collect::<Result<_, _>>()?;
        let (_, rpc_per_s) = saturate(
            CLIENTS,
            SATURATE_FOR,
            move |i| {
                let mut c = target[i].clone();
                async move {
                    c.status(pb::NodeStatusRequest {}).await.map(drop).map_err(rpc_err("status"))
                }
            },
            self.slow.clone(),
            "NodeAgent/Status",
        )
        .await?;
        let f = Floors { rpc, fanout, fanout_cold, persist, rpc_per_s };
        eprintln!(
            "bench: floors: rpc p50 {:.3} ms; fan-out to {} p50 {:.3} ms (cold {:.3} ms); \
             persist p50 {:.3} ms p99 {:.3} ms; {:.0} empty RPCs/s",
            f.rpc.p50(),
            self.n(),
            f.fanout.p50(),
            f.fanout_cold.p50(),
            f.persist.p50(),
            f.persist.p99(),
            f.rpc_per_s
        );
        Ok(f)
    }
}

/// `count` persists of [`PERSIST_BYTES`] into a sled store in `dir`, opened and synced the
/// way both services do it.
fn persist_floor(dir: &std::path::Path, count: usize) -> Result<Samples, String> {
    let path = dir.join("state").join("floor");
    let d = Durable::open(&path, b"tq-bench-floor", "benchmark floor store")
        .map_err(|e| e.to_string())?;
    let tree = d.tree("floor").map_err(|e| e.to_string())?;
    let value = vec![0x5a; PERSIST_BYTES];
    let mut s = Samples::new();
    for i in 0..count as u64 {
        let t = Instant::now();
        tree.insert(i.to_be_bytes(), value.as_slice()).map_err(|e| e.to_string())?;
        d.sync().map_err(|e| e.to_string())?;
        s.push(t.elapsed());
    }
    drop(tree);
    drop(d);
    let _ = std::fs::remove_dir_all(&path);
    Ok(s)
}
