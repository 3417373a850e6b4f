//! Identity from certificates (DESIGN §3): one SPIFFE URI SAN,
//! `spiffe://<cluster-id>/node/<id>`, `.../coordinator` or `.../operator/<name>`.

use tonic::Status;
use tq_protocol::{ClusterId, NodeId, Peer};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::authenticated::ConnectionIdentity;

/// A certificate that does not name a member of this cluster.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The connection presented no client certificate.
    #[error("no client certificate")]
    NoCertificate,
    /// Not a parseable X.509 certificate.
    #[error("certificate does not parse: {0}")]
    BadCertificate(String),
    /// No `spiffe://` URI SAN.
    #[error("certificate has no spiffe:// URI SAN")]
    NoSpiffeId,
    /// More than one `spiffe://` URI SAN.
    #[error("certificate has several spiffe:// URI SANs")]
    SeveralSpiffeIds,
    /// A SPIFFE ID of another cluster.
    #[error("certificate is for cluster {found}, this is {expected}")]
    OtherCluster {
        /// Ours.
        expected: String,
        /// Theirs.
        found: String,
    },
    /// A path that is not one of the three roles.
    #[error("unrecognised SPIFFE ID {0:?}")]
    BadPath(String),
}

/// The SPIFFE ID for a role.
pub fn spiffe_id(cluster: &ClusterId, peer: &Peer) -> String {
    match peer {
        Peer::Coordinator => format!("spiffe://{cluster}/coordinator"),
        Peer::Node(id) => format!("spiffe://{cluster}/node/{id}"),
        Peer::Operator(name) => format!("spiffe://{cluster}/operator/{name}"),
    }
}

/// Parses a SPIFFE ID of `cluster`.
pub fn parse_spiffe_id(uri: &str, cluster: &ClusterId) -> Result<Peer, IdentityError> {
    let bad = || IdentityError::BadPath(uri.chars().take(200).collect());
    let rest = uri.strip_prefix("spiffe://").ok_or_else(bad)?;
    let (trust_domain, path) = rest.split_once('/').ok_or_else(bad)?;
    let found: ClusterId = trust_domain.parse().map_err(|_| bad())?;
    if found != *cluster {
        return Err(IdentityError::OtherCluster {
            expected: cluster.to_string(),
            found: found.to_string(),
        });
    }
    match path.split('/').collect::<Vec<_>>()[..] {
        ["coordinator"] => Ok(Peer::Coordinator),
        ["node", id] => NodeId::new(id).map(Peer::Node).map_err(|_| bad()),
        // Operator names follow the node id rules: short, lower case, no separators.
        ["operator", name] => {
            NodeId::new(name).map(|n| Peer::Operator(n.to_string())).map_err(|_| bad())
        }
        _ => Err(bad()),
    }
}

/// The identity a DER certificate proves (its single SPIFFE URI SAN).
pub fn peer_from_cert(der: &[u8], cluster: &ClusterId) -> Result<Peer, IdentityError> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| IdentityError::BadCertificate(e.to_string()))?;
    let mut ids = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::URI(uri) = name
                && uri.starts_with("spiffe://")
            {
                ids.push(uri.to_string());
            }
        }
    }
    match ids.as_slice() {
        [] => Err(IdentityError::NoSpiffeId),
        [one] => parse_spiffe_id(one, cluster),
        _ => Err(IdentityError::SeveralSpiffeIds),
    }
}

/// The verified caller of a request: from the TLS session's leaf certificate, never from a
/// message field (DESIGN §3). The connection was identified once, at its handshake
/// ([`crate::authenticated`]); a request on a connection that was not has no caller.
pub fn caller<T>(req: &tonic::Request<T>) -> Result<Peer, Status> {
    let identity = req
        .extensions()
        .get::<ConnectionIdentity>()
        .ok_or_else(|| Status::unauthenticated("no client certificate"))?;
    match identity.peer() {
        Ok(p) => Ok(p.clone()),
        Err(IdentityError::NoCertificate) => Err(Status::unauthenticated("no client certificate")),
        Err(e) => Err(Status::permission_denied(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spiffe_ids_round_trip_section_3() {
        let c: ClusterId = "01234567-89ab-cdef-0123-456789abcdef".parse().unwrap();
        for p in [
            Peer::Coordinator,
            Peer::Node(NodeId::new("node-1").unwrap()),
            Peer::Operator("alice".into()),
        ] {
            assert_eq!(parse_spiffe_id(&spiffe_id(&c, &p), &c), Ok(p));
        }
        let other: ClusterId = "11234567-89ab-cdef-0123-456789abcdef".parse().unwrap();
        let theirs = spiffe_id(&other, &Peer::Coordinator);
        assert!(matches!(parse_spiffe_id(&theirs, &c), Err(IdentityError::OtherCluster { .. })));
        for bad in [
            "https://x/coordinator".to_string(),
            format!("spiffe://{c}/node/Node_1"),
            format!("spiffe://{c}/node"),
            format!("spiffe://{c}/node/a/b"),
            format!("spiffe://{c}/admin"),
            "spiffe://not-a-uuid/coordinator".into(),
        ] {
            assert!(matches!(parse_spiffe_id(&bad, &c), Err(IdentityError::BadPath(_))), "{bad}");
        }
    }
}
