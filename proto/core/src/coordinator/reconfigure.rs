//! Starting an epoch: the initial configuration (DESIGN §6.1), a reconfiguration with share
//! collection (§6.2) or a legacy upgrade (§6.10), up to the Prepares.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{
    Attempt, AttemptKind, Coordinator, CoordinatorOutput, LedgerChange, LegacySplit, Phase,
    Progress,
};
use crate::alarm::Alarm;
use crate::config::Configuration;
use crate::crypto::legacy::{self, LegacyPackage};
use crate::crypto::prior::{SecretHistory, open, seal};
use crate::crypto::sharing::{check_secret, combine, deal, random_secret};
use crate::crypto::{Digest, Entropy, Secret, Share};
use crate::epoch::{Epoch, EpochError};
use crate::ids::{NodeId, Peer};
use crate::messages::Request;
use crate::quorum::{QuorumError, Threshold};
use crate::time::Time;

/// An operator's request for a new configuration, already parsed.
#[derive(Debug)]
pub struct ReconfigureRequest {
    /// The members of the new epoch.
    pub members: BTreeSet<NodeId>,
    /// K.
    pub threshold: usize,
    /// The latest committed epoch the caller believes in; must be the coordinator's.
    pub previous_epoch: Option<Epoch>,
    /// Fresh randomness for the dealing.
    pub entropy: Entropy,
}

/// Why a reconfiguration (or legacy upgrade) was refused. Nothing was persisted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReconfigureError {
    /// An attempt is still collecting or preparing.
    #[error("epoch {0} is still in progress: abort it or wait")]
    Busy(Epoch),
    /// The caller's idea of the latest committed epoch is out of date (§6.8).
    #[error("previous epoch is {actual:?}, not {claimed:?}")]
    PreviousEpochMismatch {
        /// What the caller said.
        claimed: Option<Epoch>,
        /// The coordinator's latest committed epoch.
        actual: Option<Epoch>,
    },
    /// N or K out of bounds, or K below the policy.
    #[error(transparent)]
    Quorum(#[from] QuorumError),
    /// A member that never enrolled (§6.13).
    #[error("node {0} has not enrolled with the coordinator")]
    UnknownNode(NodeId),
    /// A member that was left out of a committed epoch and still holds its old state.
    #[error(
        "node {0} was removed from the cluster; wipe its state and restart its agent before adding it back"
    )]
    Removed(NodeId),
    /// No epoch numbers left.
    #[error(transparent)]
    Epoch(#[from] EpochError),
    /// A node holds an epoch this ledger never handed out, or a commit it never made: the
    /// ledger is not this cluster's, or older than it.
    #[error(
        "node {node} holds epoch {epoch}, which this coordinator's ledger never {what}: its state_dir is not this cluster's latest ledger (restore that one; dealing over the members would replace their secrets)"
    )]
    ForeignState {
        /// The node.
        node: NodeId,
        /// The epoch it reports.
        epoch: Epoch,
        /// "committed" or "handed out".
        what: &'static str,
    },
    /// A legacy upgrade after a tq epoch committed.
    #[error("the cluster already committed epoch {0}; there is nothing to upgrade")]
    AlreadyUpgraded(Epoch),
}

