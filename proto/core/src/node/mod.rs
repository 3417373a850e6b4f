//! The node state machine (DESIGN §6.3–§6.9).
//!
//! # Contract
//!
//! A [`Node`] does no I/O and reads no clock. Its driver (the agent, or the simulation):
//!
//! 1. builds it from durable state with [`Node::restore`] (checked; a failure means the store
//!    must fail closed, §7);
//! 2. feeds it inputs: [`Node::handle_request`] for each request received (with the caller's
//!    verified identity), [`Node::handle_response`] for each answer to a request it sent,
//!    [`Node::tick`] now and then, and the operator commands [`Node::unlock`] / [`Node::lock`];
//! 3. carries out the returned [`NodeOutput`]s **in order**. A [`NodeOutput::Persist`] must be
//!    durable (written, flushed, fsynced) before any output after it takes effect; if it
//!    cannot be made durable the driver must stop, not continue. Each `handle_request` returns
//!    exactly one [`NodeOutput::Reply`], the answer to that request.
//!
//! Getters ([`Node::state`], [`Node::status`], [`Node::unlocked`], [`Node::alarms`]) may be
//! called at any time.

mod collect;
mod prepare;
mod share;
pub mod state;

use std::time::Duration;

pub use state::{NodeChange, NodeState, StateError};

use crate::alarm::{Alarm, Alarms};
use crate::crypto::prior::SecretHistory;
use crate::epoch::Epoch;
use crate::ids::{ClusterId, NodeId, Peer};
use crate::messages::{NodeError, NodeStatusReport, Request, RequestKind, Response};
use crate::time::Time;

/// What the driver must do, in order (see the module contract).
#[derive(Debug)]
pub enum NodeOutput {
    /// Make this change durable before anything after it takes effect.
    Persist(NodeChange),
    /// Answer the request being handled.
    Reply(Response),
    /// Send a request to a peer; feed its answer to [`Node::handle_response`].
    Send {
        /// The peer.
        to: NodeId,
        /// The request.
        request: Request,
    },
    /// Secrets for `epoch` (and every earlier committed epoch) are now unlocked: the host's
    /// key service may serve them and tell watchers.
    Unlocked {
        /// The epoch.
        epoch: Epoch,
    },
}

/// Tunables.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// How long to wait for peers' shares before asking again.
    pub retry_interval: Duration,
    /// After a commit, a node that holds an earlier epoch's secrets waits between this and
    /// twice this (a fixed offset per node) before asking its peers for the new epoch's
    /// shares (§6.7). Every re-keying member asks every other member: started at once, that
    /// burst of N × (N − 1) GetShare calls lands while the coordinator's Commit fan-out is
    /// still under way and slows every member's commit (tq-testbed bench, BENCHMARKS.md).
    /// Zero re-keys at once. An explicit unlock never waits.
    pub rekey_delay: Duration,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions { retry_interval: Duration::from_secs(2), rekey_delay: Duration::ZERO }
    }
}

/// Secrets unlocked in memory (§6.7).
#[derive(Debug)]
pub struct Unlocked {
    /// The epoch whose secret was rebuilt.
    pub epoch: Epoch,
    /// That secret and every earlier committed one.
    pub secrets: SecretHistory,
}

/// One node agent's protocol state.
#[derive(Debug)]
pub struct Node {
    id: NodeId,
    cluster_id: ClusterId,
    options: NodeOptions,
    state: NodeState,
    collection: Option<collect::Collection>,
    unlocked: Option<Unlocked>,
    want_unlock: bool,
    /// When a deferred re-key starts (`NodeOptions::rekey_delay`).
    rekey_at: Option<Time>,
    alarms: Alarms,
    #[cfg(feature = "danger-inject-bugs")]
    bug: Option<crate::bugs::NodeBug>,
}

impl Node {
    /// A node over its durable state, after checking it (§7).
    pub fn restore(
        id: NodeId,
        cluster_id: ClusterId,
        state: NodeState,
        options: NodeOptions,
    ) -> Result<Node, StateError> {
        state.check(&id, &cluster_id)?;
        Ok(Node {
            id,
            cluster_id,
            options,
            state,
            collection: None,
            unlocked: None,
            want_unlock: false,
            rekey_at: None,
            alarms: Alarms::default(),
            #[cfg(feature = "danger-inject-bugs")]
            bug: None,
        })
    }

    /// Breaks one rule on purpose (simulation only).
    #[cfg(feature = "danger-inject-bugs")]
    pub fn danger_inject_bug(&mut self, bug: crate::bugs::NodeBug) {
        self.bug = Some(bug);
    }

    #[cfg(feature = "danger-inject-bugs")]
    fn has_bug(&self, bug: crate::bugs::NodeBug) -> bool {
        self.bug == Some(bug)
    }

    #[cfg(not(feature = "danger-inject-bugs"))]
    fn has_bug(&self, _: crate::bugs::NodeBug) -> bool {
        false
    }

