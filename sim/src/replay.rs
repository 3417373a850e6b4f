//! `replay LOG [--until N]`: steps through a case's event log, printing each
//! event and what it changed.

use std::path::Path;

use crate::run::CaseLog;
use crate::world::World;

/// Replays a log silently; returns the violations it produces now.
pub fn violations(log: &CaseLog) -> Vec<String> {
    let mut w = World::new(log.setup.clone());
    for ev in &log.events {
        w.apply(ev);
    }
    w.check
        .violations
        .iter()
        .map(|v| format!("{} at event {}: {}", v.invariant, v.event, v.detail))
        .collect()
}

/// Replays `path`; returns the number of violations seen.
pub fn replay(path: &Path, until: Option<u64>) -> Result<usize, String> {
    let body = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let log: CaseLog = serde_json::from_slice(&body)
        .map_err(|e| format!("{} is not an event log: {e}", path.display()))?;
    println!("setup: {}", serde_json::to_string(&log.setup).unwrap_or_default());
    let mut w = World::new(log.setup.clone());
    for (i, ev) in log.events.iter().enumerate() {
        let n = i as u64 + 1;
        if until.is_some_and(|u| n > u) {
            break;
        }
        w.trace = Some(Vec::new());
        w.apply(ev);
        println!(
            "#{n} t={}ms {}",
            w.now.as_millis(),
            serde_json::to_string(ev).unwrap_or_default()
        );
        for line in w.trace.take().unwrap_or_default() {
            println!("{line}");
        }
        for v in w.check.violations.iter().filter(|v| v.event == n) {
            println!("  VIOLATION {}: {}", v.invariant, v.detail);
        }
    }
    println!("state:");
    println!(
        "  coordinator: {}, ledger latest {:?}",
        if w.coord.is_some() { "up" } else { "down" },
        w.ledger_disk.latest_committed()
    );
    if let Some(c) = &w.coord {
        let st = c.status(w.now);
        println!("  attempt: {:?}", st.attempt);
        for m in &st.members {
            println!(
                "  C sees {}: {} committed {:?} stale {:?} error {:?}",
                m.node_id,
                m.state.as_str(),
                m.committed_epoch,
                m.stale,
                m.last_error
            );
        }
    }
    for (id, n) in &w.nodes {
        let unlocked = n.node.as_ref().and_then(|n| n.unlocked()).map(|u| u.epoch);
        println!(
            "  {id}: {} committed {:?} prepared {:?} expunged {:?} unlocked {unlocked:?}",
            if n.node.is_some() { "up" } else { "down" },
            n.disk.latest_committed(),
            n.disk.highest_prepared(),
            n.disk.expunged,
        );
    }
    Ok(w.check.violations.len())
}
