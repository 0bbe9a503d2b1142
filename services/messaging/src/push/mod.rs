//! Web Push: the payload's encryption (RFC 8291), the server's VAPID identity (RFC 8292),
//! which endpoints may be pushed to, and the sender that works off the queue the sends fill.

pub mod encrypt;
pub mod endpoint;
pub mod sender;
pub mod vapid;

use endpoint::EndpointPolicy;
use vapid::VapidKey;

/// How this deployment pushes: with its VAPID key, naming its operator's contact.
#[derive(Debug)]
pub struct PushConfig {
    pub key: VapidKey,
    /// A `mailto:` or `https:` contact push services may use (RFC 8292's `sub`).
    pub subject: String,
    pub endpoints: EndpointPolicy,
}

/// The contact named when the operator names none.
pub const DEFAULT_SUBJECT: &str = "mailto:push@astral.invalid";

/// Web Push's settings, for the messaging process and the all-in-one.
#[derive(clap::Args, Debug, Clone)]
pub struct PushArgs {
    /// The VAPID key (PKCS#8 PEM, as `astral-admin secrets init` writes it); unset: no push.
    #[arg(long, env = "ASTRAL_VAPID_KEY_FILE")]
    pub vapid_key_file: Option<std::path::PathBuf>,
    /// The operator's contact for push services: `mailto:…` or `https:…`.
    #[arg(long, env = "ASTRAL_VAPID_SUBJECT", default_value = DEFAULT_SUBJECT)]
    pub vapid_subject: String,
    /// Tests only: also push to `http://` endpoints on loopback addresses.
    #[arg(
        long,
        env = "ASTRAL_PUSH_INSECURE_ENDPOINTS",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub push_insecure_endpoints: bool,
}

impl PushArgs {
    /// The configuration they name: `None` without a key file.
    pub fn config(&self) -> anyhow::Result<Option<PushConfig>> {
        self.vapid_key_file
            .as_deref()
            .map(|file| PushConfig::load(file, self.vapid_subject.clone(), self.endpoints()))
            .transpose()
    }

    pub fn endpoints(&self) -> EndpointPolicy {
        EndpointPolicy {
            insecure: self.push_insecure_endpoints,
        }
    }
}

impl PushConfig {
    /// From a PEM file holding the key (PKCS#8), as `astral-admin secrets init` writes it.
    pub fn load(
        key_file: &std::path::Path,
        subject: String,
        endpoints: EndpointPolicy,
    ) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let pem = std::fs::read_to_string(key_file)
            .with_context(|| format!("read the VAPID key {}", key_file.display()))?;
        let key = VapidKey::from_pem(&pem)
            .with_context(|| format!("{} is not a P-256 key in PEM", key_file.display()))?;
        Ok(Self {
            key,
            subject,
            endpoints,
        })
    }
}
