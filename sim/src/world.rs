//! The simulated cluster: one coordinator and its ledger disk, nodes and their disks, and the
//! network. [`World::apply`] carries out one [`Event`] against the real state machines and
//! checks the invariants as outputs are carried out.

use std::collections::BTreeMap;
use std::time::Duration;

use rand_core::SeedableRng;
use tq_protocol::coordinator::status::MemberState;
use tq_protocol::coordinator::{
    CommitPolicy, Coordinator, CoordinatorOptions, CoordinatorOutput, Ledger, LedgerChange,
    ReconfigureRequest, StaleOptions,
};
use tq_protocol::crypto::legacy;
use tq_protocol::node::{Node, NodeChange, NodeOptions, NodeOutput, NodeState};
use tq_protocol::{
    ClusterId, Entropy, Epoch, NodeId, Peer, Request, Response, Secret, Threshold, Time,
};

use crate::bugs::Bug;
use crate::checker::Checker;
use crate::event::{CaseSetup, Event, LegacyDamage};
use crate::legacy_damage;
use crate::network::{Endpoint, Msg, Network, Payload};
use crate::tamper::Tampering;

pub(crate) const CLUSTER: ClusterId = ClusterId::from_bytes(*b"tq-simulation-01");

/// One node: its process (if running) and its disk.
pub(crate) struct SimNode {
    pub(crate) node: Option<Node>,
    pub(crate) disk: NodeState,
}

/// A whole simulated cluster.
pub(crate) struct World {
    pub(crate) setup: CaseSetup,
    pub(crate) now: Time,
    pub(crate) coord: Option<Coordinator>,
    pub(crate) ledger_disk: Ledger,
    pub(crate) nodes: BTreeMap<NodeId, SimNode>,
    pub(crate) net: Network,
    pub(crate) check: Checker,
    pub(crate) bug: Option<Bug>,
    /// What happened, by kind (commit decisions, aborts, catch-ups, expunges, unlocks).
    pub(crate) outcomes: BTreeMap<&'static str, u64>,
    /// Lines describing what the current event changed (for replay), when tracing.
    pub(crate) trace: Option<Vec<String>>,
    /// How many times each process has started.
    incarnations: BTreeMap<Endpoint, u64>,
    /// Agents that started and have not enrolled yet (they retry until the coordinator is up).
    to_enroll: std::collections::BTreeSet<NodeId>,
    /// Changes a buggy driver acked before writing (`ack-before-persist`).
    deferred: Vec<(NodeId, NodeChange)>,
    tampering: Tampering,
}

pub(crate) fn coordinator_options(manual: bool) -> CoordinatorOptions {
    CoordinatorOptions {
        commit_policy: if manual { CommitPolicy::Manual } else { CommitPolicy::Auto },
        prepare_timeout: Duration::from_secs(20),
        retry_interval: Duration::from_secs(1),
        poll_interval: Duration::from_secs(2),
        stale: StaleOptions {
            stale_after: Duration::from_secs(5),
            lag_grace: Duration::from_secs(10),
        },
        ..CoordinatorOptions::default()
    }
}

fn node_options() -> NodeOptions {
    // A re-key delay of a few ticks, so deferred re-keys meet crashes, commits and locks.
    NodeOptions { retry_interval: Duration::from_secs(1), rekey_delay: Duration::from_millis(700) }
}

pub(crate) fn node_id(s: &str) -> NodeId {
    // Ids come from our own generator or a log we wrote; a bad one is a corrupt log.
    NodeId::new(s).unwrap_or_else(|e| panic!("bad node id {s:?} in the event log: {e}"))
}

