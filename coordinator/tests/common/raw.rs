//! Raw gRPC bodies and raw TLS handshakes, for inputs no well-behaved client sends.

// Each test binary uses part of the harness.
#![allow(dead_code)]

use super::*;

/// A codec that sends and receives message bodies as they are: for bytes no prost type
/// would produce.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use prost::bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        use prost::bytes::Buf;
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

/// Sends `body` as the message of the unary call `path` (`/tq.v1.NodeAgent/Prepare`...).
pub(crate) async fn raw_unary(
    ch: Channel,
    path: &'static str,
    body: Vec<u8>,
) -> Result<Vec<u8>, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(ch);
    grpc.ready().await.map_err(|e| tonic::Status::unavailable(format!("not ready: {e}")))?;
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(path);
    grpc.unary(tonic::Request::new(body), path, RawCodec).await.map(tonic::Response::into_inner)
}

// ---------------------------------------------------------------------- raw TLS

/// How a TLS server treated a client.
#[derive(Debug)]
pub(crate) enum Handshake {
    /// The handshake completed and the server spoke HTTP/2.
    Accepted,
    /// The handshake was refused: the error our side saw (an alert from the server, or our
    /// own refusal of what the server offered).
    Refused(rustls::Error),
    /// The connection ended without either.
    Closed(String),
}

/// A rustls client configuration: `versions`, the client certificate `client` (PEM cert,
/// PEM key) or none, and a server verifier that accepts only `server` of this cluster.
pub(crate) fn client_tls(
    c: &Cluster,
    versions: &[&'static rustls::SupportedProtocolVersion],
    client: Option<(&str, &str)>,
    server: Peer,
) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(c.operator_tls().verifier_for(server));
    let mut cfg = match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .expect("certificate PEM");
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key PEM");
            builder.with_client_auth_cert(chain, key).expect("a client certificate")
        }
    };
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(cfg)
}

fn rustls_error(e: &std::io::Error) -> Option<rustls::Error> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()).cloned()
}

/// Connects to `addr` with `config` and reads the server's first bytes: a server that
/// accepted the client sends its HTTP/2 SETTINGS at once; one that refused it sends an alert
/// (with TLS 1.3 that comes after the client finished its side of the handshake).
pub(crate) async fn tls_handshake(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> Handshake {
    use tokio::io::AsyncReadExt;
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("TCP connects");
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("a name");
        let mut tls = match tokio_rustls::TlsConnector::from(config).connect(name, tcp).await {
            Ok(s) => s,
            Err(e) => {
                return match rustls_error(&e) {
                    Some(r) => Handshake::Refused(r),
                    None => Handshake::Closed(format!("connect: {e}")),
                };
            }
        };
        let mut buf = [0u8; 64];
        match tls.read(&mut buf).await {
            Ok(0) => Handshake::Closed("end of stream".into()),
            // An HTTP/2 frame header: 3 bytes of length, then the type (4 = SETTINGS).
            Ok(n) if n >= 4 && buf[3] == 4 => Handshake::Accepted,
            Ok(n) => Handshake::Closed(format!("unexpected bytes: {:?}", &buf[..n])),
            Err(e) => match rustls_error(&e) {
                Some(r) => Handshake::Refused(r),
                None => Handshake::Closed(format!("read: {e}")),
            },
        }
    };
    tokio::time::timeout(Duration::from_secs(4), attempt)
        .await
        .unwrap_or_else(|_| Handshake::Closed("timed out".into()))
}

/// Asserts the server refused the handshake with `alert`.
pub(crate) fn assert_alert(what: &str, h: &Handshake, alert: rustls::AlertDescription) {
    match h {
        Handshake::Refused(rustls::Error::AlertReceived(a)) if *a == alert => {}
        other => panic!("{what}: expected the server to refuse with {alert:?}, got {other:?}"),
    }
}

/// This cluster's CA as an rcgen issuer, for certificates `CertAuthority::issue` cannot make.
pub(crate) fn rcgen_issuer(c: &Cluster) -> rcgen::Issuer<'static, rcgen::KeyPair> {
    let pki = c.root.join("pki");
    let cert = std::fs::read_to_string(pki.join("ca.pem")).expect("CA certificate");
    let key = std::fs::read_to_string(pki.join("ca-key.pem")).expect("CA key");
    let key = rcgen::KeyPair::from_pem(&key).expect("CA key parses");
    rcgen::Issuer::from_ca_cert_pem(&cert, key).expect("CA issuer")
}

/// Parameters of a well-formed leaf with the given URI SANs (client and server usage,
/// valid now); returns them with a fresh key.
pub(crate) fn leaf_params(uris: &[String]) -> (rcgen::CertificateParams, rcgen::KeyPair) {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    for u in uris {
        params
            .subject_alt_names
            .push(rcgen::SanType::URI(u.clone().try_into().expect("a URI SAN")));
    }
    params.subject_alt_names.push(rcgen::SanType::DnsName("localhost".try_into().expect("dns")));
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
    ];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(1);
    (params, rcgen::KeyPair::generate().expect("a key"))
}
