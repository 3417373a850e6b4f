//! mTLS material and configurations (DESIGN §3): TLS 1.3 only, rustls with the ring provider,
//! client certificates required, identities checked by SPIFFE URI SAN on both sides.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{
    CryptoProvider, WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use tq_protocol::{ClusterId, Peer};

use crate::identity::{peer_from_cert, spiffe_id};

/// Installs ring as the process's rustls provider. Call first thing in `main` and in test
/// harnesses: with two providers in the graph the tonic server would panic (STACK.md).
pub fn install_crypto_provider() {
    // Err means one is installed already, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Where a process's TLS files are.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct TlsFiles {
    /// The cluster CA bundle (PEM; several certificates allowed, for CA rotation).
    pub ca: PathBuf,
    /// This process's certificate chain (PEM).
    pub cert: PathBuf,
    /// This process's private key (PEM).
    pub key: PathBuf,
}

/// TLS material that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file that cannot be read or parsed.
    #[error("{path}: {why}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// The certificate names no identity of this cluster, or another than expected.
    #[error("{path}: {why}")]
    Identity {
        /// The certificate file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// Loaded and checked TLS material for one process.
#[derive(Clone)]
pub struct TlsMaterial {
    /// This cluster.
    pub cluster: ClusterId,
    /// Who this process is, from its own certificate.
    pub identity: Peer,
    roots: Arc<RootCertStore>,
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

impl fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TlsMaterial({} in {})", self.identity, self.cluster)
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::File { path: path.into(), why: e.to_string() })
}

impl TlsMaterial {
    /// Loads the files and checks that the certificate names `expected` (if given) in
    /// `cluster`.
    pub fn load(
        files: &TlsFiles,
        cluster: ClusterId,
        expected: Option<&Peer>,
    ) -> Result<Self, TlsError> {
        let ca_pem = read(&files.ca)?;
        let cert_pem = read(&files.cert)?;
        let key_pem = read(&files.key)?;
        Self::from_pem(&ca_pem, cert_pem, key_pem, cluster, expected).map_err(|e| match e {
            TlsError::File { why, .. } => TlsError::File { path: files.cert.clone(), why },
            TlsError::Identity { why, .. } => TlsError::Identity { path: files.cert.clone(), why },
            other => other,
        })
    }

    /// The same from PEM bytes.
    pub fn from_pem(
        ca_pem: &[u8],
        cert_pem: Vec<u8>,
        key_pem: Vec<u8>,
        cluster: ClusterId,
        expected: Option<&Peer>,
    ) -> Result<Self, TlsError> {
        let bad = |why: String| TlsError::File { path: PathBuf::new(), why };
        let mut roots = RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(ca_pem) {
            roots
                .add(c.map_err(|e| bad(format!("CA bundle: {e}")))?)
                .map_err(|e| bad(format!("CA bundle: {e}")))?;
        }
        if roots.is_empty() {
            return Err(bad("CA bundle holds no certificate".into()));
        }
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("certificate: {e}")))?;
        let leaf = chain.first().ok_or_else(|| bad("no certificate in the file".into()))?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| bad(format!("private key: {e}")))?;
        let identity = peer_from_cert(leaf.as_ref(), &cluster)
            .map_err(|e| TlsError::Identity { path: PathBuf::new(), why: e.to_string() })?;
        if let Some(want) = expected.filter(|w| **w != identity) {
            return Err(TlsError::Identity {
                path: PathBuf::new(),
                why: format!("certificate is for {identity}, this process is {want}"),
            });
        }
        Ok(TlsMaterial {
            cluster,
            identity,
            roots: Arc::new(roots),
            chain,
            key: Arc::new(key),
            cert_pem,
            key_pem,
        })
    }

    /// A server configuration: TLS 1.3 only, a client certificate from the cluster CA
    /// required, HTTP/2 only.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let verifier = WebPkiClientVerifier::builder_with_provider(self.roots.clone(), provider())
            .build()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let mut cfg = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| TlsError::Config(e.to_string()))?;
        cfg.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(cfg))
    }

    /// This process's certificate and key, for tonic's client configuration.
    pub fn client_identity(&self) -> tonic::transport::Identity {
        tonic::transport::Identity::from_pem(&self.cert_pem, &self.key_pem)
    }

    /// A verifier that accepts only a server certificate from the cluster CA naming `peer`.
    pub fn verifier_for(&self, peer: Peer) -> Arc<dyn ServerCertVerifier> {
        Arc::new(SpiffeVerifier {
            roots: self.roots.clone(),
            cluster: self.cluster,
            expected: peer,
            algs: provider().signature_verification_algorithms,
        })
    }
}

/// Checks the chain against the cluster CA, then that the leaf's SPIFFE ID is the one we
/// meant to reach. Host names play no part: identities are URI SANs (DESIGN §3).
#[derive(Debug)]
struct SpiffeVerifier {
    roots: Arc<RootCertStore>,
    cluster: ClusterId,
    expected: Peer,
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for SpiffeVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.algs.all,
        )?;
        let found = peer_from_cert(end_entity.as_ref(), &self.cluster)
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        if found != self.expected {
            return Err(rustls::Error::General(format!(
                "server is {}, expected {}",
                spiffe_id(&self.cluster, &found),
                spiffe_id(&self.cluster, &self.expected)
            )));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}
