//! The network-fault cases. Each starts from a converged cluster, injects its fault, checks
//! what the protocol promises under it (DESIGN section cited), heals, and checks that the
//! cluster converges with every member deriving the same keys (the crash campaign's oracle).
//! Each returns its figures, or why it failed.

use std::time::{Duration, Instant};

use rand::RngExt;
use serde_json::{Value, json};
use tq_protocol::quorum::{Threshold, acks_needed};
use tq_wire::pb;

use super::Run;
use super::proxy::Link;
use super::watch::{Stopped, brief, committed, ensure, member, ms, pick, relock, status_until};
use crate::local::{COORDINATOR, control};

/// How long a rotation may take on a healthy or partitioned loopback cluster.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(20);
/// An unlock that waited for a blackholed peer would take the 3 s connect timeout or the
/// 10 s request timeout; one that did not takes milliseconds.
const UNLOCK_BOUND: Duration = Duration::from_secs(2);
/// How long the coordinator stays cut off after its decision: several retry intervals
/// (200 ms), less than `stale_after` (3 s).
const HOLD: Duration = Duration::from_millis(1500);
/// Case 4's link: 200 ms each way, 30 % of chunks lost once.
const DELAY: Duration = Duration::from_millis(200);
const LOSS: f64 = 0.3;
/// How long an agent may take to re-key to a new epoch over case 4's links.
const REKEY_TIMEOUT: Duration = Duration::from_secs(30);
/// Longer than a share request's round trip over case 4's links with two losses.
const DRAIN: Duration = Duration::from_secs(1);
/// How long a paused process stays stopped.
const PAUSE: Duration = Duration::from_secs(5);

impl Run {
    fn n(&self) -> usize {
        self.k.members.len()
    }

    /// K + Z for a rotation of every member with the run's threshold.
    fn acks_needed(&self) -> Result<usize, String> {
        let k = Threshold::new(self.threshold, self.n()).map_err(|e| e.to_string())?;
        Ok(acks_needed(self.n(), k))
    }

    /// Starts a rotation (every member, the run's threshold); returns its epoch.
    async fn rotate(&mut self) -> Result<u64, String> {
        Ok(self.k.reconfigure(self.threshold).await?.epoch)
    }

    /// Heals, then waits for convergence and checks every member's keys (the oracle).
    async fn heal_and_settle(&mut self, case: u64) -> Result<Duration, String> {
        self.net.heal();
        let t = Instant::now();
        ensure(self.k.settle(case).await?, || "the cluster did not converge after heal".into())?;
        Ok(t.elapsed())
    }

