//! Astral's auth service: accounts, sessions, and the keys that sign access tokens.

pub mod domain;
mod events;
mod grpc;
pub mod kek;
pub mod keys;
pub mod password;
pub mod service;
pub mod store;
pub mod throttle;
pub mod vault;

use astral_common::grpc::Listener;
use astral_common::guard::Guard;
use astral_common::plane::Plane;
use astral_common::{EventBus, db};
use std::future::Future;
use std::sync::Arc;

pub use kek::Kek;
pub use service::AuthService;

/// The migrations of the auth database.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Runs the auth gRPC server on `listener` until `shutdown` completes. The signing keys are
/// stored sealed with `kek`; `None` keeps them in clear (development only).
pub async fn serve(
    database_url: &str,
    kek: Option<Kek>,
    plane: &Plane,
    bus: EventBus,
    listener: impl Into<Listener>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let listener = listener.into();
    let pool = db::connect(database_url).await?;
    MIGRATOR.run(&pool).await?;
    let service = AuthService::start(store::Store::new(pool.clone()), bus, kek).await?;
    tracing::info!(addr = %listener.describe(), "auth service listening");
    let guard = Guard::new(
        grpc::POLICY,
        Arc::new(grpc::Tokens(service.clone())),
        plane.transport(),
    );
    let router = astral_common::grpc::server_with_health::<grpc::Server>(plane, guard)
        .await?
        .add_service(grpc::server(service));
    let served = astral_common::grpc::serve(router, listener, shutdown).await;
    // In-flight calls have finished: close the database connections cleanly.
    pool.close().await;
    served
}
