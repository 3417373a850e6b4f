//! The agent's one task that owns the protocol state: every request, peer answer, tick and
//! host command goes through its channel, and it carries out the node's outputs in order,
//! making each `Persist` durable before anything after it (DESIGN §7).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use slog::{Logger, crit, debug, info, warn};
use tokio::sync::{mpsc, oneshot, watch};
use tq_protocol::crypto::derive::{DeriveError, derive_key};
use tq_protocol::node::{Node, NodeChange, NodeOutput};
use tq_protocol::{ClusterId, Epoch, NodeId, NodeStatusReport, Peer, Request, Response, Time};
use zeroize::Zeroizing;

use crate::peers::Peers;
use crate::store::Store;
use tq_wire::durable::StoreError;
use tq_wire::failpoint::{Failpoints, Point};

/// What the host can see of the unlocked secrets: epochs only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unlocked {
    /// The latest unlocked epoch.
    pub latest: Option<Epoch>,
    /// Every epoch whose secret is held.
    pub epochs: Vec<Epoch>,
}

/// A key derived for the host.
pub type DerivedKey = (Epoch, Zeroizing<Vec<u8>>);

/// Why a key was not derived.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Nothing is unlocked (yet).
    #[error("the cluster secret is not unlocked")]
    Locked,
    /// The epoch asked for is not held.
    #[error("no secret is held for epoch {0}")]
    UnknownEpoch(u64),
    /// The epoch asked for (or the latest) is committed here and the host wants the
    /// secrets, but they are still being rebuilt from peers' shares (or the re-key after the
    /// commit is deferred).
    #[error("epoch {0}'s secret is still being rebuilt from peers' shares")]
    Pending(u64),
    /// The request is malformed.
    #[error(transparent)]
    Derive(#[from] DeriveError),
}

#[derive(Debug)]
pub(crate) enum Command {
    Request {
        caller: Peer,
        request: Request,
        reply: oneshot::Sender<Result<Response, Stopped>>,
    },
    PeerResponse {
        from: NodeId,
        response: Response,
    },
    Unlock,
    Lock,
    Derive {
        purpose: String,
        context: Vec<u8>,
        epoch: Option<u64>,
        len: usize,
        reply: oneshot::Sender<Result<DerivedKey, KeyError>>,
    },
    AddressBook {
        book: Vec<(NodeId, String)>,
        /// From the enrollment's reply rather than pushed by the coordinator.
        enrolled: bool,
        /// Answered once the book is durable (or ignored): the coordinator does not push an
        /// acked book again (§7, §6.13).
        reply: oneshot::Sender<()>,
    },
    Summary(oneshot::Sender<NodeStatusReport>),
}

/// A cloneable handle to the actor.
#[derive(Clone, Debug)]
pub struct AgentHandle {
    tx: mpsc::Sender<Command>,
    unlocked: watch::Receiver<Unlocked>,
}

/// The actor stopped, or is stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Stopped {
    /// The agent is shutting down (or already stopped: the reason went to its log).
    #[error("the agent is stopping")]
    Stopping,
    /// A durable write failed while this request was handled: nothing was answered, and the
    /// agent stops until it is restarted (DESIGN §7).
    #[error("the agent stopped: a durable write failed (its log says why)")]
    StoreFailed,
}

impl AgentHandle {
    async fn send(&self, c: Command) -> Result<(), Stopped> {
        self.tx.send(c).await.map_err(|_| Stopped::Stopping)
    }

    /// Handles a verified request; the answer comes after any state it depends on is durable.
    pub async fn request(&self, caller: Peer, request: Request) -> Result<Response, Stopped> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Request { caller, request, reply }).await?;
        rx.await.map_err(|_| Stopped::Stopping)?
    }

    /// Starts unlocking (and keeps following new commits).
    pub async fn unlock(&self) -> Result<(), Stopped> {
        self.send(Command::Unlock).await
    }

    /// Forgets the unlocked secrets.
    pub async fn lock(&self) -> Result<(), Stopped> {
        self.send(Command::Lock).await
    }

    /// Derives a key from an unlocked epoch's secret (the latest if `epoch` is None).
    pub async fn derive(
        &self,
        purpose: String,
        context: Vec<u8>,
        epoch: Option<u64>,
        len: usize,
    ) -> Result<Result<DerivedKey, KeyError>, Stopped> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Derive { purpose, context, epoch, len, reply }).await?;
        rx.await.map_err(|_| Stopped::Stopping)
    }

    /// Replaces the address book (the coordinator pushed it).
    pub async fn address_book(&self, book: Vec<(NodeId, String)>) -> Result<(), Stopped> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::AddressBook { book, enrolled: false, reply }).await?;
        rx.await.map_err(|_| Stopped::Stopping)
    }

    /// The address book in the coordinator's answer to this agent's enrollment: ignored if a
    /// push arrived first (the coordinator pushes every later change, in order, so a push
    /// is never older than what the enrollment's answer would add).
    pub(crate) async fn enrolled_book(&self, book: Vec<(NodeId, String)>) -> Result<(), Stopped> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::AddressBook { book, enrolled: true, reply }).await?;
        rx.await.map_err(|_| Stopped::Stopping)
    }

    /// The node's own status report.
    pub async fn summary(&self) -> Result<NodeStatusReport, Stopped> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Summary(reply)).await?;
        rx.await.map_err(|_| Stopped::Stopping)
    }

    /// Watches which epochs are unlocked.
    pub fn unlocked(&self) -> watch::Receiver<Unlocked> {
        self.unlocked.clone()
    }
}

