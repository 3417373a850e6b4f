//! The local key service (DESIGN §6.7): on a Unix socket for this host only (its file mode is
//! the access control). Keys derived from the unlocked secrets leave; secrets never do.

use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use futures::Stream;
use tokio::net::UnixListener;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::{UnixListenerStream, WatchStream};
use tonic::{Request, Response, Status};
use tq_protocol::crypto::derive::MAX_DERIVED_LEN;
use tq_wire::pb::local_keys_server::{LocalKeys, LocalKeysServer};
use tq_wire::pb::{self};

use crate::actor::{AgentHandle, KeyError, Unlocked};

pub(crate) struct KeyService(pub(crate) AgentHandle);

fn to_pb(u: &Unlocked) -> pb::EpochsUnlocked {
    pb::EpochsUnlocked {
        latest: u.latest.map_or(0, |e| e.get()),
        epochs: u.epochs.iter().map(|e| e.get()).collect(),
    }
}

fn stopped<T>(_: T) -> Status {
    Status::unavailable("the agent is stopping")
}

/// How long a key request waits for a secret this node is rebuilding.
const REBUILD_WAIT: Duration = Duration::from_secs(10);

impl KeyService {
    /// Epoch `n` is committed here and the host wants the secrets, but they are not rebuilt
    /// yet: the unlock is still collecting shares, or the re-key after the commit is deferred
    /// (`rekey_delay`). A host that was told of the commit and asks for its keys should get
    /// them, so start the re-key now (unlocking again is a no-op while a round is out) and
    /// wait until epoch `n` or a later one is unlocked: then `n`'s secret is held, or never
    /// will be (unlocking an epoch opens all the secrets carried into it).
    async fn rebuilt(&self, n: u64) {
        let mut rx = self.0.unlocked();
        if self.0.unlock().await.is_err() {
            return;
        }
        let held = rx.wait_for(|u| u.latest.is_some_and(|l| l.get() >= n));
        let _ = tokio::time::timeout(REBUILD_WAIT, held).await;
    }
}

#[tonic::async_trait]
impl LocalKeys for KeyService {
    async fn derive_key(
        &self,
        req: Request<pb::DeriveKeyRequest>,
    ) -> Result<Response<pb::DeriveKeyResponse>, Status> {
        let r = req.into_inner();
        let len = if r.length == 0 { 32 } else { r.length as usize };
        if len > MAX_DERIVED_LEN {
            return Err(Status::invalid_argument(format!(
                "length must be at most {MAX_DERIVED_LEN}"
            )));
        }
        let epoch = (r.epoch != 0).then_some(r.epoch);
        let mut res = self.0.derive(r.purpose.clone(), r.context.clone(), epoch, len).await;
        if let Ok(Err(KeyError::Pending(n))) = res {
            self.rebuilt(n).await;
            res = self.0.derive(r.purpose, r.context, epoch, len).await;
        }
        match res.map_err(stopped)? {
            Ok((e, key)) => {
                Ok(Response::new(pb::DeriveKeyResponse { epoch: e.get(), key: key.to_vec() }))
            }
            Err(KeyError::Locked) => Err(Status::failed_precondition(KeyError::Locked.to_string())),
            Err(e @ KeyError::UnknownEpoch(_)) => Err(Status::not_found(e.to_string())),
            Err(e @ KeyError::Pending(_)) => {
                Err(Status::unavailable(format!("{e}: are K members reachable?")))
            }
            Err(e @ KeyError::Derive(_)) => Err(Status::invalid_argument(e.to_string())),
        }
    }

    type WatchEpochsStream = Pin<Box<dyn Stream<Item = Result<pb::EpochsUnlocked, Status>> + Send>>;