impl Coordinator {
    /// Starts a new epoch (§6.1, §6.2): reserves its number durably, then either deals at once
    /// (nothing committed yet) or asks the current members for their shares.
    pub fn reconfigure(
        &mut self,
        now: Time,
        req: ReconfigureRequest,
    ) -> Result<Vec<CoordinatorOutput>, ReconfigureError> {
        let latest = self.ledger.latest.clone();
        let actual = latest.as_ref().map(|c| c.epoch());
        if req.previous_epoch != actual {
            return Err(ReconfigureError::PreviousEpochMismatch {
                claimed: req.previous_epoch,
                actual,
            });
        }
        let (epoch, members, threshold) = self.validate_start(&req.members, req.threshold)?;
        let mut out = Vec::new();
        self.persist(LedgerChange::EpochReserved(epoch), &mut out);
        let kind = match &latest {
            None => AttemptKind::Initial,
            Some(from) => AttemptKind::Reconfigure { from: from.epoch() },
        };
        self.attempt = Some(Attempt {
            epoch,
            kind,
            progress: members.iter().map(|m| (m.clone(), Progress::default())).collect(),
            members,
            threshold,
            started: now,
            phase: Phase::Dealing,
        });
        match latest {
            None => {
                self.deal_and_prepare(now, None, SecretHistory::default(), &req.entropy, &mut out)
            }
            Some(from) => {
                ask_shares(&from, &mut out);
                if let Some(a) = self.attempt.as_mut() {
                    let shares = BTreeMap::new();
                    a.phase = Phase::CollectingShares {
                        from,
                        shares,
                        entropy: req.entropy,
                        asked_at: now,
                    };
                }
            }
        }
        Ok(out)
    }

    /// Starts the upgrade from a legacy split (§6.10): collects K + 1 legacy shares from the
    /// known nodes, then prepares an epoch that carries the legacy secret as epoch 1.
    pub fn upgrade_from_legacy(
        &mut self,
        now: Time,
        members: &BTreeSet<NodeId>,
        threshold: usize,
        entropy: Entropy,
    ) -> Result<Vec<CoordinatorOutput>, ReconfigureError> {
        if let Some(e) = self.ledger.latest_committed() {
            return Err(ReconfigureError::AlreadyUpgraded(e));
        }
        let (epoch, members, threshold) = self.validate_start(members, threshold)?;
        // The legacy secret is epoch 1, so the first tq epoch is at least 2.
        let epoch = epoch.max(Epoch::FIRST.next()?);
        let mut out = Vec::new();
        self.persist(LedgerChange::EpochReserved(epoch), &mut out);
        for id in self.ledger.known.keys() {
            out.push(CoordinatorOutput::Send { to: id.clone(), request: Request::GetLegacyShare });
        }
        self.attempt = Some(Attempt {
            epoch,
            kind: AttemptKind::LegacyUpgrade,
            progress: members.iter().map(|m| (m.clone(), Progress::default())).collect(),
            members,
            threshold,
            started: now,
            phase: Phase::CollectingLegacy { splits: Vec::new(), entropy, asked_at: now },
        });
        Ok(out)
    }

    /// Checks what every new attempt needs and picks its epoch.
    fn validate_start(
        &self,
        members: &BTreeSet<NodeId>,
        k: usize,
    ) -> Result<(Epoch, Vec<NodeId>, Threshold), ReconfigureError> {
        if let Some(a) = self.attempt.as_ref().filter(|a| a.in_flight()) {
            return Err(ReconfigureError::Busy(a.epoch));
        }
        let threshold = Threshold::with_policy(k, members.len(), self.options.threshold_policy)?;
        if let Some(unknown) = members.iter().find(|m| !self.ledger.known.contains_key(*m)) {
            return Err(ReconfigureError::UnknownNode(unknown.clone()));
        }
        if let Some(removed) = members.iter().find(|m| self.ledger.is_removed(m)) {
            return Err(ReconfigureError::Removed(removed.clone()));
        }
        self.check_no_foreign_state()?;
        let epoch = match self.ledger.highest_epoch {
            None => Epoch::FIRST,
            Some(e) => e.next()?,
        };
        Ok((epoch, members.iter().cloned().collect(), threshold))
    }

    /// Refuses to start over nodes whose last report holds state this ledger does not have
    /// (a wrong or restored `state_dir`). Members refuse such a ledger's Prepares as stale,
    /// but once its epoch numbers passed theirs they would accept, and lose their secrets,
    /// an initial configuration (§6.1, §7).
    fn check_no_foreign_state(&self) -> Result<(), ReconfigureError> {
        let handed_out = |e: &Epoch| self.ledger.highest_epoch.is_some_and(|h| *e <= h);
        for (node, t) in &self.trackers {
            let Some(r) = &t.report else { continue };
            let foreign = |epoch: Epoch, what| {
                Err(ReconfigureError::ForeignState { node: node.clone(), epoch, what })
            };
            if let Some((e, d)) = &r.committed
                && self.ledger.committed.get(e) != Some(d)
            {
                return foreign(*e, "committed");
            }
            if let Some((e, _)) = &r.prepared
                && !handed_out(e)
            {
                return foreign(*e, "handed out");
            }
        }
        Ok(())
    }

