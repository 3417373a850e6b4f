//! `tq-agent`'s configuration: a TOML file, with a few flags that override it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tq_protocol::{ClusterId, NodeId};
use tq_wire::failpoint::Failpoints;
use tq_wire::process::{ConfigError, LogConfig, ServiceConfig};
use tq_wire::server::ServerLimits;
use tq_wire::tls::TlsFiles;

/// Everything the agent needs to start.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The cluster (a UUID).
    pub cluster_id: String,
    /// This node's id; must be the one its certificate names.
    pub node_id: String,
    /// Where the peer service listens (port 0 picks one).
    pub listen: SocketAddr,
    /// The address peers and the coordinator should use (default: the bound address).
    #[serde(default)]
    pub advertise: Option<String>,
    /// The sled database directory. Missing means a new node; present means it must open
    /// and pass its consistency check, or the agent refuses to start.
    pub state_dir: PathBuf,
    /// The local key service's Unix socket (mode 0600).
    pub key_socket: PathBuf,
    /// The coordinator's address, to enroll and receive the address book (optional: unlock
    /// works without one).
    #[serde(default)]
    pub coordinator: Option<String>,
    /// Rebuild the secret from peers as soon as the agent starts.
    #[serde(default = "yes")]
    pub unlock_on_start: bool,
    /// How often to retry unanswered share requests.
    #[serde(default = "default_retry", with = "tq_wire::serde_duration")]
    pub retry_interval: Duration,
    /// After a commit, wait between this and twice this before re-keying (fetching the new
    /// epoch's shares), so the members' re-keys do not compete with the commit still under
    /// way on the other members. `0s` re-keys at once. An explicit unlock never waits.
    #[serde(default = "default_rekey_delay", with = "tq_wire::serde_duration")]
    pub rekey_delay: Duration,
    /// mTLS files.
    pub tls: TlsFiles,
    /// Peers known before any coordinator says (node id → address).
    #[serde(default)]
    pub peers: Vec<PeerEntry>,
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

/// A statically configured peer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerEntry {
    /// Its node id.
    pub node_id: String,
    /// host:port of its peer service.
    pub address: String,
}

fn yes() -> bool {
    true
}
fn default_retry() -> Duration {
    Duration::from_secs(1)
}

fn default_rekey_delay() -> Duration {
    Duration::from_millis(50)
}

/// The parsed identity fields.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The cluster.
    pub cluster: ClusterId,
    /// This node.
    pub node: NodeId,
}

impl AgentConfig {
    /// Checks the values and parses the identity.
    pub fn validate(&self) -> Result<Identity, ConfigError> {
        let cluster = self.cluster_id.parse().map_err(|e: tq_protocol::ids::ClusterIdError| {
            ConfigError::Invalid { field: "cluster_id", why: e.to_string() }
        })?;
        let node = NodeId::new(self.node_id.as_str())
            .map_err(|e| ConfigError::Invalid { field: "node_id", why: e.to_string() })?;
        for p in &self.peers {
            NodeId::new(p.node_id.as_str())
                .map_err(|e| ConfigError::Invalid { field: "peers.node_id", why: e.to_string() })?;
        }
        tq_wire::logging::parse_level(&self.log.level)
            .map_err(|why| ConfigError::Invalid { field: "log.level", why })?;
        if self.retry_interval < Duration::from_millis(10) {
            return Err(ConfigError::Invalid {
                field: "retry_interval",
                why: "must be at least 10ms".into(),
            });
        }
        if self.rekey_delay > Duration::from_secs(60) {
            return Err(ConfigError::Invalid {
                field: "rekey_delay",
                why: "must be at most 60s: hosts wait this long to re-key".into(),
            });
        }
        Ok(Identity { cluster, node })
    }
}

impl ServiceConfig for AgentConfig {
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
