//! What every request handler and WebSocket session shares: service clients, token keys, bus.

use crate::Config;
use astral_common::EventBus;
use astral_common::authenticator::Authenticator;
use astral_common::grpc::Channel;
use astral_common::guard::Role;
use astral_common::plane::Plane;
use astral_proto::auth::auth_service_client::AuthServiceClient;
use astral_proto::messaging::messaging_service_client::MessagingServiceClient;
use astral_proto::social::social_service_client::SocialServiceClient;
use std::sync::Arc;

pub struct AppState {
    pub config: Config,
    pub auth: AuthServiceClient<Channel>,
    pub social: SocialServiceClient<Channel>,
    pub messaging: MessagingServiceClient<Channel>,
    /// Checks access tokens: the auth service's keys and the sessions it revoked.
    pub tokens: Arc<Authenticator>,
    pub bus: EventBus,
    /// The gateway's shared bus subscriptions.
    pub hub: crate::hub::Hub,
    /// Set when the gateway is shutting down: connections send `reconnect` and close.
    pub draining: tokio::sync::watch::Sender<bool>,
    /// Live WebSocket connections per user, to cap them.
    pub connections: crate::ws::ConnectionCounts,
}

impl AppState {
    pub fn new(config: Config, plane: &Plane, bus: EventBus) -> anyhow::Result<Arc<Self>> {
        let auth = AuthServiceClient::new(plane.channel(&config.auth_url, Role::Auth)?);
        Ok(Arc::new(Self {
            tokens: Authenticator::start(auth.clone(), bus.clone()),
            auth,
            social: SocialServiceClient::new(plane.channel(&config.social_url, Role::Social)?),
            messaging: MessagingServiceClient::new(
                plane.channel(&config.messaging_url, Role::Messaging)?,
            ),
            hub: crate::hub::Hub::new(bus.clone()),
            draining: tokio::sync::watch::Sender::new(false),
            connections: crate::ws::ConnectionCounts::default(),
            config,
            bus,
        }))
    }
}
