//! The simulated network: every message in flight until the event log delivers, drops or
//! duplicates it, so any delay and any order can happen.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use tq_protocol::{NodeId, Request, Response, Time};

/// A process.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Endpoint {
    /// The coordinator.
    Coordinator,
    /// A node agent.
    Node(NodeId),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Coordinator => f.write_str("C"),
            Endpoint::Node(id) => write!(f, "{id}"),
        }
    }
}

/// What travels.
#[derive(Debug)]
pub(crate) enum Payload {
    /// A request; its answer travels back as a new message.
    Request(Request),
    /// An answer.
    Response(Response),
}

/// One message in flight.
#[derive(Debug)]
pub(crate) struct Msg {
    /// Sender.
    pub(crate) from: Endpoint,
    /// Recipient.
    pub(crate) to: Endpoint,
    /// Content.
    pub(crate) payload: Payload,
    /// The sender's incarnation (a request's answer goes back to it).
    pub(crate) from_incarnation: u64,
    /// The recipient's incarnation when this was sent: a connection dies with its process,
    /// so a restarted process never sees what was sent to its previous life.
    pub(crate) to_incarnation: u64,
    /// When the request was sent (for an answer: the request it answers).
    pub(crate) asked: Time,
}

impl Msg {
    /// A copy (the network duplicates).
    pub(crate) fn duplicate(&self) -> Msg {
        let payload = match &self.payload {
            Payload::Request(r) => Payload::Request(r.duplicate()),
            Payload::Response(r) => Payload::Response(r.duplicate()),
        };
        Msg {
            from: self.from.clone(),
            to: self.to.clone(),
            payload,
            from_incarnation: self.from_incarnation,
            to_incarnation: self.to_incarnation,
            asked: self.asked,
        }
    }
}

/// Messages in flight and the partition.
#[derive(Debug, Default)]
pub(crate) struct Network {
    next_id: u64,
    /// By id, oldest first.
    pub(crate) in_flight: BTreeMap<u64, Msg>,
    /// Nodes cut off from everyone.
    pub(crate) isolated: BTreeSet<NodeId>,
}

impl Network {
    /// Puts a message in flight; returns its id.
    pub(crate) fn send(&mut self, msg: Msg) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.in_flight.insert(id, msg);
        id
    }

    /// Whether the partition blocks this link.
    pub(crate) fn blocked(&self, a: &Endpoint, b: &Endpoint) -> bool {
        [a, b].iter().any(|e| matches!(e, Endpoint::Node(id) if self.isolated.contains(id)))
    }
}
