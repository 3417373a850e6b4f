//! Answering GetShare (DESIGN §6.6) and GetLegacyShare (§6.10).

use super::Node;
use super::prepare::mismatch;
use crate::crypto::Digest;
use crate::epoch::Epoch;
use crate::ids::Peer;
use crate::messages::{NodeError, Response};
use crate::time::Time;

impl Node {
    pub(super) fn handle_get_share(
        &mut self,
        now: Time,
        from: &Peer,
        e: Epoch,
        their_digest: Option<Digest>,
    ) -> Result<Response, NodeError> {
        let requester = match from {
            Peer::Node(id) => Some(id),
            _ => None, // the coordinator (authorization already excluded operators)
        };
        // The requester is behind: tell it where the cluster went, or that it was left out.
        if let Some(l) = self.state.latest_committed().filter(|l| *l > e) {
            let config = self.state.configs.get(&l).cloned();
            return Ok(match (requester, config) {
                (Some(r), Some(c)) if !c.is_member(r) => Response::Expunged { epoch: l },
                (_, Some(config)) => Response::CommitAdvance { config },
                // Check() guarantees the latest committed configuration is stored.
                (_, None) => return Err(NodeError::NoShare(e)),
            });
        }
        let Some(config) = self.state.configs.get(&e).cloned() else {
            return Err(NodeError::NoShare(e));
        };
        // Checked first: a requester holding another configuration of `e` may be a member of
        // that one, and Expunged, which it would keep until wiped, would judge it by ours.
        if let Some(theirs) = their_digest.filter(|d| *d != config.digest()) {
            self.raise(now, mismatch(e, from.clone(), config.digest(), theirs));
            return Err(NodeError::MismatchedConfiguration(e));
        }
        if let Some(r) = requester.filter(|r| !config.is_member(r)) {
            // Left out of a committed epoch: expunged. Of a merely prepared one: refused.
            if self.state.committed.contains(&e) {
                return Ok(Response::Expunged { epoch: e });
            }
            return Err(NodeError::NotAMember { epoch: e, node: r.clone() });
        }
        let share = self.state.shares.get(&e).ok_or(NodeError::NoShare(e))?.duplicate();
        // Served even if `e` is not yet known to be committed: peers may need it to unlock
        // before any control plane is up.
        Ok(Response::Share { epoch: e, digest: config.digest(), share })
    }

    pub(super) fn handle_get_legacy_share(&mut self, from: &Peer) -> Result<Response, NodeError> {
        let pkg = self.state.legacy.as_ref().ok_or(NodeError::NoLegacyShare)?;
        let allowed = match from {
            Peer::Coordinator => true,
            Peer::Node(id) => pkg.digests.contains_key(id),
            Peer::Operator(_) => false,
        };
        if !allowed {
            return Err(NodeError::Unauthorized {
                caller: from.clone(),
                request: crate::messages::RequestKind::GetLegacyShare,
            });
        }
        Ok(Response::LegacyShare(pkg.duplicate()))
    }
}
