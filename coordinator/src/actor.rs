//! The coordinator's one task that owns the protocol state and the ledger. Operator calls,
//! enrollments, node answers and ticks go through its channel; it carries out outputs in
//! order (a `Persist` is durable before anything after it: the commit decision before any
//! Commit, DESIGN §6.4), fans requests out concurrently, and publishes the status so that
//! polls never wait on it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use slog::{Logger, crit, debug, info, warn};
use tokio::sync::{mpsc, oneshot, watch};
use tonic::transport::Channel;
use tq_protocol::coordinator::status::PhaseStatus;
use tq_protocol::coordinator::{
    AbortError, CommitError, Coordinator, CoordinatorOutput, LedgerChange, ReconfigureError,
    ReconfigureRequest,
};
use tq_protocol::{
    Entropy, Epoch, NodeId, NodeStatusReport, Peer, Request, RequestKind, Response, Time,
};
use tq_wire::client::{ClientLimits, call_node, channel};
use tq_wire::convert::{WallClock, attempt_to_pb, cluster_status_to_pb};
use tq_wire::pb;
use tq_wire::status_bytes::EncodedStatus;
use tq_wire::tls::TlsMaterial;

use crate::store::LedgerStore;
use tq_wire::durable::StoreError;
use tq_wire::failpoint::{Failpoints, Point};

/// What an operator asked for.
#[derive(Debug)]
pub enum Operation {
    /// A new configuration.
    Reconfigure {
        /// Its members.
        members: BTreeSet<NodeId>,
        /// K.
        threshold: usize,
        /// The caller's idea of the latest committed epoch.
        previous_epoch: Option<Epoch>,
    },
    /// The legacy upgrade.
    UpgradeFromLegacy {
        /// The first epoch's members.
        members: BTreeSet<NodeId>,
        /// K.
        threshold: usize,
    },
    /// Abort the epoch in flight.
    Abort,
    /// Commit the preparing epoch.
    Commit,
}

/// Why an operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum OperationError {
    /// Reconfigure or upgrade refused.
    #[error(transparent)]
    Reconfigure(#[from] ReconfigureError),
    /// Commit refused.
    #[error(transparent)]
    Commit(#[from] CommitError),
    /// Abort refused.
    #[error(transparent)]
    Abort(#[from] AbortError),
    /// No randomness from the operating system.
    #[error("no randomness from the operating system: {0}")]
    Entropy(String),
    /// The coordinator is stopping.
    #[error("the coordinator is stopping")]
    Stopped,
    /// A ledger write this request needed failed: the request may or may not have taken
    /// effect (poll the status once the coordinator is back), and the coordinator stops until
    /// it is restarted (DESIGN §7).
    #[error("the coordinator stopped: a ledger write failed (its log says why)")]
    StoreFailed,
}

#[derive(Debug)]
pub(crate) enum Command {
    Operate {
        op: Operation,
        reply: oneshot::Sender<Result<pb::Attempt, OperationError>>,
    },
    Enroll {
        address: String,
        version: String,
        summary: NodeStatusReport,
        reply: oneshot::Sender<Vec<(NodeId, String)>>,
    },
    NodeResponse {
        from: NodeId,
        response: Response,
        /// The request it answers, in flight until the answer is handled.
        answered: Answered,
        /// When that request was sent (a late answer can describe older state, §6.11).
        asked_at: Time,
    },
    /// A request got no answer: the node was unreachable or the call failed.
    Unanswered {
        to: NodeId,
        answered: Answered,
    },
}

/// A request's kind and epoch.
type Asked = (RequestKind, Option<Epoch>);

/// A cloneable handle to the actor.
#[derive(Clone, Debug)]
pub struct CoordinatorHandle {
    tx: mpsc::Sender<Command>,
    status: watch::Receiver<EncodedStatus>,
    nodes: watch::Receiver<Arc<pb::NodesResponse>>,
}

impl CoordinatorHandle {
    /// Carries out an operator's request.
    pub async fn operate(&self, op: Operation) -> Result<pb::Attempt, OperationError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::Operate { op, reply }).await.map_err(|_| OperationError::Stopped)?;
        rx.await.map_err(|_| OperationError::Stopped)?
    }

    /// Registers an agent; returns the address book.
    pub async fn enroll(
        &self,
        address: String,
        version: String,
        summary: NodeStatusReport,
    ) -> Option<Vec<(NodeId, String)>> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::Enroll { address, version, summary, reply }).await.ok()?;
        rx.await.ok()
    }

    /// The latest published status.
    pub fn status(&self) -> watch::Receiver<EncodedStatus> {
        self.status.clone()
    }

    /// The latest published node list.
    pub fn nodes(&self) -> Arc<pb::NodesResponse> {
        self.nodes.borrow().clone()
    }
}

