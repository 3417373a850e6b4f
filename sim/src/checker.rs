//! The invariants of DESIGN §9, checked as each output is carried out. I9 (liveness) is
//! checked at the end of a case, in `liveness.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tq_protocol::coordinator::Coordinator;
use tq_protocol::crypto::prior::SecretHistory;
use tq_protocol::crypto::sharing::{check_secret, combine, verify_share};
use tq_protocol::node::{Node, NodeChange, NodeState};
use tq_protocol::{
    Alarm, Configuration, Digest, Epoch, NodeId, Request, Response, Secret, Share, Threshold,
};

use crate::legacy_damage;
use crate::network::Endpoint;

/// One broken invariant.
#[derive(Debug, Clone)]
pub(crate) struct Violation {
    pub(crate) invariant: &'static str,
    pub(crate) event: u64,
    pub(crate) detail: String,
}

/// What only an honest coordinator guarantees (§9, issue: I1, I2 and I7).
const HONEST_ONLY: [&str; 3] = ["I1", "I2", "I7"];
const KEEP: usize = 20;

pub(crate) struct Checker {
    honest: bool,
    event: u64,
    pub(crate) violations: Vec<Violation>,
    /// I1/I2/I7 breaks caused by a faulty coordinator: reported, not required.
    pub(crate) tolerated: Vec<Violation>,
    /// Invariants that were actually evaluated at least once.
    pub(crate) exercised: BTreeSet<&'static str>,
    stored: BTreeMap<Epoch, Digest>,
    committed: BTreeMap<Epoch, Digest>,
    acks: BTreeMap<(Epoch, Digest), BTreeSet<NodeId>>,
    dealt: BTreeMap<Epoch, Arc<Configuration>>,
    truth: BTreeMap<Epoch, Secret>,
    max_committed: BTreeMap<NodeId, Epoch>,
    wiped: BTreeSet<NodeId>,
    alarm_reported: bool,
    /// Nodes whose legacy packages were damaged: the alarms naming them are expected.
    legacy_damaged: BTreeSet<NodeId>,
    /// An alarm the damage explains was raised.
    pub(crate) legacy_damage_caught: bool,
    /// The most alarms alive at once (crashes forget alarms, so this is a floor).
    pub(crate) alarms_seen: u64,
}

impl Checker {
    pub(crate) fn new(honest: bool) -> Self {
        Checker {
            honest,
            event: 0,
            violations: Vec::new(),
            tolerated: Vec::new(),
            exercised: BTreeSet::new(),
            stored: BTreeMap::new(),
            committed: BTreeMap::new(),
            acks: BTreeMap::new(),
            dealt: BTreeMap::new(),
            truth: BTreeMap::new(),
            max_committed: BTreeMap::new(),
            wiped: BTreeSet::new(),
            alarm_reported: false,
            legacy_damaged: BTreeSet::new(),
            legacy_damage_caught: false,
            alarms_seen: 0,
        }
    }

    /// The case damaged these nodes' legacy packages: the coordinator may name them (I7).
    pub(crate) fn expect_legacy_damage(&mut self, damaged: BTreeSet<NodeId>) {
        self.legacy_damaged = damaged;
    }

    pub(crate) fn begin_event(&mut self) {
        self.event += 1;
    }

    pub(crate) fn truth(&self) -> &BTreeMap<Epoch, Secret> {
        &self.truth
    }

    pub(crate) fn set_truth(&mut self, e: Epoch, s: Secret) {
        self.truth.insert(e, s);
    }

    pub(crate) fn violation(&mut self, invariant: &'static str, detail: String) {
        let v = Violation { invariant, event: self.event, detail };
        let list = if !self.honest && HONEST_ONLY.contains(&invariant) {
            &mut self.tolerated
        } else {
            &mut self.violations
        };
        if list.len() < KEEP {
            list.push(v);
        }
    }

    fn check(&mut self, invariant: &'static str, ok: bool, detail: impl FnOnce() -> String) {
        self.exercised.insert(invariant);
        if !ok {
            self.violation(invariant, detail());
        }
    }