pub(crate) struct Actor {
    cluster: ClusterId,
    node: Node,
    store: Store,
    peers: Peers,
    started: Instant,
    log: Logger,
    rx: mpsc::Receiver<Command>,
    unlocked: watch::Sender<Unlocked>,
    /// The reply channel of the request being handled.
    pending_reply: Option<oneshot::Sender<Result<Response, Stopped>>>,
    /// The last epoch whose Prepare this agent acked (for the `agent-after-ack` failpoint).
    acked: Option<Epoch>,
    failpoints: Failpoints,
    /// Where peers' answers come back; weak, so the actor ends with its last handle.
    me: mpsc::WeakSender<Command>,
    alarms_logged: u64,
    /// The coordinator pushed an address book since this agent started.
    book_pushed: bool,
}

/// Room for a burst of requests and peer answers; senders wait when it is full.
const QUEUE: usize = 1024;

impl Actor {
    pub(crate) fn new(
        cluster: ClusterId,
        node: Node,
        store: Store,
        peers: Peers,
        started: Instant,
        log: Logger,
        failpoints: Failpoints,
    ) -> (Actor, AgentHandle) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let (unlocked_tx, unlocked_rx) = watch::channel(Unlocked::default());
        let actor = Actor {
            cluster,
            node,
            store,
            peers,
            started,
            log,
            rx,
            unlocked: unlocked_tx,
            pending_reply: None,
            acked: None,
            failpoints,
            me: tx.downgrade(),
            alarms_logged: 0,
            book_pushed: false,
        };
        (actor, AgentHandle { tx, unlocked: unlocked_rx })
    }

    fn now(&self) -> Time {
        Time::from_millis(self.started.elapsed().as_millis() as u64)
    }

    /// Runs until `stop` fires (or its sender is dropped), every handle is dropped, or a write
    /// fails (then it returns the error and nothing after the failed write was carried out).
    /// Returning drops the store: handles left over answer `Stopped`.
    pub(crate) async fn run(mut self, mut stop: oneshot::Receiver<()>) -> Result<(), StoreError> {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // A deferred re-key (NodeOptions::rekey_delay) starts on time, not on the next tick.
            let deadline = self.node.next_deadline().map(|t| {
                tokio::time::Instant::from_std(self.started + Duration::from_millis(t.as_millis()))
            });
            let due = async move {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut stop => return Ok(()),
                cmd = self.rx.recv() => match cmd {
                    Some(cmd) => self.command(cmd)?,
                    None => return Ok(()),
                },
                _ = tick.tick() => {
                    let out = self.node.tick(self.now());
                    self.carry_out(out)?;
                }
                () = due => {
                    let out = self.node.tick(self.now());
                    self.carry_out(out)?;
                }
            }
        }
    }

    fn command(&mut self, cmd: Command) -> Result<(), StoreError> {
        let now = self.now();
        match cmd {
            Command::Request { caller, request, reply } => {
                debug!(self.log, "request"; "from" => %caller, "kind" => ?request.kind(), "epoch" => ?request.epoch());
                // Only members whose ack the coordinator counted get a Commit (§6.4): its
                // arrival is the proof that this agent's ack went out over the wire.
                if let Request::Commit { epoch, .. } = &request
                    && self.acked == Some(*epoch)
                {
                    self.failpoints.kill_point(Point::AgentAfterAck);
                }
                self.pending_reply = Some(reply);
                let out = self.node.handle_request(now, &caller, request);
                self.carry_out(out)?;
            }
            Command::PeerResponse { from, response } => {
                let out = self.node.handle_response(now, &from, response);
                self.carry_out(out)?;
            }
            Command::Unlock => {
                let out = self.node.unlock(now);
                self.carry_out(out)?;
            }
            Command::Lock => {
                self.node.lock();
                self.unlocked.send_replace(Unlocked::default());
                info!(self.log, "secrets locked (forgotten from memory)");
            }
            Command::Derive { purpose, context, epoch, len, reply } => {
                let _ = reply.send(self.derive(&purpose, &context, epoch, len));
            }
            Command::AddressBook { book, enrolled, reply } => {
                if enrolled && self.book_pushed {
                    debug!(self.log, "enrollment's address book ignored: a push came first");
                    let _ = reply.send(());
                    return Ok(());
                }
                self.book_pushed |= !enrolled;
                let book: BTreeMap<NodeId, String> = book.into_iter().collect();
                self.store.set_address_book(&book)?;
                info!(self.log, "address book updated"; "nodes" => book.len());
                self.peers.set_book(book);
                let _ = reply.send(());
            }
            Command::Summary(reply) => {
                let _ = reply.send(self.node.status());
            }
        }
        Ok(())
    }

    fn derive(
        &self,
        purpose: &str,
        context: &[u8],
        epoch: Option<u64>,
        len: usize,
    ) -> Result<DerivedKey, KeyError> {
        let committed = self.node.state().latest_committed().map(Epoch::get);
        let held = self.node.unlocked().map(|u| u.epoch.get());
        let wanted = epoch.or(committed).unwrap_or(0);
        if self.node.wants_unlock()
            && committed.is_some_and(|c| c >= wanted)
            && held.is_none_or(|h| epoch.is_some() && h < wanted)
        {
            return Err(KeyError::Pending(wanted));
        }
        let u = self.node.unlocked().ok_or(KeyError::Locked)?;
        let e = match epoch {
            None => u.epoch,
            Some(n) => Epoch::new(n).map_err(|_| KeyError::UnknownEpoch(n))?,
        };
        let secret = u.secrets.0.get(&e).ok_or(KeyError::UnknownEpoch(e.get()))?;
        let key = derive_key(secret, &self.cluster, purpose, context, len)?;
        Ok((e, key))
    }

    /// Carries out outputs in order. A failed Persist stops everything after it.
    fn carry_out(&mut self, out: Vec<NodeOutput>) -> Result<(), StoreError> {
        for o in out {
            match o {
                NodeOutput::Persist(change) => {
                    let res = tokio::task::block_in_place(|| self.store.apply(&change));
                    if let Err(e) = res {
                        crit!(self.log, "durable write failed: stopping without answering"; "error" => %e);
                        if let Some(reply) = self.pending_reply.take() {
                            let _ = reply.send(Err(Stopped::StoreFailed));
                        }
                        return Err(e);
                    }
                    if self.pending_reply.is_some() {
                        self.failpoints.kill_point(Point::AgentAfterPersistBeforeAck);
                    }
                    self.log_change(&change);
                    if matches!(change, NodeChange::Expunged { .. }) {
                        // The node forgot its secrets: watchers must not keep seeing them.
                        self.unlocked.send_replace(Unlocked::default());
                    }
                }
                NodeOutput::Reply(resp) => {
                    if let Response::Error { request, error, .. } = &resp {
                        info!(self.log, "refused"; "request" => ?request, "reason" => %error);
                    }
                    if let Response::PrepareAck { epoch, .. } = &resp {
                        self.acked = Some(*epoch);
                    }
                    if let Some(reply) = self.pending_reply.take() {
                        let _ = reply.send(Ok(resp));
                    }
                }
                NodeOutput::Send { to, request } => self.peers.send(to, request, self.me.clone()),
                NodeOutput::Unlocked { epoch } => {
                    let epochs: Vec<Epoch> = self
                        .node
                        .unlocked()
                        .map(|u| u.secrets.0.keys().copied().collect())
                        .unwrap_or_default();
                    info!(self.log, "cluster secret unlocked"; "epoch" => epoch.get(), "epochs_held" => epochs.len());
                    self.unlocked.send_replace(Unlocked { latest: Some(epoch), epochs });
                }
            }
        }
        self.log_new_alarms();
        Ok(())
    }

    /// Alarms are kept in the node (and reported in its status); each is also logged once.
    fn log_new_alarms(&mut self) {
        let alarms = self.node.alarms();
        for (_, a) in alarms.kept().iter().skip(self.alarms_logged as usize) {
            warn!(self.log, "ALARM: protocol violation"; "alarm" => ?a);
        }
        if alarms.total() > self.alarms_logged {
            self.alarms_logged = alarms.total();
        }
    }

    fn log_change(&self, change: &NodeChange) {
        match change {
            NodeChange::Prepared { config, .. } => {
                info!(self.log, "prepared"; "epoch" => config.epoch().get(), "digest" => config.digest().short(), "members" => config.n(), "threshold" => config.threshold().get())
            }
            NodeChange::Committed { epoch } => info!(self.log, "committed"; "epoch" => epoch.get()),
            NodeChange::CaughtUp { config, .. } => {
                info!(self.log, "caught up and committed"; "epoch" => config.epoch().get(), "digest" => config.digest().short())
            }
            NodeChange::Expunged { epoch } => {
                warn!(self.log, "this node was removed from the cluster: it will do no protocol work until its state is wiped"; "epoch" => epoch.get())
            }
        }
    }
}
