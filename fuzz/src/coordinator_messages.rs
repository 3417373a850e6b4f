//! `coordinator_messages`: the coordinator's state machine (DESIGN §6.1–§6.4, §6.8, §6.10,
//! §6.11) fed operator commands, enrollments, ticks, restarts from its durable ledger, and
//! node answers: honest ones from a model of each node, dropped, duplicated or corrupted
//! ones, and forged ones.
//!
//! Checked on every output, in order: an epoch is reserved durably before it is dealt and
//! never reused (§6.1); every Prepare goes to a member that was not removed (I8), carries
//! that member's share, which lies on the committed polynomial, and a configuration whose
//! prior secrets open to exactly the history carried forward (§5, §6.2, §6.10); a commit
//! decision is durable before any Commit or PrepareAndCommit (§6.4), is made only on a
//! prepared configuration, at most once per epoch (I2), above the latest commit, and with
//! K + Z matching acks (K for the operator) that were really delivered (I4); GetShare goes
//! only to members of the latest committed epoch. After every step: the ledger in memory
//! equals the one replayed from `Persist` outputs, passes its check and restores (§7); the
//! highest epoch and the latest commit never go down; the status version moves whenever
//! the status does (§8).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rand_core::SeedableRng;
use tq_protocol::coordinator::status::ClusterStatus;
use tq_protocol::coordinator::tracker::StaleReason;
use tq_protocol::coordinator::{
    CommitPolicy, Coordinator, CoordinatorOptions, CoordinatorOutput, Ledger, LedgerChange,
    ReconfigureRequest,
};
use tq_protocol::crypto::legacy::{self, LegacyPackage, LegacyShare};
use tq_protocol::crypto::prior::{SecretHistory, open};
use tq_protocol::crypto::sharing::{check_secret, combine, verify_share};
use tq_protocol::{
    Configuration, Digest, Entropy, Epoch, NodeError, NodeId, NodeStatusReport, Request,
    RequestKind, Response, Secret, Share, ShareIndex, Threshold, ThresholdPolicy, Time,
};

mod checks;
mod dishonest;

use self::dishonest::corrupt;

use crate::dealt::{CLUSTER, id};
use crate::input::{Input, REQUEST_KINDS, script};

/// Every node a step may name; n0..n4 hold legacy shares.
const NODES: [&str; 8] = ["n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7"];
/// Steps per input.
const MAX_STEPS: usize = 64;
/// Undelivered requests kept (the oldest are lost, as on a real network).
const MAX_PENDING: usize = 64;

struct World {
    /// Two legacy splits of different secrets among n0..n4 (K = 3): the coordinator must
    /// rebuild whichever one the first package it accepts belongs to.
    legacy: [(Secret, BTreeMap<NodeId, LegacyPackage>); 2],
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let ids: Vec<NodeId> = NODES[..5].iter().map(|n| id(n)).collect();
        let k = Threshold::new(3, ids.len()).unwrap_or_else(|e| panic!("{e}"));
        let split = |seed: u8| {
            let secret = Secret::from_bytes(&mut [seed; 32]);
            let mut rng = rand_chacha::ChaCha20Rng::from_seed([seed; 32]);
            let packages = legacy::split(&secret, k, &ids, &mut rng);
            (secret, packages)
        };
        World { legacy: [split(0x42), split(0x43)] }
    })
}

