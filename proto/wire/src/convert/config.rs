//! Configurations and shares.

use std::sync::Arc;

use tq_protocol::crypto::prior::PriorSecrets;
use tq_protocol::{ClusterId, Configuration, ConfigurationParts, Digest, Share, ShareIndex};

use super::{WireError, epoch, fixed, node_id};
use crate::pb;

/// A wire configuration, validated (DESIGN §4).
pub fn config_from_pb(c: &pb::Configuration) -> Result<Arc<Configuration>, WireError> {
    let members = c
        .members
        .iter()
        .map(|m| {
            Ok((
                node_id("member node_id", &m.node_id)?,
                u64::from(m.x),
                Digest(fixed("share_digest", &m.share_digest)?),
            ))
        })
        .collect::<Result<Vec<_>, WireError>>()?;
    let commitments = c
        .commitments
        .iter()
        .map(|b| fixed("commitment", b))
        .collect::<Result<Vec<[u8; 32]>, _>>()?;
    let prior_secrets = match &c.prior_secrets {
        None => None,
        Some(p) => Some(PriorSecrets {
            salt: fixed("prior_secrets.salt", &p.salt)?,
            ciphertext: p.ciphertext.clone(),
        }),
    };
    let parts = ConfigurationParts {
        cluster_id: ClusterId::from_bytes(fixed("cluster_id", &c.cluster_id)?),
        epoch: epoch("epoch", c.epoch)?,
        previous_epoch: match c.previous_epoch {
            0 => None,
            n => Some(epoch("previous_epoch", n)?),
        },
        threshold: c.threshold as usize,
        members,
        commitments,
        prior_secrets,
    };
    Ok(Arc::new(Configuration::try_from(parts)?))
}

/// A configuration for the wire.
pub fn config_to_pb(c: &Configuration) -> pb::Configuration {
    let p = c.to_parts();
    pb::Configuration {
        cluster_id: p.cluster_id.as_bytes().to_vec(),
        epoch: p.epoch.get(),
        previous_epoch: p.previous_epoch.map_or(0, |e| e.get()),
        threshold: p.threshold as u32,
        members: p
            .members
            .into_iter()
            .map(|(id, x, d)| pb::Member {
                node_id: id.to_string(),
                x: x as u32,
                share_digest: d.0.to_vec(),
            })
            .collect(),
        commitments: p.commitments.iter().map(|c| c.to_vec()).collect(),
        prior_secrets: p
            .prior_secrets
            .map(|s| pb::PriorSecrets { salt: s.salt.to_vec(), ciphertext: s.ciphertext }),
    }
}

/// A wire share, checked (x ≠ 0, 32 bytes, canonical).
pub fn share_from_pb(s: Option<&pb::Share>) -> Result<Share, WireError> {
    let s = s.ok_or(WireError::Missing("share"))?;
    Ok(Share::from_bytes(ShareIndex::new(u64::from(s.x))?, &s.y)?)
}

/// A share for the wire.
pub fn share_to_pb(s: &Share) -> pb::Share {
    pb::Share { x: u32::from(s.index().get()), y: s.expose_value().to_vec() }
}