pub(crate) struct Actor {
    core: Coordinator,
    store: LedgerStore,
    tls: TlsMaterial,
    limits: ClientLimits,
    channels: BTreeMap<NodeId, (String, Channel)>,
    /// Requests sent and not yet answered (or failed): a retry of one of them waits until
    /// it is. Under load (a 1024-member Prepare takes seconds to get through every agent)
    /// retries sent on top of calls still in flight made each agent decode and verify the
    /// same Prepare again and again, and the acks never caught up (tq-testbed bench).
    in_flight: Arc<std::sync::Mutex<BTreeSet<InFlight>>>,
    /// PrepareAndCommits for members with a Prepare or Commit of the same epoch in flight,
    /// sent only if that call ends with the member neither committed nor sent what it needs
    /// next. At the decision every member short of K + Z acks gets one (§6.4), yet those
    /// members are mostly just slower: their Prepare acks a moment later and gets a Commit at
    /// once. The PrepareAndCommit on top made each of them decode the configuration and its
    /// K + 1 commitments a second time (at N = 1024, 383 members × 66 kB and 4.6 ms each).
    held: BTreeMap<(NodeId, Epoch), Request>,
    started: Instant,
    clock: WallClock,
    log: Logger,
    rx: mpsc::Receiver<Command>,
    me: mpsc::WeakSender<Command>,
    status: watch::Sender<EncodedStatus>,
    nodes: watch::Sender<Arc<pb::NodesResponse>>,
    published_version: u64,
    /// Added to the core's status version, which starts at 1 in every run: this run's start
    /// in unix ms times 2¹⁰, so that a version a poll saw before a restart never comes back
    /// (§8) unless the earlier run changed its status 1 024 times per millisecond between the
    /// two starts. Versions stay below 2⁵³ (until 2248), so a control plane reading
    /// `tqctl status --json` as doubles (JavaScript, jq 1.6) sees each one exactly.
    version_base: u64,
    published_at: Instant,
    /// How long the last publication took (it is O(N): the whole status, twice over).
    publish_cost: Duration,
    versions: BTreeMap<NodeId, String>,
    /// Per node, the latest address book and the channel to deliver it on; one task per node
    /// delivers them in order (latest wins) and retries until one arrives.
    books: BTreeMap<NodeId, watch::Sender<(Channel, Arc<pb::AddressBook>)>>,
    /// The address book changed and is not pushed yet; pushed then ([`BOOK_GAP`]).
    book_changed: bool,
    book_pushed_at: Instant,
    failpoints: Failpoints,
}

/// Room for a burst of operator calls and node answers; senders wait when it is full.
const QUEUE: usize = 4096;

