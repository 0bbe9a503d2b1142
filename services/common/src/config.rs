//! Command-line and environment settings every binary shares.

/// Tracing export: unset means logs only.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TelemetryArgs {
    /// OTLP/gRPC endpoint that receives traces, e.g. `http://127.0.0.1:4317`.
    #[arg(long = "otel-endpoint", env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otel_endpoint: Option<String>,
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
