//! Identities (DESIGN §3): node ids, the cluster id, and who a message came from.

use std::fmt;
use std::str::FromStr;

/// A node id: 1 to 64 characters of `[a-z0-9-]` (DESIGN §3).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(String);

/// Why a string is not a [`NodeId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeIdError {
    /// Empty, or longer than 64 bytes.
    #[error("node id must be 1 to 64 characters, got {0}")]
    Length(usize),
    /// A character outside `[a-z0-9-]`.
    #[error("node id may only contain a-z, 0-9 and '-', found {0:?}")]
    Character(char),
}

impl NodeId {
    /// The longest node id.
    pub const MAX_LEN: usize = 64;

    /// Parses a node id.
    pub fn new(s: impl Into<String>) -> Result<Self, NodeIdError> {
        let s = s.into();
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return Err(NodeIdError::Length(s.len()));
        }
        if let Some(c) = s.chars().find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '-')) {
            return Err(NodeIdError::Character(c));
        }
        Ok(NodeId(s))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for NodeId {
    type Err = NodeIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NodeId::new(s)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The cluster id: a UUID, kept as its 16 bytes (DESIGN §3).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClusterId([u8; 16]);

/// Why a string is not a [`ClusterId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cluster id must be a UUID like 01234567-89ab-cdef-0123-456789abcdef, got {0:?}")]
pub struct ClusterIdError(pub String);

impl ClusterId {
    /// A cluster id from its 16 bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        ClusterId(bytes)
    }

    /// The 16 bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl FromStr for ClusterId {
    type Err = ClusterIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ClusterIdError(s.chars().take(64).collect());
        let dashes_ok = s.len() == 36
            && s.char_indices().all(|(i, c)| (c == '-') == matches!(i, 8 | 13 | 18 | 23));
        if !dashes_ok {
            return Err(err());
        }
        let digits: String = s.chars().filter(|c| *c != '-').collect();
        let mut out = [0u8; 16];
        hex::decode_to_slice(digits, &mut out).map_err(|_| err())?;
        Ok(ClusterId(out))
    }
}

impl fmt::Display for ClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = hex::encode(self.0);
        write!(f, "{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
    }
}

impl fmt::Debug for ClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Who sent a request, as proven by the transport (a verified certificate's URI SAN,
/// DESIGN §3); never a field of the message.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Peer {
    /// The coordinator (`spiffe://<cluster>/coordinator`).
    Coordinator,
    /// A node agent (`spiffe://<cluster>/node/<id>`).
    Node(NodeId),
    /// An operator or control plane (`spiffe://<cluster>/operator/<name>`).
    Operator(String),
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Coordinator => f.write_str("coordinator"),
            Peer::Node(id) => write!(f, "node/{id}"),
            Peer::Operator(name) => write!(f, "operator/{name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_rules_section_3() {
        assert!(NodeId::new("node-1").is_ok());
        assert!(NodeId::new("a".repeat(64)).is_ok());
        assert_eq!(NodeId::new(""), Err(NodeIdError::Length(0)));
        assert_eq!(NodeId::new("a".repeat(65)), Err(NodeIdError::Length(65)));
        assert_eq!(NodeId::new("Node-1"), Err(NodeIdError::Character('N')));
        assert_eq!(NodeId::new("node_1"), Err(NodeIdError::Character('_')));
        assert_eq!(NodeId::new("nöde"), Err(NodeIdError::Character('ö')));
    }

    #[test]
    fn cluster_id_round_trips_as_uuid() {
        let s = "01234567-89ab-cdef-0123-456789abcdef";
        let id: ClusterId = s.parse().unwrap();
        assert_eq!(id.to_string(), s);
        assert_eq!(id.as_bytes()[0], 0x01);
        for bad in [
            "",
            "0123456789abcdef0123456789abcdef",
            "01234567-89ab-cdef-0123-456789abcdeg",
            "0123456-789ab-cdef-0123-456789abcdef",
            "01234567-89ab-cdef-0123-456789abcdef0",
        ] {
            assert!(bad.parse::<ClusterId>().is_err(), "{bad}");
        }
    }
}
