//! `astral-auth`: the auth service as its own process.

use astral_common::bus::NatsOptions;
use astral_common::config::{BusArgs, TelemetryArgs};
use astral_common::guard::Role;
use astral_common::plane::{Plane, PlaneArgs};
use clap::Parser;
use std::path::PathBuf;

/// Astral's auth service: accounts, sessions and token keys, over gRPC.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Address the gRPC server listens on.
    #[arg(long, env = "ASTRAL_LISTEN", default_value = "127.0.0.1:50051")]
    listen: String,
    /// The auth database (`postgres://…` or `sqlite://…`).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/astral_auth"
    )]
    database_url: String,
    /// File holding the key that seals the token-signing keys in the database (required
    /// unless ASTRAL_INSECURE_DEV is set).
    #[arg(long, env = "ASTRAL_KEY_ENCRYPTION_KEY")]
    key_encryption_key: Option<PathBuf>,
    /// Address of the Prometheus `/metrics` listener.
    #[arg(long, env = "ASTRAL_METRICS_LISTEN", default_value = "127.0.0.1:9101")]
    metrics_listen: String,
    #[command(flatten)]
    auth: astral_auth::AuthArgs,
    #[command(flatten)]
    plane: PlaneArgs,
    #[command(flatten)]
    bus: BusArgs,
    #[command(flatten)]
    telemetry: TelemetryArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _telemetry = astral_common::telemetry::init("astral-auth", &args.telemetry)?;
    let plane = Plane::from_args(&args.plane)?;
    let kek = astral_auth::kek::from_setting(
        args.key_encryption_key.as_deref(),
        args.plane.insecure_dev,
    )?;
    astral_common::metrics::spawn_listener(&args.metrics_listen).await?;
    let nats = NatsOptions::load(&args.bus, Role::Auth, args.plane.insecure_dev)?;
    let bus = astral_common::EventBus::nats_with(&args.bus.nats_url, nats).await?;
    let listener = astral_common::listen(&args.listen).await?;
    astral_auth::serve(
        &args.database_url,
        kek,
        args.auth.settings(),
        &plane,
        bus.clone(),
        listener,
        astral_common::shutdown_signal(),
    )
    .await?;
    bus.flush_before_exit(std::time::Duration::from_secs(5))
        .await;
    Ok(())
}
