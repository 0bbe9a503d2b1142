//! The bounds on the gateway's connections, as configured.

use std::time::Duration;

/// Bounds on the gateway's connections; docs/architecture.md, "Connection limits", says why
/// these numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Open connections (WebSockets included) this gateway holds; more are closed at once.
    pub max_connections: usize,
    /// Open connections from one client address (an IPv6 client: its /64), when clients
    /// connect directly (no trusted proxy in front: behind one, every connection comes from
    /// the proxy, and this cap is the proxy's to keep).
    pub max_per_address: usize,
    /// WebSockets from one client address that have not identified yet; more are refused
    /// (429) before the upgrade.
    pub max_unidentified_per_address: usize,
    /// A request's complete headers must arrive within this: from the connection's start,
    /// or from the first byte of a later request on it.
    pub header_timeout: Duration,
    /// A request's body must arrive within this after its headers; then 408 and the
    /// connection is closed.
    pub body_timeout: Duration,
    /// The same for a file upload (`POST /api/attachments`, up to 25 MiB).
    pub upload_timeout: Duration,
    /// A connection idle between requests (keep-alive) is closed after this.
    pub idle_timeout: Duration,
    /// A WebSocket must identify within this (close 4003).
    pub identify_timeout: Duration,
    /// WebSockets loading `ready` at once (each asks the services for its chats).
    pub max_identifying: usize,
    /// WebSockets waiting for their turn to identify; more are told to come back later
    /// (close 1013).
    pub max_waiting_to_identify: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_per_address: 256,
            max_unidentified_per_address: 16,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            // 25 MiB in 10 minutes: a link of 350 kbit/s.
            upload_timeout: Duration::from_secs(600),
            idle_timeout: Duration::from_secs(75),
            identify_timeout: Duration::from_secs(10),
            max_identifying: crate::identify_queue::IDENTIFYING_AT_ONCE,
            max_waiting_to_identify: crate::identify_queue::WAITING_TO_IDENTIFY,
        }
    }
}
