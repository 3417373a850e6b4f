//! The end of every case (I9): faults stop, everything restarts and heals, one more honest
//! reconfiguration runs, and every live member of the latest committed epoch must commit it
//! and unlock the same secrets for every epoch.

use tq_protocol::{Epoch, NodeId};

use crate::event::Event;
use crate::world::World;

/// Simulated time the cluster gets to converge.
const ROUNDS: usize = 240;
const ROUND_MS: u64 = 500;

/// Drives `w` to convergence, appending every event it applies to `log`; then checks I9.
pub(crate) fn run(w: &mut World, log: &mut Vec<Event>) {
    step(w, log, Event::Heal);
    step(w, log, Event::RestartCoordinator);
    let down: Vec<String> =
        w.nodes.iter().filter(|(_, n)| n.node.is_none()).map(|(id, _)| id.to_string()).collect();
    for node in down {
        step(w, log, Event::RestartNode { node });
    }
    // Let whatever is in flight finish (commit, or abort at the prepare timeout). Under the
    // manual policy an epoch with its acks waits for the operator (§6.8), who aborts it here
    // to make room for the configuration below.
    let manual = w.setup.manual_commit;
    settle(w, log, |w| !in_flight(w) || (manual && acks_reached(w)));
    if manual && in_flight(w) {
        step(w, log, Event::Abort);
    }

    // One more configuration, proving the cluster can still make progress.
    let (members, threshold) = match &w.ledger_disk.latest {
        Some(c) => (c.members().keys().map(NodeId::to_string).collect(), c.threshold().get()),
        None => {
            let all: Vec<String> = w.nodes.keys().map(NodeId::to_string).collect();
            let k = all.len() / 2 + 1;
            (all, k)
        }
    };
    let before = w.ledger_disk.latest_committed();
    let entropy = *b"liveness-phase-entropy-32-bytes!";
    let ev = if w.setup.legacy_threshold.is_some() && before.is_none() {
        Event::LegacyUpgrade { members: members.clone(), threshold, entropy }
    } else {
        Event::Reconfigure { members: members.clone(), threshold, entropy }
    };
    step(w, log, ev);
    if w.setup.manual_commit {
        // As an operator would: commit once acks are in, again if stale members made the
        // coordinator refuse, until it takes.
        for _ in 0..20 {
            settle(w, log, acks_reached);
            step(w, log, Event::Commit);
            if w.ledger_disk.latest_committed() > before {
                break;
            }
            step(w, log, Event::Tick { ms: 2 * ROUND_MS });
        }
    }
    settle(w, log, |w| w.ledger_disk.latest_committed() > before);
    for node in &members {
        step(w, log, Event::Unlock { node: node.clone() });
    }
    settle(w, log, converged);
    check(w);
}

fn step(w: &mut World, log: &mut Vec<Event>, ev: Event) {
    w.apply(&ev);
    log.push(ev);
}

fn in_flight(w: &World) -> bool {
    w.coord.as_ref().and_then(|c| c.attempt_status()).is_some_and(|a| a.phase.in_flight())
}

fn acks_reached(w: &World) -> bool {
    w.coord.as_ref().and_then(|c| c.attempt_status()).is_some_and(|a| a.acks >= a.acks_needed)
}

/// Delivers everything in flight and lets time pass, until `done` or the time runs out.
fn settle(w: &mut World, log: &mut Vec<Event>, done: impl Fn(&World) -> bool) {
    for _ in 0..ROUNDS {
        let mut budget = 10_000;
        while let Some(&id) = w.net.in_flight.keys().next() {
            if budget == 0 {
                break;
            }
            budget -= 1;
            step(w, log, Event::Deliver { id });
        }
        if done(w) {
            return;
        }
        step(w, log, Event::Tick { ms: ROUND_MS });
    }
}

fn converged(w: &World) -> bool {
    let Some(c) = w.ledger_disk.latest.clone() else { return false };
    c.members().keys().all(|id| {
        let n = &w.nodes[id];
        n.disk.latest_committed() == Some(c.epoch())
            && n.node.as_ref().and_then(|n| n.unlocked()).is_some_and(|u| u.epoch == c.epoch())
    })
}

fn check(w: &mut World) {
    w.check.exercised.insert("I9");
    let Some(c) = w.ledger_disk.latest.clone() else {
        return w.check.violation("I9", "nothing committed after the liveness phase".into());
    };
    let e = c.epoch();
    let mut expected: Vec<Epoch> = w.ledger_disk.committed.keys().copied().collect();
    if w.setup.legacy_threshold.is_some() {
        expected.insert(0, Epoch::FIRST);
    }
    let mut problems = Vec::new();
    let mut reference = None;
    for id in c.members().keys() {
        let n = &w.nodes[id];
        let committed = n.disk.latest_committed();
        let unlocked = n.node.as_ref().and_then(|n| n.unlocked());
        if committed != Some(e) {
            problems.push(format!("{id} committed {committed:?}, not {e:?}"));
            continue;
        }
        let Some(u) = unlocked.filter(|u| u.epoch == e) else {
            problems.push(format!("{id} did not unlock {e:?}"));
            continue;
        };
        let epochs: Vec<Epoch> = u.secrets.0.keys().copied().collect();
        if epochs != expected {
            problems.push(format!("{id} unlocked epochs {epochs:?}, expected {expected:?}"));
        }
        for (ep, s) in &u.secrets.0 {
            if w.check.truth().get(ep).is_some_and(|t| !t.ct_eq(s)) {
                problems.push(format!("{id} unlocked a wrong secret for {ep:?}"));
            }
        }
        match &reference {
            None => reference = Some((id.clone(), u.secrets.duplicate())),
            Some((first, r)) if !r.ct_eq(&u.secrets) => {
                problems.push(format!("{id} and {first} unlocked different secrets"))
            }
            _ => {}
        }
    }
    if !problems.is_empty() {
        w.check.violation("I9", problems.join("; "));
    }
}