impl World {
    pub(crate) fn new(setup: CaseSetup) -> World {
        let bug = setup.bug.as_deref().map(|b| Bug::parse(b).unwrap_or_else(|e| panic!("{e}")));
        let ids: Vec<NodeId> = setup.nodes.iter().map(|s| node_id(s)).collect();
        let mut check = Checker::new(!setup.faulty_coordinator);
        let mut disks: BTreeMap<NodeId, NodeState> =
            ids.iter().map(|id| (id.clone(), NodeState::default())).collect();
        if let Some(k) = setup.legacy_threshold {
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(setup.seed ^ setup.case ^ 0x1e6a);
            let mut bytes = [0u8; 32];
            rand_core::Rng::fill_bytes(&mut rng, &mut bytes);
            let secret = Secret::from_bytes(&mut bytes);
            let threshold =
                Threshold::new(k, ids.len()).unwrap_or_else(|e| panic!("legacy setup: {e}"));
            let mut packages = legacy::split(&secret, threshold, &ids, &mut rng);
            let damage: BTreeMap<NodeId, LegacyDamage> =
                setup.legacy_damage.iter().map(|(id, how)| (node_id(id), *how)).collect();
            if !damage.is_empty() {
                legacy_damage::apply(&mut packages, &damage, &mut rng);
                check.expect_legacy_damage(damage.into_keys().collect());
            }
            for (id, pkg) in packages {
                if let Some(d) = disks.get_mut(&id) {
                    d.legacy = Some(pkg);
                }
            }
            check.set_truth(Epoch::FIRST, secret);
        }
        let (coord, out) = Coordinator::restore(
            Time::ZERO,
            Ledger::new(CLUSTER),
            coordinator_options(setup.manual_commit),
        )
        .unwrap_or_else(|e| panic!("empty ledger: {e}"));
        debug_assert!(out.is_empty());
        let ledger_disk = Ledger::new(CLUSTER);
        let tampering = Tampering::new(setup.seed, setup.case);
        let mut w = World {
            setup,
            now: Time::ZERO,
            coord: None,
            ledger_disk,
            nodes: BTreeMap::new(),
            net: Network::default(),
            check,
            bug,
            outcomes: BTreeMap::new(),
            trace: None,
            incarnations: BTreeMap::new(),
            to_enroll: std::collections::BTreeSet::new(),
            deferred: Vec::new(),
            tampering,
        };
        w.install_coordinator(coord);
        for (id, disk) in disks {
            let node = w.start_node(&id, &disk);
            w.nodes.insert(id, SimNode { node, disk });
        }
        w.enroll_pending();
        w
    }

    /// Agents enroll when they start (§6.13), as soon as the coordinator answers.
    fn enroll_pending(&mut self) {
        if self.coord.is_none() {
            return;
        }
        for id in std::mem::take(&mut self.to_enroll) {
            let Some(summary) = self.nodes.get(&id).and_then(|n| n.node.as_ref()).map(Node::status)
            else {
                continue;
            };
            let now = self.now;
            if let Some(out) =
                self.coord.as_mut().map(|c| c.enroll(now, format!("{id}.sim:443"), summary))
            {
                self.run_coordinator(out);
            }
        }
    }

    fn incarnation(&self, e: &Endpoint) -> u64 {
        self.incarnations.get(e).copied().unwrap_or(0)
    }

    fn started(&mut self, e: Endpoint) {
        *self.incarnations.entry(e).or_insert(0) += 1;
    }

    fn install_coordinator(&mut self, mut c: Coordinator) {
        self.started(Endpoint::Coordinator);
        if let Some(b) = self.bug {
            b.arm_coordinator(&mut c);
        }
        self.coord = Some(c);
    }

    fn start_node(&mut self, id: &NodeId, disk: &NodeState) -> Option<Node> {
        match Node::restore(id.clone(), CLUSTER, disk.duplicate(), node_options()) {
            Ok(mut n) => {
                self.started(Endpoint::Node(id.clone()));
                self.to_enroll.insert(id.clone());
                if let Some(b) = self.bug {
                    b.arm_node(&mut n);
                }
                Some(n)
            }
            Err(e) => {
                self.check.violation(
                    "I5",
                    format!("{id} cannot restart: durable state fails its check: {e}"),
                );
                None
            }
        }
    }

    pub(crate) fn note(&mut self, line: impl FnOnce() -> String) {
        if let Some(t) = &mut self.trace {
            t.push(line());
        }
    }

