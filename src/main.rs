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
    /// Serve the web client from this folder (default: the copy built into the binary).
    #[arg(long, env = "ASTRAL_WEB_DIR")]
    web_dir: Option<std::path::PathBuf>,
    /// Use NATS instead of the in-process bus.
    #[arg(long, env = "NATS_URL")]
    nats_url: Option<String>,
    /// How often WebSocket clients must send a heartbeat (milliseconds).
    #[arg(long, env = "ASTRAL_HEARTBEAT_MS", default_value_t = 30_000)]
    heartbeat_ms: u64,
    #[command(flatten)]
    auth: astral_auth::AuthArgs,
    #[command(flatten)]
    telemetry: TelemetryArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _telemetry = astral_common::telemetry::init("astral", &args.telemetry)?;
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    let options = astral::Options {
        data_dir: args.data_dir,
        web_dir: args.web_dir,
        nats_url: args.nats_url,
        heartbeat_ms: args.heartbeat_ms,
        auth: args.auth.settings(),
    };
    let running = astral::start(options, listener).await?;
    tracing::info!("Astral is running: open http://{}", running.addr);
    running.run_until(astral_common::shutdown_signal()).await
}
