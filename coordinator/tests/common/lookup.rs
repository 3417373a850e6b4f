//! Reading a status, deriving a key, waiting for a condition.

// Each test binary uses part of the harness.
#![allow(dead_code)]

use super::*;

/// `n`'s row in the status.
pub(crate) fn member<'a>(s: &'a pb::ClusterStatus, n: &NodeId) -> Option<&'a pb::MemberStatus> {
    s.members.iter().find(|m| m.node_id == n.as_str())
}

/// Derives the test key at `epoch` (0 = latest).
pub(crate) async fn derive(
    keys: &mut LocalKeysClient<Channel>,
    epoch: u64,
) -> Result<pb::DeriveKeyResponse, tonic::Status> {
    let req = pb::DeriveKeyRequest {
        purpose: PURPOSE.into(),
        context: CONTEXT.to_vec(),
        epoch,
        length: 0,
    };
    keys.derive_key(req).await.map(tonic::Response::into_inner)
}

/// Polls `probe` until it returns Some, or fails the test after [`DEADLINE`].
pub(crate) async fn wait_until<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        if start.elapsed() > DEADLINE {
            panic!("timed out after {DEADLINE:?} waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Node ids from names.
pub(crate) fn ids(names: &[&str]) -> Vec<NodeId> {
    names.iter().map(|n| id(n)).collect()
}