    /// Carries out one event.
    pub(crate) fn apply(&mut self, ev: &Event) {
        self.check.begin_event();
        match ev {
            Event::Deliver { id } => self.deliver(*id),
            Event::Drop { id } => {
                self.net.in_flight.remove(id);
            }
            Event::Duplicate { id } => {
                if let Some(copy) = self.net.in_flight.get(id).map(Msg::duplicate) {
                    let new = self.net.send(copy);
                    self.note(|| format!("  message {id} duplicated as {new}"));
                }
            }
            Event::Partition { node } => {
                self.net.isolated.insert(node_id(node));
            }
            Event::Heal => self.net.isolated.clear(),
            Event::Tick { ms } => self.tick(*ms),
            Event::CrashNode { node } => self.crash_node(&node_id(node)),
            Event::RestartNode { node } => self.restart_node(&node_id(node)),
            Event::Wipe { node } => self.wipe(&node_id(node)),
            Event::CrashCoordinator => self.coord = None,
            Event::RestartCoordinator => self.restart_coordinator(),
            Event::Reconfigure { members, threshold, entropy } => {
                let req = ReconfigureRequest {
                    members: members.iter().map(|m| node_id(m)).collect(),
                    threshold: *threshold,
                    previous_epoch: self.ledger_disk.latest_committed(),
                    entropy: Entropy::from_bytes(&mut entropy.clone()),
                };
                let now = self.now;
                let res = self.coord.as_mut().map(|c| c.reconfigure(now, req));
                self.operator_result(res);
            }
            Event::LegacyUpgrade { members, threshold, entropy } => {
                let members = members.iter().map(|m| node_id(m)).collect();
                let e = Entropy::from_bytes(&mut entropy.clone());
                let now = self.now;
                let res = self
                    .coord
                    .as_mut()
                    .map(|c| c.upgrade_from_legacy(now, &members, *threshold, e));
                self.operator_result(res);
            }
            Event::Abort => {
                let res = self.coord.as_mut().map(|c| c.abort());
                self.operator_result(res);
            }
            Event::Commit => {
                let now = self.now;
                let res = self.coord.as_mut().map(|c| c.commit(now));
                self.operator_result(res);
            }
            Event::Unlock { node } => {
                let id = node_id(node);
                let now = self.now;
                if let Some(out) = self.node_mut(&id).map(|n| n.unlock(now)) {
                    self.run_node(&id, None, out);
                }
            }
            Event::Tamper { id, how } => {
                if let Some(msg) = self.net.in_flight.get_mut(id)
                    && let Some(what) = self.tampering.apply(msg, *how)
                {
                    self.note(|| format!("  tampered with message {id}: {what}"));
                }
            }
        }
        self.check
            .after_event(self.coord.as_ref(), self.nodes.values().filter_map(|n| n.node.as_ref()));
    }

    fn operator_result<E: std::fmt::Display>(
        &mut self,
        res: Option<Result<Vec<CoordinatorOutput>, E>>,
    ) {
        match res {
            None => self.note(|| "  coordinator is down".into()),
            Some(Err(e)) => self.note(|| format!("  refused: {e}")),
            Some(Ok(out)) => self.run_coordinator(out),
        }
    }

    pub(crate) fn node_mut(&mut self, id: &NodeId) -> Option<&mut Node> {
        self.nodes.get_mut(id).and_then(|n| n.node.as_mut())
    }

    fn tick(&mut self, ms: u64) {
        self.now = self.now + Duration::from_millis(ms);
        // A buggy driver's lazy writes land now, if the node is still alive.
        for (id, change) in std::mem::take(&mut self.deferred) {
            self.write_node_change(&id, change);
        }
        self.enroll_pending();
        let now = self.now;
        if let Some(out) = self.coord.as_mut().map(|c| c.tick(now)) {
            self.run_coordinator(out);
        }
        let ids: Vec<NodeId> = self.nodes.keys().cloned().collect();
        for id in ids {
            if let Some(out) = self.node_mut(&id).map(|n| n.tick(now)) {
                self.run_node(&id, None, out);
            }
        }
    }

    fn crash_node(&mut self, id: &NodeId) {
        if let Some(n) = self.nodes.get_mut(id) {
            n.node = None;
        }
        self.deferred.retain(|(who, _)| who != id);
    }

    /// Whether the operator may wipe `id`. Wiping a member would destroy a share: only nodes
    /// the cluster left out are wiped, and not one the attempt in flight names again, whose
    /// ack may already count toward that commit (status shows it as that attempt's member).
    pub(crate) fn wipeable(&self, id: &NodeId) -> bool {
        self.ledger_disk.is_removed(id)
            && !self.coord.as_ref().is_some_and(|c| {
                c.status(self.now)
                    .members
                    .iter()
                    .any(|m| m.node_id == *id && m.state != MemberState::Expunged)
            })
    }

    fn wipe(&mut self, id: &NodeId) {
        if !self.wipeable(id) {
            return self.note(|| format!("  {id} is not a removed node: not wiped"));
        }
        self.crash_node(id);
        let Some(n) = self.nodes.get_mut(id) else { return };
        n.disk = NodeState::default();
        self.check.on_wipe(id);
        self.restart_node(id);
    }

