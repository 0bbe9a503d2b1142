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
pub use service::{AuthService, Settings};

/// The auth service's own settings, as flags and environment variables (the all-in-one
/// takes them too).
#[derive(clap::Args, Debug, Clone)]
pub struct AuthArgs {
    /// Accounts one client address may create in any ten minutes.
    #[arg(long, env = "ASTRAL_REGISTRATIONS_PER_10_MIN", default_value_t = throttle::REGISTRATIONS_PER_10_MIN)]
    pub registrations_per_10_min: i64,
    /// A session not refreshed for this many days ends (its refresh token stops working).
    #[arg(long, env = "ASTRAL_SESSION_IDLE_DAYS", default_value_t = 30)]
    pub session_idle_days: i64,
    /// A session ends this many days after its login, however much it is used.
    #[arg(long, env = "ASTRAL_SESSION_MAX_DAYS", default_value_t = 365)]
    pub session_max_days: i64,
}

impl AuthArgs {
    pub fn settings(&self) -> Settings {
        Settings {
            registrations_per_10_min: self.registrations_per_10_min.max(1),
            session_idle_ms: self.session_idle_days.max(1) * service::DAY_MS,
            session_lifetime_ms: self.session_max_days.max(1) * service::DAY_MS,
        }
    }
}

/// The migrations of the auth database.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Runs the auth gRPC server on `listener` until `shutdown` completes. The signing keys are
/// stored sealed with `kek`; `None` keeps them in clear (development only).
pub async fn serve(
    database_url: &str,
    kek: Option<Kek>,
    settings: Settings,
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
    let outbox = astral_common::outbox::Outbox::start(pool.clone(), bus);
    let service =
        AuthService::start(store::Store::new(pool.clone(), outbox), kek, settings).await?;
    tracing::info!(addr = %listener.describe(), "auth service listening");
    let guard = Guard::new(
        grpc::POLICY,
        Arc::new(grpc::Tokens(service.clone())),
        plane.transport(),
        astral_common::ratelimit::for_database(database_url).await?,
    );
    let router = astral_common::grpc::server_with_health::<grpc::Server>(
        plane.tls(),
        guard,
        std::future::ready(()),
    )
    .await?
    .add_service(grpc::server(service));
    let served = astral_common::grpc::serve(router, listener, shutdown).await;
    // In-flight calls have finished: close the database connections cleanly.
    pool.close().await;
    served
}
