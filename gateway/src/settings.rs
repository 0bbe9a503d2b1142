//! The gateway's settings facing clients, as flags and environment variables: the same for
//! `astral-gateway` and the all-in-one `astral`, which serves the same gateway.

use crate::address::ProxyHops;
use crate::config::Config;
use crate::server::ConnectionLimits;
use std::path::PathBuf;
use std::time::Duration;

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
    /// Open connections the gateway holds at most (WebSockets included).
    #[arg(long, env = "ASTRAL_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Open connections from one client address at most (without trusted proxies).
    #[arg(
        long,
        env = "ASTRAL_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 256
    )]
    pub max_connections_per_address: usize,
    /// WebSockets not identified yet from one client address at most.
    #[arg(
        long,
        env = "ASTRAL_MAX_UNIDENTIFIED_PER_ADDRESS",
        default_value_t = 16
    )]
    pub max_unidentified_per_address: usize,
    /// Time for a request's complete headers (milliseconds).
    #[arg(long, env = "ASTRAL_HEADER_TIMEOUT_MS", default_value_t = 10_000)]
    pub header_timeout_ms: u64,
    /// Time for a request's body after its headers (milliseconds).
    #[arg(long, env = "ASTRAL_BODY_TIMEOUT_MS", default_value_t = 30_000)]
    pub body_timeout_ms: u64,
    /// Time for a file upload's body after its headers (milliseconds).
    #[arg(long, env = "ASTRAL_UPLOAD_TIMEOUT_MS", default_value_t = 600_000)]
    pub upload_timeout_ms: u64,
    /// Time a keep-alive connection may stay idle between requests (milliseconds).
    #[arg(long, env = "ASTRAL_IDLE_TIMEOUT_MS", default_value_t = 75_000)]
    pub idle_timeout_ms: u64,
    /// Time for a WebSocket to identify (milliseconds).
    #[arg(long, env = "ASTRAL_IDENTIFY_TIMEOUT_MS", default_value_t = 10_000)]
    pub identify_timeout_ms: u64,
    /// WebSockets loading `ready` at once.
    #[arg(long, env = "ASTRAL_MAX_IDENTIFYING", default_value_t = 32)]
    pub max_identifying: usize,
    /// WebSockets waiting for their turn to identify; more are told to come back (1013).
    #[arg(long, env = "ASTRAL_MAX_WAITING_TO_IDENTIFY", default_value_t = 1000)]
    pub max_waiting_to_identify: usize,
}

impl Settings {
    /// Sets these in `config` (the service endpoints are not among them).
    pub fn apply(&self, config: &mut Config) {
        config.web_dir.clone_from(&self.web_dir);
        config.allowed_origins.clone_from(&self.allowed_origins);
        config.secure_cookies = self.secure_cookies;
        config.heartbeat_ms = self.heartbeat_ms.max(1000);
        let legacy = usize::from(self.trust_forwarded_for);
        config.trusted_proxy_hops = ProxyHops(self.trusted_proxy_hops.max(legacy));
        config.limits = ConnectionLimits {
            max_connections: self.max_connections,
            max_per_address: self.max_connections_per_address,
            max_unidentified_per_address: self.max_unidentified_per_address,
            header_timeout: Duration::from_millis(self.header_timeout_ms),
            body_timeout: Duration::from_millis(self.body_timeout_ms),
            upload_timeout: Duration::from_millis(self.upload_timeout_ms),
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
            identify_timeout: Duration::from_millis(self.identify_timeout_ms),
            max_identifying: self.max_identifying,
            max_waiting_to_identify: self.max_waiting_to_identify,
        };
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
        assert_eq!(flags.limits, defaults.limits);
        assert_eq!(flags.trusted_proxy_hops, defaults.trusted_proxy_hops);
        assert_eq!(flags.heartbeat_ms, defaults.heartbeat_ms);
    }

    #[test]
    fn the_old_trust_forwarded_for_switch_is_one_proxy() {
        assert_eq!(
            config(&["--trust-forwarded-for"]).trusted_proxy_hops,
            ProxyHops(1)
        );
        assert_eq!(
            config(&["--trusted-proxy-hops", "2"]).trusted_proxy_hops,
            ProxyHops(2)
        );
    }
}
