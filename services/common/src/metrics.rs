//! Prometheus metrics: the process-wide recorder and the `/metrics` page.
//!
//! Every process records through the `metrics` macros; names are `astral_*`. Each process
//! serves the page on a small HTTP listener of its own (`ASTRAL_METRICS_LISTEN`), never on a
//! gateway's public port.

use anyhow::Context as _;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use tokio::net::TcpListener;

/// Latency buckets (seconds): from 0.5 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder (once; later calls return the same handle).
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .map(PrometheusBuilder::build_recorder)
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            // Fails only if another recorder is installed, and then this handle stays empty.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            handle
        })
        .clone()
}

/// The current metrics in Prometheus' text format.
pub fn render() -> String {
    crate::db::sample_pools();
    install().render()
}

/// Listens on `addr` and serves `/metrics` there for the life of the process.
pub async fn spawn_listener(addr: &str) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("metrics listener on {addr}"))?;
    tokio::spawn(async move {
        if let Err(error) = serve(listener, std::future::pending()).await {
            tracing::error!(error = format!("{error:#}"), "metrics listener stopped");
        }
    });
    Ok(())
}

/// Serves `/metrics` (and nothing else) on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    install();
    tracing::info!(addr = %listener.local_addr()?, "metrics listening");
    let app = axum::Router::new().route("/metrics", axum::routing::get(page));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

/// The `/metrics` page, for any axum router.
pub async fn page() -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(),
    )
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_histogram!(
        "astral_grpc_server_duration_seconds",
        Unit::Seconds,
        "gRPC calls served, by method and status code"
    );
    describe_histogram!(
        "astral_http_request_duration_seconds",
        Unit::Seconds,
        "HTTP requests served by the gateway, by route and status"
    );
    describe_gauge!("astral_ws_connections", "Open WebSocket connections");
    describe_counter!(
        "astral_events_published_total",
        "Events published on the bus, by subject kind (user, chat, sessions)"
    );
    describe_counter!(
        "astral_events_received_total",
        "Events the gateway received from the bus"
    );
    describe_counter!(
        "astral_events_sent_total",
        "Event frames the gateway wrote to WebSocket connections"
    );
    describe_counter!("astral_messages_sent_total", "Messages stored (new sends)");
    describe_counter!(
        "astral_nats_reconnects_total",
        "Times the NATS connection was lost"
    );
    describe_gauge!(
        "astral_nats_connected",
        "1 while connected to NATS, 0 while reconnecting"
    );
    describe_gauge!(
        "astral_db_pool_connections",
        "Database connections by state (idle, in_use)"
    );
    describe_gauge!(
        "astral_db_pool_max_connections",
        "The database pool's maximum size"
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn recorded_values_appear_on_the_page() {
        super::install();
        metrics::counter!("astral_messages_sent_total").increment(3);
        metrics::histogram!("astral_grpc_server_duration_seconds", "method" => "/x.Y/Z", "code" => "0")
            .record(0.002);
        let page = super::render();
        assert!(page.contains("astral_messages_sent_total 3"), "{page}");
        assert!(
            page.contains(
                "astral_grpc_server_duration_seconds_bucket{method=\"/x.Y/Z\",code=\"0\",le=\"0.0025\"} 1"
            ),
            "{page}"
        );
        assert!(page.contains("# HELP astral_messages_sent_total"), "{page}");
    }
}
