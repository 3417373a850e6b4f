//! Secret rotation: a Reconfigure of the same N members with K = ⌊N/2⌋ + 1, timed from the
//! call until every member has committed (DESIGN §6.2–§6.4). Warm: every connection is up.
//! Cold: every agent was just restarted, so the coordinator reconnects (TCP + mutual TLS) to
//! each of them inside the rotation.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;
use tonic::transport::Channel;
use tq_wire::pb::{self, coordinator_client::CoordinatorClient};

use super::Bench;
use super::clients::{rpc_err, wait_committed};
use super::floor::Floors;
use super::stats::{Samples, round};

/// How one rotation went, from the Reconfigure call.
pub(super) struct Rotation {
    /// The Reconfigure RPC itself (the epoch is reserved durably before it answers).
    pub(super) rpc: Duration,
    /// The commit decision (K + Z acks, decision durable).
    pub(super) decided: Duration,
    /// Every member committed.
    pub(super) committed: Duration,
}

/// Rotations before any is timed.
const WARMUP: usize = 3;
/// The aftermath is polled this often (every agent re-unlocks after a commit).
const SETTLE_POLL: Duration = Duration::from_millis(5);

impl Bench {
    /// One rotation: all N members, threshold K, after the latest committed epoch.
    pub(super) async fn rotate(
        &mut self,
        op: &mut CoordinatorClient<Channel>,
    ) -> Result<Rotation, String> {
        let req = pb::ReconfigureRequest {
            members: self.ids.iter().map(ToString::to_string).collect(),
            threshold: self.k as u32,
            previous_epoch: self.latest,
        };
        // Subscribe first, so that no change is missed.
        let mut watch = op.watch(pb::WatchRequest {}).await.map_err(rpc_err("watch"))?.into_inner();
        let start = Instant::now();
        let a = op.reconfigure(req).await.map_err(rpc_err("reconfigure"))?.into_inner();
        let rpc = start.elapsed();
        self.slow.record("Coordinator/Reconfigure", rpc);
        let c = wait_committed(&mut watch, a.epoch).await?;
        self.latest = a.epoch;
        Ok(Rotation { rpc, decided: c.decided - start, committed: c.all - start })
    }

