//! Prior secrets: every earlier committed (epoch, secret), sealed under a key derived from
//! the new epoch's secret (DESIGN §5), so data sealed under old keys can be re-keyed.

use std::collections::BTreeMap;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::SimpleHkdf;
use sha3::Sha3_256;
use zeroize::Zeroizing;

use super::secret::Secret;
use crate::codec::{Reader, Writer};
use crate::epoch::Epoch;
use crate::ids::ClusterId;

const INFO: &[u8] = b"tq-v1-prior-secrets";

/// The sealed history carried by a configuration (public: only the epoch's secret opens it).
#[derive(Clone, PartialEq, Eq)]
pub struct PriorSecrets {
    /// Fresh random HKDF salt.
    pub salt: [u8; 32],
    /// ChaCha20-Poly1305 ciphertext with its tag.
    pub ciphertext: Vec<u8>,
}

impl std::fmt::Debug for PriorSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PriorSecrets({} bytes)", self.ciphertext.len())
    }
}

/// Secrets by epoch, as unlocked in memory.
#[derive(Debug, Default)]
pub struct SecretHistory(pub BTreeMap<Epoch, Secret>);

impl SecretHistory {
    /// Constant-time comparison of two histories (same epochs, same secrets).
    pub fn ct_eq(&self, other: &SecretHistory) -> bool {
        self.0.len() == other.0.len()
            && self.0.iter().zip(&other.0).all(|((e1, s1), (e2, s2))| e1 == e2 && s1.ct_eq(s2))
    }

    /// A copy. Deliberate, so every copy of secrets is visible in review.
    pub fn duplicate(&self) -> SecretHistory {
        SecretHistory(self.0.iter().map(|(e, s)| (*e, s.duplicate())).collect())
    }
}

/// The prior secrets do not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriorSecretsError {
    /// Authentication failed: wrong secret, or the ciphertext was altered.
    #[error("prior secrets failed to decrypt")]
    Decrypt,
    /// Decrypted but malformed.
    #[error("prior secrets decrypted to a malformed history")]
    Malformed,
}

fn cipher(secret: &Secret, cluster: &ClusterId, epoch: Epoch, salt: &[u8; 32]) -> ChaCha20Poly1305 {
    let hk = SimpleHkdf::<Sha3_256>::new(Some(salt), secret.expose());
    let mut key = Zeroizing::new([0u8; 32]);
    let info = [INFO, cluster.as_bytes(), &epoch.get().to_be_bytes()].concat();
    // 32 bytes is far below HKDF-SHA3-256's 255 × 32 byte limit.
    hk.expand(&info, &mut *key).unwrap_or_else(|_| unreachable!("HKDF output length"));
    ChaCha20Poly1305::new(&Key::from(*key))
}

fn aad(cluster: &ClusterId, epoch: Epoch) -> Vec<u8> {
    [INFO, cluster.as_bytes(), &epoch.get().to_be_bytes()].concat()
}

/// Seals `history` under the secret of `epoch`. The key encrypts this one plaintext only,
/// so the nonce is fixed.
pub fn seal(
    secret: &Secret,
    cluster: &ClusterId,
    epoch: Epoch,
    history: &SecretHistory,
    salt: [u8; 32],
) -> PriorSecrets {
    let mut w = Writer::new();
    w.u32(history.0.len() as u32);
    for (e, s) in &history.0 {
        w.u64(e.get()).fixed(s.expose());
    }
    let plaintext = Zeroizing::new(w.finish());
    let aad = aad(cluster, epoch);
    let ciphertext = cipher(secret, cluster, epoch, &salt)
        .encrypt(&Nonce::default(), Payload { msg: &plaintext, aad: &aad })
        // ChaCha20-Poly1305 only fails on plaintexts beyond 256 GiB.
        .unwrap_or_else(|_| unreachable!("prior secrets are small"));
    PriorSecrets { salt, ciphertext }
}

/// Opens the history sealed under the secret of `epoch`.
pub fn open(
    secret: &Secret,
    cluster: &ClusterId,
    epoch: Epoch,
    sealed: &PriorSecrets,
) -> Result<SecretHistory, PriorSecretsError> {
    let aad = aad(cluster, epoch);
    let plaintext = Zeroizing::new(
        cipher(secret, cluster, epoch, &sealed.salt)
            .decrypt(&Nonce::default(), Payload { msg: &sealed.ciphertext, aad: &aad })
            .map_err(|_| PriorSecretsError::Decrypt)?,
    );
    let mut r = Reader::new(&plaintext);
    let n = r.u32().map_err(|_| PriorSecretsError::Malformed)?;
    let mut out = BTreeMap::new();
    for _ in 0..n {
        let e =
            r.u64().ok().and_then(|e| Epoch::new(e).ok()).ok_or(PriorSecretsError::Malformed)?;
        let mut s = r.fixed::<32>().map_err(|_| PriorSecretsError::Malformed)?;
        if out.insert(e, Secret::from_bytes(&mut s)).is_some() {
            return Err(PriorSecretsError::Malformed);
        }
    }
    r.finish().map_err(|_| PriorSecretsError::Malformed)?;
    Ok(SecretHistory(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(n: u64) -> Epoch {
        Epoch::new(n).unwrap()
    }

    #[test]
    fn seal_open_round_trip_section_5() {
        let c = ClusterId::from_bytes([9; 16]);
        let key = Secret::from_bytes(&mut [5; 32]);
        let mut h = SecretHistory::default();
        h.0.insert(e(1), Secret::from_bytes(&mut [1; 32]));
        h.0.insert(e(3), Secret::from_bytes(&mut [3; 32]));
        let sealed = seal(&key, &c, e(4), &h, [7; 32]);
        assert!(open(&key, &c, e(4), &sealed).unwrap().ct_eq(&h));
        // Known answer, cross-checked with Python's hashlib HKDF-SHA3-256 and the
        // `cryptography` package's ChaCha20Poly1305.
        assert_eq!(hex::encode(&sealed.ciphertext[..16]), "663ec265fe3c56b83d69605392ef4c03");
        assert_eq!(sealed.ciphertext.len(), 4 + 2 * 40 + 16);

        let wrong = Secret::from_bytes(&mut [6; 32]);
        assert_eq!(open(&wrong, &c, e(4), &sealed).err(), Some(PriorSecretsError::Decrypt));
        assert_eq!(open(&key, &c, e(5), &sealed).err(), Some(PriorSecretsError::Decrypt));
        let other = ClusterId::from_bytes([8; 16]);
        assert_eq!(open(&key, &other, e(4), &sealed).err(), Some(PriorSecretsError::Decrypt));
        let mut flipped = sealed.clone();
        flipped.ciphertext[0] ^= 1;
        assert_eq!(open(&key, &c, e(4), &flipped).err(), Some(PriorSecretsError::Decrypt));
        let mut salted = sealed;
        salted.salt[0] ^= 1;
        assert_eq!(open(&key, &c, e(4), &salted).err(), Some(PriorSecretsError::Decrypt));
    }
}
