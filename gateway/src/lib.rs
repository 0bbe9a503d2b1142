//! Astral's gateway: the HTTP API, the WebSocket and the web client, in front of the services.
//!
//! Stateless: it verifies tokens locally (keys from the auth service), calls the services
//! over gRPC and subscribes to the event bus on behalf of its connected users. Any number of
//! gateways run side by side.

mod api;
mod error;
mod hub;
mod json;
mod limits;
mod observe;
mod server;
mod session;
mod settings;
mod state;
mod web;
mod ws;

use axum::Router;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;

pub use server::ConnectionLimits;
pub use session::ProxyHops;
pub use settings::Settings;
pub use state::AppState;

/// The longest a draining gateway waits for its WebSockets to close.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

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

/// The gateway's routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .nest("/api", api::router())
        .route("/ws", axum::routing::get(ws::upgrade))
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .route("/readyz", axum::routing::get(api::ready))
        .route_layer(axum::middleware::from_fn(observe::requests))
        .fallback(web::static_file)
        .layer(axum::middleware::from_fn(web::security_headers))
        .with_state(state)
}

/// Serves the gateway on `listener` until `shutdown` completes.
pub async fn serve(
    config: Config,
    plane: &astral_common::plane::Plane,
    bus: astral_common::EventBus,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = AppState::new(config, plane, bus)?;
    tracing::info!(addr = %listener.local_addr()?, "gateway listening");
    let draining = state.clone();
    let drain = async move {
        shutdown.await;
        // Tell every client to reconnect elsewhere; give them a moment, then stop accepting.
        tracing::info!("draining: asking clients to reconnect");
        draining.draining.send_replace(true);
        let deadline = tokio::time::Instant::now() + DRAIN_TIME;
        while draining.connections.total() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    let limits = state.config.limits.clone();
    // Behind trusted proxies every connection comes from a proxy: no cap per peer address.
    let per_address = state.config.trusted_proxy_hops.0 == 0;
    server::serve(listener, router(state), &limits, per_address, drain).await;
    Ok(())
}
