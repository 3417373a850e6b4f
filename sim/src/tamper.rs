//! A faulty coordinator: Prepares in flight rewritten to equivocate or to carry bad shares.
//! Only the simulation's faulty-coordinator cases use this.

use std::collections::BTreeMap;
use std::sync::Arc;

use rand_core::SeedableRng;
use tq_protocol::crypto::digest::share_digest;
use tq_protocol::crypto::sharing::{deal, random_secret};
use tq_protocol::{Configuration, Epoch, Request, Share, Threshold};

use crate::event::Tamper;
use crate::network::{Msg, Payload};

/// Alternative dealings, so the same variant always yields the same configuration.
pub(crate) struct Tampering {
    seed: u64,
    alternatives: BTreeMap<(Epoch, u8), (Arc<Configuration>, Vec<Share>)>,
}

impl Tampering {
    pub(crate) fn new(seed: u64, case: u64) -> Self {
        Tampering { seed: seed.rotate_left(17) ^ case, alternatives: BTreeMap::new() }
    }

    fn rng(&self, epoch: Epoch, salt: u64) -> rand_chacha::ChaCha20Rng {
        rand_chacha::ChaCha20Rng::seed_from_u64(self.seed ^ epoch.get().rotate_left(32) ^ salt)
    }

    /// Rewrites a Prepare; returns what was done, or None if `msg` is not a Prepare.
    pub(crate) fn apply(&mut self, msg: &mut Msg, how: Tamper) -> Option<String> {
        let Payload::Request(Request::Prepare { config, share }) = &mut msg.payload else {
            return None;
        };
        let e = config.epoch();
        let x = share.index();
        match how {
            Tamper::CorruptShare => {
                let mut y = *share.expose_value();
                y[0] ^= 1;
                *share = Share::from_bytes(x, &y).ok()?;
                Some(format!("flipped a bit of share x={}", x.get()))
            }
            Tamper::ForgeShare => {
                let mut y = [0u8; 32];
                rand_core::Rng::fill_bytes(&mut self.rng(e, u64::from(x.get())), &mut y);
                y[31] &= 0x0f; // below the group order: a canonical scalar
                let forged = Share::from_bytes(x, &y).ok()?;
                let mut parts = config.to_parts();
                let slot = parts.members.iter_mut().find(|m| m.1 == u64::from(x.get()))?;
                slot.2 = share_digest(config.cluster_id(), e, &forged);
                *config = Arc::new(Configuration::try_from(parts).ok()?);
                *share = forged;
                Some(format!("forged share x={} off the polynomial, digest recorded", x.get()))
            }
            Tamper::Equivocate { variant } => {
                if !self.alternatives.contains_key(&(e, variant)) {
                    let alt = self.deal_alternative(config, variant)?;
                    self.alternatives.insert((e, variant), alt);
                }
                let (alt, shares) = &self.alternatives[&(e, variant)];
                *share = shares.get(usize::from(x.get()) - 1)?.duplicate();
                *config = alt.clone();
                Some(format!("equivocated: variant {variant} {alt:?}"))
            }
        }
    }

    fn deal_alternative(
        &self,
        config: &Configuration,
        variant: u8,
    ) -> Option<(Arc<Configuration>, Vec<Share>)> {
        let e = config.epoch();
        let mut rng = self.rng(e, 0xe9 ^ u64::from(variant));
        let k = Threshold::new(config.threshold().get(), config.n()).ok()?;
        let dealing = deal(&random_secret(&mut rng), k, config.n(), &mut rng);
        let mut parts = config.to_parts();
        for (slot, s) in parts.members.iter_mut().zip(&dealing.shares) {
            slot.2 = share_digest(config.cluster_id(), e, s);
        }
        parts.commitments = dealing.commitments.as_bytes().to_vec();
        let alt = Arc::new(Configuration::try_from(parts).ok()?);
        Some((alt, dealing.shares))
    }
}
