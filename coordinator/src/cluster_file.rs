//! The cluster file `tqctl` reads (`--cluster FILE` or `TQ_CLUSTER`): where the coordinator
//! is and which operator certificate to use. Relative paths are relative to the file.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tonic::transport::Channel;
use tq_protocol::{ClusterId, Peer};
use tq_wire::client::{ClientLimits, channel};
use tq_wire::pb::coordinator_client::CoordinatorClient;
use tq_wire::tls::{TlsFiles, TlsMaterial};

/// `cluster.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    /// The cluster (a UUID).
    pub cluster_id: String,
    /// host:port of the coordinator's control service.
    pub coordinator: String,
    /// The operator's mTLS files.
    pub tls: TlsFiles,
}

impl ClusterFile {
    /// Reads a cluster file; relative TLS paths are taken relative to it.
    pub fn load(path: &Path) -> Result<(ClusterFile, ClusterId), String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut f: ClusterFile =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [&mut f.tls.ca, &mut f.tls.cert, &mut f.tls.key] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        let id =
            f.cluster_id.parse().map_err(|e| format!("{}: cluster_id: {e}", path.display()))?;
        Ok((f, id))
    }

    /// A client to the coordinator, authenticated as the file's operator.
    pub fn connect(&self, cluster: ClusterId) -> Result<CoordinatorClient<Channel>, String> {
        let tls = TlsMaterial::load(&self.tls, cluster, None).map_err(|e| e.to_string())?;
        if !matches!(tls.identity, Peer::Operator(_)) {
            return Err(format!(
                "{} is a certificate for {}, not an operator",
                self.tls.cert.display(),
                tls.identity
            ));
        }
        let ch = channel(&tls, Peer::Coordinator, &self.coordinator, &ClientLimits::default())
            .map_err(|e| e.message().to_string())?;
        Ok(CoordinatorClient::new(ch))
    }

    /// Writes the file (mode 0644: it holds paths, not keys).
    pub fn write(&self, path: &Path) -> Result<(), String> {
        let body = toml::to_string_pretty(self).map_err(|e| e.to_string())?;
        tq_wire::pki::write(path, body.as_bytes(), 0o644).map_err(|e| e.to_string())
    }
}

/// Paths relative to `dir` when they are inside it (so the directory can move).
pub fn relative(dir: &Path, p: &Path) -> PathBuf {
    p.strip_prefix(dir).map(Path::to_path_buf).unwrap_or_else(|_| p.to_path_buf())
}