impl Actor {
    pub(crate) fn new(
        core: Coordinator,
        store: LedgerStore,
        tls: TlsMaterial,
        started: Instant,
        log: Logger,
        failpoints: Failpoints,
    ) -> (Actor, CoordinatorHandle) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let unix_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let clock = WallClock::new(unix_ms - started.elapsed().as_millis() as i64);
        let (status_tx, status_rx) = watch::channel(EncodedStatus::default());
        let (nodes_tx, nodes_rx) = watch::channel(Arc::new(pb::NodesResponse::default()));
        let actor = Actor {
            core,
            store,
            tls,
            limits: ClientLimits::default(),
            channels: BTreeMap::new(),
            in_flight: Arc::default(),
            held: BTreeMap::new(),
            started,
            clock,
            log,
            rx,
            me: tx.downgrade(),
            status: status_tx,
            nodes: nodes_tx,
            published_version: 0,
            version_base: (unix_ms.max(0) as u64) << 10,
            published_at: Instant::now(),
            publish_cost: Duration::ZERO,
            versions: BTreeMap::new(),
            books: BTreeMap::new(),
            book_changed: false,
            book_pushed_at: Instant::now(),
            failpoints,
        };
        (actor, CoordinatorHandle { tx, status: status_rx, nodes: nodes_rx })
    }

    fn now(&self) -> Time {
        Time::from_millis(self.started.elapsed().as_millis() as u64)
    }

    /// Carries out what restoring the ledger returned (durably) and publishes the first
    /// status: call before serving, so that no poll ever sees an empty status.
    pub(crate) fn start(&mut self, first: Vec<CoordinatorOutput>) -> Result<(), StoreError> {
        self.carry_out(first)?;
        self.publish(true);
        // A push lost with the previous process (killed inside BOOK_GAP, or before the
        // delivery got through) would leave an agent without a peer's address until some
        // other node moves: agents enroll only when they start, not when we do (§6.13).
        self.book_changed = !self.core.ledger().known.is_empty();
        self.book_pushed_at = Instant::now().checked_sub(BOOK_GAP).unwrap_or_else(Instant::now);
        Ok(())
    }

    /// Runs until `stop` fires (or its sender is dropped), every handle is dropped, or a
    /// ledger write fails. Returning drops the ledger: handles left over answer `Stopped`.
    pub(crate) async fn run(mut self, mut stop: oneshot::Receiver<()>) -> Result<(), StoreError> {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let due = match (self.publish_due(), self.book_due()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let publish = async move {
                match due {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
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
                    let out = self.core.tick(self.now());
                    self.carry_out(out)?;
                }
                () = publish => {}
            }
            self.publish(false);
            if self.book_due().is_some_and(|at| at <= Instant::now()) {
                self.push_book();
            }
        }
    }

    fn command(&mut self, cmd: Command) -> Result<(), StoreError> {
        let now = self.now();
        match cmd {
            Command::Operate { op, reply } => {
                let res = self.operate(now, op);
                let res = match res {
                    Ok(out) => {
                        if let Err(e) = self.carry_out(out) {
                            let _ = reply.send(Err(OperationError::StoreFailed));
                            return Err(e);
                        }
                        // Before the reply, past the throttle: a poll the caller sends once
                        // it has the answer must show what the call did (§8).
                        self.publish(true);
                        let attempt = self.core.attempt_status();
                        Ok(attempt.map(|a| attempt_to_pb(&a, &self.clock)).unwrap_or_default())
                    }
                    Err(e) => {
                        info!(self.log, "operator request refused"; "reason" => %e);
                        Err(e)
                    }
                };
                let _ = reply.send(res);
            }
            Command::Enroll { address, version, summary, reply } => {
                let node = summary.node_id.clone();
                self.versions.insert(node.clone(), version);
                let before = self.core.ledger().known.clone();
                let out = self.core.enroll(now, address.clone(), summary);
                self.carry_out(out)?;
                info!(self.log, "node enrolled"; "node" => %node, "address" => &address);
                self.book_changed |= before != self.core.ledger().known;
                let _ = reply.send(self.book());
            }
            Command::NodeResponse { from, response, answered, asked_at } => {
                let asked = answered.asked();
                if let Response::Status(_) = &response {
                } else {
                    debug!(self.log, "answer"; "from" => %from, "answer" => summarize(&response));
                }
                let ack = matches!(response, Response::PrepareAck { .. });
                let committed =
                    matches!(response, Response::CommitAck { epoch } if Some(epoch) >= asked.1);
                let out = self.core.handle_response(now, &from, asked_at, response);
                // Whatever the core sends next to this node may go out.
                drop(answered);
                let commit_sent = out.iter().any(|o| {
                    matches!(o, CoordinatorOutput::Send { to, request }
                        if *to == from && request.epoch() == asked.1)
                });
                self.carry_out(out)?;
                self.call_ended(&from, asked, committed || commit_sent);
                if ack
                    && self.core.attempt_status().is_some_and(|a| a.phase == PhaseStatus::Preparing)
                {
                    self.failpoints.kill_point(Point::CoordinatorMidPrepare);
                }
            }
            Command::Unanswered { to, answered } => {
                let asked = answered.asked();
                drop(answered);
                self.call_ended(&to, asked, false);
            }
        }
        Ok(())
    }

    /// A Prepare or Commit's answer was handled (or it got none): the PrepareAndCommit held
    /// for it goes out, unless it is `settled` (the member committed, or the core has sent it
    /// what it needs next) or the epoch is no longer the latest committed one.
    fn call_ended(&mut self, node: &NodeId, (kind, epoch): Asked, settled: bool) {
        let waits_for = matches!(kind, RequestKind::Prepare | RequestKind::Commit);
        let Some(e) = epoch.filter(|_| waits_for) else { return };
        let Some(held) = self.held.remove(&(node.clone(), e)) else { return };
        let latest = self.core.ledger().latest.as_ref().map(|c| c.epoch());
        if !settled && latest == Some(e) {
            self.send(node.clone(), held);
        }
    }

    fn operate(
        &mut self,
        now: Time,
        op: Operation,
    ) -> Result<Vec<CoordinatorOutput>, OperationError> {
        match op {
            Operation::Reconfigure { members, threshold, previous_epoch } => {
                info!(self.log, "reconfigure requested"; "members" => members.len(), "threshold" => threshold, "previous_epoch" => ?previous_epoch.map(Epoch::get));
                let req =
                    ReconfigureRequest { members, threshold, previous_epoch, entropy: entropy()? };
                Ok(self.core.reconfigure(now, req)?)
            }
            Operation::UpgradeFromLegacy { members, threshold } => {
                info!(self.log, "upgrade from the legacy split requested"; "members" => members.len(), "threshold" => threshold);
                Ok(self.core.upgrade_from_legacy(now, &members, threshold, entropy()?)?)
            }
            Operation::Abort => Ok(self.core.abort()?),
            Operation::Commit => Ok(self.core.commit(now)?),
        }
    }

    fn carry_out(&mut self, out: Vec<CoordinatorOutput>) -> Result<(), StoreError> {
        for o in out {
            match o {
                CoordinatorOutput::Persist(change) => {
                    let res = tokio::task::block_in_place(|| self.store.apply(&change));
                    if let Err(e) = res {
                        crit!(self.log, "ledger write failed: stopping before anything depends on it"; "error" => %e);
                        return Err(e);
                    }
                    self.log_change(&change);
                    if matches!(change, LedgerChange::Committed { .. }) {
                        self.failpoints.kill_point(Point::CoordinatorAfterCommitDecision);
                    }
                }
                CoordinatorOutput::Send { to, request } => self.send(to, request),
            }
        }
        Ok(())
    }

    fn log_change(&self, change: &LedgerChange) {
        match change {
            LedgerChange::EpochReserved(e) => info!(self.log, "epoch reserved"; "epoch" => e.get()),
            LedgerChange::Committed { config, by_operator } => info!(self.log, "commit decided";
                "epoch" => config.epoch().get(), "digest" => config.digest().short(), "members" => config.n(),
                "threshold" => config.threshold().get(), "by_operator" => by_operator),
            LedgerChange::Aborted { epoch, reason } => {
                warn!(self.log, "epoch aborted"; "epoch" => epoch.get(), "reason" => reason.as_str())
            }
            LedgerChange::NodeEnrolled { .. } => {}
        }
    }

    fn channel(&mut self, id: &NodeId) -> Option<Channel> {
        let addr = self.core.ledger().known.get(id)?.address.clone();
        if let Some((_, c)) = self.channels.get(id).filter(|(a, _)| *a == addr) {
            return Some(c.clone());
        }
        let c = channel(&self.tls, Peer::Node(id.clone()), &addr, &self.limits).ok()?;
        self.channels.insert(id.clone(), (addr, c.clone()));
        Some(c)
    }

    /// Fans a request out in its own task; the answer comes back through the channel.
    fn send(&mut self, to: NodeId, request: Request) {
        let Some(ch) = self.channel(&to) else {
            debug!(self.log, "no address for node: it has not enrolled"; "node" => %to);
            return;
        };
        let asked = (request.kind(), request.epoch());
        let key = (to.clone(), asked.0, asked.1);
        let waited_for = |f: &BTreeSet<InFlight>| {
            [RequestKind::Prepare, RequestKind::Commit]
                .into_iter()
                .any(|k| f.contains(&(to.clone(), k, asked.1)))
        };
        let (hold, fresh) = match self.in_flight.lock() {
            Ok(f) if asked.0 == RequestKind::PrepareAndCommit && waited_for(&f) => (true, false),
            Ok(mut f) => (false, f.insert(key.clone())),
            Err(_) => (false, true),
        };
        if let (true, Some(e)) = (hold, asked.1) {
            debug!(self.log, "held until the Prepare or Commit in flight is answered"; "node" => %to, "request" => ?asked.0);
            self.held.insert((to, e), request);
            return;
        }
        if !fresh {
            debug!(self.log, "still in flight: not sent again"; "node" => %to, "request" => ?asked.0);
            return;
        }
        let answered = Answered(self.in_flight.clone(), key);
        let asked_at = self.now();
        let (me, limits, log) = (self.me.clone(), self.limits, self.log.clone());
        tokio::spawn(async move {
            let res = call_node(ch, &request, &limits).await;
            let cmd = match res {
                Ok(response) => Command::NodeResponse { from: to, response, answered, asked_at },
                Err(e) => {
                    debug!(log, "node unreachable"; "node" => %to, "request" => ?asked.0, "error" => %e.message());
                    Command::Unanswered { to, answered }
                }
            };
            if let Some(me) = me.upgrade() {
                let _ = me.send(cmd).await;
            }
        });
    }

    fn book(&self) -> Vec<(NodeId, String)> {
        self.core.ledger().known.iter().map(|(id, k)| (id.clone(), k.address.clone())).collect()
    }

    /// Sends every agent the new address book (§6.13), retrying until it arrives (an agent
    /// also gets it when it enrolls). Pushes to one node go out one at a time, newest last:
    /// concurrent pushes could arrive out of order and leave an agent with an older book.
    fn push_book(&mut self) {
        let book = self.book();
        self.book_changed = false;
        self.book_pushed_at = Instant::now();
        let msg = Arc::new(pb::AddressBook {
            entries: book
                .iter()
                .map(|(id, a)| pb::AddressEntry { node_id: id.to_string(), address: a.clone() })
                .collect(),
        });
        let retry = self.core.options().retry_interval;
        for (id, _) in &book {
            let Some(ch) = self.channel(id) else { continue };
            match self.books.get(id) {
                Some(tx) if !tx.is_closed() => {
                    tx.send_replace((ch, msg.clone()));
                }
                _ => {
                    let (tx, rx) = watch::channel((ch, msg.clone()));
                    tokio::spawn(deliver_books(rx, retry));
                    self.books.insert(id.clone(), tx);
                }
            }
        }
    }

    /// When the changed address book is due to be pushed, if it changed.
    fn book_due(&self) -> Option<Instant> {
        self.book_changed.then(|| self.book_pushed_at + BOOK_GAP)
    }

    /// The least time between two publications of a changed status: ten times what the last
    /// one cost, so that under a burst of answers (N acks per phase) at most a tenth of the
    /// actor's time goes to rebuilding the O(N) status, instead of one rebuild per answer:
    /// O(N²) per reconfiguration (tq-testbed bench, BENCHMARKS.md). A lone change is
    /// published at once.
    fn publish_gap(&self) -> Duration {
        (self.publish_cost * 10).min(Duration::from_millis(50))
    }

    /// When a changed status is next due, if one is waiting.
    fn publish_due(&self) -> Option<Instant> {
        (self.core.status_version() != self.published_version)
            .then(|| self.published_at + self.publish_gap())
    }

    /// Publishes the status when its version moved (see [`Actor::publish_gap`]), and at least
    /// every second (last contact times advance without a version change).
    fn publish(&mut self, force: bool) {
        let v = self.core.status_version();
        let since = self.published_at.elapsed();
        let moved = v != self.published_version;
        let due =
            force || (moved && since >= self.publish_gap()) || since >= Duration::from_secs(1);
        if !due {
            return;
        }
        let start = Instant::now();
        let now = self.now();
        let status = self.core.status(now);
        let mut pb = cluster_status_to_pb(&status, &self.clock);
        pb.version = pb.version.wrapping_add(self.version_base);
        self.status.send_replace(EncodedStatus::new(&pb));
        let nodes = self.node_list(&status);
        self.nodes.send_replace(Arc::new(nodes));
        self.published_version = v;
        self.published_at = Instant::now();
        self.publish_cost = self.published_at - start;
    }

    fn node_list(
        &self,
        status: &tq_protocol::coordinator::status::ClusterStatus,
    ) -> pb::NodesResponse {
        let stale: BTreeSet<&NodeId> =
            status.members.iter().filter(|m| m.stale.is_some()).map(|m| &m.node_id).collect();
        let nodes = self
            .core
            .ledger()
            .known
            .iter()
            .map(|(id, k)| {
                let t = self.core.tracker(id);
                let r = t.and_then(|t| t.report.as_ref());
                pb::NodeInfo {
                    node_id: id.to_string(),
                    address: k.address.clone(),
                    fresh: k.fresh,
                    last_contact_ms: t
                        .and_then(|t| t.last_contact)
                        .map_or(0, |c| self.clock.unix_ms(c)),
                    committed_epoch: r.and_then(|r| r.committed).map_or(0, |c| c.0.get()),
                    prepared_epoch: r.and_then(|r| r.prepared).map_or(0, |c| c.0.get()),
                    expunged: r.and_then(|r| r.expunged).map_or(0, Epoch::get),
                    unlocked: r.and_then(|r| r.unlocked).map_or(0, Epoch::get),
                    version: self.versions.get(id).cloned().unwrap_or_default(),
                    stale: stale.contains(id),
                }
            })
            .collect();
        pb::NodesResponse { nodes }
    }
}

