//! What `tqctl` prints: human tables by default, JSON for machines. The JSON field names are
//! a public API (documented in README.md): add, never rename.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tq_wire::pb;

fn time(ms: i64) -> Value {
    if ms <= 0 {
        return Value::Null;
    }
    let t = UNIX_EPOCH + Duration::from_millis(ms as u64);
    json!(humantime::format_rfc3339_millis(t).to_string())
}

fn ago(ms: i64) -> String {
    if ms <= 0 {
        return "never".into();
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    format!("{:.1}s ago", (now - ms).max(0) as f64 / 1000.0)
}

fn epoch(n: u64) -> Value {
    if n == 0 { Value::Null } else { json!(n) }
}

pub(crate) fn attempt_json(a: &pb::Attempt) -> Value {
    json!({
        "epoch": a.epoch,
        "kind": a.kind,
        "phase": a.phase,
        "abort_reason": if a.abort_reason.is_empty() { Value::Null } else { json!(a.abort_reason) },
        "threshold": a.threshold,
        "acks": a.acks,
        "acks_needed": a.acks_needed,
        "started_at": time(a.started_at_ms),
    })
}

pub(crate) fn status_json(s: &pb::ClusterStatus) -> Value {
    json!({
        "cluster_id": s.cluster_id,
        "latest_committed_epoch": epoch(s.latest_committed_epoch),
        "pending": s.pending.as_ref().map(attempt_json),
        "last_attempt": s.last_attempt.as_ref().map(attempt_json),
        "members": s.members.iter().map(|m| json!({
            "node_id": m.node_id,
            "state": m.state,
            "committed_epoch": epoch(m.committed_epoch),
            "last_contact": time(m.last_contact_ms),
            "prepared_at": time(m.prepared_at_ms),
            "committed_at": time(m.committed_at_ms),
            "stale": m.stale,
            "stale_reason": if m.stale { json!(m.stale_reason) } else { Value::Null },
            "stale_detail": if m.stale { json!(m.stale_detail) } else { Value::Null },
            "last_error": if m.last_error.is_empty() { Value::Null } else { json!(m.last_error) },
        })).collect::<Vec<_>>(),
        "alarms": s.alarms.iter().map(|a| json!({"at": time(a.at_ms), "alarm": a.alarm})).collect::<Vec<_>>(),
        "alarm_count": s.alarm_count,
        "version": s.version,
    })
}

pub(crate) fn status_table(s: &pb::ClusterStatus) -> String {
    let mut out = format!(
        "cluster {}   latest committed epoch: {}   status version {}\n",
        s.cluster_id,
        if s.latest_committed_epoch == 0 {
            "none".into()
        } else {
            s.latest_committed_epoch.to_string()
        },
        s.version
    );
    match &s.pending {
        Some(p) => {
            out += &format!(
                "pending: epoch {} ({}) {}   acks {}/{} (K={})\n",
                p.epoch, p.kind, p.phase, p.acks, p.acks_needed, p.threshold
            )
        }
        None => out += "pending: nothing\n",
    }
    if let Some(a) = s.last_attempt.as_ref().filter(|a| a.phase == "aborted") {
        out += &format!("last attempt: epoch {} aborted ({})\n", a.epoch, a.abort_reason);
    }
    let w = s.members.iter().map(|m| m.node_id.len()).max().unwrap_or(4).max(4);
    out += &format!(
        "\n{:<w$}  {:<10}  {:>5}  {:<14}  {}\n",
        "NODE", "STATE", "EPOCH", "LAST CONTACT", "STALE"
    );
    for m in &s.members {
        let stale =
            if m.stale { format!("{}: {}", m.stale_reason, m.stale_detail) } else { "-".into() };
        let e = if m.committed_epoch == 0 { "-".into() } else { m.committed_epoch.to_string() };
        out += &format!(
            "{:<w$}  {:<10}  {:>5}  {:<14}  {}\n",
            m.node_id,
            m.state,
            e,
            ago(m.last_contact_ms),
            stale
        );
        if !m.last_error.is_empty() {
            out += &format!("{:<w$}  last error: {}\n", "", m.last_error);
        }
    }
    if s.alarm_count == 0 {
        out += "\nalarms: none\n";
    } else {
        out += &format!("\nALARMS: {}\n", s.alarm_count);
        for a in &s.alarms {
            out += &format!("  {}  {}\n", time(a.at_ms).as_str().unwrap_or("?"), a.alarm);
        }
    }
    out
}

pub(crate) fn nodes_json(n: &pb::NodesResponse) -> Value {
    json!(
        n.nodes
            .iter()
            .map(|n| json!({
                "node_id": n.node_id,
                "address": n.address,
                "version": n.version,
                "last_contact": time(n.last_contact_ms),
                "committed_epoch": epoch(n.committed_epoch),
                "prepared_epoch": epoch(n.prepared_epoch),
                "unlocked_epoch": epoch(n.unlocked),
                "expunged_at": epoch(n.expunged),
                "stale": n.stale,
                "wiped": n.fresh,
            }))
            .collect::<Vec<_>>()
    )
}

pub(crate) fn nodes_table(n: &pb::NodesResponse) -> String {
    let w = n.nodes.iter().map(|n| n.node_id.len()).max().unwrap_or(4).max(4);
    let mut out = format!(
        "{:<w$}  {:<22}  {:>9}  {:>8}  {:<14}  {}\n",
        "NODE", "ADDRESS", "COMMITTED", "UNLOCKED", "LAST CONTACT", "NOTE"
    );
    for n in &n.nodes {
        let e = |v: u64| if v == 0 { "-".to_string() } else { v.to_string() };
        let note = match (n.expunged, n.stale) {
            (e, _) if e != 0 => format!("expunged at epoch {e}"),
            (_, true) => "stale".into(),
            _ => String::new(),
        };
        out += &format!(
            "{:<w$}  {:<22}  {:>9}  {:>8}  {:<14}  {}\n",
            n.node_id,
            n.address,
            e(n.committed_epoch),
            e(n.unlocked),
            ago(n.last_contact_ms),
            note
        );
    }
    out
}
