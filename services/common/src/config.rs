//! Command-line and environment settings every binary shares.

/// Logs and tracing export (unset endpoint: logs only).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TelemetryArgs {
    /// OTLP/gRPC endpoint that receives traces, e.g. `http://127.0.0.1:4317`.
    #[arg(long = "otel-endpoint", env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otel_endpoint: Option<String>,
    /// How log lines are written on stderr.
    #[arg(
        long = "log-format",
        env = "ASTRAL_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text
    )]
    pub log_format: LogFormat,
}

/// Where a process finds the event bus.
#[derive(clap::Args, Debug, Clone)]
pub struct BusArgs {
    /// NATS server, e.g. `nats://127.0.0.1:4222`.
    #[arg(
        long = "nats-url",
        env = "NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats_url: String,
    /// The NATS nkey seed file this process authenticates with (its role's).
    #[arg(long = "nats-nkey", env = "ASTRAL_NATS_NKEY")]
    pub nats_nkey: Option<std::path::PathBuf>,
    /// The Ed25519 key (PKCS#8 PEM) this service signs its events with.
    #[arg(long = "event-signing-key", env = "ASTRAL_EVENT_SIGNING_KEY")]
    pub event_signing_key: Option<std::path::PathBuf>,
    /// The publishing services' event keys (`<role> <base64 key>` lines): only events they
    /// signed are delivered.
    #[arg(long = "event-keys", env = "ASTRAL_EVENT_KEYS")]
    pub event_keys: Option<std::path::PathBuf>,
}

/// How log lines are written on stderr.
#[derive(clap::ValueEnum, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// For people: one readable line per event.
    #[default]
    Text,
    /// For log pipelines: one JSON object per line.
    Json,
}
