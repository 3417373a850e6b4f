//! `node_messages`: one node's state machine (DESIGN §6.3–§6.9) fed a sequence of requests
//! from the coordinator, peers, operators and strangers, answers to its own requests, ticks,
//! unlocks, locks and restarts from what it persisted.
//!
//! Configurations and shares are picked from real dealings (some of them for another
//! cluster, a rival configuration for one epoch, an epoch that leaves this node out), then
//! possibly tampered with, so the fuzzer reaches prepare, commit, catch-up, unlock and
//! expunge rather than stopping at a digest check.
//!
//! Checked on every step: no panic; exactly one reply per request, never before a `Persist`
//! (I3); only dealt configurations and this node's own true share are persisted, and the
//! configuration survives its canonical encoding; a PrepareAck is for an epoch above the
//! committed one and is already durable (I3, I5); a CommitAck is durable; a share goes only
//! to the coordinator or a member of its epoch (§6.6); peers are asked only for epochs they
//! are members of; unlocked secrets are exactly the dealt history (I6); the state in memory
//! equals what was persisted, restores, and passes its own check (§7); the committed epoch
//! never goes down (I5) and an expunged node stays expunged and refuses everything but
//! Status (§6.9).

use std::sync::{Arc, OnceLock};

use rand_core::SeedableRng;
use tq_protocol::crypto::legacy::{self, LegacyPackage};
use tq_protocol::node::{Node, NodeChange, NodeOptions, NodeOutput, NodeState};
use tq_protocol::{
    Configuration, Digest, Epoch, NodeError, NodeId, Peer, Request, RequestKind, Response, Secret,
    Share, ShareIndex, Threshold, Time,
};

use crate::dealt::{CLUSTER, Dealt, OTHER_CLUSTER, id};
use crate::input::{Input, script};

/// The node under test.
const ME: &str = "n2";
/// Everyone a message may come from; `n6` is in no configuration.
const PEERS: [&str; 7] = ["n0", "n1", "n2", "n3", "n4", "n5", "n6"];
/// Steps per input: enough for every protocol path, few enough to keep runs fast.
const MAX_STEPS: usize = 64;

struct World {
    /// Indexed by the inputs' choices; see `world()` for what each one is.
    dealt: Vec<Dealt>,
    legacy: LegacyPackage,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let five = ["n0", "n1", "n2", "n3", "n4"];
        let e1 = Dealt::new(CLUSTER, 1, None, &five, 3, 1);
        let e2 = Dealt::new(CLUSTER, 2, Some(&e1), &["n1", "n2", "n3", "n4", "n5"], 3, 2);
        // A rival configuration for epoch 2: the node must never mix the two.
        let e2_rival = Dealt::new(CLUSTER, 2, Some(&e1), &five, 3, 3);
        // Leaves ME out: committing it elsewhere expunges ME (§6.9).
        let e3 = Dealt::new(CLUSTER, 3, Some(&e2), &["n0", "n1", "n3", "n4", "n5"], 3, 4);
        let e4 = Dealt::new(CLUSTER, 4, Some(&e3), &["n0", "n1", "n2", "n3", "n4", "n5"], 4, 5);
        let e6 = Dealt::new(CLUSTER, 6, Some(&e4), &["n2", "n3", "n4"], 2, 6);
        let e_max = Dealt::new(CLUSTER, u64::MAX, Some(&e6), &["n1", "n2", "n3", "n4", "n5"], 3, 7);
        let foreign = Dealt::new(OTHER_CLUSTER, 5, None, &five, 3, 8);
        let mut rng = rand_chacha::ChaCha20Rng::from_seed([9; 32]);
        let ids: Vec<NodeId> = five.iter().map(|n| id(n)).collect();
        let k = Threshold::new(3, ids.len()).unwrap_or_else(|e| panic!("{e}"));
        let mut packages = legacy::split(&Secret::from_bytes(&mut [0x42; 32]), k, &ids, &mut rng);
        let legacy = packages.remove(&id(ME)).unwrap_or_else(|| panic!("{ME} has no package"));
        World { dealt: vec![e1, e2, e2_rival, e3, e4, e6, e_max, foreign], legacy }
    })
}

