//! What a control plane does most: poll the coordinator's status. At saturation (a few
//! closed-loop clients, each on its own connection) and at a fixed 1000 polls/s, open loop,
//! while secret rotations run.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;
use tonic::transport::Channel;
use tq_wire::pb::{self, coordinator_client::CoordinatorClient};

use super::Bench;
use super::clients::rpc_err;
use super::floor::Floors;
use super::stats::{Samples, SlowRpcs, round};

/// Concurrent clients at saturation, each with one connection and one request in flight.
pub(super) const CLIENTS: usize = 4;
/// How long saturation is held.
pub(super) const SATURATE_FOR: Duration = Duration::from_secs(3);
/// Polls per second in `status_at_1000`.
const RATE: u64 = 1000;
/// How long `status_at_1000` polls (rotations run back to back meanwhile).
const OPEN_LOOP_FOR: Duration = Duration::from_secs(5);

/// Runs `call(i)` in a closed loop on `workers` tasks for `run_for`; returns every call's
/// latency and the calls completed per second.
pub(super) async fn saturate<F, Fut>(
    workers: usize,
    run_for: Duration,
    call: F,
    slow: Arc<SlowRpcs>,
    kind: &'static str,
) -> Result<(Samples, f64), String>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let call = Arc::new(call);
    let start = Instant::now();
    let deadline = start + run_for;
    let mut set = JoinSet::new();
    for i in 0..workers {
        let (call, slow) = (call.clone(), slow.clone());
        set.spawn(async move {
            let mut s = Samples::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                call(i).await?;
                let d = t.elapsed();
                slow.record(kind, d);
                s.push(d);
            }
            Ok::<_, String>(s)
        });
    }
    let mut all = Samples::new();
    while let Some(r) = set.join_next().await {
        all.extend(&r.map_err(|e| format!("client task: {e}"))??);
    }
    let per_s = all.len() as f64 / start.elapsed().as_secs_f64();
    Ok((all, per_s))
}

impl Bench {
    /// [`CLIENTS`] connections to the coordinator, each connected.
    async fn pollers(&self) -> Result<Vec<CoordinatorClient<Channel>>, String> {
        let mut out = Vec::new();
        for _ in 0..CLIENTS {
            out.push(self.clients.connected_operator().await?);
        }
        Ok(out)
    }

    /// Status polls from [`CLIENTS`] closed-loop clients: polls per second.
    pub(super) async fn status_saturated(&mut self, floors: &Floors) -> Result<(), String> {
        let clients = self.pollers().await?;
        let poll = move |i: usize| {
            let mut c: CoordinatorClient<Channel> = clients[i].clone();
            async move {
                c.status(pb::StatusRequest { if_version: 0 })
                    .await
                    .map(drop)
                    .map_err(rpc_err("status"))
            }
        };
        let poll = Arc::new(poll);
        let warm = poll.clone();
        saturate(
            CLIENTS,
            Duration::from_millis(500),
            move |i| warm(i),
            self.slow.clone(),
            "Coordinator/Status",
        )
        .await?;
        let cpu = self.service_ticks();
        let (s, per_s) = saturate(
            CLIENTS,
            SATURATE_FOR,
            move |i| poll(i),
            self.slow.clone(),
            "Coordinator/Status",
        )
        .await?;
        let floor_ms = floors.rpc.p50();
        self.record(
            "status_saturated",
            &s,
            floor_ms,
            json!({
                "per_s": per_s.round(),
                "clients": CLIENTS,
                "floor_per_s": floors.rpc_per_s.round(),
                // How many times the floor's cost per poll (floor rate / rate).
                "ratio": round(floors.rpc_per_s / per_s),
                "cpu_per_poll": self.cpu_per(cpu, s.len()),
            }),
        );
        eprintln!(
            "bench: status_saturated   {per_s:.0} polls/s from {CLIENTS} clients (empty RPCs: {:.0}/s)",
            floors.rpc_per_s
        );
        Ok(())
    }

    /// Status polls at [`RATE`]/s, open loop (each sent on schedule whatever the previous
    /// ones do), while secret rotations run back to back.
    pub(super) async fn status_at_1000(&mut self, floors: &Floors) -> Result<(), String> {
        let clients = self.pollers().await?;
        let (stop, stopped) = oneshot::channel::<()>();
        let slow = self.slow.clone();
        let poller = tokio::spawn(open_loop(clients, stopped, slow));
        let mut op = self.clients.connected_operator().await?;
        let start = Instant::now();
        let mut rotations = Samples::new();
        let res = async {
            while start.elapsed() < OPEN_LOOP_FOR || rotations.len() < 3 {
                rotations.push(self.rotate(&mut op).await?.committed);
            }
            Ok::<_, String>(())
        }
        .await;
        let _ = stop.send(());
        let (s, sent, failed, took) = poller.await.map_err(|e| format!("poller: {e}"))?;
        res?;
        if failed > 0 {
            return Err(format!("{failed} of {sent} status polls failed under load"));
        }
        self.clients.wait_unlocked(&self.nodes, self.latest, Duration::from_millis(5)).await?;
        self.record(
            "status_at_1000",
            &s,
            floors.rpc.p50(),
            json!({
                "sent_per_s": (sent as f64 / took.as_secs_f64()).round(),
                "rotations": rotations.len(),
                "rotation_p50_ms": round(rotations.p50()),
                "rotation_p99_ms": round(rotations.p99()),
            }),
        );
        Ok(())
    }
}

/// Sends a Status poll every 1/[`RATE`] s (round robin over `clients`) until `stop`; returns
/// the latencies, how many were sent, how many failed and for how long it ran.
async fn open_loop(
    clients: Vec<CoordinatorClient<Channel>>,
    mut stop: oneshot::Receiver<()>,
    slow: Arc<SlowRpcs>,
) -> (Samples, u64, u64, Duration) {
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
    // Late ticks are caught up: the schedule, not the responses, sets the rate.
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut set = JoinSet::new();
    let (mut s, mut sent, mut failed) = (Samples::new(), 0u64, 0u64);
    let start = Instant::now();
    let mut done = |r: Result<(Duration, bool), tokio::task::JoinError>| match r {
        Ok((d, true)) => {
            slow.record("Coordinator/Status", d);
            s.push(d);
        }
        _ => failed += 1,
    };
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {
                let mut c = clients[sent as usize % clients.len()].clone();
                sent += 1;
                set.spawn(async move {
                    let t = Instant::now();
                    let ok = c.status(pb::StatusRequest { if_version: 0 }).await.is_ok();
                    (t.elapsed(), ok)
                });
            }
            Some(r) = set.join_next() => done(r),
        }
    }
    let took = start.elapsed();
    while let Some(r) = set.join_next().await {
        done(r);
    }
    (s, sent, failed, took)
}