/// One step, as encoded in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// A node agent (re)starts and enrolls (summary: 0 wiped, 1 its state, 2 expunged).
    Enroll {
        /// Which node.
        node: u8,
        /// Which of two addresses.
        address: u8,
        /// What it reports.
        summary: u8,
    },
    /// The operator asks for a new configuration.
    Reconfigure {
        /// A bit per node in [`NODES`].
        members: u8,
        /// K.
        threshold: u8,
        /// The previous epoch claimed: 0 the real one, 1 none, else some other.
        previous: u8,
        /// Seeds the dealing.
        entropy: u8,
    },
    /// The operator asks for the upgrade from the legacy split.
    Upgrade {
        /// A bit per node in [`NODES`].
        members: u8,
        /// K.
        threshold: u8,
        /// Seeds the dealing.
        entropy: u8,
    },
    /// The operator aborts.
    Abort,
    /// The operator commits.
    Commit,
    /// Time passes (in units of 8 ms).
    Tick(u16),
    /// The coordinator restarts from its durable ledger.
    Restart,
    /// One pending request reaches its node (mode: 0 answered honestly, 1 lost,
    /// 2 answered twice, 3 answered with a corrupted copy).
    Deliver {
        /// Which pending request.
        pick: u8,
        /// What happens to it.
        mode: u8,
    },
    /// Every pending request is answered honestly, oldest first.
    DeliverAll,
    /// A node sends an answer nobody asked for (kind: see `Harness::forged`).
    Forge {
        /// Which node.
        node: u8,
        /// Which answer.
        kind: u8,
        /// Its parameters.
        args: [u8; 2],
    },
}

impl Op {
    const COUNT: u8 = 10;

    /// Reads one step.
    pub fn decode(input: &mut Input<'_>) -> Op {
        match input.byte() % Self::COUNT {
            0 => Op::Enroll { node: input.byte(), address: input.byte(), summary: input.byte() },
            1 => Op::Reconfigure {
                members: input.byte(),
                threshold: input.byte(),
                previous: input.byte(),
                entropy: input.byte(),
            },
            2 => Op::Upgrade {
                members: input.byte(),
                threshold: input.byte(),
                entropy: input.byte(),
            },
            3 => Op::Abort,
            4 => Op::Commit,
            5 => Op::Tick(input.u16()),
            6 => Op::Restart,
            7 => Op::Deliver { pick: input.byte(), mode: input.byte() },
            8 => Op::DeliverAll,
            _ => Op::Forge { node: input.byte(), kind: input.byte(), args: input.array() },
        }
    }

    /// Writes one step the way [`Op::decode`] reads it.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match *self {
            Op::Enroll { node, address, summary } => out.extend([0, node, address, summary]),
            Op::Reconfigure { members, threshold, previous, entropy } => {
                out.extend([1, members, threshold, previous, entropy])
            }
            Op::Upgrade { members, threshold, entropy } => {
                out.extend([2, members, threshold, entropy])
            }
            Op::Abort => out.push(3),
            Op::Commit => out.push(4),
            Op::Tick(units) => {
                out.push(5);
                out.extend(units.to_be_bytes());
            }
            Op::Restart => out.push(6),
            Op::Deliver { pick, mode } => out.extend([7, pick, mode]),
            Op::DeliverAll => out.push(8),
            Op::Forge { node, kind, args } => out.extend([9, node, kind, args[0], args[1]]),
        }
    }
}

/// Runs one input: a first byte (bit 0: manual commit policy, bit 1: permissive threshold
/// policy), then steps.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.byte();
    let options = CoordinatorOptions {
        commit_policy: if flags & 1 == 1 { CommitPolicy::Manual } else { CommitPolicy::Auto },
        threshold_policy: if flags & 2 == 2 {
            ThresholdPolicy::Permissive
        } else {
            ThresholdPolicy::Majority
        },
        ..CoordinatorOptions::default()
    };
    let mut h = Harness::new(world(), options);
    for _ in 0..MAX_STEPS {
        if input.is_empty() {
            break;
        }
        h.step(Op::decode(&mut input));
    }
}

/// An honest node as the coordinator sees it: what it was sent and what it did.
#[derive(Debug, Default)]
struct Model {
    held: BTreeMap<Epoch, (Arc<Configuration>, Share)>,
    committed: Option<Arc<Configuration>>,
    expunged: Option<Epoch>,
    legacy: Option<LegacyPackage>,
}

