//! Random cases and events, every choice drawn from one seeded stream, weighted by what the
//! world allows at that moment.

use std::collections::BTreeMap;

use rand::RngExt;
use rand::seq::IndexedRandom;
use rand_core::SeedableRng;
use tq_protocol::NodeId;
use tq_protocol::coordinator::status::PhaseStatus;

use crate::bugs::Bug;
use crate::event::{CaseSetup, Event, LegacyDamage, Tamper};
use crate::network::{Endpoint, Payload};
use crate::run::Shape;
use crate::world::World;
use tq_protocol::Request;

#[derive(Clone, Copy)]
enum Choice {
    Deliver,
    Drop,
    Duplicate,
    Tick,
    Partition,
    Heal,
    CrashNode,
    RestartNode,
    CrashCoordinator,
    RestartCoordinator,
    Reconfigure,
    Abort,
    Commit,
    Unlock,
    Tamper,
    Wipe,
}

/// Draws one case's setup and then its events.
pub(crate) struct Generator {
    rng: rand_chacha::ChaCha8Rng,
}

impl Generator {
    pub(crate) fn new(seed: u64, case: u64) -> Self {
        let mix =
            seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ case.wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
        Generator { rng: rand_chacha::ChaCha8Rng::seed_from_u64(mix) }
    }

    pub(crate) fn setup(
        &mut self,
        seed: u64,
        case: u64,
        shape: &Shape,
        bug: Option<&str>,
    ) -> CaseSetup {
        let max = shape.max_nodes.max(3);
        let total = self.rng.random_range(3..=max);
        let nodes: Vec<String> = (1..=total).map(|i| format!("n{i:02}")).collect();
        let needs_faulty =
            bug.and_then(|b| Bug::parse(b).ok()).is_some_and(Bug::needs_faulty_coordinator);
        let faulty_p = if needs_faulty { 0.5 } else { 0.2 };
        let manual_commit = self.rng.random_bool(0.15);
        let faulty_coordinator = self.rng.random_bool(faulty_p);
        let legacy_threshold = self.rng.random_bool(0.15).then_some(total / 2 + 1);
        let legacy_damage =
            legacy_threshold.map(|k| self.legacy_damage(&nodes, k)).unwrap_or_default();
        CaseSetup {
            seed,
            case,
            nodes,
            manual_commit,
            faulty_coordinator,
            legacy_threshold,
            legacy_damage,
            bug: bug.map(str::to_string),
        }
    }

    /// In half the legacy cases, damages the packages of up to N − (K + 1) nodes.
    fn legacy_damage(&mut self, nodes: &[String], k: usize) -> BTreeMap<String, LegacyDamage> {
        let spare = nodes.len().saturating_sub(k + 1);
        if spare == 0 || !self.rng.random_bool(0.5) {
            return BTreeMap::new();
        }
        let count = self.rng.random_range(1..=spare);
        let picked = rand::seq::index::sample(&mut self.rng, nodes.len(), count);
        picked
            .into_iter()
            .map(|i| {
                let how = match self.rng.random_range(0..3) {
                    0 => LegacyDamage::CorruptShare,
                    1 => LegacyDamage::OtherSplit,
                    _ => LegacyDamage::OtherThreshold,
                };
                (nodes[i].clone(), how)
            })
            .collect()
    }

    pub(crate) fn actions(&mut self, shape: &Shape) -> usize {
        self.rng.random_range(shape.min_actions..=shape.max_actions.max(shape.min_actions))
    }

