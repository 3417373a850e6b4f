//! Talking to a local cluster the way its users do: the coordinator's control service as
//! the operator, and each agent's local key service on its Unix socket.

use std::path::Path;
use std::time::{Duration, Instant};

use tq_coordinator::cluster_file::ClusterFile;
use tq_wire::pb;
use zeroize::Zeroizing;

use super::LocalCluster;

/// The coordinator's control service, authenticated with the cluster file's operator.
pub fn operator(
    c: &LocalCluster,
) -> Result<pb::coordinator_client::CoordinatorClient<tonic::transport::Channel>, String> {
    let (file, id) = ClusterFile::load(&c.cluster_file())?;
    file.connect(id)
}

/// The cluster status.
pub async fn status(c: &LocalCluster) -> Result<pb::ClusterStatus, String> {
    let mut client = operator(c)?;
    client
        .status(pb::StatusRequest { if_version: 0 })
        .await
        .map(tonic::Response::into_inner)
        .map_err(|s| format!("status: {}", s.message()))
}

/// Waits until every node of the cluster has enrolled with the coordinator.
pub async fn wait_enrolled(c: &LocalCluster, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut client = operator(c)?;
    loop {
        let enrolled = match client.nodes(pb::NodesRequest {}).await {
            Ok(r) => r.into_inner().nodes.len(),
            Err(_) => 0,
        };
        if enrolled >= c.nodes().len() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "only {enrolled} of {} agents enrolled after {timeout:?} (see {})",
                c.nodes().len(),
                c.dir().join("logs").display()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Asks an agent to unlock (rebuild every epoch's secret from its peers), waiting up to
/// `wait`; returns the latest unlocked epoch (0 = still locked).
pub async fn unlock(socket: &Path, wait: Duration) -> Result<u64, String> {
    let mut keys = tq_wire::client::local_keys(socket)
        .await
        .map_err(|e| format!("{}: {e}", socket.display()))?;
    let wait_ms = u32::try_from(wait.as_millis()).unwrap_or(u32::MAX);
    keys.unlock(pb::UnlockRequest { wait_ms })
        .await
        .map(|r| r.into_inner().latest)
        .map_err(|s| format!("unlock: {}", s.message()))
}

/// Drops an agent's unlocked secrets (the next derive needs an unlock).
pub async fn lock(socket: &Path) -> Result<(), String> {
    let mut keys = tq_wire::client::local_keys(socket)
        .await
        .map_err(|e| format!("{}: {e}", socket.display()))?;
    keys.lock(pb::LockRequest {}).await.map(drop).map_err(|s| format!("lock: {}", s.message()))
}

/// Derives a key for `purpose` from `epoch`'s secret on one agent.
pub async fn derive(
    socket: &Path,
    purpose: &str,
    epoch: u64,
) -> Result<(u64, Zeroizing<Vec<u8>>), String> {
    let mut keys = tq_wire::client::local_keys(socket)
        .await
        .map_err(|e| format!("{}: {e}", socket.display()))?;
    let r = keys
        .derive_key(pb::DeriveKeyRequest {
            purpose: purpose.into(),
            context: Vec::new(),
            epoch,
            length: 32,
        })
        .await
        .map_err(|s| format!("derive: {}", s.message()))?
        .into_inner();
    Ok((r.epoch, Zeroizing::new(r.key)))
}