/// A request to a node, as far as retries are concerned.
type InFlight = (NodeId, RequestKind, Option<Epoch>);

/// Takes a request off the in-flight set when dropped: once the actor has handled its answer
/// (or its failure), or when the answer cannot reach the actor. Dropped when the call ended
/// instead, the answer could wait behind hundreds in the actor's queue while a retry saw
/// the request as no longer in flight and sent it again (at N = 1024, members decoded and
/// checked the same Prepare twice, and got PrepareAndCommits on top of Commits).
#[derive(Debug)]
pub(crate) struct Answered(Arc<std::sync::Mutex<BTreeSet<InFlight>>>, InFlight);

impl Answered {
    /// The request's kind and epoch.
    fn asked(&self) -> Asked {
        (self.1.1, self.1.2)
    }
}

impl Drop for Answered {
    fn drop(&mut self) {
        if let Ok(mut f) = self.0.lock() {
            f.remove(&self.1);
        }
    }
}

/// The least time between two pushes of a changed address book. Every enrollment that adds
/// or moves a node changes the book, and a push sends the whole book (N entries) to every
/// node: pushed per enrollment, bringing up N agents would send O(N³) entries (at N = 256 the
/// enrollments took seconds; tq-testbed bench). An enrolling agent gets the current book in
/// the enrollment's reply anyway.
const BOOK_GAP: Duration = Duration::from_millis(100);