    pub(super) fn on_share(
        &mut self,
        now: Time,
        from: &NodeId,
        epoch: Epoch,
        digest: Digest,
        share: Share,
        out: &mut Vec<CoordinatorOutput>,
    ) {
        let Some(Attempt { phase: Phase::CollectingShares { from: config, shares, .. }, .. }) =
            self.attempt.as_mut()
        else {
            return;
        };
        if config.epoch() != epoch {
            return;
        }
        let config = config.clone();
        if digest != config.digest() {
            let alarm = Alarm::MismatchedConfiguration {
                epoch,
                from: Peer::Node(from.clone()),
                ours: config.digest(),
                theirs: digest,
            };
            return self.raise(now, alarm);
        }
        if !config.share_matches(from, &share) {
            return self
                .raise(now, Alarm::BadShareFromPeer { epoch, from: Peer::Node(from.clone()) });
        }
        shares.insert(from.clone(), share);
        if shares.len() < config.threshold().get() {
            return;
        }
        // K verified shares: rebuild, check, and deal. The collected shares are dropped
        // (zeroized) when the phase changes below.
        let picked: Vec<&Share> = shares.values().collect();
        let rebuilt = combine(&picked, config.threshold());
        let secret = rebuilt.ok().filter(|s| check_secret(s, config.commitments()).is_ok());
        let Some(secret) = secret else {
            self.raise(now, Alarm::SecretMismatch { epoch });
            return self.abort_attempt(super::AbortReason::ShareCollectionFailed, out);
        };
        let mut history = match config.prior_secrets() {
            None => SecretHistory::default(),
            Some(sealed) => match open(&secret, config.cluster_id(), epoch, sealed) {
                Ok(h) => h,
                Err(_) => {
                    self.raise(now, Alarm::DecryptionFailed { epoch });
                    return self.abort_attempt(super::AbortReason::ShareCollectionFailed, out);
                }
            },
        };
        history.0.insert(epoch, secret);
        let Some(entropy) = self.attempt.as_mut().and_then(Attempt::take_entropy) else { return };
        self.deal_and_prepare(now, Some(epoch), history, &entropy, out);
    }

    pub(super) fn on_legacy_share(
        &mut self,
        now: Time,
        from: &NodeId,
        pkg: LegacyPackage,
        out: &mut Vec<CoordinatorOutput>,
    ) {
        let Some(Attempt { phase: Phase::CollectingLegacy { splits, .. }, .. }) =
            self.attempt.as_mut()
        else {
            return;
        };
        let inconsistent = |id: &NodeId| Alarm::LegacyInconsistent { from: Peer::Node(id.clone()) };
        // A package whose own share is not among its digests is damaged, whatever others say.
        if pkg.digests.get(from) != Some(&pkg.share.digest()) {
            return self.raise(now, inconsistent(from));
        }
        let same = |s: &LegacySplit| s.threshold == pkg.threshold && s.digests == pkg.digests;
        if let Some(held) = splits.iter().find(|s| s.shares.contains_key(from)) {
            // The same answer again changes nothing; a different one contradicts the first.
            if !same(held) {
                self.raise(now, inconsistent(from));
            }
            return;
        }
        let i = match splits.iter().position(same) {
            Some(i) => i,
            None => {
                let (threshold, digests) = (pkg.threshold, pkg.digests);
                splits.push(LegacySplit { threshold, digests, shares: BTreeMap::new() });
                splits.len() - 1
            }
        };
        let split = &mut splits[i];
        split.shares.insert(from.clone(), pkg.share);
        // One share more than K: nothing else proves the packages' K (combine_verified).
        if split.shares.len() <= split.threshold.get() {
            // Judged when a share joins a split, the only answer that can make the upgrade
            // hopeless sooner than its timeout would say so. Too few holders of one split is
            // not a disagreement: it waits out the timeout.
            if LegacySplit::hopeless(splits, self.ledger.known.keys())
                && let Some(holders) = LegacySplit::disagreement(splits)
            {
                self.raise(now, Alarm::LegacySplitsDisagree { holders });
                self.abort_attempt(super::AbortReason::ShareCollectionFailed, out);
            }
            return;
        }
        let combined = legacy::combine_verified(split.threshold, &split.digests, &split.shares);
        // K + 1 packages agreed and rebuilt one secret: a package describing any other split
        // is wrong, and its sender is named.
        let wrong: Vec<NodeId> = splits
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .flat_map(|(_, s)| s.shares.keys().cloned())
            .collect();
        let secret = match combined {
            Ok(s) => s,
            Err(_) => {
                self.raise(now, inconsistent(from));
                return self.abort_attempt(super::AbortReason::ShareCollectionFailed, out);
            }
        };
        for id in &wrong {
            self.raise(now, inconsistent(id));
        }
        let mut history = SecretHistory::default();
        history.0.insert(Epoch::FIRST, secret);
        let Some(entropy) = self.attempt.as_mut().and_then(Attempt::take_entropy) else { return };
        self.deal_and_prepare(now, Some(Epoch::FIRST), history, &entropy, out);
    }

