//! The internal plane: how a process proves itself to the others and checks them. In
//! distributed mode that is the deployment's secrets (mutual TLS); the all-in-one talks over
//! Unix sockets in its private data directory instead, and `ASTRAL_INSECURE_DEV=1` runs
//! without secrets for development.

use crate::grpc::Channel;
use crate::guard::{Role, Transport};
use crate::tls::{Tls, TlsArgs};
use std::sync::Arc;

/// The internal-plane settings every distributed binary takes.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct PlaneArgs {
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Run without the deployment's secrets (plaintext gRPC): for development only.
    #[arg(
        long = "insecure-dev",
        env = "ASTRAL_INSECURE_DEV",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub insecure_dev: bool,
}

/// How this process talks to the others.
#[derive(Clone, Debug, Default)]
pub struct Plane {
    /// `None`: a transport that proves nothing by itself (Unix socket, insecure dev).
    tls: Option<Arc<Tls>>,
}

impl Plane {
    /// No TLS: for Unix sockets in a private directory (the all-in-one) and tests.
    pub fn trusted() -> Self {
        Self::default()
    }

    /// From the settings: the secrets are required unless `ASTRAL_INSECURE_DEV` is set.
    pub fn from_args(args: &PlaneArgs) -> anyhow::Result<Self> {
        match Tls::load(&args.tls)? {
            Some(tls) => Ok(Self {
                tls: Some(Arc::new(tls)),
            }),
            None if args.insecure_dev => {
                tracing::warn!(
                    "ASTRAL_INSECURE_DEV is set: gRPC runs in plaintext and callers' roles are not checked; never in production"
                );
                Ok(Self::trusted())
            }
            None => anyhow::bail!(
                "ASTRAL_TLS_CA, ASTRAL_TLS_CERT and ASTRAL_TLS_KEY are not set: give this process its role's secrets (`astral-admin secrets init DIR`, then the variables of DIR/<role>.env), or set ASTRAL_INSECURE_DEV=1 for development"
            ),
        }
    }

    /// What the transport proves about a caller.
    pub fn transport(&self) -> Transport {
        match self.tls {
            Some(_) => Transport::MutualTls,
            None => Transport::Trusted,
        }
    }

    pub fn tls(&self) -> Option<&Tls> {
        self.tls.as_deref()
    }

    /// A channel to the process(es) of role `server` at `url` (see [`crate::grpc::channel`]).
    pub fn channel(&self, url: &str, server: Role) -> anyhow::Result<Channel> {
        crate::grpc::channel(url, self.tls.as_ref().map(|tls| tls.client(server)))
    }
}
