//! Keys derived for consumers on the node's host (DESIGN §5).

use hkdf::SimpleHkdf;
use sha3::Sha3_256;
use zeroize::Zeroizing;

use super::secret::Secret;
use crate::ids::ClusterId;
use crate::recorded::{Kind, record};

const INFO: &[u8] = b"tq-v1-derive";

/// The longest key HKDF-SHA3-256 can produce.
pub const MAX_DERIVED_LEN: usize = 255 * 32;

/// A derived-key request that cannot be met.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeriveError {
    /// The purpose is empty or longer than 255 bytes.
    #[error("purpose must be 1 to 255 bytes, got {0}")]
    Purpose(usize),
    /// Zero bytes, or more than HKDF can give.
    #[error("key length must be 1 to {MAX_DERIVED_LEN} bytes, got {0}")]
    Length(usize),
}

/// HKDF-SHA3-256(ikm = epoch secret, salt = cluster id, info = "tq-v1-derive" ‖ len(purpose)
/// ‖ purpose ‖ context). The purpose is length-prefixed so ("ab", "c") and ("a", "bc") differ.
pub fn derive_key(
    secret: &Secret,
    cluster: &ClusterId,
    purpose: &str,
    context: &[u8],
    len: usize,
) -> Result<Zeroizing<Vec<u8>>, DeriveError> {
    if purpose.is_empty() || purpose.len() > 255 {
        return Err(DeriveError::Purpose(purpose.len()));
    }
    if len == 0 || len > MAX_DERIVED_LEN {
        return Err(DeriveError::Length(len));
    }
    let info = [INFO, &[purpose.len() as u8], purpose.as_bytes(), context].concat();
    let mut out = Zeroizing::new(vec![0u8; len]);
    SimpleHkdf::<Sha3_256>::new(Some(cluster.as_bytes()), secret.expose())
        .expand(&info, &mut out)
        .map_err(|_| DeriveError::Length(len))?;
    record(Kind::DerivedKey, &out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivation_is_bound_to_every_input_section_5() {
        let c = ClusterId::from_bytes([1; 16]);
        let s = Secret::from_bytes(&mut [2; 32]);
        let k = derive_key(&s, &c, "disk", b"sda", 32).unwrap();
        // Cross-checked with Python hashlib/hmac HKDF-SHA3-256.
        assert_eq!(
            hex::encode(&*k),
            "0596f76768cb5525d2313217a64edbc1fd766a06b2c594eac8f37c4fdbc765c8"
        );
        assert_ne!(k, derive_key(&s, &c, "disks", b"da", 32).unwrap());
        assert_ne!(k, derive_key(&s, &c, "disk", b"sdb", 32).unwrap());
        assert_ne!(k, derive_key(&s, &ClusterId::from_bytes([3; 16]), "disk", b"sda", 32).unwrap());
        assert_eq!(derive_key(&s, &c, "", b"", 32).err(), Some(DeriveError::Purpose(0)));
        assert_eq!(derive_key(&s, &c, "p", b"", 0).err(), Some(DeriveError::Length(0)));
        assert_eq!(derive_key(&s, &c, "p", b"", 8161).err(), Some(DeriveError::Length(8161)));
        assert_eq!(derive_key(&s, &c, "p", b"", 64).unwrap().len(), 64);
    }
}