    /// Deals the attempt's epoch, seals `history` into it, and sends the Prepares. The new
    /// secret and the history are dropped (zeroized) on return; only the Prepares' shares
    /// stay, until each member acks.
    fn deal_and_prepare(
        &mut self,
        now: Time,
        previous: Option<Epoch>,
        history: SecretHistory,
        entropy: &Entropy,
        out: &mut Vec<CoordinatorOutput>,
    ) {
        let Some(a) = self.attempt.as_mut() else { return };
        let mut rng = entropy.rng();
        let secret: Secret = random_secret(&mut rng);
        let dealing = deal(&secret, a.threshold, a.members.len(), &mut rng);
        let sealed = previous.map(|_| {
            let mut salt = [0u8; 32];
            rand_core::Rng::fill_bytes(&mut rng, &mut salt);
            seal(&secret, &self.ledger.cluster_id, a.epoch, &history, salt)
        });
        let config = Configuration::from_dealing(
            self.ledger.cluster_id,
            a.epoch,
            previous,
            a.threshold,
            &a.members,
            &dealing,
            sealed,
        );
        // Members are sorted and distinct (a BTreeSet), bounds were checked by Threshold, and
        // previous < epoch because epochs only grow.
        let config =
            Arc::new(config.unwrap_or_else(|e| panic!("dealt configuration invalid: {e}")));
        let unacked: BTreeMap<NodeId, Share> =
            a.members.iter().cloned().zip(dealing.shares).collect();
        // A member that re-enrolled since with a removed node's state (not wiped) is removed
        // again: it gets no share (I8) and so never acks, until it enrolls wiped.
        for (id, share) in unacked.iter().filter(|(id, _)| !self.ledger.is_removed(id)) {
            out.push(CoordinatorOutput::Send {
                to: id.clone(),
                request: Request::Prepare { config: config.clone(), share: share.duplicate() },
            });
        }
        a.phase = Phase::Preparing { config, unacked, asked_at: now };
        self.changed();
    }
}

/// Sends GetShare for `from` to all its members at once (§6.2).
fn ask_shares(from: &Configuration, out: &mut Vec<CoordinatorOutput>) {
    resend_share_requests(from, &BTreeMap::new(), out);
}

pub(super) fn resend_share_requests(
    from: &Configuration,
    have: &BTreeMap<NodeId, Share>,
    out: &mut Vec<CoordinatorOutput>,
) {
    for id in from.members().keys().filter(|id| !have.contains_key(*id)) {
        out.push(CoordinatorOutput::Send {
            to: id.clone(),
            request: Request::GetShare { epoch: from.epoch(), digest: Some(from.digest()) },
        });
    }
}
