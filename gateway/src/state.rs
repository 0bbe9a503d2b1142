//! What the gateway's handlers share, one concern per field: where the services are, the
//! token checks, the live connections and the bus fan-out. Handlers take the part they need.

use crate::config::Config;
use crate::connections::Connections;
use crate::hub::Hub;
use crate::identify_queue::IdentifyQueue;
use anyhow::Context as _;
use astral_common::EventBus;
use astral_common::authenticator::Authenticator;
use astral_common::grpc::Channel;
use astral_common::guard::Role;
use astral_common::plane::Plane;
use astral_proto::auth::auth_service_client::AuthServiceClient;
use astral_proto::messaging::messaging_service_client::MessagingServiceClient;
use astral_proto::social::social_service_client::SocialServiceClient;
use axum::extract::FromRef;
use std::sync::Arc;

/// The services' gRPC clients (cheap to clone: each is a handle on a shared channel).
#[derive(Clone)]
pub struct Services {
    pub auth: AuthServiceClient<Channel>,
    pub social: SocialServiceClient<Channel>,
    pub messaging: MessagingServiceClient<Channel>,
}

/// The social service's client, for handlers that need nothing else (`State<Social>`).
pub struct Social(pub SocialServiceClient<Channel>);

/// The messaging service's client, for handlers that need nothing else.
pub struct Messaging(pub MessagingServiceClient<Channel>);

pub struct AppState {
    pub config: Config,
    pub services: Services,
    /// Checks access tokens: the auth service's keys and the sessions it revoked.
    pub tokens: Arc<Authenticator>,
    /// The gateway's shared bus subscriptions.
    pub hub: Hub,
    /// Live WebSocket connections, and the word to drain them.
    pub connections: Connections,
    /// The web client's files, compressed once per version.
    pub web: Arc<crate::web::Assets>,
}

impl AppState {
    pub fn new(config: Config, plane: &Plane, bus: EventBus) -> anyhow::Result<Arc<Self>> {
        let channel = |url: &str, role| {
            plane
                .channel(url, role)
                .with_context(|| format!("a channel to the {role:?} service at {url}"))
        };
        let auth = AuthServiceClient::new(channel(&config.auth_url, Role::Auth)?);
        let services = Services {
            auth: auth.clone(),
            social: SocialServiceClient::new(channel(&config.social_url, Role::Social)?),
            messaging: MessagingServiceClient::new(channel(
                &config.messaging_url,
                Role::Messaging,
            )?),
        };
        let web = Arc::new(crate::web::Assets::new(config.web_dir.clone()));
        web.warm();
        Ok(Arc::new(Self {
            web,
            tokens: Authenticator::start(auth, bus.clone()),
            hub: Hub::new(bus),
            connections: Connections::new(IdentifyQueue::new(
                config.limits.max_identifying,
                config.limits.max_waiting_to_identify,
            )),
            services,
            config,
        }))
    }
}

impl FromRef<Arc<AppState>> for Services {
    fn from_ref(state: &Arc<AppState>) -> Self {
        state.services.clone()
    }
}

impl FromRef<Arc<AppState>> for Social {
    fn from_ref(state: &Arc<AppState>) -> Self {
        Self(state.services.social.clone())
    }
}

impl FromRef<Arc<AppState>> for Messaging {
    fn from_ref(state: &Arc<AppState>) -> Self {
        Self(state.services.messaging.clone())
    }
}