    /// I1, I2, I5 and the integrity of caught-up shares, as a change lands on a node's disk.
    pub(crate) fn on_node_persist(&mut self, id: &NodeId, change: &NodeChange, disk: &NodeState) {
        match change {
            NodeChange::Prepared { config, .. } => self.stored_config(id, config),
            NodeChange::CaughtUp { config, share } => {
                self.stored_config(id, config);
                let ok = config.share_matches(id, share);
                self.check("I6", ok, || {
                    format!(
                        "{id} computed a share for {:?} that does not match its digest",
                        config.epoch()
                    )
                });
            }
            NodeChange::Committed { .. } | NodeChange::Expunged { .. } => {}
        }
        let committed = match change {
            NodeChange::Committed { epoch } => Some(*epoch),
            NodeChange::CaughtUp { config, .. } => Some(config.epoch()),
            _ => None,
        };
        if let Some(d) = committed.and_then(|e| disk.digest(e).map(|d| (e, d))) {
            self.committed_digest(format!("{id}"), d.0, d.1);
        }
        let now = disk.latest_committed();
        let was = self.max_committed.get(id).copied();
        self.check("I5", now >= was, || {
            format!("{id}'s committed epoch went from {was:?} to {now:?}")
        });
        if let Some(e) = now {
            self.max_committed.insert(id.clone(), e.max(was.unwrap_or(e)));
        }
    }

    fn stored_config(&mut self, id: &NodeId, config: &Configuration) {
        let (e, d) = (config.epoch(), config.digest());
        let first = *self.stored.entry(e).or_insert(d);
        self.check("I1", first == d, || {
            format!("{id} stored {d:?} for {e:?}, another node stored {first:?}")
        });
    }

    fn committed_digest(&mut self, who: String, e: Epoch, d: Digest) {
        let first = *self.committed.entry(e).or_insert(d);
        self.check("I2", first == d, || {
            format!("{who} committed {d:?} at {e:?}, {first:?} was committed before")
        });
    }

    /// I3, I5, I8 as a node's reply leaves it.
    pub(crate) fn on_node_replies(
        &mut self,
        id: &NodeId,
        to: &Endpoint,
        resp: &Response,
        disk: &NodeState,
    ) {
        match resp {
            Response::PrepareAck { epoch, digest } => {
                let durable =
                    disk.digest(*epoch) == Some(*digest) && disk.shares.contains_key(epoch);
                self.check("I3", durable, || {
                    format!("{id} acked {epoch:?} before its configuration and share were durable")
                });
                if durable && !self.honest {
                    let ok = verify_share(&disk.shares[epoch], disk.configs[epoch].commitments())
                        .is_ok();
                    self.check("I3", ok, || {
                        format!("{id} acked {epoch:?} holding a share that fails verification")
                    });
                }
                let committed = disk.latest_committed();
                self.check("I5", committed < Some(*epoch), || {
                    format!("{id} acked {epoch:?} while its committed epoch is {committed:?}")
                });
            }
            Response::Share { epoch, .. } => {
                if let (Endpoint::Node(r), Some(c)) = (to, self.dealt.get(epoch)) {
                    let ok = c.is_member(r);
                    self.check("I8", ok, || {
                        format!("{id} sent its share of {epoch:?} to non-member {r}")
                    });
                }
            }
            _ => {}
        }
    }

    /// I8 for Prepares, and the reference configuration of each epoch.
    pub(crate) fn on_coordinator_sends(
        &mut self,
        to: &NodeId,
        request: &Request,
        expunged: Option<Epoch>,
    ) {
        if let Request::Prepare { config, .. } = request {
            let c = self.dealt.entry(config.epoch()).or_insert_with(|| config.clone()).clone();
            self.check("I8", c.is_member(to), || {
                format!("coordinator sent a share of {:?} to non-member {to}", c.epoch())
            });
            self.check("I8", expunged.is_none(), || {
                format!(
                    "coordinator sent a share of {:?} to {to}, expunged at {expunged:?}",
                    c.epoch()
                )
            });
        }
    }

    /// A wiped node starts over: its committed epoch may go down without breaking I5.
    pub(crate) fn on_wipe(&mut self, id: &NodeId) {
        self.max_committed.remove(id);
        self.wiped.insert(id.clone());
    }

    /// Acks as the coordinator receives them (for I4).
    pub(crate) fn on_coordinator_receives(&mut self, from: &NodeId, resp: &Response) {
        let ack = match resp {
            Response::PrepareAck { epoch, digest } => Some((*epoch, *digest)),
            Response::Status(r) => r.prepared,
            _ => None,
        };
        if let Some(key) = ack {
            self.acks.entry(key).or_default().insert(from.clone());
        }
    }

