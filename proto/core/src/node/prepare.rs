//! Prepare, Commit and PrepareAndCommit (DESIGN §6.3, §6.4, §6.5).

use std::sync::Arc;

use super::{Node, NodeChange, NodeOutput, collect::Collection};
use crate::alarm::Alarm;
use crate::bugs::NodeBug;
use crate::config::Configuration;
use crate::crypto::sharing::verify_share;
use crate::crypto::{Digest, Share};
use crate::epoch::Epoch;
use crate::ids::Peer;
use crate::messages::{NodeError, Response};
use crate::time::Time;

impl Node {
    /// §6.3, in the order the design lists the checks.
    pub(super) fn handle_prepare(
        &mut self,
        now: Time,
        config: Arc<Configuration>,
        share: Share,
        out: &mut Vec<NodeOutput>,
    ) -> Result<Response, NodeError> {
        let e = config.epoch();
        if *config.cluster_id() != self.cluster_id {
            return Err(NodeError::WrongCluster);
        }
        if let Some(committed) = self.state.latest_committed().filter(|c| e <= *c)
            && !self.has_bug(NodeBug::AcceptStalePrepare)
        {
            return Err(NodeError::StaleEpoch { epoch: e, committed });
        }
        if let Some(newer) = self.state.highest_prepared().filter(|p| e < *p)
            && !self.has_bug(NodeBug::AcceptStalePrepare)
        {
            return Err(NodeError::Superseded { epoch: e, newer });
        }
        if !config.is_member(&self.id) {
            return Err(NodeError::NotAMember { epoch: e, node: self.id.clone() });
        }
        if !self.has_bug(NodeBug::SkipShareVerification) {
            if !config.share_matches(&self.id, &share) {
                self.raise(now, Alarm::BadShareFromCoordinator { epoch: e });
                return Err(NodeError::ShareDigestMismatch(e));
            }
            if verify_share(&share, config.commitments()).is_err() {
                self.raise(now, Alarm::BadShareFromCoordinator { epoch: e });
                return Err(NodeError::ShareVerificationFailed(e));
            }
        }
        if let Some(stored) = self.state.configs.get(&e) {
            if stored.digest() != config.digest() {
                let ours = stored.digest();
                self.raise(now, mismatch(e, Peer::Coordinator, ours, config.digest()));
                return Err(NodeError::MismatchedConfiguration(e));
            }
            let same_share = self.state.shares.get(&e).is_some_and(|s| s.ct_eq(&share));
            if same_share || self.has_bug(NodeBug::AcceptStalePrepare) {
                // Idempotent: already durable, ack again.
                return Ok(Response::PrepareAck { epoch: e, digest: config.digest() });
            }
            // Same configuration, different share: the share cannot match the digest the
            // configuration records for us, so verification above has already refused it.
            return Err(NodeError::ShareDigestMismatch(e));
        }
        // §6.8: a newer epoch supersedes older in-flight catch-up.
        if self.collection.as_ref().is_some_and(|c| !c.is_unlock() && c.epoch() < e) {
            self.collection = None;
        }
        let digest = config.digest();
        self.persist(NodeChange::Prepared { config, share }, out);
        Ok(Response::PrepareAck { epoch: e, digest })
    }

    /// §6.4.
    pub(super) fn handle_commit(
        &mut self,
        now: Time,
        e: Epoch,
        digest: Digest,
        out: &mut Vec<NodeOutput>,
    ) -> Result<Response, NodeError> {
        if let Some(committed) = self.state.latest_committed().filter(|c| e <= *c) {
            if e == committed {
                return self
                    .check_digest(now, e, digest)
                    .map(|()| Response::CommitAck { epoch: e });
            }
            return Err(NodeError::StaleEpoch { epoch: e, committed });
        }
        if !self.state.configs.contains_key(&e) {
            return Err(NodeError::NotPrepared(e));
        }
        self.check_digest(now, e, digest)?;
        self.commit_prepared(now, e, out);
        Ok(Response::CommitAck { epoch: e })
    }

    /// §6.4/§6.5: commit directly if prepared with the same digest, else catch up from peers.
    pub(super) fn handle_prepare_and_commit(
        &mut self,
        now: Time,
        config: Arc<Configuration>,
        out: &mut Vec<NodeOutput>,
    ) -> Result<Response, NodeError> {
        let e = config.epoch();
        if *config.cluster_id() != self.cluster_id {
            return Err(NodeError::WrongCluster);
        }
        if let Some(committed) = self.state.latest_committed().filter(|c| e <= *c) {
            if e == committed {
                return self
                    .check_digest(now, e, config.digest())
                    .map(|()| Response::CommitAck { epoch: e });
            }
            return Err(NodeError::StaleEpoch { epoch: e, committed });
        }
        if !config.is_member(&self.id) {
            return Err(NodeError::NotAMember { epoch: e, node: self.id.clone() });
        }
        if self.state.configs.contains_key(&e) {
            self.check_digest(now, e, config.digest())?;
            self.commit_prepared(now, e, out);
            return Ok(Response::CommitAck { epoch: e });
        }
        self.start_catch_up(now, config, out);
        Ok(Response::CatchingUp { epoch: e })
    }

    /// Raises the alarm when `digest` is not the one stored for `e`.
    fn check_digest(&mut self, now: Time, e: Epoch, digest: Digest) -> Result<(), NodeError> {
        match self.state.digest(e) {
            Some(ours) if ours != digest => {
                self.raise(now, mismatch(e, Peer::Coordinator, ours, digest));
                Err(NodeError::MismatchedConfiguration(e))
            }
            _ => Ok(()),
        }
    }

    /// Commits a prepared epoch and moves in-flight work to it.
    pub(super) fn commit_prepared(&mut self, now: Time, e: Epoch, out: &mut Vec<NodeOutput>) {
        self.persist(NodeChange::Committed { epoch: e }, out);
        self.after_commit(now, out);
    }

    /// §6.8: older in-flight state is dropped; a node that wants its secrets follows the
    /// commit and unlocks the new epoch.
    pub(super) fn after_commit(&mut self, now: Time, out: &mut Vec<NodeOutput>) {
        let committed = self.state.latest_committed();
        if self.collection.as_ref().is_some_and(|c| Some(c.epoch()) <= committed) {
            self.collection = None;
        }
        let rekey =
            self.want_unlock && self.unlocked.as_ref().is_some_and(|u| Some(u.epoch) < committed);
        let delay = self.options.rekey_delay;
        if rekey && !delay.is_zero() {
            // Spread the members' re-keys over [delay, 2 × delay) by a fixed per-node offset.
            let spread = self
                .id
                .as_str()
                .bytes()
                .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
            self.rekey_at = Some(now + delay + delay.mul_f64(f64::from(spread % 1000) / 1000.0));
            return;
        }
        self.maybe_start_unlock(now, out);
    }

    pub(super) fn start_catch_up(
        &mut self,
        now: Time,
        config: Arc<Configuration>,
        out: &mut Vec<NodeOutput>,
    ) {
        let e = config.epoch();
        if self.collection.as_ref().is_some_and(|c| !c.is_unlock() && c.epoch() >= e) {
            return; // already catching up to this or a newer epoch
        }
        let c = Collection::catch_up(config, now);
        c.ask(&self.id, out);
        self.collection = Some(c);
    }
}

pub(super) fn mismatch(epoch: Epoch, from: Peer, ours: Digest, theirs: Digest) -> Alarm {
    Alarm::MismatchedConfiguration { epoch, from, ours, theirs }
}