    /// Waits until `name` has unlocked `epoch` by itself (its re-key after the commit), and
    /// its re-key's surplus answers have arrived: an Unlock timed then asks its peers anew.
    async fn rekeyed(&self, name: &str, epoch: u64) -> Result<(), String> {
        let t = Instant::now();
        while self.net.agent_status(&self.k.c, name).await?.unlocked < epoch {
            ensure(t.elapsed() < REKEY_TIMEOUT, || {
                format!("{name} did not re-key to epoch {epoch}")
            })?;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(DRAIN).await;
        Ok(())
    }

    /// Derives `name`'s key for `epoch`; the oracle checks it against every other member's.
    async fn derive(&mut self, case: u64, name: &str, epoch: u64) -> Result<(), String> {
        let (_, key) =
            control::derive(&self.k.c.key_socket(name), crate::faults::PURPOSE, epoch).await?;
        self.k.oracle.key(case, name, epoch, key);
        Ok(())
    }
}

/// Case 1 (§6.4, §6.11): a minority of N − (K + Z) members is partitioned from every other
/// process before a rotation. The epoch must commit with exactly the K + Z acks the others
/// can give; the minority must be shown unacked, behind, and stale; its agents must not
/// have seen the epoch; after heal it must catch up and commit.
pub(super) async fn minority_partition(r: &mut Run) -> Result<Value, String> {
    let needed = r.acks_needed()?;
    let size = r.n() - needed;
    ensure(size >= 1, || format!("N = {} leaves no minority beside K + Z = {needed}", r.n()))?;
    let minority = pick(&mut r.k.rng, &r.k.members, size);
    let majority: Vec<String> =
        r.k.members.iter().filter(|m| !minority.contains(m)).cloned().collect();
    let before = r.k.oracle.latest();
    r.net.isolate(&minority, Link::Partition);
    let cut = Instant::now();
    let epoch = r.rotate().await?;
    let s = status_until(&r.k.c, COMMIT_TIMEOUT, "commit without the minority", |s| {
        s.latest_committed_epoch >= epoch
    })
    .await?;
    let decided = cut.elapsed();
    let acks = s.last_attempt.as_ref().filter(|a| a.epoch == epoch).map_or(0, |a| a.acks);
    ensure(s.latest_committed_epoch == epoch && acks as usize == needed, || {
        format!("epoch {epoch} should commit with {needed} acks (K + Z): {}", brief(&Some(s)))
    })?;
    status_until(&r.k.c, COMMIT_TIMEOUT, "the majority commits", |s| {
        committed(s, &majority, epoch)
    })
    .await?;
    let all = cut.elapsed();
    let s = status_until(&r.k.c, COMMIT_TIMEOUT, "the minority shown stale", |s| {
        minority.iter().all(|n| {
            member(s, n)
                .is_some_and(|m| m.stale && m.state == "unacked" && m.committed_epoch == before)
        })
    })
    .await?;
    let stale_since_cut = cut.elapsed();
    let fresh = majority.iter().all(|n| member(&s, n).is_some_and(|m| !m.stale));
    ensure(fresh, || format!("a reachable member is shown stale: {}", brief(&Some(s.clone()))))?;
    for n in &minority {
        let own = r.net.agent_status(&r.k.c, n).await?;
        let prepared = own.prepared.map_or(0, |p| p.epoch);
        let committed = own.committed.map_or(0, |p| p.epoch);
        ensure(prepared < epoch && committed == before, || {
            format!("{n} was partitioned but holds prepared {prepared}, committed {committed}")
        })?;
    }
    let reasons: Vec<&str> =
        minority.iter().filter_map(|n| member(&s, n)).map(|m| m.stale_reason.as_str()).collect();
    let catch_up = r.heal_and_settle(1).await?;
    Ok(json!({
        "partitioned": minority,
        "acks": acks,
        "acks_needed": needed,
        "commit_ms": ms(decided),
        "majority_committed_ms": ms(all),
        "stale_after_partition_ms": ms(stale_since_cut),
        "stale_reasons": reasons,
        "catch_up_ms": ms(catch_up),
    }))
}

/// Case 2 (§6.4): under the manual policy every member has acked; the coordinator is cut
/// off from every agent (the operator still reaches it) and the operator commits. The
/// coordinator must say `committing` and refuse an abort; no agent may have committed; after
/// heal every member must commit that epoch: the decision is never undone.
pub(super) async fn coordinator_partition(r: &mut Run) -> Result<Value, String> {
    restart_coordinator(r, "manual").await?;
    let before = r.k.oracle.latest();
    let n = r.n() as u32;
    let t = Instant::now();
    let epoch = r.rotate().await?;
    status_until(&r.k.c, COMMIT_TIMEOUT, "every member acks", |s| {
        s.pending
            .as_ref()
            .is_some_and(|p| p.epoch == epoch && p.phase == "preparing" && p.acks == n)
    })
    .await?;
    let acked = t.elapsed();
    r.net.isolate(&[COORDINATOR.to_string()], Link::Partition);
    let resets = r.net.counters().resets;
    let mut op = control::operator(&r.k.c)?;
    let decided = op
        .commit(pb::CommitEpochRequest {})
        .await
        .map_err(|s| format!("commit: {}", s.message()))?
        .into_inner();
    ensure(decided.epoch == epoch && decided.phase == "committing", || {
        format!("the operator's commit of epoch {epoch} answered {decided:?}")
    })?;
    tokio::time::sleep(HOLD).await;
    let s = control::status(&r.k.c).await?;
    let phase = s.pending.as_ref().filter(|p| p.epoch == epoch).map(|p| p.phase.clone());
    ensure(phase.as_deref() == Some("committing") && s.latest_committed_epoch == epoch, || {
        format!("while cut off, status should say epoch {epoch} committing: {}", brief(&Some(s)))
    })?;
    let abort = op.abort(pb::AbortRequest {}).await;
    ensure(abort.is_err(), || {
        format!("an abort after the commit decision was accepted: {abort:?}")
    })?;
    for name in &r.k.members {
        let own = r.net.agent_status(&r.k.c, name).await?;
        let committed = own.committed.map_or(0, |p| p.epoch);
        ensure(committed == before, || {
            format!("{name} committed epoch {committed} while the coordinator was cut off")
        })?;
    }
    let refused = r.net.counters().resets - resets;
    ensure(refused > 0, || "the coordinator never tried to reach an agent while cut off".into())?;
    let catch_up = r.heal_and_settle(2).await?;
    ensure(r.k.oracle.latest() == epoch, || {
        format!("after heal the latest epoch is {}, not the decided {epoch}", r.k.oracle.latest())
    })?;
    restart_coordinator(r, "auto").await?;
    Ok(json!({
        "epoch": epoch,
        "all_acked_ms": ms(acked),
        "cut_off_ms": ms(HOLD),
        "connections_refused": refused,
        "abort_refused": true,
        "catch_up_ms": ms(catch_up),
    }))
}

/// Restarts the coordinator with `policy` and waits until it has heard from every member.
async fn restart_coordinator(r: &mut Run, policy: &str) -> Result<(), String> {
    r.k.c.signal(COORDINATOR, nix::sys::signal::Signal::SIGTERM);
    r.k.c.set_protocol(|p| p.commit_policy = policy.into())?;
    r.k.c.start(COORDINATOR)?;
    ensure(r.k.converged(2).await.is_some(), || {
        format!("no convergence after the restart ({policy})")
    })
}

/// Case 3 (§6.7): N − K members are blackholed (their sockets stay open, nothing answers);
/// every other member unlocks in turn. Each needs K − 1 answers and has exactly that many: it
/// must finish without waiting for the silent ones, in about the time an unlock takes without
/// the fault.
pub(super) async fn blackholed_unlock(r: &mut Run) -> Result<Value, String> {
    let (n, k) = (r.n(), r.threshold);
    let victims = pick(&mut r.k.rng, &r.k.members, n - k);
    let live: Vec<String> = r.k.members.iter().filter(|m| !victims.contains(m)).cloned().collect();
    let latest = r.k.oracle.latest();
    let mut baseline = Vec::new();
    for name in &live {
        baseline.push(relock(&r.k.c.key_socket(name)).await?.1);
    }
    let held = r.net.counters().held;
    r.net.isolate(&victims, Link::Blackhole);
    let mut times = Vec::new();
    for name in &live {
        let (epoch, took) = relock(&r.k.c.key_socket(name)).await?;
        ensure(epoch == latest, || format!("{name} unlocked epoch {epoch}, not {latest}"))?;
        ensure(took < UNLOCK_BOUND, || {
            format!("{name}'s unlock took {took:?} with {} peers blackholed", victims.len())
        })?;
        r.derive(3, name, latest).await?;
        times.push(took);
    }
    let held = r.net.counters().held - held;
    ensure(held > 0, || {
        "no request to a blackholed member was held: the fault was not in the path".into()
    })?;
    let converge = r.heal_and_settle(3).await?;
    let max = |d: &[Duration]| d.iter().max().copied().map_or(0.0, ms);
    Ok(json!({
        "blackholed": victims,
        "answering_peers": k - 1,
        "unlocks": times.len(),
        "baseline_max_ms": max(&baseline),
        "blackholed_max_ms": max(&times),
        "blackholed_ms": times.iter().map(|d| ms(*d)).collect::<Vec<_>>(),
        "chunks_held": held,
        "converge_ms": ms(converge),
    }))
}

/// Case 4 (§6.2 to §6.7): every link delays each chunk 200 ms per direction and "loses" 30 %
/// of them (one retransmission timeout more). A rotation must commit on every member and an
/// unlock must complete; each must take at least the round trips it needs, or the faults
/// were not in the path.
pub(super) async fn loss_and_delay(r: &mut Run) -> Result<Value, String> {
    let round_trip = DELAY * 2;
    let before = r.net.counters();
    r.net.everywhere(Link::Slow { delay: DELAY, loss: LOSS });
    let t = Instant::now();
    let epoch = r.rotate().await?;
    let slow = Duration::from_secs(60);
    status_until(&r.k.c, slow, "commit", |s| s.latest_committed_epoch >= epoch).await?;
    let decided = t.elapsed();
    let members = r.k.members.clone();
    status_until(&r.k.c, slow, "every member commits", |s| committed(s, &members, epoch)).await?;
    let all = t.elapsed();
    // Share collection, Prepare and Commit: three round trips, one after the other.
    ensure(all >= round_trip * 3, || {
        format!("every member committed in {all:?} over links of {round_trip:?}")
    })?;
    let name = pick(&mut r.k.rng, &r.k.members, 1).remove(0);
    r.rekeyed(&name, epoch).await?;
    let (unlocked, unlock) = relock(&r.k.c.key_socket(&name)).await?;
    ensure(unlocked == epoch, || format!("{name} unlocked epoch {unlocked}, not {epoch}"))?;
    ensure(unlock >= round_trip, || {
        format!("{name} unlocked in {unlock:?} over links of {round_trip:?}")
    })?;
    r.derive(4, &name, epoch).await?;
    let after = r.net.counters();
    let (chunks, lost) = (after.chunks - before.chunks, after.lost - before.lost);
    ensure(lost > 0, || format!("no chunk of {chunks} was lost"))?;
    let total = t.elapsed();
    let converge = r.heal_and_settle(4).await?;
    Ok(json!({
        "delay_ms": ms(DELAY),
        "loss": LOSS,
        "rto_ms": ms(super::net::RTO),
        "commit_ms": ms(decided),
        "all_committed_ms": ms(all),
        "unlock_ms": ms(unlock),
        "chunks": chunks,
        "lost": lost,
        "lost_share": (lost as f64 / chunks.max(1) as f64 * 1000.0).round() / 1000.0,
        "faulty_ms": ms(total),
        "converge_ms": ms(converge),
    }))
}

/// Case 5a (§6.4, §6.11): an agent is SIGSTOPped for 5 s during a rotation, then continued.
/// K + Z members answer without it: the epoch must commit during the pause, the paused one
/// must be shown stale, and after SIGCONT it must catch up with nothing acked lost.
pub(super) async fn paused_agent(r: &mut Run) -> Result<Value, String> {
    let victim = pick(&mut r.k.rng, &r.k.members, 1).remove(0);
    let epoch = r.rotate().await?;
    let at = r.k.rng.random_range(0..15);
    tokio::time::sleep(Duration::from_millis(at)).await;
    let stopped = Stopped::stop(&r.k.c, &victim)?;
    let t = Instant::now();
    let (mut decided, mut stale) = (None, None);
    while t.elapsed() < PAUSE {
        if let Ok(s) = control::status(&r.k.c).await {
            if decided.is_none() && s.latest_committed_epoch >= epoch {
                decided = Some(t.elapsed());
            }
            if stale.is_none() && member(&s, &victim).is_some_and(|m| m.stale) {
                stale = Some(t.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(stopped);
    let converge = r.heal_and_settle(5).await?;
    ensure(decided.is_some(), || {
        format!("epoch {epoch} did not commit while {victim} was paused")
    })?;
    ensure(stale.is_some(), || format!("{victim} was paused {PAUSE:?} and never shown stale"))?;
    ensure(r.k.oracle.latest() == epoch, || {
        format!("epoch {epoch} is not the latest after resume")
    })?;
    Ok(json!({
        "paused": victim,
        "paused_after_ms": at,
        "pause_ms": ms(PAUSE),
        "committed_during_pause_ms": decided.map(ms),
        "stale_after_ms": stale.map(ms),
        "converge_after_resume_ms": ms(converge),
    }))
}

/// Case 5b (§2, §6.7, §6.8): the coordinator is SIGSTOPped for 5 s during a rotation. An
/// agent must still unlock from its peers during the pause; after SIGCONT the rotation must
/// commit (its prepare timeout, 10 s, has not passed) and the cluster converge.
pub(super) async fn paused_coordinator(r: &mut Run) -> Result<Value, String> {
    let before = r.k.oracle.latest();
    let epoch = r.rotate().await?;
    let at = r.k.rng.random_range(0..15);
    tokio::time::sleep(Duration::from_millis(at)).await;
    let name = pick(&mut r.k.rng, &r.k.members, 1).remove(0);
    let stopped = Stopped::stop(&r.k.c, COORDINATOR)?;
    let t = Instant::now();
    let unlocked = relock(&r.k.c.key_socket(&name)).await;
    tokio::time::sleep(PAUSE.saturating_sub(t.elapsed())).await;
    drop(stopped);
    let resumed = Instant::now();
    let s = status_until(&r.k.c, COMMIT_TIMEOUT, "commit after resume", |s| {
        s.last_attempt.as_ref().is_some_and(|a| {
            a.epoch == epoch && a.phase != "collecting_shares" && a.phase != "preparing"
        })
    })
    .await?;
    let decided = resumed.elapsed();
    let outcome = if s.latest_committed_epoch == epoch {
        "committed".to_string()
    } else {
        s.last_attempt.map(|a| a.phase).unwrap_or_default()
    };
    r.heal_and_settle(6).await?;
    let converge = resumed.elapsed();
    let (got, took) = unlocked?;
    ensure(got >= before, || {
        format!("{name} unlocked epoch {got} during the pause, before it had {before}")
    })?;
    ensure(took < UNLOCK_BOUND, || format!("{name}'s unlock took {took:?} without a coordinator"))?;
    ensure(s.latest_committed_epoch == epoch, || {
        format!("epoch {epoch} ended {outcome} after a {PAUSE:?} pause")
    })?;
    Ok(json!({
        "paused_after_ms": at,
        "pause_ms": ms(PAUSE),
        "unlock_during_pause_ms": ms(took),
        "unlocked_by": name,
        "outcome": outcome,
        "decided_after_resume_ms": ms(decided),
        "converge_after_resume_ms": ms(converge),
    }))
}