    /// I2, I4 and I6 at the coordinator's commit decision.
    pub(crate) fn on_commit_decision(
        &mut self,
        config: &Configuration,
        by_operator: bool,
        disks: &[(&NodeId, &NodeState)],
    ) {
        let (e, d, k) = (config.epoch(), config.digest(), config.threshold());
        self.committed_digest("the coordinator".into(), e, d);
        let acks = self.acks.get(&(e, d)).map_or(0, BTreeSet::len);
        let needed = if by_operator { k.get() } else { config.acks_needed() };
        self.check("I4", acks >= needed, || {
            format!(
                "{e:?} committed with {acks} acks, {needed} needed (by operator: {by_operator})"
            )
        });
        let shares: Vec<&Share> = disks
            .iter()
            .filter(|(_, disk)| disk.digest(e) == Some(d))
            .filter_map(|(_, disk)| disk.shares.get(&e))
            .collect();
        if shares.len() < k.get() {
            return self.check("I6", false, || {
                format!(
                    "{e:?} committed with only {} durable shares, K = {}",
                    shares.len(),
                    k.get()
                )
            });
        }
        let first = combine(&shares[..k.get()], k);
        let last = combine(&shares[shares.len() - k.get()..], k);
        let (Ok(first), Ok(last)) = (first, last) else {
            return self.check("I6", false, || format!("{e:?}: durable shares do not combine"));
        };
        let consistent = first.ct_eq(&last) && check_secret(&first, config.commitments()).is_ok();
        self.check("I6", consistent, || {
            format!("two sets of K members rebuild different secrets for {e:?}")
        });
        if let Ok(fewer) = Threshold::new(k.get() - 1, config.n()) {
            let below = combine(&shares[..k.get() - 1], fewer).map(|s| s.ct_eq(&first));
            self.check("I6", below != Ok(true), || {
                format!("K - 1 shares rebuild the secret of {e:?}")
            });
        }
        if consistent {
            self.truth.insert(e, first);
        }
    }

    /// I6 for unlocked secrets: the same as every other rebuild of that epoch.
    pub(crate) fn on_unlocked(&mut self, id: &NodeId, secrets: &SecretHistory) {
        for (e, s) in &secrets.0 {
            match self.truth.get(e) {
                Some(t) => {
                    let same = t.ct_eq(s);
                    self.check("I6", same, || {
                        format!("{id} unlocked a different secret for {e:?}")
                    });
                }
                None => {
                    self.truth.insert(*e, s.duplicate());
                }
            }
        }
    }

    /// I5 across a restart.
    pub(crate) fn on_restart(&mut self, id: &NodeId, state: &NodeState) {
        let now = state.latest_committed();
        let was = self.max_committed.get(id).copied();
        self.check("I5", now >= was, || {
            format!("{id} restarted with committed epoch {now:?}, had {was:?}")
        });
    }

    /// I7: no alarm anywhere with an honest coordinator. With a faulty one, alarms are the
    /// members catching it: they are counted.
    pub(crate) fn after_event<'a>(
        &mut self,
        coord: Option<&Coordinator>,
        nodes: impl Iterator<Item = &'a Node>,
    ) {
        let mut total = coord.map_or(0, |c| c.alarms().total());
        let kept = coord.map_or(&[][..], |c| c.alarms().kept());
        let explained = |a: &Alarm| legacy_damage::explains(&self.legacy_damaged, a);
        self.legacy_damage_caught |= kept.iter().any(|(_, a)| explained(a));
        let mut first =
            kept.iter().find(|(_, a)| !explained(a)).map(|(_, a)| format!("coordinator: {a:?}"));
        for n in nodes {
            // I5 as status shows it (§6.11): an honest coordinator calls a node rolled back
            // only if it lost state, which here only a wipe does.
            let rolled_back = coord.and_then(|c| c.tracker(n.id())).and_then(|t| t.rolled_back);
            if self.honest && !self.wiped.contains(n.id()) {
                self.check("I5", rolled_back.is_none(), || {
                    format!(
                        "coordinator shows {} rolled back {rolled_back:?}; it lost no state",
                        n.id()
                    )
                });
            }
            total += n.alarms().total();
            if first.is_none() {
                first = n.alarms().kept().first().map(|a| format!("{}: {:?}", n.id(), a.1));
            }
        }
        self.alarms_seen = self.alarms_seen.max(total);
        if !self.honest || self.alarm_reported {
            return;
        }
        self.exercised.insert("I7");
        if let Some(a) = first {
            self.alarm_reported = true;
            self.violation("I7", format!("alarm with an honest coordinator: {a}"));
        }
    }
}
