//! Logs (text, or JSON on request), and traces exported over OTLP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set. Trace context travels between processes as W3C
//! `traceparent` headers: in gRPC metadata (see [`crate::grpc`]) and NATS message headers
//! (see [`crate::bus`]).

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator as _};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

pub use opentelemetry::Context;

/// Flushes exported traces when dropped; keep it alive for the life of `main`.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(Err(error)) = self.provider.take().map(|provider| provider.shutdown()) {
            eprintln!("trace export shutdown: {error}");
        }
    }
}

/// Installs the global subscriber (`RUST_LOG` filtering, default `info`; logs on stderr in
/// the chosen format; OTLP trace export if an endpoint is given) and the metrics recorder.
pub fn init(
    service_name: &'static str,
    args: &crate::config::TelemetryArgs,
) -> anyhow::Result<TelemetryGuard> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (text, json) = match args.log_format {
        crate::config::LogFormat::Text => (
            Some(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
            ),
            None,
        ),
        crate::config::LogFormat::Json => (
            None,
            Some(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_writer(std::io::stderr),
            ),
        ),
    };
    let provider = match args.otel_endpoint.as_deref() {
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()?;
            let resource = opentelemetry_sdk::Resource::builder()
                .with_service_name(service_name)
                .build();
            Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(resource)
                    .build(),
            )
        }
        None => None,
    };
    crate::metrics::install();
    let otel = provider
        .as_ref()
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer(service_name)));
    tracing_subscriber::registry()
        .with(filter)
        .with(text)
        .with(json)
        .with(otel)
        .try_init()?;
    Ok(TelemetryGuard { provider })
}

/// Writes the current span's trace context into `carrier` (nothing when no trace is being
/// recorded).
pub fn inject(carrier: &mut dyn Injector) {
    let context = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&context, carrier);
}

/// The trace context a caller sent in `carrier` (empty when it sent none).
pub fn extract(carrier: &dyn Extractor) -> Context {
    TraceContextPropagator::new().extract(carrier)
}

/// Makes `span` a child of the remote `parent` (a no-op when `parent` holds no trace).
pub fn set_parent(span: &tracing::Span, parent: Context) {
    // Fails only when no OpenTelemetry layer is installed, and then there is nothing to link.
    let _ = span.set_parent(parent);
}

/// HTTP (and so gRPC) headers as a trace context carrier.
pub struct HttpHeaders<'a>(pub &'a mut http::HeaderMap);

impl Injector for HttpHeaders<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::header::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Received HTTP (and so gRPC) headers as a trace context carrier.
pub struct ReceivedHttpHeaders<'a>(pub &'a http::HeaderMap);

impl Extractor for ReceivedHttpHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_survives_the_round_trip_through_headers() {
        let mut headers = http::HeaderMap::new();
        let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        headers.insert("traceparent", traceparent.parse().unwrap());
        let context = extract(&ReceivedHttpHeaders(&headers));
        let mut out = http::HeaderMap::new();
        TraceContextPropagator::new().inject_context(&context, &mut HttpHeaders(&mut out));
        assert_eq!(out["traceparent"], traceparent);
    }
}
