//! What a gateway needs to know, built once in `main` (or by a test): where the services are,
//! whom to trust, and the limits of its connections.

use crate::address::ProxyHops;
use crate::server::ConnectionLimits;
use std::path::PathBuf;

/// What a gateway needs to know, built once in `main` (or by a test).
#[derive(Debug, Clone)]
pub struct Config {
    pub auth_url: String,
    pub social_url: String,
    pub messaging_url: String,
    /// Serve the web client from this folder instead of the copy built into the binary.
    pub web_dir: Option<PathBuf>,
    /// Origins (e.g. `https://chat.example.com`) allowed to use cookie sessions and open
    /// WebSockets, besides the gateway's own.
    pub allowed_origins: Vec<String>,
    /// Mark the session cookie `Secure` (set when the gateway is served over HTTPS, which
    /// also makes `https` the scheme of its own origin).
    pub secure_cookies: bool,
    /// How often clients must send a heartbeat.
    pub heartbeat_ms: u64,
    /// The trusted proxies in front, which say who the client is in `X-Forwarded-For`
    /// (`ASTRAL_TRUSTED_PROXY_HOPS`; none by default: the client is the peer address).
    pub trusted_proxy_hops: ProxyHops,
    /// Caps on connections, and their timeouts.
    pub limits: ConnectionLimits,
}

impl Config {
    /// A gateway in front of services at these gRPC endpoints, with the defaults.
    pub fn new(auth_url: String, social_url: String, messaging_url: String) -> Self {
        Self {
            auth_url,
            social_url,
            messaging_url,
            ..Self::default()
        }
    }
}

impl Default for Config {
    /// A gateway in front of services on their default local ports.
    fn default() -> Self {
        Self {
            auth_url: "http://127.0.0.1:50051".into(),
            social_url: "http://127.0.0.1:50052".into(),
            messaging_url: "http://127.0.0.1:50053".into(),
            web_dir: None,
            allowed_origins: Vec::new(),
            secure_cookies: false,
            heartbeat_ms: 30_000,
            trusted_proxy_hops: ProxyHops::default(),
            limits: ConnectionLimits::default(),
        }
    }
}