    fn restart_node(&mut self, id: &NodeId) {
        let Some(disk) =
            self.nodes.get(id).filter(|n| n.node.is_none()).map(|n| n.disk.duplicate())
        else {
            return;
        };
        let disk = match self.bug {
            Some(b) => b.on_restart(disk),
            None => disk,
        };
        let node = self.start_node(id, &disk);
        if let Some(n) = &node {
            self.check.on_restart(id, n.state());
        }
        if let Some(slot) = self.nodes.get_mut(id) {
            slot.node = node;
        }
    }

    fn restart_coordinator(&mut self) {
        if self.coord.is_some() {
            return;
        }
        let opts = coordinator_options(self.setup.manual_commit);
        match Coordinator::restore(self.now, self.ledger_disk.clone(), opts) {
            Ok((c, out)) => {
                self.install_coordinator(c);
                self.run_coordinator(out);
                self.enroll_pending();
            }
            Err(e) => self.check.violation(
                "I2",
                format!("coordinator cannot restart: ledger fails its check: {e}"),
            ),
        }
    }

    fn deliver(&mut self, id: u64) {
        let Some(msg) = self.net.in_flight.remove(&id) else { return };
        if self.net.blocked(&msg.from, &msg.to) {
            return self.note(|| format!("  message {id} lost to the partition"));
        }
        if msg.to_incarnation != self.incarnation(&msg.to) {
            return self
                .note(|| format!("  message {id} was sent to a process that has since restarted"));
        }
        let caller = (msg.from.clone(), msg.from_incarnation, msg.asked);
        let now = self.now;
        match (msg.to, msg.payload) {
            (Endpoint::Coordinator, Payload::Response(resp)) => {
                let Endpoint::Node(from) = msg.from else { return };
                if self.coord.is_none() {
                    return;
                }
                self.check.on_coordinator_receives(&from, &resp);
                if let Some(out) =
                    self.coord.as_mut().map(|c| c.handle_response(now, &from, msg.asked, resp))
                {
                    self.run_coordinator(out);
                }
            }
            (Endpoint::Node(to), Payload::Request(req)) => {
                let peer = match &msg.from {
                    Endpoint::Coordinator => Peer::Coordinator,
                    Endpoint::Node(n) => Peer::Node(n.clone()),
                };
                if let Some(out) = self.node_mut(&to).map(|n| n.handle_request(now, &peer, req)) {
                    self.run_node(&to, Some(caller), out);
                }
            }
            (Endpoint::Node(to), Payload::Response(resp)) => {
                let Endpoint::Node(from) = msg.from else { return };
                if let Some(out) = self.node_mut(&to).map(|n| n.handle_response(now, &from, resp)) {
                    self.run_node(&to, None, out);
                }
            }
            // Requests to the coordinator do not travel over this network.
            (Endpoint::Coordinator, Payload::Request(_)) => {}
        }
    }

    /// Carries out a coordinator's outputs in order.
    pub(crate) fn run_coordinator(&mut self, out: Vec<CoordinatorOutput>) {
        for o in out {
            match o {
                CoordinatorOutput::Persist(change) => {
                    self.note(|| format!("  C persists {change:?}"));
                    self.count(match &change {
                        LedgerChange::Committed { .. } => "commit_decisions",
                        LedgerChange::Aborted { .. } => "aborts",
                        LedgerChange::EpochReserved(_) => "epochs_started",
                        LedgerChange::NodeEnrolled { fresh: true, .. } => "fresh_enrollments",
                        LedgerChange::NodeEnrolled { .. } => "enrollments",
                    });
                    self.ledger_disk.apply(&change);
                    self.check_coordinator_persist(&change);
                }
                CoordinatorOutput::Send { to, request } => {
                    let expunged = self.nodes.get(&to).and_then(|n| n.disk.expunged);
                    self.check.on_coordinator_sends(&to, &request, expunged);
                    let payload = Payload::Request(request);
                    let from_incarnation = self.incarnation(&Endpoint::Coordinator);
                    let to = Endpoint::Node(to);
                    let to_incarnation = self.incarnation(&to);
                    let msg = Msg {
                        from: Endpoint::Coordinator,
                        to,
                        payload,
                        from_incarnation,
                        to_incarnation,
                        asked: self.now,
                    };
                    self.send(msg);
                }
            }
        }
    }

