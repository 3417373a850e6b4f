//! Collecting peers' shares: to unlock (DESIGN §6.7) or to catch up (§6.5). Also what a
//! node does with every answer to its GetShare requests.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::prepare::mismatch;
use super::{Node, NodeChange, NodeOutput, Unlocked};
use crate::alarm::Alarm;
use crate::config::Configuration;
use crate::crypto::prior::{SecretHistory, open};
use crate::crypto::sharing::{check_secret, combine, interpolate_share, verify_share};
use crate::crypto::{Digest, Secret, Share};
use crate::epoch::Epoch;
use crate::ids::{NodeId, Peer};
use crate::messages::{Request, Response};
use crate::time::Time;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// Rebuild the committed secret: K − 1 peers' shares plus our own.
    Unlock,
    /// Compute our missing share of a committed epoch from K peers' shares.
    CatchUp,
}

/// Shares gathered from peers for one epoch.
#[derive(Debug)]
pub(super) struct Collection {
    purpose: Purpose,
    config: Arc<Configuration>,
    shares: BTreeMap<NodeId, Share>,
    pub(super) asked_at: Time,
}

impl Collection {
    pub(super) fn catch_up(config: Arc<Configuration>, now: Time) -> Self {
        Collection { purpose: Purpose::CatchUp, config, shares: BTreeMap::new(), asked_at: now }
    }

    fn unlock(config: Arc<Configuration>, now: Time) -> Self {
        Collection { purpose: Purpose::Unlock, config, shares: BTreeMap::new(), asked_at: now }
    }

    pub(super) fn is_unlock(&self) -> bool {
        self.purpose == Purpose::Unlock
    }

    pub(super) fn epoch(&self) -> Epoch {
        self.config.epoch()
    }

    /// Asks every other member that has not answered yet, all at once.
    pub(super) fn ask(&self, me: &NodeId, out: &mut Vec<NodeOutput>) {
        for id in self.config.members().keys() {
            if id != me && !self.shares.contains_key(id) {
                out.push(NodeOutput::Send {
                    to: id.clone(),
                    request: Request::GetShare {
                        epoch: self.epoch(),
                        digest: Some(self.config.digest()),
                    },
                });
            }
        }
    }

    fn needed(&self) -> usize {
        let k = self.config.threshold().get();
        if self.is_unlock() { k - 1 } else { k }
    }
}

impl Node {
    /// Handles the answer to a request this node sent to peer `from`.
    pub fn handle_response(
        &mut self,
        now: Time,
        from: &NodeId,
        response: Response,
    ) -> Vec<NodeOutput> {
        let mut out = Vec::new();
        if self.state.expunged.is_some() {
            return out;
        }
        match response {
            Response::Share { epoch, digest, share } => {
                self.on_share(now, from, epoch, digest, share, &mut out)
            }
            Response::CommitAdvance { config } => {
                self.on_commit_advance(now, from, config, &mut out)
            }
            Response::Expunged { epoch }
                if self.state.latest_committed().is_none_or(|c| epoch > c) =>
            {
                self.collection = None;
                self.unlocked = None;
                self.want_unlock = false;
                self.persist(NodeChange::Expunged { epoch }, &mut out);
            }
            // Refusals and answers to requests nodes do not send need no action: collection
            // retries on tick, and other peers may answer.
            _ => {}
        }
        out
    }

    /// Starts unlocking the latest committed epoch if wanted and not yet done.
    pub(super) fn maybe_start_unlock(&mut self, now: Time, out: &mut Vec<NodeOutput>) {
        if self.state.expunged.is_some() {
            return;
        }
        let Some(config) = self.state.committed_config().cloned() else { return };
        let already = self.unlocked.as_ref().is_some_and(|u| u.epoch == config.epoch());
        let deferred = self.rekey_at.is_some_and(|t| now < t);
        if !self.want_unlock || already || deferred || self.collection.is_some() {
            return;
        }
        self.rekey_at = None;
        let c = Collection::unlock(config, now);
        c.ask(&self.id, out);
        self.collection = Some(c);
    }

