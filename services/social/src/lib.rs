//! Astral's social service: friend requests, friendships and presence.

mod convert;
pub mod events;
mod grpc;
pub mod model;
pub mod presence;
pub mod service;
pub mod store;

use astral_common::authenticator::Authenticator;
use astral_common::grpc::Listener;
use astral_common::guard::{Guard, Role};
use astral_common::plane::Plane;
use astral_common::{EventBus, db};
use std::future::Future;

pub use service::SocialService;

/// The migrations of the social database.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Runs the social gRPC server on `listener` until `shutdown` completes. `auth_url` is the
/// auth service's gRPC endpoint (usernames are resolved there).
pub async fn serve(
    database_url: &str,
    auth_url: &str,
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
    let auth = astral_proto::auth::auth_service_client::AuthServiceClient::new(
        plane.channel(auth_url, Role::Auth)?,
    );
    let tokens = Authenticator::start(auth.clone(), bus.clone());
    let outbox = astral_common::outbox::Outbox::start(pool.clone(), bus.clone());
    let store = store::Store::new(pool.clone(), outbox);
    let _sweeper = presence::Sweeper::start(store.clone());
    let service = SocialService::new(store, auth);
    tracing::info!(addr = %listener.describe(), "social service listening");
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
