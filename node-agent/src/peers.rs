//! Reaching peers: the address book (persisted, from the coordinator and the configuration
//! file) and a cached mTLS channel per peer. Each request runs in its own task and its answer
//! goes back through the actor's channel.

use std::collections::BTreeMap;

use slog::{Logger, debug};
use tokio::sync::mpsc;
use tonic::transport::Channel;
use tq_protocol::{NodeId, Peer, Request};
use tq_wire::client::{ClientLimits, call_node, channel};
use tq_wire::tls::TlsMaterial;

use crate::actor::Command;

pub(crate) struct Peers {
    tls: TlsMaterial,
    limits: ClientLimits,
    /// From the configuration file; the coordinator's book overrides them.
    configured: BTreeMap<NodeId, String>,
    book: BTreeMap<NodeId, String>,
    channels: BTreeMap<NodeId, (String, Channel)>,
    log: Logger,
}

impl Peers {
    pub(crate) fn new(
        tls: TlsMaterial,
        configured: BTreeMap<NodeId, String>,
        book: BTreeMap<NodeId, String>,
        log: Logger,
    ) -> Self {
        Peers {
            tls,
            limits: ClientLimits::default(),
            configured,
            book,
            channels: BTreeMap::new(),
            log,
        }
    }

    pub(crate) fn set_book(&mut self, book: BTreeMap<NodeId, String>) {
        self.book = book;
    }

    fn address(&self, id: &NodeId) -> Option<&String> {
        self.book.get(id).or_else(|| self.configured.get(id))
    }

    fn channel(&mut self, id: &NodeId) -> Option<Channel> {
        let addr = self.address(id)?.clone();
        if let Some((a, c)) = self.channels.get(id).filter(|(a, _)| *a == addr) {
            debug_assert_eq!(*a, addr);
            return Some(c.clone());
        }
        match channel(&self.tls, Peer::Node(id.clone()), &addr, &self.limits) {
            Ok(c) => {
                self.channels.insert(id.clone(), (addr, c.clone()));
                Some(c)
            }
            Err(e) => {
                debug!(self.log, "cannot make a channel"; "peer" => %id, "error" => %e);
                None
            }
        }
    }

    /// Sends `request` to `to` in the background; its answer is fed back to the actor.
    pub(crate) fn send(&mut self, to: NodeId, request: Request, actor: mpsc::WeakSender<Command>) {
        let Some(channel) = self.channel(&to) else {
            debug!(self.log, "no address for peer: will retry"; "peer" => %to);
            return;
        };
        let (limits, log) = (self.limits, self.log.clone());
        tokio::spawn(async move {
            match call_node(channel, &request, &limits).await {
                Ok(response) => {
                    if let Some(actor) = actor.upgrade() {
                        let _ = actor.send(Command::PeerResponse { from: to, response }).await;
                    }
                }
                Err(e) => {
                    debug!(log, "peer request failed"; "peer" => %to, "kind" => ?request.kind(), "error" => %e.message())
                }
            }
        });
    }
}
