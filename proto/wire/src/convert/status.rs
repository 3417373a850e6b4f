//! The cluster status of DESIGN §8, for the control plane.

use tq_protocol::Time;
use tq_protocol::coordinator::AttemptKind;
use tq_protocol::coordinator::status::{AttemptStatus, ClusterStatus, PhaseStatus};
use tq_protocol::coordinator::tracker::StaleReason;

use crate::pb;

/// Maps the driver's monotonic [`Time`] to wall-clock unix milliseconds for display.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    origin_unix_ms: i64,
}

impl WallClock {
    /// `origin_unix_ms` is the wall-clock time at [`Time::ZERO`].
    pub fn new(origin_unix_ms: i64) -> Self {
        WallClock { origin_unix_ms }
    }

    /// Unix milliseconds for `t`.
    pub fn unix_ms(&self, t: Time) -> i64 {
        self.origin_unix_ms.saturating_add(t.as_millis() as i64)
    }

    fn opt(&self, t: Option<Time>) -> i64 {
        t.map_or(0, |t| self.unix_ms(t))
    }
}

/// One attempt for the wire.
pub fn attempt_to_pb(a: &AttemptStatus, clock: &WallClock) -> pb::Attempt {
    pb::Attempt {
        epoch: a.epoch.get(),
        kind: match a.kind {
            AttemptKind::Initial => "initial",
            AttemptKind::Reconfigure { .. } => "reconfigure",
            AttemptKind::LegacyUpgrade => "legacy_upgrade",
        }
        .into(),
        phase: a.phase.as_str().into(),
        abort_reason: match &a.phase {
            PhaseStatus::Aborted(r) => r.as_str().into(),
            _ => String::new(),
        },
        threshold: a.threshold as u32,
        acks_needed: a.acks_needed as u32,
        acks: a.acks as u32,
        started_at_ms: clock.unix_ms(a.started_at),
    }
}

fn stale_detail(r: &StaleReason) -> String {
    match r {
        StaleReason::NoContact { for_ms } => {
            format!("no answer for {:.1}s", *for_ms as f64 / 1000.0)
        }
        StaleReason::Lagging { committed, cluster } => format!(
            "committed epoch {} while the cluster is at {cluster}",
            committed.map_or("none".to_string(), |e| e.to_string())
        ),
        StaleReason::RolledBack { was, now } => format!(
            "reported committed epoch {} after {was}",
            now.map_or("none".to_string(), |e| e.to_string())
        ),
    }
}

/// The whole status for the wire.
pub fn cluster_status_to_pb(s: &ClusterStatus, clock: &WallClock) -> pb::ClusterStatus {
    pb::ClusterStatus {
        cluster_id: s.cluster_id.to_string(),
        latest_committed_epoch: s.latest_committed_epoch.map_or(0, |e| e.get()),
        pending: s.pending().map(|a| attempt_to_pb(a, clock)),
        last_attempt: s.attempt.as_ref().map(|a| attempt_to_pb(a, clock)),
        members: s
            .members
            .iter()
            .map(|m| pb::MemberStatus {
                node_id: m.node_id.to_string(),
                state: m.state.as_str().into(),
                prepared_at_ms: clock.opt(m.prepared_at),
                committed_at_ms: clock.opt(m.committed_at),
                last_contact_ms: clock.opt(m.last_contact),
                committed_epoch: m.committed_epoch.map_or(0, |e| e.get()),
                stale: m.stale.is_some(),
                stale_reason: m.stale.map(|r| r.as_str().to_string()).unwrap_or_default(),
                stale_detail: m.stale.as_ref().map(stale_detail).unwrap_or_default(),
                last_error: m.last_error.as_ref().map(|e| e.to_string()).unwrap_or_default(),
            })
            .collect(),
        alarms: s
            .alarms
            .iter()
            .map(|(t, a)| pb::AlarmEntry { at_ms: clock.unix_ms(*t), alarm: format!("{a:?}") })
            .collect(),
        alarm_count: s.alarm_count,
        version: s.version,
        not_modified: false,
    }
}
