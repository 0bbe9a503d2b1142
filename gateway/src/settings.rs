//! The gateway's settings facing clients, as flags and environment variables: the same for
//! `astral-gateway` and the all-in-one `astral`, which serves the same gateway.

use crate::{Config, ProxyHops};
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct Settings {
    /// Serve the web client from this folder (default: the copy built into the binary).
    #[arg(long, env = "ASTRAL_WEB_DIR")]
    pub web_dir: Option<PathBuf>,
    /// Other origins allowed to use cookie sessions and WebSockets (comma-separated
    /// `scheme://host[:port]`).
    #[arg(long, env = "ASTRAL_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// The gateway is served over HTTPS: mark the session cookie Secure (its own origin is
    /// then https://<Host>).
    #[arg(long, env = "ASTRAL_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// How many proxies in front of the gateway append to X-Forwarded-For; the client is
    /// that many entries from the right (0: clients connect directly).
    #[arg(long, env = "ASTRAL_TRUSTED_PROXY_HOPS", default_value_t = 0)]
    pub trusted_proxy_hops: usize,
    /// Deprecated: one trusted proxy (ASTRAL_TRUSTED_PROXY_HOPS=1).
    #[arg(long, env = "ASTRAL_TRUST_FORWARDED_FOR", hide = true)]
    pub trust_forwarded_for: bool,
    /// How often WebSocket clients must send a heartbeat (milliseconds).
    #[arg(long, env = "ASTRAL_HEARTBEAT_MS", default_value_t = 30_000)]
    pub heartbeat_ms: u64,
}

impl Settings {
    /// Sets these in `config` (the service endpoints are not among them).
    pub fn apply(&self, config: &mut Config) {
        config.web_dir.clone_from(&self.web_dir);
        config.allowed_origins.clone_from(&self.allowed_origins);
        config.secure_cookies = self.secure_cookies;
        config.heartbeat_ms = self.heartbeat_ms.max(1000);
        let legacy = usize::from(self.trust_forwarded_for);
        config.trust_forwarded_for = ProxyHops(self.trusted_proxy_hops.max(legacy));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[derive(clap::Parser)]
    struct Flags {
        #[command(flatten)]
        settings: Settings,
    }

    fn config(args: &[&str]) -> Config {
        let flags = Flags::parse_from(std::iter::once("gateway").chain(args.iter().copied()));
        let mut config = Config::default();
        flags.settings.apply(&mut config);
        config
    }

    #[test]
    fn the_flags_default_to_the_config_defaults() {
        let (flags, defaults) = (config(&[]), Config::default());
        assert_eq!(flags.trust_forwarded_for, defaults.trust_forwarded_for);
        assert_eq!(flags.heartbeat_ms, defaults.heartbeat_ms);
    }

    #[test]
    fn the_old_trust_forwarded_for_switch_is_one_proxy() {
        assert_eq!(
            config(&["--trust-forwarded-for"]).trust_forwarded_for,
            ProxyHops(1)
        );
        assert_eq!(
            config(&["--trusted-proxy-hops", "2"]).trust_forwarded_for,
            ProxyHops(2)
        );
    }
}
