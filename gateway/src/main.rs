//! `astral-gateway`: the gateway as its own process.

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
    /// Serve the web client from this folder (default: the copy built into the binary).
    #[arg(long, env = "ASTRAL_WEB_DIR")]
    web_dir: Option<std::path::PathBuf>,
    /// Other origins allowed to use cookie sessions and WebSockets (comma-separated).
    #[arg(long, env = "ASTRAL_ALLOWED_ORIGINS", value_delimiter = ',')]
    allowed_origins: Vec<String>,
    /// Mark the session cookie Secure (the gateway is served over HTTPS).
    #[arg(long, env = "ASTRAL_SECURE_COOKIES")]
    secure_cookies: bool,
    /// How many proxies in front of the gateway append to X-Forwarded-For; the client is
    /// that many entries from the right (0: clients connect directly).
    #[arg(long, env = "ASTRAL_TRUSTED_PROXY_HOPS", default_value_t = 0)]
    trusted_proxy_hops: usize,
    /// Deprecated: one trusted proxy (ASTRAL_TRUSTED_PROXY_HOPS=1).
    #[arg(long, env = "ASTRAL_TRUST_FORWARDED_FOR", hide = true)]
    trust_forwarded_for: bool,
    /// How often WebSocket clients must send a heartbeat (milliseconds).
    #[arg(long, env = "ASTRAL_HEARTBEAT_MS", default_value_t = 30_000)]
    heartbeat_ms: u64,
    /// Serve Prometheus `/metrics` on this address instead of the gateway's own port.
    #[arg(long, env = "ASTRAL_METRICS_LISTEN")]
    metrics_listen: Option<String>,
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
    config.web_dir = args.web_dir;
    config.allowed_origins = args.allowed_origins;
    config.secure_cookies = args.secure_cookies;
    let legacy = usize::from(args.trust_forwarded_for);
    config.trust_forwarded_for = astral_gateway::ProxyHops(args.trusted_proxy_hops.max(legacy));
    config.heartbeat_ms = args.heartbeat_ms.max(1000);
    if let Some(addr) = &args.metrics_listen {
        astral_common::metrics::spawn_listener(addr).await?;
        config.metrics_on_main_port = false;
    }
    let nats = NatsOptions::load(&args.bus, Role::Gateway, args.plane.insecure_dev)?;
    let bus = astral_common::EventBus::nats_with(&args.bus.nats_url, nats).await?;
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    astral_gateway::serve(
        config,
        &plane,
        bus,
        listener,
        astral_common::shutdown_signal(),
    )
    .await
}