    fn on_share(
        &mut self,
        now: Time,
        from: &NodeId,
        epoch: Epoch,
        digest: Digest,
        share: Share,
        out: &mut Vec<NodeOutput>,
    ) {
        // A node never asks itself; a share "from itself" would stand in for a peer's.
        if *from == self.id {
            return;
        }
        let Some(c) = self.collection.as_ref().filter(|c| c.epoch() == epoch) else { return };
        let config = c.config.clone();
        if digest != config.digest() {
            self.raise(now, mismatch(epoch, Peer::Node(from.clone()), config.digest(), digest));
            return;
        }
        if !config.share_matches(from, &share) {
            self.raise(now, Alarm::BadShareFromPeer { epoch, from: Peer::Node(from.clone()) });
            return;
        }
        let Some(c) = self.collection.as_mut() else { return };
        c.shares.insert(from.clone(), share);
        if c.shares.len() < c.needed() {
            return;
        }
        // Enough: finish, whatever the outcome.
        let Some(c) = self.collection.take() else { return };
        match c.purpose {
            Purpose::Unlock => self.finish_unlock(now, c, out),
            Purpose::CatchUp => self.finish_catch_up(now, c, out),
        }
    }

    fn on_commit_advance(
        &mut self,
        now: Time,
        from: &NodeId,
        config: Arc<Configuration>,
        out: &mut Vec<NodeOutput>,
    ) {
        let e = config.epoch();
        let behind = self.state.latest_committed().is_none_or(|c| e > c);
        if !behind || *config.cluster_id() != self.cluster_id || !config.is_member(&self.id) {
            return;
        }
        match self.state.digest(e) {
            Some(ours) if ours == config.digest() => self.commit_prepared(now, e, out),
            Some(ours) => {
                self.raise(now, mismatch(e, Peer::Node(from.clone()), ours, config.digest()))
            }
            None => {
                if self.collection.as_ref().is_some_and(|c| c.is_unlock()) {
                    self.collection = None;
                }
                self.start_catch_up(now, config, out);
            }
        }
    }

    fn finish_unlock(&mut self, now: Time, c: Collection, out: &mut Vec<NodeOutput>) {
        let e = c.epoch();
        let Some(mine) = self.state.shares.get(&e) else { return };
        let mut picked: Vec<&Share> = vec![mine];
        picked.extend(c.shares.values());
        let secret = match combine(&picked, c.config.threshold()) {
            Ok(s) => s,
            Err(_) => return self.raise(now, Alarm::SecretMismatch { epoch: e }),
        };
        self.install_secrets(now, &c.config, secret, out);
    }

    fn finish_catch_up(&mut self, now: Time, c: Collection, out: &mut Vec<NodeOutput>) {
        let e = c.epoch();
        let k = c.config.threshold();
        let Some(me) = c.config.member(&self.id) else { return };
        let picked: Vec<&Share> = c.shares.values().collect();
        let computed = interpolate_share(&picked, k, me.x).ok().filter(|s| {
            c.config.share_matches(&self.id, s) && verify_share(s, c.config.commitments()).is_ok()
        });
        let Some(share) = computed else {
            return self.raise(now, Alarm::ShareComputationFailed { epoch: e });
        };
        self.persist(NodeChange::CaughtUp { config: c.config.clone(), share }, out);
        // The K shares also give the secret: unlock without another round if wanted.
        if self.want_unlock
            && let Ok(secret) = combine(&picked, k)
        {
            self.install_secrets(now, &c.config, secret, out);
        }
        self.after_commit(now, out);
    }

    /// Checks a rebuilt secret and opens its history (§6.7).
    fn install_secrets(
        &mut self,
        now: Time,
        config: &Configuration,
        secret: Secret,
        out: &mut Vec<NodeOutput>,
    ) {
        let e = config.epoch();
        if check_secret(&secret, config.commitments()).is_err() {
            return self.raise(now, Alarm::SecretMismatch { epoch: e });
        }
        let mut secrets = match config.prior_secrets() {
            None => SecretHistory::default(),
            Some(sealed) => match open(&secret, config.cluster_id(), e, sealed) {
                Ok(h) => h,
                Err(_) => return self.raise(now, Alarm::DecryptionFailed { epoch: e }),
            },
        };
        secrets.0.insert(e, secret);
        self.unlocked = Some(Unlocked { epoch: e, secrets });
        out.push(NodeOutput::Unlocked { epoch: e });
    }
}
