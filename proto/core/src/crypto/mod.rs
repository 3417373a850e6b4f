//! The cryptography of DESIGN §5.

pub mod derive;
pub mod digest;
pub mod legacy;
pub mod prior;
pub mod secret;
pub mod sharing;

pub use digest::Digest;
pub use secret::{Entropy, Secret, Share, ShareError, ShareIndex};