    /// The next event, given the world as it is.
    pub(crate) fn next(&mut self, w: &World) -> Event {
        let ids: Vec<u64> = w.net.in_flight.keys().copied().collect();
        let all: Vec<&NodeId> = w.nodes.keys().collect();
        let live: Vec<&NodeId> =
            w.nodes.iter().filter(|(_, n)| n.node.is_some()).map(|(id, _)| id).collect();
        let down: Vec<&NodeId> =
            w.nodes.iter().filter(|(_, n)| n.node.is_none()).map(|(id, _)| id).collect();
        let attempt = w.coord.as_ref().and_then(|c| c.attempt_status());
        let in_flight = attempt.as_ref().is_some_and(|a| a.phase.in_flight());
        let preparing = attempt.as_ref().is_some_and(|a| a.phase == PhaseStatus::Preparing);
        let nothing_committed = w.ledger_disk.latest_committed().is_none();
        let prepares: Vec<u64> = w
            .net
            .in_flight
            .iter()
            .filter(|(_, m)| {
                m.from == Endpoint::Coordinator
                    && matches!(m.payload, Payload::Request(Request::Prepare { .. }))
            })
            .map(|(id, _)| *id)
            .collect();
        let up = w.coord.is_some();
        let removed: Vec<&NodeId> = all.iter().copied().filter(|id| w.wipeable(id)).collect();

        let options = [
            (if ids.is_empty() { 0.0 } else { 70.0 }, Choice::Deliver),
            (if ids.is_empty() { 0.0 } else { 2.0 }, Choice::Drop),
            (if ids.is_empty() { 0.0 } else { 2.0 }, Choice::Duplicate),
            (8.0, Choice::Tick),
            (if w.net.isolated.len() < 2 { 0.7 } else { 0.0 }, Choice::Partition),
            (if w.net.isolated.is_empty() { 0.0 } else { 1.5 }, Choice::Heal),
            (if live.len() > 1 { 1.0 } else { 0.0 }, Choice::CrashNode),
            (if down.is_empty() { 0.0 } else { 4.0 }, Choice::RestartNode),
            (if up { 0.3 } else { 0.0 }, Choice::CrashCoordinator),
            (if up { 0.0 } else { 4.0 }, Choice::RestartCoordinator),
            (
                if up && !in_flight { if nothing_committed { 10.0 } else { 2.5 } } else { 0.0 },
                Choice::Reconfigure,
            ),
            (if up && in_flight { 0.3 } else { 0.0 }, Choice::Abort),
            (if up && preparing && w.setup.manual_commit { 4.0 } else { 0.0 }, Choice::Commit),
            (if live.is_empty() { 0.0 } else { 1.0 }, Choice::Unlock),
            (
                if w.setup.faulty_coordinator && !prepares.is_empty() { 6.0 } else { 0.0 },
                Choice::Tamper,
            ),
            (if removed.is_empty() { 0.0 } else { 1.0 }, Choice::Wipe),
        ];
        let total: f64 = options.iter().map(|o| o.0).sum();
        let mut pick = self.rng.random_range(0.0..total);
        let mut choice = Choice::Tick;
        for (weight, which) in options {
            if pick < weight {
                choice = which;
                break;
            }
            pick -= weight;
        }
        let name = |n: &NodeId| n.to_string();
        match choice {
            Choice::Deliver => Event::Deliver { id: self.pick(&ids) },
            Choice::Drop => Event::Drop { id: self.pick(&ids) },
            Choice::Duplicate => Event::Duplicate { id: self.pick(&ids) },
            Choice::Partition => Event::Partition { node: name(self.pick(&all)) },
            Choice::Heal => Event::Heal,
            Choice::CrashNode => Event::CrashNode { node: name(self.pick(&live)) },
            Choice::RestartNode => Event::RestartNode { node: name(self.pick(&down)) },
            Choice::CrashCoordinator => Event::CrashCoordinator,
            Choice::RestartCoordinator => Event::RestartCoordinator,
            Choice::Reconfigure => self.reconfigure(w),
            Choice::Abort => Event::Abort,
            Choice::Commit => Event::Commit,
            Choice::Unlock => Event::Unlock { node: name(self.pick(&live)) },
            Choice::Wipe => Event::Wipe { node: name(self.pick(&removed)) },
            Choice::Tamper => {
                let how = match self.rng.random_range(0..3) {
                    0 => Tamper::CorruptShare,
                    1 => Tamper::ForgeShare,
                    _ => Tamper::Equivocate { variant: self.rng.random_range(0..2) },
                };
                Event::Tamper { id: self.pick(&prepares), how }
            }
            Choice::Tick => {
                // Mostly short steps; now and then long enough for timeouts and staleness.
                let ms = if self.rng.random_bool(0.05) {
                    self.rng.random_range(4_000..25_000)
                } else {
                    self.rng.random_range(20..600)
                };
                Event::Tick { ms }
            }
        }
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        // Callers only pick from lists their weight guaranteed non-empty.
        *from.choose(&mut self.rng).unwrap_or_else(|| unreachable!("picked from an empty list"))
    }

    /// A new configuration: add a spare, remove one, rotate, or change K (now and then an
    /// invalid one, which the coordinator must refuse).
    fn reconfigure(&mut self, w: &World) -> Event {
        let mut entropy = [0u8; 32];
        rand_core::Rng::fill_bytes(&mut self.rng, &mut entropy);
        let all: Vec<String> = w.nodes.keys().map(|n| n.to_string()).collect();
        let mut members: Vec<String> = match &w.ledger_disk.latest {
            Some(c) => c.members().keys().map(|n| n.to_string()).collect(),
            None => {
                let n = self.rng.random_range(3..=all.len());
                all[..n].to_vec()
            }
        };
        if w.ledger_disk.latest.is_some() {
            let spares: Vec<&String> = all.iter().filter(|n| !members.contains(n)).collect();
            match self.rng.random_range(0..4) {
                0 if !spares.is_empty() => members.push(self.pick(&spares).clone()),
                1 if members.len() > 3 => {
                    let i = self.rng.random_range(0..members.len());
                    members.remove(i);
                }
                _ => {} // rotate, perhaps with another K
            }
        }
        members.sort();
        let n = members.len();
        let threshold = if self.rng.random_bool(0.04) {
            self.rng.random_range(0..=n + 1)
        } else {
            self.rng.random_range(n / 2 + 1..n)
        };
        if w.setup.legacy_threshold.is_some() && w.ledger_disk.latest.is_none() {
            return Event::LegacyUpgrade { members, threshold, entropy };
        }
        Event::Reconfigure { members, threshold, entropy }
    }
}