/// One step, as encoded in the input. Parameters are raw bytes; `Harness` gives them
/// meaning, so every byte string decodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// A request from `from` (kind: 0 Prepare, 1 Commit, 2 PrepareAndCommit, 3 GetShare,
    /// 4 GetLegacyShare, 5 Status).
    Request {
        /// Who sends it.
        from: u8,
        /// Which request.
        kind: u8,
        /// Its parameters.
        args: [u8; 4],
    },
    /// An answer from peer `from` to one of the node's GetShares (kind: 0 Share,
    /// 1 CommitAdvance, 2 Expunged, 3 a refusal).
    Response {
        /// Who answers.
        from: u8,
        /// Which answer.
        kind: u8,
        /// Its parameters.
        args: [u8; 4],
    },
    /// Time passes (in units of 8 ms, so retries and long pauses are both reachable).
    Tick(u16),
    /// The operator asks for the secrets.
    Unlock,
    /// The operator drops them.
    Lock,
    /// The agent restarts from what it persisted.
    Restart,
}

impl Op {
    const COUNT: u8 = 6;

    /// Reads one step.
    pub fn decode(input: &mut Input<'_>) -> Op {
        match input.byte() % Self::COUNT {
            0 => Op::Request { from: input.byte(), kind: input.byte(), args: input.array() },
            1 => Op::Response { from: input.byte(), kind: input.byte(), args: input.array() },
            2 => Op::Tick(input.u16()),
            3 => Op::Unlock,
            4 => Op::Lock,
            _ => Op::Restart,
        }
    }

    /// Writes one step the way [`Op::decode`] reads it.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Op::Request { from, kind, args } => {
                out.extend([0, *from, *kind]);
                out.extend(args);
            }
            Op::Response { from, kind, args } => {
                out.extend([1, *from, *kind]);
                out.extend(args);
            }
            Op::Tick(ms) => {
                out.push(2);
                out.extend(ms.to_be_bytes());
            }
            Op::Unlock => out.push(3),
            Op::Lock => out.push(4),
            Op::Restart => out.push(5),
        }
    }
}

/// Runs one input: a first byte (bit 0: the node starts with a legacy share package), then
/// steps.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let with_legacy = input.byte() & 1 == 1;
    let mut h = Harness::new(world(), with_legacy);
    for _ in 0..MAX_STEPS {
        if input.is_empty() {
            break;
        }
        h.step(Op::decode(&mut input));
    }
    h.node.state().check(&h.me, &CLUSTER).unwrap_or_else(|e| panic!("state fails its check: {e}"));
}

struct Harness {
    w: &'static World,
    me: NodeId,
    node: Node,
    /// What the driver made durable, replayed from the `Persist` outputs in order.
    disk: NodeState,
    now: Time,
}

impl Harness {
    fn new(w: &'static World, with_legacy: bool) -> Self {
        let me = id(ME);
        let disk =
            NodeState { legacy: with_legacy.then(|| w.legacy.duplicate()), ..Default::default() };
        let node = Node::restore(me.clone(), CLUSTER, disk.duplicate(), NodeOptions::default())
            .unwrap_or_else(|e| panic!("fresh state does not restore: {e}"));
        Harness { w, me, node, disk, now: Time::ZERO }
    }

    fn step(&mut self, op: Op) {
        let committed_before = self.disk.latest_committed();
        let expunged_before = self.disk.expunged;
        match op {
            Op::Request { from, kind, args } => {
                let from = peer(from);
                let request = self.request(kind, args);
                let kind = request.kind();
                let outs = self.node.handle_request(self.now, &from, request);
                let replies = self.carry_out(outs, Some(&from), committed_before);
                let [reply] = replies.as_slice() else {
                    panic!("{} replies to one {kind:?}", replies.len())
                };
                if expunged_before.is_some() && kind != RequestKind::Status {
                    // Refused as expunged, unless the caller was not allowed to ask at all.
                    let refused = matches!(
                        reply,
                        Response::Error {
                            error: NodeError::Expunged(_) | NodeError::Unauthorized { .. },
                            ..
                        }
                    );
                    assert!(refused, "an expunged node answered {kind:?} with {reply:?}");
                }
            }
            Op::Response { from, kind, args } => {
                let from = id(PEERS[usize::from(from) % PEERS.len()]);
                let response = self.response(&from, kind, args);
                let outs = self.node.handle_response(self.now, &from, response);
                self.carry_out(outs, None, committed_before);
            }
            Op::Tick(units) => {
                self.now = self.now + std::time::Duration::from_millis(u64::from(units) * 8);
                let outs = self.node.tick(self.now);
                self.carry_out(outs, None, committed_before);
            }
            Op::Unlock => {
                let outs = self.node.unlock(self.now);
                self.carry_out(outs, None, committed_before);
            }
            Op::Lock => {
                self.node.lock();
                assert!(self.node.unlocked().is_none(), "secrets kept after lock");
            }
            Op::Restart => {
                self.node = Node::restore(
                    self.me.clone(),
                    CLUSTER,
                    self.disk.duplicate(),
                    NodeOptions::default(),
                )
                .unwrap_or_else(|e| panic!("persisted state does not restore: {e}"));
            }
        }
        assert!(same_state(self.node.state(), &self.disk), "memory and disk differ after {op:?}");
        assert!(self.disk.latest_committed() >= committed_before, "I5: committed epoch went down");
        if let Some(e) = expunged_before {
            assert_eq!(self.disk.expunged, Some(e), "the expunged marker changed");
        }
    }

