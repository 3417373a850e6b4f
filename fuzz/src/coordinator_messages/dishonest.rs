//! The answers no honest node gives: corrupted copies of honest ones and forged ones.

use super::*;

impl Harness {
    /// An answer nobody asked for, from `from`.
    pub(super) fn forged(&self, from: &NodeId, kind: u8, [a, b]: [u8; 2]) -> Option<Response> {
        let e = self.epoch(a);
        let d = self.digest(b, e);
        Some(match kind % 9 {
            0 => Response::PrepareAck { epoch: e, digest: d },
            1 => Response::CommitAck { epoch: e },
            2 => Response::CatchingUp { epoch: e },
            3 => {
                let dealing = self.dealings.get(&e)?;
                let owner = id(NODES[usize::from(b) % NODES.len()]);
                let share = dealing.shares.get(&owner).or(dealing.shares.get(from))?;
                let share = if b & 0x80 == 0 { share.duplicate() } else { tamper(share, b) };
                Response::Share { epoch: e, digest: d, share }
            }
            4 => Response::CommitAdvance { config: self.dealings.get(&e)?.config.clone() },
            5 => Response::Expunged { epoch: e },
            6 => Response::LegacyShare(self.legacy_package(from, b)),
            7 => {
                let mut report = self.models.get(from).map(|m| m.report(from))?;
                match b % 3 {
                    0 => report.committed = Some((e, d)),
                    1 => report.prepared = Some((e, d)),
                    _ => report.expunged = Some(e),
                }
                Response::Status(report)
            }
            _ => {
                let request = REQUEST_KINDS[usize::from(b) % REQUEST_KINDS.len()];
                let error = match b / 6 % 6 {
                    0 => NodeError::NotPrepared(e),
                    1 => NodeError::MismatchedConfiguration(e),
                    2 => NodeError::StaleEpoch { epoch: e, committed: e },
                    3 => NodeError::Expunged(e),
                    4 => NodeError::NoShare(e),
                    _ => NodeError::ShareVerificationFailed(e),
                };
                Response::Error { request, epoch: Some(e), error }
            }
        })
    }
}

pub(super) fn corrupt(r: Response, b: u8) -> Response {
    match r {
        Response::PrepareAck { epoch, mut digest } => {
            digest.0[usize::from(b) % 32] ^= 1;
            Response::PrepareAck { epoch, digest }
        }
        Response::Share { epoch, digest, share } => {
            Response::Share { epoch, digest, share: tamper(&share, b) }
        }
        Response::LegacyShare(mut pkg) => {
            let mut bytes = *pkg.share.expose();
            bytes[1 + usize::from(b) % 32] ^= 1;
            if let Ok(s) = LegacyShare::from_bytes(&bytes) {
                pkg.share = s;
            }
            Response::LegacyShare(pkg)
        }
        Response::Status(mut report) => {
            if let Some((_, d)) = &mut report.committed {
                d.0[0] ^= 1;
            }
            Response::Status(report)
        }
        other => other,
    }
}

/// The share with one bit of y flipped, or moved to another x.
pub(super) fn tamper(share: &Share, b: u8) -> Share {
    let mut y = *share.expose_value();
    if b & 1 == 0 {
        y[usize::from(b >> 1) % 31] ^= 1;
        Share::from_bytes(share.index(), &y)
    } else {
        let x = ShareIndex::new(u64::from(b >> 1) % 8 + 1).unwrap_or(share.index());
        Share::from_bytes(x, &y)
    }
    .unwrap_or_else(|_| share.duplicate())
}