    /// Rotations with every connection up.
    pub(super) async fn reconfigure_warm(&mut self, floors: &Floors) -> Result<(), String> {
        let mut op = self.clients.connected_operator().await?;
        let mut t = Times::default();
        let mut cpu = self.service_ticks();
        for i in 0..WARMUP + self.runs {
            if i == WARMUP {
                cpu = self.service_ticks();
            }
            let r = self.rotate(&mut op).await?;
            let settled = self.clients.wait_unlocked(&self.nodes, self.latest, SETTLE_POLL).await?;
            if i >= WARMUP {
                t.add(&r, settled);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut extra = t.extra();
        // With the re-key of every agent, and the benchmark's polls of the agents meanwhile.
        extra["cpu_per_rotation"] = self.cpu_per(cpu, self.runs);
        self.record("reconfigure_warm", &t.committed, floors.reconfigure_ms(), extra);
        Ok(())
    }

    /// Rotations with every agent locked (its host asked it to forget the secrets), so no
    /// agent re-unlocks after the commit: the protocol's own path without the N × (N − 1)
    /// share requests of the re-key that follows every rotation.
    pub(super) async fn reconfigure_locked(&mut self, floors: &Floors) -> Result<(), String> {
        let all: Vec<usize> = (0..self.n()).collect();
        let mut keys = self.key_clients(&all).await?;
        for k in &mut keys {
            k.lock(pb::LockRequest {}).await.map_err(rpc_err("lock"))?;
        }
        self.rotations_without_rekey("reconfigure_no_rekey", floors).await?;
        for k in &mut keys {
            k.unlock(pb::UnlockRequest { wait_ms: 0 }).await.map_err(rpc_err("unlock"))?;
        }
        self.clients.wait_unlocked(&self.nodes, self.latest, Duration::from_millis(20)).await?;
        Ok(())
    }

    /// Warm rotations, recorded as `name`, with no re-key to wait for after each.
    pub(super) async fn rotations_without_rekey(
        &mut self,
        name: &str,
        floors: &Floors,
    ) -> Result<(), String> {
        let mut op = self.clients.connected_operator().await?;
        let mut t = Times::default();
        let mut cpu = self.service_ticks();
        for i in 0..WARMUP + self.runs {
            if i == WARMUP {
                cpu = self.service_ticks();
            }
            let r = self.rotate(&mut op).await?;
            if i >= WARMUP {
                t.add(&r, Duration::ZERO);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut extra = t.extra();
        extra["rekey"] = json!(false);
        extra["cpu_per_rotation"] = self.cpu_per(cpu, self.runs);
        self.record(name, &t.committed, floors.reconfigure_ms(), extra);
        Ok(())
    }

    /// Rotations right after every agent restarted: the coordinator's connections to them
    /// are gone and the rotation opens them again.
    pub(super) async fn reconfigure_cold(&mut self, floors: &Floors) -> Result<(), String> {
        let mut t = Times::default();
        let runs = self.cold_runs();
        for i in 0..runs {
            let took = Instant::now();
            self.restart_agents()?;
            // Each agent unlocks when it starts: let that settle before timing anything.
            self.clients.wait_unlocked(&self.nodes, self.latest, Duration::from_millis(20)).await?;
            tokio::time::sleep(Duration::from_millis(200)).await;
            let mut op = self.clients.connected_operator().await?;
            let r = self.rotate(&mut op).await?;
            let settled = self.clients.wait_unlocked(&self.nodes, self.latest, SETTLE_POLL).await?;
            eprintln!(
                "bench: reconfigure_cold run {}/{runs}: {:.1} ms (agents restarted in {} ms)",
                i + 1,
                r.committed.as_secs_f64() * 1000.0,
                took.elapsed().as_millis()
            );
            t.add(&r, settled);
        }
        self.record("reconfigure_cold", &t.committed, floors.reconfigure_cold_ms(), t.extra());
        Ok(())
    }

    /// Cold samples are dear (each restarts processes): a tenth of `--runs`, 3 to 10.
    pub(super) fn cold_runs(&self) -> usize {
        (self.runs / 10).clamp(3, 10)
    }

    /// Stops every agent (SIGTERM to all at once) and starts them again one by one.
    fn restart_agents(&self) -> Result<(), String> {
        for id in &self.ids {
            if let Some(pid) = self.c.pid(id.as_str()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
        }
        tokio::task::block_in_place(|| {
            for id in &self.ids {
                self.c.signal(id.as_str(), Signal::SIGTERM);
            }
            for id in &self.ids {
                self.c.start(id.as_str())?;
            }
            Ok(())
        })
    }
}

/// The times of a series of rotations.
#[derive(Default)]
struct Times {
    rpc: Samples,
    decided: Samples,
    committed: Samples,
    /// Until every agent had re-unlocked the new epoch (the rotation's aftermath).
    rekeyed: Samples,
}

impl Times {
    fn add(&mut self, r: &Rotation, settled: Duration) {
        self.rpc.push(r.rpc);
        self.decided.push(r.decided);
        self.committed.push(r.committed);
        self.rekeyed.push(r.committed + settled);
    }

    fn extra(&self) -> serde_json::Value {
        json!({
            "reconfigure_rpc_p50_ms": round(self.rpc.p50()),
            "decided_p50_ms": round(self.decided.p50()),
            "decided_p99_ms": round(self.decided.p99()),
            "all_unlocked_p50_ms": round(self.rekeyed.p50()),
            "all_unlocked_p99_ms": round(self.rekeyed.p99()),
        })
    }
}