    /// This node's id.
    pub fn id(&self) -> &NodeId {
        &self.id
    }

    /// The durable state as this node believes it is.
    pub fn state(&self) -> &NodeState {
        &self.state
    }

    /// The unlocked secrets, if any.
    pub fn unlocked(&self) -> Option<&Unlocked> {
        self.unlocked.as_ref()
    }

    /// Whether the host asked for the secrets (and has not locked them since).
    pub fn wants_unlock(&self) -> bool {
        self.want_unlock
    }

    /// Alarms raised.
    pub fn alarms(&self) -> &Alarms {
        &self.alarms
    }

    /// What this node reports to the coordinator (§6.11).
    pub fn status(&self) -> NodeStatusReport {
        let with_digest =
            |e: Epoch| (e, self.state.digest(e).unwrap_or(crate::crypto::Digest([0; 32])));
        NodeStatusReport {
            node_id: self.id.clone(),
            committed: self.state.latest_committed().map(with_digest),
            prepared: self.state.highest_prepared().map(with_digest),
            expunged: self.state.expunged,
            unlocked: self.unlocked.as_ref().map(|u| u.epoch),
            has_legacy_share: self.state.legacy.is_some(),
            alarms: self.alarms.total(),
        }
    }

    /// Handles a request from a verified caller. Returns exactly one `Reply`.
    pub fn handle_request(&mut self, now: Time, from: &Peer, request: Request) -> Vec<NodeOutput> {
        let kind = request.kind();
        let epoch = request.epoch();
        let mut out = Vec::new();
        let res = match request {
            Request::Status => Ok(Response::Status(self.status())),
            _ if !authorized(kind, from) => {
                Err(NodeError::Unauthorized { caller: from.clone(), request: kind })
            }
            _ if self.state.expunged.is_some() => {
                Err(NodeError::Expunged(self.state.expunged.unwrap_or(Epoch::FIRST)))
            }
            Request::Prepare { config, share } => self.handle_prepare(now, config, share, &mut out),
            Request::Commit { epoch, digest } => self.handle_commit(now, epoch, digest, &mut out),
            Request::PrepareAndCommit { config } => {
                self.handle_prepare_and_commit(now, config, &mut out)
            }
            Request::GetShare { epoch, digest } => self.handle_get_share(now, from, epoch, digest),
            Request::GetLegacyShare => self.handle_get_legacy_share(from),
        };
        let reply = res.unwrap_or_else(|error| Response::Error { request: kind, epoch, error });
        // The reply goes after any Persist: it depends on it (I3).
        let at = out.iter().position(|o| !matches!(o, NodeOutput::Persist(_))).unwrap_or(out.len());
        out.insert(at, NodeOutput::Reply(reply));
        out
    }

    /// Asks peers for shares and keeps the secrets in memory once rebuilt (§6.7). Also keeps
    /// following new commits: after each, the new epoch is unlocked too.
    pub fn unlock(&mut self, now: Time) -> Vec<NodeOutput> {
        self.want_unlock = true;
        self.rekey_at = None;
        let mut out = Vec::new();
        self.maybe_start_unlock(now, &mut out);
        out
    }

    /// Forgets the unlocked secrets.
    pub fn lock(&mut self) {
        self.want_unlock = false;
        self.rekey_at = None;
        self.unlocked = None;
        if self.collection.as_ref().is_some_and(|c| c.is_unlock()) {
            self.collection = None;
        }
    }

    /// The time at which [`Node::tick`] has work besides retries: a deferred re-key.
    pub fn next_deadline(&self) -> Option<Time> {
        self.rekey_at
    }

    /// Retries what is outstanding, and starts a re-key that is due.
    pub fn tick(&mut self, now: Time) -> Vec<NodeOutput> {
        let mut out = Vec::new();
        if self.state.expunged.is_some() {
            return out;
        }
        if let Some(c) = &mut self.collection {
            if now.since(c.asked_at) >= self.options.retry_interval {
                c.asked_at = now;
                c.ask(&self.id, &mut out);
            }
        } else {
            self.maybe_start_unlock(now, &mut out);
        }
        out
    }

    fn raise(&mut self, now: Time, alarm: Alarm) {
        self.alarms.raise(now, alarm);
    }

    fn persist(&mut self, change: NodeChange, out: &mut Vec<NodeOutput>) {
        self.state.apply(change.duplicate());
        out.push(NodeOutput::Persist(change));
    }
}

/// The authorization table of DESIGN §3 for node calls (GetShare and GetLegacyShare also
/// check membership in their handlers).
fn authorized(kind: RequestKind, from: &Peer) -> bool {
    match kind {
        RequestKind::Prepare | RequestKind::Commit | RequestKind::PrepareAndCommit => {
            *from == Peer::Coordinator
        }
        RequestKind::GetShare | RequestKind::GetLegacyShare => {
            matches!(from, Peer::Coordinator | Peer::Node(_))
        }
        RequestKind::Status => true,
    }
}

#[cfg(test)]
mod tests;
