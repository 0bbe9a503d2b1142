//! What every request handler and WebSocket session shares: service clients, token keys, bus.

use crate::Config;
use astral_common::grpc::Channel;
use astral_common::tokens::TokenVerifier;
use astral_common::{EventBus, grpc::channel};
use astral_proto::auth::auth_service_client::AuthServiceClient;
use astral_proto::messaging::messaging_service_client::MessagingServiceClient;
use astral_proto::social::social_service_client::SocialServiceClient;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

pub struct AppState {
    pub config: Config,
    pub auth: AuthServiceClient<Channel>,
    pub social: SocialServiceClient<Channel>,
    pub messaging: MessagingServiceClient<Channel>,
    pub verifier: TokenVerifier,
    /// Set once the auth service's public keys have been fetched.
    pub keys_loaded: AtomicBool,
    /// Wakes the key refresher when a token names a key this gateway does not know.
    pub refresh_keys: tokio::sync::Notify,
    /// Sessions whose access tokens are refused though not expired.
    pub revocations: crate::revocations::Revocations,
    /// Set once the revoked sessions have been loaded from the auth service.
    pub revocations_loaded: AtomicBool,
    pub bus: EventBus,
    /// The gateway's shared bus subscriptions.
    pub hub: crate::hub::Hub,
    /// Set when the gateway is shutting down: connections send `reconnect` and close.
    pub draining: tokio::sync::watch::Sender<bool>,
    /// Live WebSocket connections per user, to cap them.
    pub connections: crate::ws::ConnectionCounts,
    /// Messages a user may send through this gateway: 100 at once, 20 a second after that.
    pub send_limits: crate::limits::PerUser,
}

impl AppState {
    pub fn new(config: Config, bus: EventBus) -> anyhow::Result<Arc<Self>> {
        Ok(Arc::new(Self {
            auth: AuthServiceClient::new(channel(&config.auth_url)?),
            social: SocialServiceClient::new(channel(&config.social_url)?),
            messaging: MessagingServiceClient::new(channel(&config.messaging_url)?),
            verifier: TokenVerifier::default(),
            keys_loaded: AtomicBool::new(false),
            refresh_keys: tokio::sync::Notify::new(),
            revocations: crate::revocations::Revocations::default(),
            revocations_loaded: AtomicBool::new(false),
            hub: crate::hub::Hub::new(bus.clone()),
            draining: tokio::sync::watch::Sender::new(false),
            connections: crate::ws::ConnectionCounts::default(),
            send_limits: crate::limits::PerUser::new(100.0, 20.0),
            config,
            bus,
        }))
    }
}