impl Model {
    fn report(&self, node: &NodeId) -> NodeStatusReport {
        NodeStatusReport {
            node_id: node.clone(),
            committed: self.committed.as_ref().map(|c| (c.epoch(), c.digest())),
            prepared: self.held.last_key_value().map(|(e, (c, _))| (*e, c.digest())),
            expunged: self.expunged,
            unlocked: None,
            has_legacy_share: self.legacy.is_some(),
            alarms: 0,
        }
    }

    fn commit(&mut self, e: Epoch) {
        if let Some((config, _)) = self.held.get(&e) {
            self.committed = Some(config.clone());
            self.held = self.held.split_off(&e);
            self.legacy = None;
        }
    }
}

/// One dealt epoch as seen in the Prepares, and what it must carry.
#[derive(Debug)]
struct Dealing {
    config: Arc<Configuration>,
    shares: BTreeMap<NodeId, Share>,
    /// The secrets its prior secrets must open to (checked once every share was seen);
    /// `None` for a legacy upgrade, whose one prior secret is either legacy split's.
    expected_prior: Option<SecretHistory>,
    /// Every secret up to and including this epoch's, once checked.
    history: Option<SecretHistory>,
}

struct Harness {
    w: &'static World,
    options: CoordinatorOptions,
    coord: Coordinator,
    /// What the driver made durable, replayed from the `Persist` outputs in order.
    durable: Ledger,
    now: Time,
    models: BTreeMap<NodeId, Model>,
    pending: VecDeque<(NodeId, Request)>,
    dealings: BTreeMap<Epoch, Dealing>,
    /// Matching acks really delivered, by epoch.
    acks: BTreeMap<Epoch, BTreeSet<NodeId>>,
    /// The last status seen, and whether a restart happened since (versions restart).
    last_status: Option<ClusterStatus>,
}

impl Harness {
    fn new(w: &'static World, options: CoordinatorOptions) -> Self {
        let (coord, outs) = Coordinator::restore(Time::ZERO, Ledger::new(CLUSTER), options.clone())
            .unwrap_or_else(|e| panic!("an empty ledger does not restore: {e}"));
        assert!(outs.is_empty(), "a new coordinator did something: {outs:?}");
        let models = NODES
            .iter()
            .map(|n| {
                let legacy = w.legacy[0].1.get(&id(n)).map(LegacyPackage::duplicate);
                (id(n), Model { legacy, ..Model::default() })
            })
            .collect();
        Harness {
            w,
            options,
            coord,
            durable: Ledger::new(CLUSTER),
            now: Time::ZERO,
            models,
            pending: VecDeque::new(),
            dealings: BTreeMap::new(),
            acks: BTreeMap::new(),
            last_status: None,
        }
    }

