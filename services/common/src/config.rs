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
        default_value_t = crate::telemetry::LogFormat::Text
    )]
    pub log_format: crate::telemetry::LogFormat,
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
}
