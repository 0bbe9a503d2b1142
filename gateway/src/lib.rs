//! Astral's gateway: the HTTP API, the WebSocket and the web client, in front of the services.
//!
//! Stateless: it verifies tokens locally (keys from the auth service), calls the services
//! over gRPC and subscribes to the event bus on behalf of its connected users. Any number of
//! gateways run side by side.

mod address;
mod api;
mod config;
mod connections;
mod delivery;
mod error;
mod headers;
mod hub;
mod identify_queue;
mod json;
mod limits;
mod mailbox;
mod observe;
mod origin;
mod presence;
mod server;
mod session;
mod settings;
mod state;
mod web;
mod ws;

use axum::Router;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

pub use address::ProxyHops;
pub use config::Config;
pub use server::ConnectionLimits;
pub use settings::Settings;
pub use state::AppState;

/// The longest a draining gateway waits for its WebSockets to close.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

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
    let connections = state.connections.clone();
    let presence =
        presence::PresenceReporter::start(connections.clone(), state.services.social.clone());
    let drain = async move {
        shutdown.await;
        // Tell every client to reconnect elsewhere; give them a moment, then stop accepting.
        tracing::info!("draining: asking clients to reconnect");
        connections.drain();
        let _ = tokio::time::timeout(DRAIN_TIME, connections.all_closed()).await;
        presence.goodbye().await;
    };
    let limits = state.config.limits.clone();
    // Behind trusted proxies every connection comes from a proxy: no cap per peer address.
    let per_address = state.config.trusted_proxy_hops.0 == 0;
    server::serve(listener, router(state), &limits, per_address, drain).await;
    Ok(())
}
