//! Bad-input checks: every bad input must leave its target's durable state byte-for-byte
//! unchanged, cause no panic, and leave the target answering status calls.

// Each test binary uses part of the harness.
#![allow(dead_code)]

use super::*;

/// Every file under a state directory, by relative path, with its bytes.
pub(crate) type Snapshot = BTreeMap<PathBuf, Vec<u8>>;

/// Reads every file under `dir` (recursively).
pub(crate) fn snapshot(dir: &Path) -> Snapshot {
    fn walk(root: &Path, dir: &Path, out: &mut Snapshot) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let bytes = std::fs::read(&path)
                    .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
                let rel = path.strip_prefix(root).expect("under the root").to_path_buf();
                out.insert(rel, bytes);
            }
        }
    }
    let mut out = Snapshot::new();
    walk(dir, dir, &mut out);
    out
}

/// A snapshot once the directory stopped changing (two reads 150 ms apart agree): address
/// book pushes after an enrollment, for one, land shortly after the cluster is up.
pub(crate) async fn settled_snapshot(dir: &Path) -> Snapshot {
    let start = Instant::now();
    let mut last = snapshot(dir);
    loop {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let now = snapshot(dir);
        if now == last {
            return now;
        }
        assert!(start.elapsed() < DEADLINE, "{} keeps changing", dir.display());
        last = now;
    }
}

/// Fails naming every file that differs (never printing their bytes: they hold shares).
pub(crate) fn assert_same_files(what: &str, before: &Snapshot, after: &Snapshot) {
    let mut diffs = Vec::new();
    for (path, bytes) in before {
        match after.get(path) {
            None => diffs.push(format!("{} removed", path.display())),
            Some(b) if b != bytes => diffs.push(format!(
                "{} changed ({} -> {} bytes)",
                path.display(),
                bytes.len(),
                b.len()
            )),
            Some(_) => {}
        }
    }
    for path in after.keys().filter(|p| !before.contains_key(*p)) {
        diffs.push(format!("{} added", path.display()));
    }
    assert!(diffs.is_empty(), "{what}: durable state changed: {diffs:?}");
}

static PANICS: AtomicUsize = AtomicUsize::new(0);
static PANIC_HOOK: std::sync::Once = std::sync::Once::new();

/// Counts panics anywhere in this test process (service tasks included: tokio catches them
/// at the task boundary, after the hook ran). The default hook still prints them.
pub(crate) fn watch_panics() {
    PANIC_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
}

/// Panics counted since [`watch_panics`].
pub(crate) fn panics() -> usize {
    PANICS.load(Ordering::SeqCst)
}

/// A service whose durable state a bad input must not touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// The coordinator and its ledger.
    Coordinator,
    /// An agent and its store.
    Agent(NodeId),
}

/// What [`Cluster::untouched`] recorded before the bad input.
#[must_use = "check it with Cluster::assert_untouched"]
pub(crate) struct Untouched {
    taken: Vec<(Target, PathBuf, Snapshot)>,
}

impl Cluster {
    /// The state directory of a target.
    pub(crate) fn state_dir(&self, t: &Target) -> PathBuf {
        match t {
            Target::Coordinator => self.coordinator_state.clone(),
            Target::Agent(n) => self.agent(n).state_dir.clone(),
        }
    }

    /// Waits until the targets' state directories are quiet and snapshots them.
    pub(crate) async fn untouched(&self, targets: &[Target]) -> Untouched {
        watch_panics();
        let mut taken = Vec::new();
        for t in targets {
            let dir = self.state_dir(t);
            taken.push((t.clone(), dir.clone(), settled_snapshot(&dir).await));
        }
        Untouched { taken }
    }

    /// After a bad input: every target's durable state is byte-for-byte what it was (read
    /// once it is quiet again, so a late write is caught too), every target still answers a
    /// status call, every service still runs, and nothing panicked.
    pub(crate) async fn assert_untouched(&self, u: Untouched) {
        for (t, dir, before) in &u.taken {
            let after = settled_snapshot(dir).await;
            assert_same_files(&format!("{t:?}"), before, &after);
        }
        for (t, _, _) in &u.taken {
            self.assert_answers(t).await;
        }
        self.assert_running();
        assert_eq!(panics(), 0, "something panicked (see the output above)");
    }

