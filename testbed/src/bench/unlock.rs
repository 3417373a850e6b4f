//! Unlock (DESIGN §6.7): one agent rebuilds the secret from its peers' shares, asked for by
//! its host on the local key socket: Lock, then Unlock with wait, timed from the Unlock call
//! until it answers with the latest epoch unlocked. Warm (its connections to peers are up),
//! cold (the agent just restarted, with `unlock_on_start` off, so it has none), and with
//! N − K members SIGSTOPped: it needs K − 1 answers, and must not wait for the silent ones.

use std::time::{Duration, Instant};

use serde_json::json;
use tonic::transport::Channel;
use tq_wire::pb::{self, local_keys_client::LocalKeysClient};

use super::Bench;
use super::clients::rpc_err;
use super::floor::Floors;
use super::stats::{Samples, round};
use crate::local::LocalCluster;

/// How long an Unlock may wait for its peers.
const UNLOCK_WAIT_MS: u32 = 10_000;
/// Unlocks before any is timed.
const WARMUP: usize = 5;
/// Between samples, so the answers an unlock no longer needs have arrived.
const GAP: Duration = Duration::from_millis(5);

impl Bench {
    /// Unlock with wait on `keys`; returns how long it took. Fails unless the latest epoch
    /// was unlocked.
    async fn unlock_once(&self, keys: &mut LocalKeysClient<Channel>) -> Result<Duration, String> {
        let t = Instant::now();
        let r = keys
            .unlock(pb::UnlockRequest { wait_ms: UNLOCK_WAIT_MS })
            .await
            .map_err(rpc_err("unlock"))?
            .into_inner();
        let took = t.elapsed();
        if r.latest != self.latest {
            return Err(format!("unlocked epoch {}, not the latest {}", r.latest, self.latest));
        }
        Ok(took)
    }

    /// Lock (timed as one RPC), then [`Bench::unlock_once`].
    pub(super) async fn relock(
        &self,
        keys: &mut LocalKeysClient<Channel>,
    ) -> Result<Duration, String> {
        let t = Instant::now();
        keys.lock(pb::LockRequest {}).await.map_err(rpc_err("lock"))?;
        self.slow.record("LocalKeys/Lock", t.elapsed());
        self.unlock_once(keys).await
    }

    /// A connected key-socket client for each agent in `names`.
    pub(super) async fn key_clients(
        &self,
        names: &[usize],
    ) -> Result<Vec<LocalKeysClient<Channel>>, String> {
        let mut out = Vec::new();
        for &i in names {
            out.push(self.clients.keys(&self.c.key_socket(self.ids[i].as_str())).await?);
        }
        Ok(out)
    }

    /// Every agent in turn, with its connections to its peers up.
    pub(super) async fn unlock_warm(&mut self, floors: &Floors) -> Result<(), String> {
        let all: Vec<usize> = (0..self.n()).collect();
        let mut keys = self.key_clients(&all).await?;
        let mut s = Samples::new();
        for i in 0..WARMUP + self.runs {
            let who = i % keys.len();
            let d = self.relock(&mut keys[who]).await?;
            if i >= WARMUP {
                s.push(d);
            }
            tokio::time::sleep(GAP).await;
        }
        self.record("unlock_warm", &s, floors.fanout.p50(), json!({}));
        Ok(())
    }

    /// Agents K+1 … N SIGSTOPped (they keep their sockets open and answer nothing); agents
    /// 1 … K unlock in turn from the K − 1 others that still answer.
    pub(super) async fn unlock_blackholed(&mut self) -> Result<(), String> {
        let (n, k) = (self.n(), self.k);
        let live: Vec<usize> = (0..k).collect();
        let mut keys = self.key_clients(&live).await?;
        let res = async {
            for i in k..n {
                self.blackhole(self.ids[i].as_str())?;
            }
            let mut s = Samples::new();
            let mut floor = Samples::new();
            for i in 0..WARMUP + self.runs {
                let who = i % k;
                let d = self.relock(&mut keys[who]).await?;
                // Its floor: one fan-out to the peers that can answer.
                let peers: Vec<_> =
                    live.iter().filter(|&&j| j != who).map(|&j| self.nodes[j].clone()).collect();
                let f = self.clients.fanout(&peers).await?;
                if i >= WARMUP {
                    s.push(d);
                    floor.push(f);
                }
                tokio::time::sleep(GAP).await;
            }
            Ok::<_, String>((s, floor))
        }
        .await;
        self.continue_stopped();
        let (s, floor) = res?;
        // The continued agents answer again before anything else is measured.
        let t = Instant::now();
        while self.clients.node_statuses(&self.nodes).await.iter().any(Option::is_none) {
            if t.elapsed() > Duration::from_secs(30) {
                return Err("agents did not answer again after SIGCONT".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.record(
            "unlock_blackholed",
            &s,
            floor.p50(),
            json!({ "stopped": n - k, "answering_peers": k - 1, "floor": floor.summary() }),
        );
        Ok(())
    }

    /// An agent just restarted without unlocking: its Unlock opens every peer connection.
    pub(super) async fn unlock_cold(&mut self, floors: &Floors) -> Result<(), String> {
        let runs = self.cold_runs();
        let mut s = Samples::new();
        for i in 0..runs {
            // From the last agent down: node-1 stays the long-running one.
            let name = self.ids[self.n() - 1 - i % self.n()].to_string();
            set_unlock_on_start(&self.c, &name, false)?;
            let restarted = self.restart(&name);
            set_unlock_on_start(&self.c, &name, true)?;
            restarted?;
            // Let it enroll: only its peer connections should be cold.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let mut keys = self.clients.keys(&self.c.key_socket(&name)).await?;
            let d = self.unlock_once(&mut keys).await?;
            eprintln!(
                "bench: unlock_cold run {}/{runs} ({name}): {:.2} ms",
                i + 1,
                d.as_secs_f64() * 1000.0
            );
            s.push(d);
        }
        self.record(
            "unlock_cold",
            &s,
            floors.fanout_cold.p50(),
            json!({ "floor_warm_ms": round(floors.fanout.p50()) }),
        );
        Ok(())
    }
}

/// Rewrites an agent's configuration file (read at its next start).
pub(super) fn set_unlock_on_start(c: &LocalCluster, name: &str, on: bool) -> Result<(), String> {
    c.edit_agent(name, |a| a.unlock_on_start = on)
}
