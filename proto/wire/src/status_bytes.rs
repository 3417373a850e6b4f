//! The coordinator's status, encoded once per publication instead of once per poll.
//!
//! A control plane polls all day and a mesh's status is O(N): at N = 256 cloning and
//! encoding it cost 41–43 µs of each poll, at N = 1024 170–250 µs (`examples/status_cost.rs`).
//! The coordinator's server is generated a second time with `ClusterStatus` replaced by
//! [`EncodedStatus`] (build.rs), whose clone is a reference count and whose encoding is one
//! copy of the same bytes, so clients decode a plain `ClusterStatus`.

use prost::bytes::{Buf, BufMut, Bytes};
use prost::encoding::{DecodeContext, WireType};
use prost::{DecodeError, Message};

use crate::pb;

#[allow(clippy::all, clippy::pedantic, missing_docs, unreachable_pub, unused_qualifications)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/coordinator_server/tq.v1.rs"));
}

/// The coordinator's service, answering status polls and watches with [`EncodedStatus`].
pub use generated::coordinator_server::{Coordinator, CoordinatorServer};

/// A `ClusterStatus`, already encoded.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EncodedStatus {
    version: u64,
    bytes: Bytes,
}

impl EncodedStatus {
    /// Encodes `status`.
    pub fn new(status: &pb::ClusterStatus) -> Self {
        EncodedStatus { version: status.version, bytes: status.encode_to_vec().into() }
    }

    /// The answer to a poll whose `if_version` is still current: the version alone.
    pub fn not_modified(version: u64) -> Self {
        Self::new(&pb::ClusterStatus { version, not_modified: true, ..Default::default() })
    }

    /// The status version it carries.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Decodes it again.
    pub fn to_status(&self) -> Result<pb::ClusterStatus, DecodeError> {
        pb::ClusterStatus::decode(self.bytes.clone())
    }
}

impl std::fmt::Debug for EncodedStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EncodedStatus(version {}, {} bytes)", self.version, self.bytes.len())
    }
}

impl Message for EncodedStatus {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.bytes);
    }

    // Only ever sent: the server never reads a `ClusterStatus`. prost has no other public way
    // to make the error that says so.
    #[allow(deprecated)]
    fn merge_field(
        &mut self,
        _tag: u32,
        _wire_type: WireType,
        _buf: &mut impl Buf,
        _ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        Err(DecodeError::new("an encoded status is never decoded in place"))
    }

    fn encoded_len(&self) -> usize {
        self.bytes.len()
    }

    fn clear(&mut self) {
        *self = EncodedStatus::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(members: usize) -> pb::ClusterStatus {
        pb::ClusterStatus {
            cluster_id: "c1".into(),
            latest_committed_epoch: 7,
            members: (0..members)
                .map(|i| pb::MemberStatus {
                    node_id: format!("node-{i}"),
                    state: "committed".into(),
                    committed_epoch: 7,
                    last_error: if i == 1 { "refused".into() } else { String::new() },
                    ..Default::default()
                })
                .collect(),
            alarm_count: 2,
            version: 41,
            ..Default::default()
        }
    }

    /// What a client receives decodes to the status that was published (§8).
    #[test]
    fn a_client_decodes_the_published_status() {
        let s = status(3);
        let e = EncodedStatus::new(&s);
        assert_eq!(e.version(), 41);
        let sent = e.encode_to_vec();
        assert_eq!(sent, s.encode_to_vec());
        assert_eq!(pb::ClusterStatus::decode(&sent[..]).ok(), Some(s.clone()));
        assert_eq!(e.to_status().ok(), Some(s));
    }

    #[test]
    fn not_modified_carries_the_version_alone() {
        let got = EncodedStatus::not_modified(9).to_status().ok();
        let want = pb::ClusterStatus { version: 9, not_modified: true, ..Default::default() };
        assert_eq!(got, Some(want));
    }

    #[test]
    fn it_is_never_decoded_in_place() {
        let bytes = status(1).encode_to_vec();
        assert!(<EncodedStatus as Message>::decode(&bytes[..]).is_err());
    }
}