    async fn watch_epochs(
        &self,
        _req: Request<pb::WatchEpochsRequest>,
    ) -> Result<Response<Self::WatchEpochsStream>, Status> {
        let stream = WatchStream::new(self.0.unlocked()).map(|u| Ok(to_pb(&u)));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn unlock(
        &self,
        req: Request<pb::UnlockRequest>,
    ) -> Result<Response<pb::EpochsUnlocked>, Status> {
        let wait = Duration::from_millis(u64::from(req.into_inner().wait_ms));
        let mut rx = self.0.unlocked();
        self.0.unlock().await.map_err(stopped)?;
        if !wait.is_zero() {
            // Done when the latest committed epoch is unlocked.
            let target = self.0.summary().await.map_err(stopped)?.committed.map(|c| c.0);
            let reached = rx.wait_for(|u| u.latest.is_some() && u.latest >= target);
            if tokio::time::timeout(wait, reached).await.is_err() {
                return Err(Status::deadline_exceeded(
                    "not unlocked in time: are K members reachable?",
                ));
            }
        }
        let now = self.0.unlocked().borrow().clone();
        Ok(Response::new(to_pb(&now)))
    }

    async fn lock(
        &self,
        _req: Request<pb::LockRequest>,
    ) -> Result<Response<pb::LockResponse>, Status> {
        self.0.lock().await.map_err(stopped)?;
        Ok(Response::new(pb::LockResponse {}))
    }
}

/// Binds the socket (replacing a stale one) with mode 0600. It is bound inside a private
/// directory and moved into place once restricted: bound at `path` directly, it would be
/// open to the umask's mode until the chmod, and a connection made then stays open.
pub(crate) fn bind(path: &Path) -> std::io::Result<UnixListenerStream> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    use std::sync::atomic::{AtomicU64, Ordering};
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    // Unique within the process too: agents sharing one (`tq-testbed agent-host`) bind their
    // sockets in the same directory at once.
    static BINDS: AtomicU64 = AtomicU64::new(0);
    let n = BINDS.fetch_add(1, Ordering::Relaxed);
    let private = parent.join(format!(".tq-keys-bind-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&private);
    std::fs::DirBuilder::new().mode(0o700).create(&private)?;
    let bound = private.join("sock");
    let placed = UnixListener::bind(&bound).and_then(|listener| {
        std::fs::set_permissions(&bound, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&bound, path)?;
        Ok(listener)
    });
    let _ = std::fs::remove_dir(&private);
    Ok(UnixListenerStream::new(placed?))
}

pub(crate) fn server(handle: AgentHandle) -> LocalKeysServer<KeyService> {
    LocalKeysServer::new(KeyService(handle))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// §3: the key API's only access control is the socket's mode. It is 0600 from the moment
    /// it appears at its path, replaces a stale one, and leaves nothing else behind.
    #[tokio::test]
    async fn the_key_socket_appears_already_restricted_section_3() {
        let dir = std::env::temp_dir().join(format!("tq-keys-bind-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("run").join("keys.sock");
        let first = bind(&path).expect("bound");
        drop(first);
        let _listener = bind(&path).expect("bound over the stale socket");
        let mode = std::fs::metadata(&path).expect("socket").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
        tokio::net::UnixStream::connect(&path).await.expect("it accepts connections");
        let left: Vec<_> = std::fs::read_dir(path.parent().expect("parent"))
            .expect("listing")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("keys.sock")]);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    /// Agents sharing a process bind their sockets in one directory at the same time; each
    /// gets its own, and none fails on another's private directory.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sockets_bound_at_once_in_one_directory_all_appear() {
        let dir = std::env::temp_dir().join(format!("tq-keys-many-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let run = dir.join("run");
        for round in 0..20 {
            let binds: Vec<_> = (0..16)
                .map(|i| {
                    let path = run.join(format!("node-{round}-{i}.sock"));
                    tokio::task::spawn_blocking(move || bind(&path).map(drop))
                })
                .collect();
            for (i, b) in binds.into_iter().enumerate() {
                b.await.expect("a bind task").unwrap_or_else(|e| panic!("round {round}, {i}: {e}"));
            }
        }
        let left = std::fs::read_dir(&run).expect("listing").count();
        assert_eq!(left, 20 * 16, "one socket per bind and nothing else");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
