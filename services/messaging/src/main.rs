//! `astral-messaging`: the messaging service as its own process.

use anyhow::Context as _;
use astral_common::bus::NatsOptions;
use astral_common::config::{BusArgs, TelemetryArgs};
use astral_common::guard::Role;
use astral_common::plane::{Plane, PlaneArgs};
use astral_messaging::push::PushArgs;
use astral_messaging::storage::StorageConfig;
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
    /// Where attachments' bytes are stored: `file:///absolute/dir` or `s3://bucket`.
    #[arg(
        long,
        env = "ASTRAL_STORAGE_URL",
        default_value = "file:///var/lib/astral/attachments"
    )]
    storage_url: String,
    /// The S3 endpoint, e.g. `http://garage:3900` (unset: AWS).
    #[arg(long, env = "ASTRAL_S3_ENDPOINT")]
    s3_endpoint: Option<String>,
    /// The S3 region (Garage's `s3_region`).
    #[arg(long, env = "ASTRAL_S3_REGION", default_value = "us-east-1")]
    s3_region: String,
    /// The S3 access key id.
    #[arg(long, env = "ASTRAL_S3_ACCESS_KEY_ID")]
    s3_access_key_id: Option<String>,
    /// A file holding the S3 secret access key.
    #[arg(long, env = "ASTRAL_S3_SECRET_ACCESS_KEY_FILE")]
    s3_secret_access_key_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    push: PushArgs,
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
    let storage = astral_messaging::storage::Storage::open(&StorageConfig {
        url: args.storage_url,
        s3_endpoint: args.s3_endpoint,
        s3_region: args.s3_region,
        s3_access_key_id: args.s3_access_key_id,
        s3_secret_access_key: args
            .s3_secret_access_key_file
            .map(|path| {
                std::fs::read_to_string(&path)
                    .map(|secret| secret.trim().to_owned())
                    .with_context(|| format!("read the S3 secret key {}", path.display()))
            })
            .transpose()?,
    })?;
    let listener = astral_common::listen(&args.listen).await?;
    let shutdown = astral_common::shutdown_signal();
    astral_messaging::serve(
        &args.database_url,
        storage,
        args.push.config()?,
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
