//! What the cases wait for and time: the coordinator's status, an agent's unlock, a paused
//! process.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rand::RngExt;
use tq_wire::pb;

use crate::local::{LocalCluster, control};

/// How long an Unlock may wait for its peers (the agents' request timeout is 10 s).
pub(crate) const UNLOCK_WAIT: Duration = Duration::from_secs(10);

/// Polls the coordinator's status until `done` holds; returns it.
pub(crate) async fn status_until(
    c: &LocalCluster,
    timeout: Duration,
    what: &str,
    done: impl Fn(&pb::ClusterStatus) -> bool,
) -> Result<pb::ClusterStatus, String> {
    let start = Instant::now();
    let mut last = None;
    loop {
        match control::status(c).await {
            Ok(s) if done(&s) => return Ok(s),
            Ok(s) => last = Some(s),
            Err(_) => {}
        }
        if start.elapsed() > timeout {
            return Err(format!("{what}: not after {timeout:?}; last status: {}", brief(&last)));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A status in one line, for a failure's message.
pub(crate) fn brief(s: &Option<pb::ClusterStatus>) -> String {
    let Some(s) = s else { return "none".into() };
    let members: Vec<String> = s
        .members
        .iter()
        .map(|m| {
            let stale = if m.stale { format!(" stale:{}", m.stale_reason) } else { String::new() };
            format!("{} {}@{}{stale}", m.node_id, m.state, m.committed_epoch)
        })
        .collect();
    let pending = s.pending.as_ref().map(|p| format!("{} {} acks {}", p.epoch, p.phase, p.acks));
    format!(
        "latest {}, pending {}, [{}]",
        s.latest_committed_epoch,
        pending.unwrap_or_else(|| "none".into()),
        members.join(", ")
    )
}

/// Whether every member named in `names` has committed `epoch`, in `s`.
pub(crate) fn committed(s: &pb::ClusterStatus, names: &[String], epoch: u64) -> bool {
    names.iter().all(|n| {
        s.members
            .iter()
            .any(|m| m.node_id == *n && m.state == "committed" && m.committed_epoch >= epoch)
    })
}

/// The member `name` in `s`.
pub(crate) fn member<'a>(s: &'a pb::ClusterStatus, name: &str) -> Option<&'a pb::MemberStatus> {
    s.members.iter().find(|m| m.node_id == name)
}

/// Lock, then Unlock with wait, on an agent's key socket: the unlocked epoch and the time
/// from the Unlock call to its answer.
pub(crate) async fn relock(socket: &Path) -> Result<(u64, Duration), String> {
    control::lock(socket).await?;
    let t = Instant::now();
    let epoch = control::unlock(socket, UNLOCK_WAIT).await?;
    Ok((epoch, t.elapsed()))
}

/// Fails with `why` unless `cond`.
pub(crate) fn ensure(cond: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(why()) }
}

/// Milliseconds, to a tenth.
pub(crate) fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

/// `n` distinct names from `pool`, chosen by `rng`.
pub(crate) fn pick(rng: &mut rand_chacha::ChaCha8Rng, pool: &[String], n: usize) -> Vec<String> {
    let mut p = pool.to_vec();
    for i in 0..n.min(p.len()) {
        let j = rng.random_range(i..p.len());
        p.swap(i, j);
    }
    p.truncate(n);
    p
}

/// A process stopped with SIGSTOP; continued (SIGCONT) when dropped, whatever happens.
pub(crate) struct Stopped(Pid);

impl Stopped {
    /// Stops the running process `name` of `c`.
    pub(crate) fn stop(c: &LocalCluster, name: &str) -> Result<Stopped, String> {
        let pid = Pid::from_raw(c.pid(name).ok_or_else(|| format!("{name} is not running"))?);
        kill(pid, Signal::SIGSTOP).map_err(|e| format!("SIGSTOP {name}: {e}"))?;
        Ok(Stopped(pid))
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = kill(self.0, Signal::SIGCONT);
    }
}