    fn step(&mut self, op: Op) {
        let before = (self.durable.highest_epoch, self.durable.latest_committed());
        let committed_before = self.durable.committed.clone();
        match op {
            Op::Enroll { node, address, summary } => self.enroll(node, address, summary),
            Op::Reconfigure { members, threshold, previous, entropy } => {
                let previous_epoch = match previous % 3 {
                    0 => self.durable.latest_committed(),
                    1 => None,
                    _ => Some(epoch(u64::from(previous / 3) + 1)),
                };
                let req = ReconfigureRequest {
                    members: members_of(members),
                    threshold: usize::from(threshold % 9),
                    previous_epoch,
                    entropy: Entropy::from_bytes(&mut [entropy; 32]),
                };
                if let Ok(outs) = self.coord.reconfigure(self.now, req) {
                    self.carry_out(outs);
                }
            }
            Op::Upgrade { members, threshold, entropy } => {
                let entropy = Entropy::from_bytes(&mut [entropy; 32]);
                let members = members_of(members);
                let threshold = usize::from(threshold % 9);
                if let Ok(outs) =
                    self.coord.upgrade_from_legacy(self.now, &members, threshold, entropy)
                {
                    self.carry_out(outs);
                }
            }
            Op::Abort => {
                if let Ok(outs) = self.coord.abort() {
                    self.carry_out(outs);
                }
            }
            Op::Commit => {
                if let Ok(outs) = self.coord.commit(self.now) {
                    self.carry_out(outs);
                }
            }
            Op::Tick(units) => {
                self.now = self.now + Duration::from_millis(u64::from(units) * 8);
                let outs = self.coord.tick(self.now);
                self.carry_out(outs);
            }
            Op::Restart => {
                let (coord, outs) =
                    Coordinator::restore(self.now, self.durable.clone(), self.options.clone())
                        .unwrap_or_else(|e| panic!("the durable ledger does not restore: {e}"));
                self.coord = coord;
                self.last_status = None;
                self.carry_out(outs);
            }
            Op::Deliver { pick, mode } => {
                if !self.pending.is_empty() {
                    let i = usize::from(pick) % self.pending.len();
                    if let Some((to, request)) = self.pending.remove(i) {
                        self.deliver(&to, request, mode, pick);
                    }
                }
            }
            Op::DeliverAll => {
                for _ in 0..MAX_PENDING {
                    let Some((to, request)) = self.pending.pop_front() else { break };
                    self.deliver(&to, request, 0, 0);
                }
            }
            Op::Forge { node, kind, args } => {
                let from = id(NODES[usize::from(node) % NODES.len()]);
                if let Some(response) = self.forged(&from, kind, args) {
                    self.respond(&from, response);
                }
            }
        }
        self.check_ledger(before, &committed_before);
        self.check_status();
    }

    fn enroll(&mut self, node: u8, address: u8, summary: u8) {
        let node = id(NODES[usize::from(node) % NODES.len()]);
        let address = format!("{node}:{}", 1 + address % 2);
        let model = self.models.entry(node.clone()).or_default();
        let report = match summary % 3 {
            0 => {
                // Wiped: everything it held is gone.
                *model = Model::default();
                model.report(&node)
            }
            1 => model.report(&node),
            _ => {
                let e = self.durable.latest_committed().unwrap_or(Epoch::FIRST);
                model.expunged = Some(e);
                model.report(&node)
            }
        };
        let outs = self.coord.enroll(self.now, address, report);
        self.carry_out(outs);
    }

    fn deliver(&mut self, to: &NodeId, request: Request, mode: u8, arg: u8) {
        match mode % 4 {
            1 => {}
            2 => {
                let r = self.honest(to, request);
                let copy = r.duplicate();
                self.respond(to, r);
                self.respond(to, copy);
            }
            3 => {
                let r = self.honest(to, request);
                let r = corrupt(r, arg);
                self.respond(to, r);
            }
            _ => {
                let r = self.honest(to, request);
                self.respond(to, r);
            }
        }
    }

    /// Hands `r` to the coordinator as `from`'s answer, noting acks that count (I4).
    fn respond(&mut self, from: &NodeId, r: Response) {
        let matching = |e: Epoch, d: Digest| {
            self.dealings
                .get(&e)
                .is_some_and(|x| x.config.digest() == d && x.config.is_member(from))
        };
        let acked = match &r {
            Response::PrepareAck { epoch, digest } => Some((*epoch, *digest)),
            Response::Status(report) => report.prepared,
            _ => None,
        };
        if let Some((e, _)) = acked.filter(|(e, d)| matching(*e, *d)) {
            self.acks.entry(e).or_default().insert(from.clone());
        }
        let outs = self.coord.handle_response(self.now, from, self.now, r);
        self.carry_out(outs);
    }

