//! `--inject-bug`: rules broken on purpose, to prove the checker catches each. The names
//! parse in every build; arming them needs the `danger-inject-bugs` feature.

use tq_protocol::coordinator::Coordinator;
use tq_protocol::node::{Node, NodeState};

/// A broken rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bug {
    /// The driver replies before the Persist is durable (writes land at the next tick).
    AckBeforePersist,
    /// Nodes ack shares without the digest and Feldman checks.
    SkipShareVerification,
    /// The coordinator commits one ack short of K + Z.
    CommitBelowThreshold,
    /// Nodes ack Prepares at or below their committed epoch.
    AcceptStalePrepare,
    /// A restarted node loses its committed epochs.
    ForgetCommitOnRestart,
}

pub const NAMES: [&str; 5] = [
    "ack-before-persist",
    "skip-share-verification",
    "commit-below-threshold",
    "accept-stale-prepare",
    "forget-commit-on-restart",
];

impl Bug {
    pub fn parse(name: &str) -> Result<Bug, String> {
        let bug = match name {
            "ack-before-persist" => Bug::AckBeforePersist,
            "skip-share-verification" => Bug::SkipShareVerification,
            "commit-below-threshold" => Bug::CommitBelowThreshold,
            "accept-stale-prepare" => Bug::AcceptStalePrepare,
            "forget-commit-on-restart" => Bug::ForgetCommitOnRestart,
            other => return Err(format!("unknown bug {other:?}; known: {}", NAMES.join(", "))),
        };
        if !cfg!(feature = "danger-inject-bugs") {
            return Err(format!(
                "this simulation was built without the danger-inject-bugs feature; run \
                 `cargo run --release -p tq-sim --features danger-inject-bugs -- sim ...` to \
                 inject {name}"
            ));
        }
        Ok(bug)
    }

    /// Whether the bug only shows with a faulty coordinator (bad shares to accept).
    pub fn needs_faulty_coordinator(self) -> bool {
        self == Bug::SkipShareVerification
    }

    pub fn arm_node(self, _n: &mut Node) {
        #[cfg(feature = "danger-inject-bugs")]
        {
            use tq_protocol::bugs::NodeBug;
            match self {
                Bug::SkipShareVerification => _n.danger_inject_bug(NodeBug::SkipShareVerification),
                Bug::AcceptStalePrepare => _n.danger_inject_bug(NodeBug::AcceptStalePrepare),
                _ => {}
            }
        }
    }

    pub fn arm_coordinator(self, _c: &mut Coordinator) {
        #[cfg(feature = "danger-inject-bugs")]
        if self == Bug::CommitBelowThreshold {
            _c.danger_inject_bug(tq_protocol::bugs::CoordinatorBug::CommitBelowThreshold);
        }
    }

    /// What a restarting node loads from its disk.
    pub fn on_restart(self, mut disk: NodeState) -> NodeState {
        if self == Bug::ForgetCommitOnRestart {
            disk.committed.clear();
        }
        disk
    }
}
