//! `tq-coordinator`'s configuration: a TOML file, with a few flags that override it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tq_protocol::ClusterId;
use tq_protocol::ThresholdPolicy;
use tq_protocol::coordinator::{CommitPolicy, CoordinatorOptions, StaleOptions};
use tq_wire::failpoint::Failpoints;
use tq_wire::process::{ConfigError, LogConfig, ServiceConfig};
use tq_wire::server::ServerLimits;
use tq_wire::tls::TlsFiles;

/// Everything the coordinator needs to start.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoordinatorConfig {
    /// The cluster (a UUID).
    pub cluster_id: String,
    /// Where the control service listens (port 0 picks one).
    pub listen: SocketAddr,
    /// The sled ledger directory (missing: a new cluster; present: must open and check).
    pub state_dir: PathBuf,
    /// mTLS files.
    pub tls: TlsFiles,
    /// Protocol tunables (DESIGN §6.4, §6.8, §6.11).
    #[serde(default)]
    pub protocol: ProtocolConfig,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// Server limits.
    #[serde(default)]
    pub limits: ServerLimits,
    /// Failpoints, for tests only: never read from the file (the binary arms them from
    /// `TQ_FAILPOINTS`, a test hands its own).
    #[serde(skip)]
    pub failpoints: Failpoints,
}

/// Protocol tunables.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProtocolConfig {
    /// `auto` (commit at K + Z acks) or `manual` (the operator commits).
    pub commit_policy: String,
    /// `majority` (K ≥ ⌊N/2⌋ + 1) or `permissive` (2 ≤ K < N).
    pub threshold_policy: String,
    /// Abort an epoch without K + Z acks after this long.
    #[serde(with = "tq_wire::serde_duration")]
    pub prepare_timeout: Duration,
    /// Resend unanswered Prepares, Commits and share requests after this long.
    #[serde(with = "tq_wire::serde_duration")]
    pub retry_interval: Duration,
    /// Ask every node for its status this often.
    #[serde(with = "tq_wire::serde_duration")]
    pub poll_interval: Duration,
    /// A node with no answer for this long is stale.
    #[serde(with = "tq_wire::serde_duration")]
    pub stale_after: Duration,
    /// A node behind the cluster's commit for this long is stale.
    #[serde(with = "tq_wire::serde_duration")]
    pub lag_grace: Duration,
}

impl Default for ProtocolConfig {
    fn default() -> Self {
        let d = CoordinatorOptions::default();
        ProtocolConfig {
            commit_policy: "auto".into(),
            threshold_policy: "majority".into(),
            prepare_timeout: d.prepare_timeout,
            retry_interval: d.retry_interval,
            poll_interval: d.poll_interval,
            stale_after: d.stale.stale_after,
            lag_grace: d.stale.lag_grace,
        }
    }
}

impl CoordinatorConfig {
    /// Checks the values; returns the cluster id and the protocol options.
    pub fn validate(&self) -> Result<(ClusterId, CoordinatorOptions), ConfigError> {
        let invalid = |field, why: String| ConfigError::Invalid { field, why };
        let cluster = self
            .cluster_id
            .parse()
            .map_err(|e: tq_protocol::ids::ClusterIdError| invalid("cluster_id", e.to_string()))?;
        let p = &self.protocol;
        let commit_policy = match p.commit_policy.as_str() {
            "auto" => CommitPolicy::Auto,
            "manual" => CommitPolicy::Manual,
            other => {
                return Err(invalid(
                    "protocol.commit_policy",
                    format!("must be auto or manual, not {other:?}"),
                ));
            }
        };
        let threshold_policy = match p.threshold_policy.as_str() {
            "majority" => ThresholdPolicy::Majority,
            "permissive" => ThresholdPolicy::Permissive,
            other => {
                return Err(invalid(
                    "protocol.threshold_policy",
                    format!("must be majority or permissive, not {other:?}"),
                ));
            }
        };
        for (field, d) in [
            ("protocol.prepare_timeout", p.prepare_timeout),
            ("protocol.retry_interval", p.retry_interval),
            ("protocol.poll_interval", p.poll_interval),
            ("protocol.stale_after", p.stale_after),
            ("protocol.lag_grace", p.lag_grace),
        ] {
            if d < Duration::from_millis(10) {
                return Err(invalid(field, "must be at least 10ms".into()));
            }
        }
        // Every answer is at most a poll apart: at or below that, every node would turn stale
        // between two polls and back at the next.
        if p.stale_after <= p.poll_interval {
            return Err(invalid(
                "protocol.stale_after",
                format!(
                    "must be longer than protocol.poll_interval ({:?}), got {:?}",
                    p.poll_interval, p.stale_after
                ),
            ));
        }
        tq_wire::logging::parse_level(&self.log.level).map_err(|why| invalid("log.level", why))?;
        Ok((
            cluster,
            CoordinatorOptions {
                commit_policy,
                threshold_policy,
                prepare_timeout: p.prepare_timeout,
                retry_interval: p.retry_interval,
                poll_interval: p.poll_interval,
                stale: StaleOptions { stale_after: p.stale_after, lag_grace: p.lag_grace },
            },
        ))
    }
}

impl ServiceConfig for CoordinatorConfig {
    fn listen_mut(&mut self) -> &mut SocketAddr {
        &mut self.listen
    }
    fn log_mut(&mut self) -> &mut LogConfig {
        &mut self.log
    }
    fn check(&self) -> Result<(), ConfigError> {
        self.validate().map(|_| ())
    }
    fn failpoints_mut(&mut self) -> &mut Failpoints {
        &mut self.failpoints
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(poll: u64, stale: u64) -> CoordinatorConfig {
        let mut c: CoordinatorConfig = toml::from_str(
            r#"
            cluster_id = "6f1c2a4e-8b3d-4c5e-9f70-1a2b3c4d5e6f"
            listen = "127.0.0.1:0"
            state_dir = "/nonexistent"
            [tls]
            ca = "ca.pem"
            cert = "c.pem"
            key = "c.key"
            "#,
        )
        .expect("parses");
        c.protocol.poll_interval = Duration::from_secs(poll);
        c.protocol.stale_after = Duration::from_secs(stale);
        c
    }

    /// §6.11: a node is stale after `stale_after` without an answer; polled less often than
    /// that, every node would flip stale between polls.
    #[test]
    fn stale_after_must_exceed_the_poll_interval_section_6_11() {
        assert!(config(2, 15).validate().is_ok());
        for (poll, stale) in [(15, 15), (20, 15)] {
            match config(poll, stale).validate() {
                Err(ConfigError::Invalid { field, why }) => {
                    assert_eq!(field, "protocol.stale_after");
                    assert!(why.contains("poll_interval"), "{why}");
                }
                other => panic!("poll {poll} s, stale {stale} s: {other:?}"),
            }
        }
    }
}