    /// What an honest node answers.
    fn honest(&mut self, to: &NodeId, request: Request) -> Response {
        let kind = request.kind();
        let asked = request.epoch();
        let refuse = |error| Response::Error { request: kind, epoch: asked, error };
        let sent_share =
            |e: Epoch| self.dealings.get(&e).and_then(|d| d.shares.get(to)).map(Share::duplicate);
        let caught_up = match &request {
            Request::PrepareAndCommit { config } => {
                sent_share(config.epoch()).map(|s| (config.clone(), s))
            }
            _ => None,
        };
        let m = self.models.entry(to.clone()).or_default();
        let committed = m.committed.as_ref().map(|c| c.epoch());
        if let Some(e) = m.expunged.filter(|_| kind != RequestKind::Status) {
            return refuse(NodeError::Expunged(e));
        }
        match request {
            Request::Prepare { config, share } => {
                let e = config.epoch();
                match committed.filter(|c| e <= *c) {
                    Some(c) => refuse(NodeError::StaleEpoch { epoch: e, committed: c }),
                    None => {
                        let digest = config.digest();
                        m.held.entry(e).or_insert((config, share));
                        Response::PrepareAck { epoch: e, digest }
                    }
                }
            }
            Request::Commit { epoch: e, digest } => {
                let held = m.held.get(&e).map(|(c, _)| c.digest());
                if held == Some(digest) {
                    m.commit(e);
                    Response::CommitAck { epoch: e }
                } else {
                    refuse(NodeError::NotPrepared(e))
                }
            }
            Request::PrepareAndCommit { config } => {
                let e = config.epoch();
                if m.held.get(&e).is_some_and(|(c, _)| c.digest() == config.digest()) {
                    m.commit(e);
                    return Response::CommitAck { epoch: e };
                }
                // Catching up from peers' shares: the share it rebuilds is the one dealt.
                match caught_up {
                    Some((config, share)) => {
                        m.held.insert(e, (config, share));
                        m.commit(e);
                        Response::CatchingUp { epoch: e }
                    }
                    None => refuse(NodeError::NoShare(e)),
                }
            }
            Request::GetShare { epoch: e, .. } => match (&m.committed, m.held.get(&e)) {
                (Some(c), _) if c.epoch() > e => Response::CommitAdvance { config: c.clone() },
                (_, Some((config, share))) => {
                    Response::Share { epoch: e, digest: config.digest(), share: share.duplicate() }
                }
                _ => refuse(NodeError::NoShare(e)),
            },
            Request::GetLegacyShare => match &m.legacy {
                Some(p) => Response::LegacyShare(p.duplicate()),
                None => refuse(NodeError::NoLegacyShare),
            },
            Request::Status => Response::Status(m.report(to)),
        }
    }

    /// A legacy package: `from`'s own, another member's, the other split's, or one whose
    /// threshold disagrees.
    fn legacy_package(&self, from: &NodeId, b: u8) -> LegacyPackage {
        let split = &self.w.legacy[usize::from(b & 1)].1;
        let owner = if b & 2 == 0 { from.clone() } else { id(NODES[usize::from(b >> 2) % 5]) };
        let pkg = split.get(&owner).or_else(|| split.values().next());
        let mut pkg =
            pkg.map(LegacyPackage::duplicate).unwrap_or_else(|| panic!("legacy split is empty"));
        if b & 0x80 != 0 {
            pkg.threshold = Threshold::new(2, pkg.digests.len()).unwrap_or(pkg.threshold);
        }
        pkg
    }

    /// An epoch: the latest reserved, the latest committed, the next, a small one, the last.
    fn epoch(&self, b: u8) -> Epoch {
        let highest = self.durable.highest_epoch.unwrap_or(Epoch::FIRST);
        match b % 5 {
            0 => highest,
            1 => self.durable.latest_committed().unwrap_or(Epoch::FIRST),
            2 => highest.next().unwrap_or(highest),
            3 => epoch(u64::from(b / 5 % 8) + 1),
            _ => epoch(u64::MAX),
        }
    }

    /// A digest for `e`: the dealt one, the committed one, or garbage.
    fn digest(&self, b: u8, e: Epoch) -> Digest {
        match b % 3 {
            0 => self.dealings.get(&e).map_or(Digest([0; 32]), |d| d.config.digest()),
            1 => self.durable.committed.get(&e).copied().unwrap_or(Digest([1; 32])),
            _ => Digest([b; 32]),
        }
    }