    /// Carries out outputs in order, checking each; returns the replies.
    fn carry_out(
        &mut self,
        outs: Vec<NodeOutput>,
        caller: Option<&Peer>,
        committed_before: Option<Epoch>,
    ) -> Vec<Response> {
        let mut replies = Vec::new();
        for o in outs {
            match o {
                NodeOutput::Persist(change) => {
                    assert!(replies.is_empty(), "I3: Persist({change:?}) after the reply");
                    self.check_change(&change);
                    self.disk.apply(change);
                }
                NodeOutput::Reply(r) => {
                    let caller = caller.unwrap_or_else(|| panic!("a reply with no request: {r:?}"));
                    self.check_reply(&r, caller, committed_before);
                    replies.push(r);
                }
                NodeOutput::Send { to, request } => self.check_send(&to, &request),
                NodeOutput::Unlocked { epoch } => self.check_unlocked(epoch),
            }
        }
        replies
    }

    fn check_change(&self, change: &NodeChange) {
        match change {
            NodeChange::Prepared { config, share } | NodeChange::CaughtUp { config, share } => {
                let d = self
                    .dealt(config.epoch(), config.digest())
                    .unwrap_or_else(|| panic!("persisted {config:?}, which was never dealt"));
                assert_eq!(*config.cluster_id(), CLUSTER, "persisted another cluster's epoch");
                let mine = d.shares.get(&self.me).unwrap_or_else(|| {
                    panic!("persisted {config:?}, which does not include this node")
                });
                assert!(share.ct_eq(mine), "persisted a share that is not this node's");
                assert!(
                    Some(config.epoch()) > self.disk.latest_committed(),
                    "I5: stored {config:?} at or below the committed epoch"
                );
                let decoded = Configuration::decode(&config.encode())
                    .unwrap_or_else(|e| panic!("stored {config:?} does not decode: {e}"));
                assert!(decoded == **config, "{config:?} changed through its encoding");
            }
            NodeChange::Committed { epoch } => {
                assert!(
                    self.disk.configs.contains_key(epoch) && self.disk.shares.contains_key(epoch),
                    "committed {epoch:?} without its configuration and share on disk"
                );
            }
            NodeChange::Expunged { epoch } => {
                assert!(Some(*epoch) > self.disk.latest_committed(), "expunged at an old epoch");
            }
        }
    }

    fn check_reply(&self, r: &Response, caller: &Peer, committed_before: Option<Epoch>) {
        match r {
            Response::PrepareAck { epoch, digest } => {
                assert!(Some(*epoch) > committed_before, "I5: acked {epoch:?} ≤ committed");
                assert_eq!(self.disk.digest(*epoch), Some(*digest), "I3: ack before persist");
            }
            Response::CommitAck { epoch } => {
                assert!(self.disk.committed.contains(epoch), "I3: commit ack before persist");
            }
            Response::Share { epoch, digest, share } => {
                let d = self
                    .dealt(*epoch, *digest)
                    .unwrap_or_else(|| panic!("sent a share of undealt {epoch:?}"));
                if let Peer::Node(r) = caller {
                    assert!(d.config.is_member(r), "§6.6: gave {r} a share of {epoch:?}");
                }
                assert!(matches!(caller, Peer::Coordinator | Peer::Node(_)), "share to {caller}");
                let mine = d.shares.get(&self.me).unwrap_or_else(|| panic!("not a member"));
                assert!(share.ct_eq(mine), "answered with a share that is not its own");
            }
            Response::LegacyShare(pkg) => match caller {
                Peer::Coordinator => {}
                Peer::Node(r) => assert!(pkg.digests.contains_key(r), "legacy share to {r}"),
                Peer::Operator(_) => panic!("legacy share to an operator"),
            },
            Response::CommitAdvance { config } => {
                assert!(self.disk.committed.contains(&config.epoch()), "advanced to uncommitted");
            }
            _ => {}
        }
    }