/// Delivers one node's address books in order, the latest one at any time; retries (with
/// backoff) until it is delivered or a newer one replaces it. Ends with the actor.
async fn deliver_books(mut rx: watch::Receiver<(Channel, Arc<pb::AddressBook>)>, retry: Duration) {
    let mut backoff = retry;
    loop {
        let (ch, book) = rx.borrow_and_update().clone();
        let delivered = pb::node_agent_client::NodeAgentClient::new(ch)
            .push_address_book(Arc::unwrap_or_clone(book))
            .await
            .is_ok();
        if delivered {
            backoff = retry;
            if rx.changed().await.is_err() {
                return;
            }
        } else {
            tokio::select! {
                r = rx.changed() => if r.is_err() { return },
                () = tokio::time::sleep(backoff) => {
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
}

fn entropy() -> Result<Entropy, OperationError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| OperationError::Entropy(e.to_string()))?;
    Ok(Entropy::from_bytes(&mut bytes))
}

fn summarize(r: &Response) -> String {
    match r {
        Response::Share { epoch, share, .. } => {
            format!("share of epoch {epoch} x={}", share.index().get())
        }
        Response::LegacyShare(p) => format!("legacy share x={}", p.share.expose()[0]),
        Response::CommitAdvance { config } => format!("commit advance to {config:?}"),
        other => format!("{other:?}"),
    }
}
