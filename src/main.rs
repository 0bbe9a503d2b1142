//! `astral`: the whole chat platform in one process (SQLite + in-process bus).

use astral_common::config::TelemetryArgs;
use clap::Parser;

/// Astral, all in one process: open http://127.0.0.1:8000 once it says it is listening.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Address the gateway (web client, HTTP API, WebSocket) listens on.
    #[arg(long, env = "ASTRAL_LISTEN", default_value = "127.0.0.1:8000")]
    listen: String,
    /// Where the SQLite files live (created if missing).
    #[arg(long, env = "ASTRAL_DATA_DIR", default_value = "./data")]
    data_dir: std::path::PathBuf,
    /// Use NATS instead of the in-process bus.
    #[arg(long, env = "NATS_URL")]
    nats_url: Option<String>,
    /// Serve Prometheus `/metrics` on this address (none when unset).
    #[arg(long, env = "ASTRAL_METRICS_LISTEN")]
    metrics_listen: Option<String>,
    #[command(flatten)]
    gateway: astral_gateway::Settings,
    #[command(flatten)]
    auth: astral_auth::AuthArgs,
    #[command(flatten)]
    push: astral_messaging::push::PushArgs,
    #[command(flatten)]
    telemetry: TelemetryArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _telemetry = astral_common::telemetry::init("astral", &args.telemetry)?;
    let listener = astral_common::listen(&args.listen).await?;
    let mut gateway = astral_gateway::Config::default();
    args.gateway.apply(&mut gateway);
    let options = astral::Options {
        data_dir: args.data_dir,
        nats_url: args.nats_url,
        metrics_listen: args.metrics_listen,
        gateway,
        auth: args.auth.settings(),
        push: args.push,
    };
    let running = astral::start(options, listener).await?;
    tracing::info!("Astral is running: open http://{}", running.addr);
    running.run_until(astral_common::shutdown_signal()).await
}