    fn check_send(&self, to: &NodeId, request: &Request) {
        assert_ne!(*to, self.me, "a node sent itself {request:?}");
        let Request::GetShare { epoch, digest: Some(digest) } = request else {
            panic!("a node sent {request:?}");
        };
        let d = self.dealt(*epoch, *digest).unwrap_or_else(|| panic!("asked for undealt shares"));
        assert!(d.config.is_member(to), "asked non-member {to} for a share of {epoch:?}");
    }

    fn check_unlocked(&self, epoch: Epoch) {
        let u = self.node.unlocked().unwrap_or_else(|| panic!("Unlocked({epoch:?}) but locked"));
        assert_eq!(u.epoch, epoch);
        let digest = self.disk.digest(epoch).unwrap_or_else(|| panic!("unlocked unstored epoch"));
        let d = self.dealt(epoch, digest).unwrap_or_else(|| panic!("unlocked undealt epoch"));
        assert!(u.secrets.ct_eq(&d.history), "I6: unlocked secrets differ from the dealt ones");
    }

    fn dealt(&self, epoch: Epoch, digest: Digest) -> Option<&'static Dealt> {
        self.w.dealt.iter().find(|d| d.config.epoch() == epoch && d.config.digest() == digest)
    }

    fn pick(&self, b: u8) -> &'static Dealt {
        &self.w.dealt[usize::from(b) % self.w.dealt.len()]
    }

    /// An epoch: one of the dealt ones (with its dealing), or one nobody dealt.
    fn epoch(&self, b: u8) -> (Epoch, Option<&'static Dealt>) {
        let n = self.w.dealt.len();
        match usize::from(b) % (n + 2) {
            i if i < n => (self.w.dealt[i].config.epoch(), Some(&self.w.dealt[i])),
            i if i == n => (epoch(9), None),
            _ => (epoch(u64::MAX - 1), None),
        }
    }

    /// A digest: the right one for `of`, another dealing's, or garbage.
    fn digest(&self, b: u8, of: Option<&Dealt>) -> Digest {
        let n = self.w.dealt.len();
        match usize::from(b) % (n + 2) {
            0 => of.map_or(Digest([0; 32]), |d| d.config.digest()),
            i if i <= n => self.w.dealt[i - 1].config.digest(),
            _ => Digest([b; 32]),
        }
    }

    /// A share of `d`: `owner`'s or another member's (`who`), real or altered (`how`).
    fn share(&self, d: &Dealt, owner: &NodeId, who: u8, how: u8) -> Share {
        let owner = match usize::from(who) % (PEERS.len() + 1) {
            0 => owner.clone(),
            i => id(PEERS[i - 1]),
        };
        let base = |d: &Dealt| match d.shares.get(&owner) {
            Some(s) => s.duplicate(),
            None => d
                .shares
                .values()
                .next()
                .map(Share::duplicate)
                .unwrap_or_else(|| panic!("fixture {:?} has no shares", d.config)),
        };
        let real = base(d);
        let arg = usize::from(how / 4);
        let altered = match how % 4 {
            0 => return real,
            1 => {
                let mut y = *real.expose_value();
                // Bytes 0..31 keep the scalar canonical almost always; if not, the real
                // share is used.
                y[arg % 31] ^= 1;
                Share::from_bytes(real.index(), &y)
            }
            2 => ShareIndex::new(arg as u64 % 7 + 1)
                .map_err(|e| panic!("{e}"))
                .and_then(|x| Share::from_bytes(x, real.expose_value())),
            _ => return base(self.pick(how / 4)),
        };
        altered.unwrap_or(real)
    }

    fn request(&self, kind: u8, [a, b, c, d]: [u8; 4]) -> Request {
        match kind % 6 {
            0 => {
                let dealt = self.pick(a);
                let share = self.share(dealt, &self.me, b, c);
                Request::Prepare { config: dealt.config.clone(), share }
            }
            1 => {
                let (epoch, of) = self.epoch(a);
                Request::Commit { epoch, digest: self.digest(b, of) }
            }
            2 => Request::PrepareAndCommit { config: self.pick(a).config.clone() },
            3 => {
                let (epoch, of) = self.epoch(a);
                let digest = (d % 8 != 0).then(|| self.digest(b, of));
                Request::GetShare { epoch, digest }
            }
            4 => Request::GetLegacyShare,
            _ => Request::Status,
        }
    }

    fn response(&self, from: &NodeId, kind: u8, [a, b, c, d]: [u8; 4]) -> Response {
        match kind % 4 {
            0 => {
                let (epoch, of) = self.epoch(a);
                let digest = self.digest(b, of);
                let share = self.share(of.unwrap_or_else(|| self.pick(a)), from, c, d);
                Response::Share { epoch, digest, share }
            }
            1 => Response::CommitAdvance { config: Arc::clone(&self.pick(a).config) },
            2 => Response::Expunged { epoch: self.epoch(a).0 },
            _ => {
                let epoch = self.epoch(a).0;
                Response::Error {
                    request: RequestKind::GetShare,
                    epoch: Some(epoch),
                    error: NodeError::NoShare(epoch),
                }
            }
        }
    }
}

