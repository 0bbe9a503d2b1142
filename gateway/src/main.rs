//! `astral-gateway`: the gateway as its own process.

use anyhow::Context as _;
use astral_common::bus::NatsOptions;
use astral_common::config::{BusArgs, TelemetryArgs};
use astral_common::guard::Role;
use astral_common::plane::{Plane, PlaneArgs};
use clap::Parser;

/// Astral's gateway: the HTTP API, the WebSocket and the web client.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Address the HTTP server listens on.
    #[arg(long, env = "ASTRAL_LISTEN", default_value = "127.0.0.1:8000")]
    listen: String,
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
    /// The messaging service's gRPC endpoint.
    #[arg(
        long,
        env = "ASTRAL_MESSAGING_URL",
        default_value = "http://127.0.0.1:50053"
    )]
    messaging_url: String,
    /// Serve Prometheus `/metrics` on this address (none when unset: never on the
    /// gateway's own port).
    #[arg(long, env = "ASTRAL_METRICS_LISTEN")]
    metrics_listen: Option<String>,
    #[command(flatten)]
    settings: astral_gateway::Settings,
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
    let _telemetry = astral_common::telemetry::init("astral-gateway", &args.telemetry)?;
    let plane = Plane::from_args(&args.plane)?;
    let mut config =
        astral_gateway::Config::new(args.auth_url, args.social_url, args.messaging_url);
    args.settings.apply(&mut config);
    if let Some(addr) = &args.metrics_listen {
        astral_common::metrics::spawn_listener(addr).await?;
    }
    let nats = NatsOptions::load(&args.bus, Role::Gateway, args.plane.insecure_dev)?;
    let bus = astral_common::EventBus::nats_with(&args.bus.nats_url, nats).await?;
    let listener = astral_common::listen(&args.listen)
        .await
        .with_context(|| format!("listen on {}", args.listen))?;
    astral_gateway::serve(
        config,
        &plane,
        bus,
        listener,
        astral_common::shutdown_signal(),
    )
    .await
}
