//! `astral-messaging`: the messaging service as its own process.

use astral_common::bus::NatsOptions;
use astral_common::config::{BusArgs, TelemetryArgs};
use astral_common::guard::Role;
use astral_common::plane::{Plane, PlaneArgs};
use clap::Parser;

/// Astral's messaging service: chats and messages, over gRPC.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Address the gRPC server listens on.
    #[arg(long, env = "ASTRAL_LISTEN", default_value = "127.0.0.1:50053")]
    listen: String,
    /// The messaging database (`postgres://…` or `sqlite://…`).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/astral_messaging"
    )]
    database_url: String,
    /// The auth service's gRPC endpoint.
    #[arg(
        long,
        env = "ASTRAL_AUTH_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    auth_url: String,
    /// The social service's gRPC endpoint.
    #[arg(
        long,
        env = "ASTRAL_SOCIAL_URL",
        default_value = "http://127.0.0.1:50052"
    )]
    social_url: String,
    /// Address of the Prometheus `/metrics` listener.
    #[arg(long, env = "ASTRAL_METRICS_LISTEN", default_value = "127.0.0.1:9103")]
    metrics_listen: String,
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
    let _telemetry = astral_common::telemetry::init("astral-messaging", &args.telemetry)?;
    let plane = Plane::from_args(&args.plane)?;
    astral_common::metrics::spawn_listener(&args.metrics_listen).await?;
    let nats = NatsOptions::load(&args.bus, Role::Messaging, args.plane.insecure_dev)?;
    let bus = astral_common::EventBus::nats_with(&args.bus.nats_url, nats).await?;
    let listener = astral_common::listen(&args.listen).await?;
    let shutdown = astral_common::shutdown_signal();
    astral_messaging::serve(
        &args.database_url,
        &args.auth_url,
        &args.social_url,
        &plane,
        bus.clone(),
        listener,
        shutdown,
    )
    .await?;
    bus.flush_before_exit(std::time::Duration::from_secs(5))
        .await;
    Ok(())
}
