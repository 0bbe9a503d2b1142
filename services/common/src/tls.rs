//! Mutual TLS between the processes of a deployment: each presents a certificate from the
//! deployment's own CA naming its role, and trusts only certificates from that CA.

use crate::guard::Role;
use anyhow::Context as _;
use std::path::{Path, PathBuf};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// Where a process finds its CA, certificate and key (`ASTRAL_TLS_*`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TlsArgs {
    /// The deployment CA's certificate (PEM): the only issuer trusted on the internal plane.
    #[arg(long = "tls-ca", env = "ASTRAL_TLS_CA")]
    pub ca: Option<PathBuf>,
    /// This process's certificate (PEM), issued by the CA, naming its role.
    #[arg(long = "tls-cert", env = "ASTRAL_TLS_CERT")]
    pub cert: Option<PathBuf>,
    /// This process's private key (PKCS#8 PEM).
    #[arg(long = "tls-key", env = "ASTRAL_TLS_KEY")]
    pub key: Option<PathBuf>,
}

/// A process's TLS identity and the CA it trusts.
#[derive(Clone, Debug)]
pub struct Tls {
    ca: Certificate,
    identity: Identity,
}

impl Tls {
    /// Loads the three files; `None` if none is set. A missing or unreadable one is an
    /// error naming its setting and file.
    pub fn load(args: &TlsArgs) -> anyhow::Result<Option<Self>> {
        let (Some(ca), Some(cert), Some(key)) = (&args.ca, &args.cert, &args.key) else {
            if let Some(setting) = [
                (&args.ca, "ASTRAL_TLS_CA"),
                (&args.cert, "ASTRAL_TLS_CERT"),
                (&args.key, "ASTRAL_TLS_KEY"),
            ]
            .iter()
            .find_map(|(value, name)| value.is_none().then_some(name))
            .filter(|_| args.ca.is_some() || args.cert.is_some() || args.key.is_some())
            {
                anyhow::bail!("{setting} is not set (the other ASTRAL_TLS_* settings are)");
            }
            return Ok(None);
        };
        let ca = read_pem("ASTRAL_TLS_CA", ca, "CERTIFICATE")?;
        let cert = read_pem("ASTRAL_TLS_CERT", cert, "CERTIFICATE")?;
        let key = read_pem("ASTRAL_TLS_KEY", key, "PRIVATE KEY")?;
        Ok(Some(Self {
            ca: Certificate::from_pem(ca),
            identity: Identity::from_pem(cert, key),
        }))
    }

    /// A server that requires a client certificate from the CA.
    pub fn server(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(self.identity.clone())
            .client_ca_root(self.ca.clone())
    }

    /// A client of the process with role `server`: its certificate must name that role.
    pub fn client(&self, server: Role) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(self.ca.clone())
            .identity(self.identity.clone())
            .domain_name(server.as_str())
    }
}

/// A PEM file's bytes, checked to hold a block of the expected kind.
pub fn read_pem(setting: &str, path: &Path, kind: &str) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("{setting}: cannot read {}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    // Any private key kind will do: PKCS#8, EC or RSA.
    let found = text.contains(&format!("-----BEGIN {kind}-----"))
        || (kind == "PRIVATE KEY" && text.contains("PRIVATE KEY-----"));
    if !found {
        anyhow::bail!("{setting}: {} holds no PEM {kind}", path.display());
    }
    Ok(bytes)
}
