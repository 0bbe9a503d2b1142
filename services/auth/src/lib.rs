//! Astral's auth service: accounts, sessions, and the keys that sign access tokens.

pub mod domain;
mod events;
mod grpc;
pub mod keys;
pub mod password;
pub mod service;
pub mod store;
pub mod throttle;

use astral_common::{EventBus, db};
use std::future::Future;
use tokio::net::TcpListener;

pub use service::AuthService;

/// The migrations of the auth database.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Runs the auth gRPC server on `listener` until `shutdown` completes.
pub async fn serve(
    database_url: &str,
    bus: EventBus,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let pool = db::connect(database_url).await?;
    MIGRATOR.run(&pool).await?;
    let service = AuthService::start(store::Store::new(pool.clone()), bus).await?;
    tracing::info!(addr = %listener.local_addr()?, "auth service listening");
    let router = astral_common::grpc::server_with_health::<grpc::Server>()
        .await?
        .add_service(grpc::server(service));
    let served = astral_common::grpc::serve(router, listener, shutdown).await;
    // In-flight calls have finished: close the database connections cleanly.
    pool.close().await;
    served
}
