//! A cluster CA and its certificates (rcgen): what `tqctl certs init` and `tq-testbed up`
//! write. Leaves carry one SPIFFE URI SAN (DESIGN §3), loopback SANs for local clusters,
//! and both client and server usage.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::OffsetDateTime;
use tq_protocol::{ClusterId, NodeId, Peer};

use crate::identity::spiffe_id;
use crate::tls::TlsFiles;

/// Certificate generation failed.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// rcgen refused.
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    /// A file could not be written or read.
    #[error("{path}: {why}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
}

/// How a leaf certificate is made. The defaults are what a local cluster needs; tests
/// change them to make bad certificates.
#[derive(Debug, Clone)]
pub struct LeafOptions {
    /// IP SANs.
    pub ips: Vec<IpAddr>,
    /// DNS SANs.
    pub dns: Vec<String>,
    /// Start of validity, relative to now (negative: in the past).
    pub valid_from: time::Duration,
    /// Length of validity.
    pub valid_for: Duration,
    /// Mark it a CA (a leaf must not be one).
    pub is_ca: bool,
    /// Include client-auth usage.
    pub client_auth: bool,
    /// Include server-auth usage.
    pub server_auth: bool,
}

impl Default for LeafOptions {
    fn default() -> Self {
        LeafOptions {
            ips: vec![IpAddr::from([127, 0, 0, 1])],
            dns: vec!["localhost".into()],
            valid_from: time::Duration::hours(-1),
            valid_for: Duration::from_secs(825 * 24 * 3600),
            is_ca: false,
            client_auth: true,
            server_auth: true,
        }
    }
}

/// A cluster CA that can issue leaves.
pub struct CertAuthority {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate (PEM).
    pub cert_pem: String,
    key_pem: String,
}

impl std::fmt::Debug for CertAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CertAuthority(<key redacted>)")
    }
}

impl CertAuthority {
    /// A fresh CA for `cluster`, valid for ten years.
    pub fn generate(cluster: &ClusterId) -> Result<Self, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("tq cluster CA {cluster}"));
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + time::Duration::days(3650);
        let cert = params.self_signed(&key)?;
        let key_pem = key.serialize_pem();
        Ok(CertAuthority { issuer: Issuer::new(params, key), cert_pem: cert.pem(), key_pem })
    }

    /// A CA from its PEM certificate and key.
    pub fn load(cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let key = KeyPair::from_pem(key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)?;
        Ok(CertAuthority { issuer, cert_pem: cert_pem.into(), key_pem: key_pem.into() })
    }

    /// The CA's private key (PEM). Keep it off the cluster's machines.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// Issues a certificate for `peer`; returns (certificate PEM, key PEM).
    pub fn issue(
        &self,
        cluster: &ClusterId,
        peer: &Peer,
        opts: &LeafOptions,
    ) -> Result<(String, String), PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, peer.to_string());
        params.distinguished_name = dn;
        params.subject_alt_names.push(SanType::URI(spiffe_id(cluster, peer).try_into()?));
        for d in &opts.dns {
            params.subject_alt_names.push(SanType::DnsName(d.clone().try_into()?));
        }
        params.subject_alt_names.extend(opts.ips.iter().copied().map(SanType::IpAddress));
        params.is_ca =
            if opts.is_ca { IsCa::Ca(BasicConstraints::Unconstrained) } else { IsCa::ExplicitNoCa };
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if opts.client_auth {
            params.extended_key_usages.push(ExtendedKeyUsagePurpose::ClientAuth);
        }
        if opts.server_auth {
            params.extended_key_usages.push(ExtendedKeyUsagePurpose::ServerAuth);
        }
        let now = OffsetDateTime::now_utc();
        params.not_before = now + opts.valid_from;
        params.not_after = params.not_before + opts.valid_for;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// Issues `peer` a certificate into `dir/<name>.pem` and `dir/<name>-key.pem` (key mode
    /// 0600), and returns the files to load, with `ca` as the bundle.
    pub fn issue_to(
        &self,
        dir: &Path,
        name: &str,
        cluster: &ClusterId,
        peer: &Peer,
        ca: &Path,
    ) -> Result<TlsFiles, PkiError> {
        let (cert, key) = self.issue(cluster, peer, &LeafOptions::default())?;
        let cert_path = dir.join(format!("{name}.pem"));
        let key_path = dir.join(format!("{name}-key.pem"));
        write(&cert_path, cert.as_bytes(), 0o644)?;
        write(&key_path, key.as_bytes(), 0o600)?;
        Ok(TlsFiles { ca: ca.to_path_buf(), cert: cert_path, key: key_path })
    }
}

/// Writes a file with `mode`, creating parent directories.
pub fn write(path: &Path, body: &[u8], mode: u32) -> Result<(), PkiError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |e: std::io::Error| PkiError::File { path: path.to_path_buf(), why: e.to_string() };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(err)?;
    f.write_all(body).map_err(err)?;
    f.sync_all().map_err(err)
}

/// What `certs init` wrote.
#[derive(Debug, Clone)]
pub struct ClusterCerts {
    /// The CA bundle.
    pub ca: PathBuf,
    /// The coordinator's files.
    pub coordinator: TlsFiles,
    /// Each node's files.
    pub nodes: Vec<(NodeId, TlsFiles)>,
    /// The operator's files.
    pub operator: TlsFiles,
}

/// Creates a CA and certificates for the coordinator, every node and one operator in `dir`.
pub fn init_cluster_certs(
    dir: &Path,
    cluster: &ClusterId,
    nodes: &[NodeId],
    operator: &str,
) -> Result<ClusterCerts, PkiError> {
    let ca = CertAuthority::generate(cluster)?;
    let ca_path = dir.join("ca.pem");
    write(&ca_path, ca.cert_pem.as_bytes(), 0o644)?;
    write(&dir.join("ca-key.pem"), ca.key_pem().as_bytes(), 0o600)?;
    let coordinator = ca.issue_to(dir, "coordinator", cluster, &Peer::Coordinator, &ca_path)?;
    let nodes = nodes
        .iter()
        .map(|id| {
            Ok((
                id.clone(),
                ca.issue_to(dir, id.as_str(), cluster, &Peer::Node(id.clone()), &ca_path)?,
            ))
        })
        .collect::<Result<Vec<_>, PkiError>>()?;
    let operator = ca.issue_to(
        dir,
        &format!("operator-{operator}"),
        cluster,
        &Peer::Operator(operator.into()),
        &ca_path,
    )?;
    Ok(ClusterCerts { ca: ca_path, coordinator, nodes, operator })
}

/// A new random cluster id (a version 4 UUID).
pub fn random_cluster_id() -> Result<ClusterId, getrandom::Error> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b)?;
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    Ok(ClusterId::from_bytes(b))
}
