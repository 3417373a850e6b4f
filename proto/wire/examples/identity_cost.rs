//! What identifying a caller from its certificate costs (BENCHMARKS.md): parsing the X.509
//! leaf for its SPIFFE ID, which every request paid until connections were identified once
//! at their handshake (`tq_wire::authenticated`).
//!
//!     cargo run --release -p tq-wire --example identity_cost

use std::time::Instant;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tq_protocol::{ClusterId, NodeId, Peer};
use tq_wire::identity::peer_from_cert;
use tq_wire::pki::{CertAuthority, LeafOptions};

fn main() {
    let cluster: ClusterId = "01234567-89ab-cdef-0123-456789abcdef".parse().expect("a cluster id");
    let ca = CertAuthority::generate(&cluster).expect("a CA");
    let peer = Peer::Node(NodeId::new("node-17").expect("a node id"));
    let (pem, _) = ca.issue(&cluster, &peer, &LeafOptions::default()).expect("a leaf");
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).expect("PEM");
    let runs = 100_000;
    let start = Instant::now();
    for _ in 0..runs {
        assert_eq!(peer_from_cert(der.as_ref(), &cluster).as_ref(), Ok(&peer));
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / f64::from(runs);
    println!("leaf of {} bytes: {us:.2} µs per parse", der.len());
}