    /// The target answers a status call from the operator.
    pub(crate) async fn assert_answers(&self, t: &Target) {
        match t {
            Target::Coordinator => {
                let s = self.status().await;
                assert_eq!(s.cluster_id, self.id.to_string(), "{s:#?}");
            }
            Target::Agent(n) => {
                let st = self.node_status(n).await;
                assert_eq!(st.node_id, n.as_str(), "{st:#?}");
            }
        }
    }

    /// Agent `n`'s status, asked by the operator.
    pub(crate) async fn node_status(&self, n: &NodeId) -> pb::NodeStatus {
        let operator = self.tls(&self.certs.operator);
        self.node_client_as(&operator, n)
            .status(pb::NodeStatusRequest {})
            .await
            .unwrap_or_else(|e| panic!("agent {n} does not answer its status: {e:?}"))
            .into_inner()
    }

    /// Every service the harness started is still running (none stopped on an error).
    pub(crate) fn assert_running(&self) {
        for a in self.agents.values() {
            if let Some(r) = &a.running {
                assert!(!r.task.is_finished(), "agent {} stopped", a.id);
            }
        }
        if let Some(r) = &self.coordinator {
            assert!(!r.task.is_finished(), "the coordinator stopped");
        }
    }

    /// Agent `n`'s state directory.
    pub(crate) fn agent_state(&self, n: &NodeId) -> PathBuf {
        self.agent(n).state_dir.clone()
    }

    /// A channel to agent `n` authenticated with `tls` (for raw gRPC bytes).
    pub(crate) fn node_channel_as(&self, tls: &TlsMaterial, n: &NodeId) -> Channel {
        channel(tls, Peer::Node(n.clone()), &self.agent_addr(n).to_string(), &limits())
            .expect("a channel")
    }

    /// A channel to the coordinator authenticated with `tls` (for raw gRPC bytes).
    pub(crate) fn coordinator_channel_as(&self, tls: &TlsMaterial) -> Channel {
        channel(tls, Peer::Coordinator, &self.coordinator_addr().to_string(), &limits())
            .expect("a channel")
    }

    /// The coordinator's TLS material (its certificate is what may send Prepare and Commit).
    pub(crate) fn coordinator_tls(&self) -> TlsMaterial {
        self.tls(&self.certs.coordinator)
    }

    /// The operator's TLS material.
    pub(crate) fn operator_tls(&self) -> TlsMaterial {
        self.tls(&self.certs.operator)
    }

    /// A client of agent `n` that presents the coordinator's certificate.
    pub(crate) fn as_coordinator(
        &self,
        n: &NodeId,
    ) -> pb::node_agent_client::NodeAgentClient<Channel> {
        self.node_client_as(&self.coordinator_tls(), n)
    }

    /// Starts agent `n` with `config` and expects it to refuse; returns its error. Nothing
    /// is left running.
    pub(crate) async fn agent_refuses_to_start(
        &mut self,
        n: &NodeId,
        config: AgentConfig,
    ) -> String {
        match self.start_agent_with(n, config).await {
            Err(e) => e,
            Ok(()) => panic!("agent {n} started but should have refused"),
        }
    }
}

/// Asserts a node's typed refusal: the gRPC code and the `Refusal` in the details.
pub(crate) fn assert_refusal(e: &tonic::Status, code: Code, want: NodeError) {
    assert_eq!(e.code(), code, "{e:?}");
    assert_eq!(tq_wire::refusal::status_to_refusal(e), Some(want), "{e:?}");
}

/// Asserts an input refused before it reached the protocol: `InvalidArgument`, no refusal
/// details, and a message that says why.
pub(crate) fn assert_invalid_argument(e: &tonic::Status, says: &str) {
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert_eq!(tq_wire::refusal::status_to_refusal(e), None, "{e:?}");
    assert!(e.message().contains(says), "{e:?} should say {says:?}");
}