    /// Carries out a node's outputs in order. `caller` receives the reply.
    pub(crate) fn run_node(
        &mut self,
        id: &NodeId,
        caller: Option<(Endpoint, u64, Time)>,
        out: Vec<NodeOutput>,
    ) {
        let me = Endpoint::Node(id.clone());
        let inc = self.incarnation(&me);
        for o in out {
            match o {
                NodeOutput::Persist(change) => {
                    if self.bug == Some(Bug::AckBeforePersist) {
                        self.deferred.push((id.clone(), change));
                    } else {
                        self.write_node_change(id, change);
                    }
                }
                NodeOutput::Reply(resp) => {
                    let Some((to, to_inc, asked)) = caller.clone() else { continue };
                    if let Some(n) = self.nodes.get(id) {
                        self.check.on_node_replies(id, &to, &resp, &n.disk);
                    }
                    let payload = Payload::Response(resp);
                    let msg = Msg {
                        from: me.clone(),
                        to,
                        payload,
                        from_incarnation: inc,
                        to_incarnation: to_inc,
                        asked,
                    };
                    self.send(msg);
                }
                NodeOutput::Send { to, request } => {
                    let payload = Payload::Request(request);
                    let to = Endpoint::Node(to);
                    let to_incarnation = self.incarnation(&to);
                    let msg = Msg {
                        from: me.clone(),
                        to,
                        payload,
                        from_incarnation: inc,
                        to_incarnation,
                        asked: self.now,
                    };
                    self.send(msg);
                }
                NodeOutput::Unlocked { epoch } => {
                    self.count("unlocks");
                    self.note(|| format!("  {id} unlocked {epoch:?}"));
                    if let Some(u) =
                        self.nodes.get(id).and_then(|n| n.node.as_ref()).and_then(|n| n.unlocked())
                    {
                        self.check.on_unlocked(id, &u.secrets);
                    }
                }
            }
        }
    }

    fn write_node_change(&mut self, id: &NodeId, change: NodeChange) {
        if self.trace.is_some() {
            let line = format!("  {id} persists {change:?}");
            self.note(|| line);
        }
        self.count(match &change {
            NodeChange::Prepared { .. } => "node_prepares",
            NodeChange::Committed { .. } => "node_commits",
            NodeChange::CaughtUp { .. } => "node_catch_ups",
            NodeChange::Expunged { .. } => "node_expunges",
        });
        let Some(n) = self.nodes.get_mut(id) else { return };
        n.disk.apply(change.duplicate());
        self.check.on_node_persist(id, &change, &n.disk);
    }

    fn count(&mut self, what: &'static str) {
        *self.outcomes.entry(what).or_insert(0) += 1;
    }

    fn send(&mut self, msg: Msg) {
        let line = self
            .trace
            .is_some()
            .then(|| format!("{} -> {}: {}", msg.from, msg.to, summarize(&msg.payload)));
        let id = self.net.send(msg);
        if let Some(l) = line {
            self.note(|| format!("  [{id}] {l}"));
        }
    }

    fn check_coordinator_persist(&mut self, change: &LedgerChange) {
        if let LedgerChange::Committed { config, by_operator } = change {
            let disks: Vec<(&NodeId, &NodeState)> =
                self.nodes.iter().map(|(id, n)| (id, &n.disk)).collect();
            self.check.on_commit_decision(config, *by_operator, &disks);
        }
    }
}

/// One line about a message, without secrets.
pub(crate) fn summarize(p: &Payload) -> String {
    match p {
        Payload::Request(Request::Prepare { config, .. }) => format!("Prepare {config:?}"),
        Payload::Request(r) => {
            format!("{:?}{}", r.kind(), r.epoch().map(|e| format!(" {e:?}")).unwrap_or_default())
        }
        Payload::Response(Response::Share { epoch, share, .. }) => {
            format!("Share {epoch:?} x={}", share.index().get())
        }
        Payload::Response(Response::CommitAdvance { config }) => {
            format!("CommitAdvance {config:?}")
        }
        Payload::Response(Response::LegacyShare(p)) => {
            format!("LegacyShare x={}", p.share.expose()[0])
        }
        Payload::Response(Response::Status(s)) => {
            format!(
                "Status committed={:?} prepared={:?}",
                s.committed.map(|c| c.0),
                s.prepared.map(|c| c.0)
            )
        }
        Payload::Response(r) => format!("{r:?}"),
    }
}
