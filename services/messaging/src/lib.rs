//! Astral's messaging service: chats, members and messages.

mod convert;
pub mod domain;
pub mod events;
mod friendships;
mod grpc;
pub mod images;
pub mod janitor;
mod member_lists;
pub mod model;
pub mod push;
pub mod search;
mod sends;
pub mod service;
pub mod storage;
pub mod store;
mod thumbnails;
mod typing;

use astral_common::authenticator::Authenticator;
use astral_common::grpc::Listener;
use astral_common::guard::{Guard, Role};
use astral_common::plane::Plane;
use astral_common::{EventBus, db};
use astral_proto::auth::auth_service_client::AuthServiceClient;
use astral_proto::social::social_service_client::SocialServiceClient;
use std::future::Future;

pub use service::MessagingService;

/// The migrations of the messaging database.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Runs the messaging gRPC server on `listener` until `shutdown` completes; attachments'
/// bytes go to `storage`; new messages are pushed to browsers with `push`, if given.
#[allow(clippy::too_many_arguments)]
pub async fn serve(
    database_url: &str,
    storage: storage::Storage,
    push: Option<push::PushConfig>,
    auth_url: &str,
    social_url: &str,
    plane: &Plane,
    bus: EventBus,
    listener: impl Into<Listener>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let listener = listener.into();
    let pool = db::connect(database_url).await?;
    MIGRATOR.run(&pool).await?;
    // Before any id is made: this process's node, unique among those sharing the database.
    let _ids = astral_common::ids::NodeLease::start(pool.clone()).await?;
    let auth = AuthServiceClient::new(plane.channel(auth_url, Role::Auth)?);
    let social = SocialServiceClient::new(plane.channel(social_url, Role::Social)?);
    let tokens = Authenticator::start(auth.clone(), bus.clone());
    let outbox = astral_common::outbox::Outbox::start(pool.clone(), bus.clone());
    let store = store::Store::new(pool.clone(), outbox);
    store.prepare_search().await?;
    let service = MessagingService::new(store, auth, social, bus, storage, push)?;
    tracing::info!(addr = %listener.describe(), "messaging service listening");
    let limiter = astral_common::ratelimit::for_database(database_url).await?;
    let ready = tokens.until_ready();
    let guard = Guard::new(grpc::POLICY, tokens, plane.transport(), limiter);
    let router = astral_common::grpc::server_with_health::<grpc::Server>(plane.tls(), guard, ready)
        .await?
        .add_service(grpc::server(service));
    let served = astral_common::grpc::serve(router, listener, shutdown).await;
    // In-flight calls have finished: close the database connections cleanly.
    pool.close().await;
    served
}
