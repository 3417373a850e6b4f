//! The address book the coordinator pushes to agents.

use tonic::Status;
use tq_protocol::NodeId;

use crate::pb;

/// A wire address book, validated.
pub fn address_book_from_pb(b: &pb::AddressBook) -> Result<Vec<(NodeId, String)>, Status> {
    b.entries
        .iter()
        .map(|e| {
            let id = NodeId::new(e.node_id.as_str())
                .map_err(|err| Status::invalid_argument(format!("address book: {err}")))?;
            if e.address.is_empty() || e.address.len() > 255 {
                return Err(Status::invalid_argument(format!(
                    "address book: bad address for {id}"
                )));
            }
            Ok((id, e.address.clone()))
        })
        .collect()
}