fn epoch(n: u64) -> Epoch {
    Epoch::new(n).unwrap_or_else(|e| panic!("{e}"))
}

fn peer(b: u8) -> Peer {
    match usize::from(b) % (PEERS.len() + 2) {
        0 => Peer::Coordinator,
        1 => Peer::Operator("op".into()),
        i => Peer::Node(id(PEERS[i - 2])),
    }
}

/// Whether two states hold the same configurations, shares, commits and markers.
fn same_state(a: &NodeState, b: &NodeState) -> bool {
    let configs = a.configs.len() == b.configs.len()
        && a.configs.iter().zip(&b.configs).all(|((e1, c1), (e2, c2))| e1 == e2 && c1 == c2);
    let shares = a.shares.len() == b.shares.len()
        && a.shares.iter().zip(&b.shares).all(|((e1, s1), (e2, s2))| e1 == e2 && s1.ct_eq(s2));
    let legacy = match (&a.legacy, &b.legacy) {
        (None, None) => true,
        (Some(p), Some(q)) => p.share.expose() == q.share.expose() && p.digests == q.digests,
        _ => false,
    };
    configs && shares && legacy && a.committed == b.committed && a.expunged == b.expunged
}

/// Hand-made inputs that walk the protocol's main paths, for the seed corpus.
pub fn seeds() -> Vec<Vec<u8>> {
    let coordinator = 0; // `peer(0)`
    let node = |i: u8| i + 2; // `peer(i + 2)` is PEERS[i]
    let prepare = |d: u8| Op::Request { from: coordinator, kind: 0, args: [d, 0, 0, 0] };
    let commit = |d: u8| Op::Request { from: coordinator, kind: 1, args: [d, 0, 0, 0] };
    let share_from = |peer: u8, d: u8| Op::Response { from: peer, kind: 0, args: [d, 0, 0, 0] };
    let scenarios: Vec<(u8, Vec<Op>)> = vec![
        // Prepare e1, commit it, unlock with two peers' shares.
        (0, vec![prepare(0), commit(0), Op::Unlock, share_from(0, 0), share_from(1, 0)]),
        // Prepare and commit e1, restart, then answer a member's and a stranger's GetShare.
        (
            0,
            vec![
                prepare(0),
                commit(0),
                Op::Restart,
                Op::Request { from: node(3), kind: 3, args: [0, 0, 0, 1] },
                Op::Request { from: node(6), kind: 3, args: [0, 0, 0, 1] },
            ],
        ),
        // PrepareAndCommit e2 without a prepare: catch up from three peers' shares.
        (
            0,
            vec![
                Op::Request { from: coordinator, kind: 2, args: [1, 0, 0, 0] },
                share_from(1, 1),
                share_from(3, 1),
                share_from(4, 1),
                Op::Tick(500),
            ],
        ),
        // e1 committed, then a peer reports e3, which leaves this node out: expunged.
        (
            0,
            vec![
                prepare(0),
                commit(0),
                Op::Response { from: 1, kind: 2, args: [3, 0, 0, 0] },
                Op::Request { from: coordinator, kind: 5, args: [0; 4] },
                prepare(4),
            ],
        ),
        // A rival configuration for epoch 2, a tampered share, a stale prepare.
        (
            1,
            vec![
                prepare(1),
                Op::Request { from: coordinator, kind: 0, args: [2, 0, 0, 0] },
                Op::Request { from: coordinator, kind: 0, args: [4, 0, 1, 0] },
                commit(1),
                prepare(0),
                Op::Request { from: node(0), kind: 4, args: [0; 4] },
            ],
        ),
        // Legacy package, then a peer's CommitAdvance to e6 (K = 2) and unlock.
        (
            1,
            vec![
                Op::Request { from: node(1), kind: 4, args: [0; 4] },
                Op::Unlock,
                Op::Response { from: 3, kind: 1, args: [5, 0, 0, 0] },
                share_from(3, 5),
                share_from(4, 5),
                Op::Tick(300),
                Op::Lock,
            ],
        ),
    ];
    scenarios.iter().map(|(first, ops)| script(*first, ops, Op::encode)).collect()
}