    /// Carries out outputs in order, checking each against what is durable at that point.
    fn carry_out(&mut self, outs: Vec<CoordinatorOutput>) {
        for o in outs {
            match o {
                CoordinatorOutput::Persist(change) => {
                    self.check_change(&change);
                    self.durable.apply(&change);
                }
                CoordinatorOutput::Send { to, request } => {
                    self.check_send(&to, &request);
                    if self.pending.len() == MAX_PENDING {
                        self.pending.pop_front();
                    }
                    self.pending.push_back((to, request));
                }
            }
        }
        self.check_dealings();
    }
}

fn members_of(mask: u8) -> BTreeSet<NodeId> {
    NODES.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, n)| id(n)).collect()
}

fn epoch(n: u64) -> Epoch {
    Epoch::new(n).unwrap_or_else(|e| panic!("{e}"))
}

/// Hand-made inputs that walk the coordinator's main paths, for the seed corpus.
pub fn seeds() -> Vec<Vec<u8>> {
    let enroll_all = |ops: &mut Vec<Op>| {
        (0..6).for_each(|n| ops.push(Op::Enroll { node: n, address: 0, summary: 1 }))
    };
    let five = 0b1_1111;
    let reconfigure =
        |members, threshold, entropy| Op::Reconfigure { members, threshold, previous: 0, entropy };
    let mut scenarios: Vec<(u8, Vec<Op>)> = Vec::new();
    // Initial configuration, committed, then a reconfiguration to n1..n5 committed.
    let mut ops = Vec::new();
    enroll_all(&mut ops);
    ops.extend([
        reconfigure(five, 3, 1),
        Op::DeliverAll,
        Op::DeliverAll,
        reconfigure(0b11_1110, 3, 2),
        Op::DeliverAll,
        Op::DeliverAll,
        Op::DeliverAll,
        Op::Tick(300),
        Op::DeliverAll,
    ]);
    scenarios.push((0, ops));
    // Legacy upgrade, with a lost and a duplicated answer, then restart mid-way.
    let mut ops = Vec::new();
    enroll_all(&mut ops);
    ops.extend([
        Op::Upgrade { members: five, threshold: 3, entropy: 3 },
        Op::Deliver { pick: 0, mode: 1 },
        Op::Deliver { pick: 0, mode: 2 },
        Op::DeliverAll,
        Op::DeliverAll,
        Op::Restart,
        Op::Tick(1000),
        Op::DeliverAll,
    ]);
    scenarios.push((0, ops));
    // Manual commit policy: operator commits after K acks; a corrupted ack; an abort.
    let mut ops = Vec::new();
    enroll_all(&mut ops);
    ops.extend([
        reconfigure(five, 3, 4),
        Op::Deliver { pick: 0, mode: 3 },
        Op::DeliverAll,
        Op::Commit,
        Op::DeliverAll,
        reconfigure(0b1_0111, 3, 5),
        Op::Abort,
        Op::Tick(5000),
    ]);
    scenarios.push((1, ops));
    // Forged answers: a mismatched ack, an unknown commit, a bad share, legacy packages.
    let mut ops = Vec::new();
    enroll_all(&mut ops);
    ops.extend([
        reconfigure(five, 3, 6),
        Op::Forge { node: 1, kind: 0, args: [0, 2] },
        Op::Forge { node: 2, kind: 7, args: [3, 2] },
        Op::DeliverAll,
        Op::DeliverAll,
        reconfigure(five, 3, 7),
        Op::Forge { node: 0, kind: 3, args: [1, 0x81] },
        Op::Forge { node: 3, kind: 6, args: [0, 3] },
        Op::DeliverAll,
        Op::Tick(40000),
        Op::Tick(40000),
    ]);
    scenarios.push((2, ops));
    scenarios.iter().map(|(flags, ops)| script(*flags, ops, Op::encode)).collect()
}
