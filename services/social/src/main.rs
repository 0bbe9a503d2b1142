//! `astral-social`: the social service as its own process.

use astral_common::bus::NatsOptions;
use astral_common::config::{BusArgs, TelemetryArgs};
use astral_common::guard::Role;
use astral_common::plane::{Plane, PlaneArgs};
use clap::Parser;

/// Astral's social service: friend requests and friendships, over gRPC.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Address the gRPC server listens on.
    #[arg(long, env = "ASTRAL_LISTEN", default_value = "127.0.0.1:50052")]
    listen: String,
    /// The social database (`postgres://…` or `sqlite://…`).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/astral_social"
    )]
    database_url: String,
    /// The auth service's gRPC endpoint.
    #[arg(
        long,
        env = "ASTRAL_AUTH_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    auth_url: String,
    /// Address of the Prometheus `/metrics` listener.
    #[arg(long, env = "ASTRAL_METRICS_LISTEN", default_value = "127.0.0.1:9102")]
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
    let _telemetry = astral_common::telemetry::init("astral-social", &args.telemetry)?;
    let plane = Plane::from_args(&args.plane)?;
    astral_common::metrics::spawn_listener(&args.metrics_listen).await?;
    let nats = NatsOptions::load(&args.bus, Role::Social, args.plane.insecure_dev)?;
    let bus = astral_common::EventBus::nats_with(&args.bus.nats_url, nats).await?;
    let listener = astral_common::listen(&args.listen).await?;
    astral_social::serve(
        &args.database_url,
        &args.auth_url,
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
