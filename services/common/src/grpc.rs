//! Serving and calling gRPC: health checking, reflection, the trace context and latency of
//! every call (here), and balanced client channels (`client.rs`, over the replicas of
//! `replicas.rs`).

mod client;
mod replicas;

pub use client::{Channel, DEFAULT_DEADLINE, channel};
pub use replicas::STALLED_AFTER;

use crate::guard::Guard;
use anyhow::Context as _;
use futures::StreamExt as _;
use futures::future::BoxFuture;
use std::future::Future;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tonic::server::NamedService;
use tracing::Instrument as _;

/// How long a stopping server waits for the calls still running (unary calls end within
/// the server's 30 s timeout anyway; an open stream would hold it forever). Below the 30 s
/// that Compose and Kubernetes give a process before they kill it.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(20);

/// Where a service takes calls: a TCP port (distributed mode) or a Unix socket (the
/// all-in-one, whose sockets live in its private data directory).
pub enum Listener {
    Tcp(TcpListener),
    Unix(tokio::net::UnixListener),
}

impl Listener {
    /// Where it listens, for logs.
    pub fn describe(&self) -> String {
        match self {
            Self::Tcp(listener) => listener
                .local_addr()
                .map_or_else(|_| "tcp".to_owned(), |addr| addr.to_string()),
            Self::Unix(listener) => listener
                .local_addr()
                .ok()
                .and_then(|addr| addr.as_pathname().map(|path| path.display().to_string()))
                .unwrap_or_else(|| "unix socket".to_owned()),
        }
    }
}

impl From<TcpListener> for Listener {
    fn from(listener: TcpListener) -> Self {
        Self::Tcp(listener)
    }
}

impl From<tokio::net::UnixListener> for Listener {
    fn from(listener: tokio::net::UnixListener) -> Self {
        Self::Unix(listener)
    }
}

/// Serves `router` (a service's gRPC API plus health and reflection) on `listener` until
/// `shutdown` completes, then stops taking calls and waits for those running, up to
/// [`DRAIN_LIMIT`].
pub async fn serve(
    router: Router,
    listener: impl Into<Listener>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    serve_draining_within(router, listener.into(), shutdown, DRAIN_LIMIT).await
}

async fn serve_draining_within(
    router: Router,
    listener: Listener,
    shutdown: impl Future<Output = ()> + Send,
    drain_limit: Duration,
) -> anyhow::Result<()> {
    let stopping = tokio::sync::Notify::new();
    let shutdown = async {
        shutdown.await;
        stopping.notify_one();
    };
    let serving = async {
        match listener {
            Listener::Tcp(listener) => {
                // Small replies go out at once: with Nagle's algorithm on, a reply written in
                // pieces waits for the caller's delayed acknowledgement (tens of milliseconds).
                let incoming =
                    tokio_stream::wrappers::TcpListenerStream::new(listener).map(|stream| {
                        if let Ok(stream) = &stream
                            && let Err(error) = stream.set_nodelay(true)
                        {
                            tracing::warn!(%error, "cannot set TCP_NODELAY");
                        }
                        stream
                    });
                router
                    .serve_with_incoming_shutdown(incoming, shutdown)
                    .await
            }
            Listener::Unix(listener) => {
                let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
                router
                    .serve_with_incoming_shutdown(incoming, shutdown)
                    .await
            }
        }
    };
    tokio::select! {
        served = serving => served?,
        () = async {
            stopping.notified().await;
            tokio::time::sleep(drain_limit).await;
        } => {
            tracing::warn!(?drain_limit, "calls still running when the drain time ran out; stopping");
        }
    }
    Ok(())
}

/// The most a server waits for any call, whatever its caller asked: an upload's (10 minutes
/// at the gateway) and a little more. Every other call is bounded by its caller's deadline
/// (`grpc-timeout`, 10 s unless asked), which the server honours.
pub const LONGEST_CALL: Duration = Duration::from_secs(11 * 60);
/// HTTP/2 receive windows of every gRPC connection, server and client (see
/// `client::windows`): 1 MiB a stream, 32 MiB a connection.
pub const STREAM_WINDOW: u32 = 1024 * 1024;
pub const CONNECTION_WINDOW: u32 = 32 * 1024 * 1024;

/// A server builder that already serves `grpc.health.v1` and server reflection over every
/// Astral proto, every call behind `guard`; over mutual TLS with `tls` (the plane's). Health
/// answers `NOT_SERVING` (for the server as a whole and for `S`) until `ready` finishes,
/// e.g. until the token keys are loaded, so nothing is sent here that would be refused.
pub async fn server_with_health<S: NamedService>(
    tls: Option<&crate::tls::Tls>,
    guard: Guard,
    ready: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Router> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", tonic_health::ServingStatus::NotServing)
        .await;
    reporter.set_not_serving::<S>().await;
    tokio::spawn(async move {
        ready.await;
        reporter
            .set_service_status("", tonic_health::ServingStatus::Serving)
            .await;
        reporter.set_serving::<S>().await;
    });
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(astral_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    // Many clients (grpcurl among them) still ask only the older `v1alpha` reflection.
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(astral_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let mut builder = tonic::transport::Server::builder()
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW);
    if let Some(tls) = tls {
        builder = builder
            .tls_config(tls.server())
            .context("the TLS certificate or key is not usable")?;
    }
    Ok(builder
        .timeout(LONGEST_CALL)
        .layer(ObserveLayer)
        .layer(guard)
        .add_service(health)
        .add_service(reflection)
        .add_service(reflection_v1alpha))
}

/// A gRPC server's routes, each call observed (see [`ObserveLayer`]) and guarded.
pub type Router = tonic::transport::server::Router<
    tower::layer::util::Stack<
        Guard,
        tower::layer::util::Stack<ObserveLayer, tower::layer::util::Identity>,
    >,
>;

/// Wraps a server's routes so that every call is traced and timed.
#[derive(Clone, Copy, Debug)]
pub struct ObserveLayer;

impl<S> tower::Layer<S> for ObserveLayer {
    type Service = Observed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observed { inner }
    }
}

/// Every call a server receives: a span that continues the caller's trace, and its latency
/// in `astral_grpc_server_duration_seconds{method, code}`.
#[derive(Clone, Debug)]
pub struct Observed<S> {
    inner: S,
}

impl<S, B, R> tower::Service<http::Request<B>> for Observed<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = request.uri().path().to_owned();
        let span = tracing::info_span!(
            "grpc.server",
            otel.name = %method,
            otel.kind = "server",
            rpc.system = "grpc",
        );
        crate::telemetry::set_parent(
            &span,
            crate::telemetry::extract(&crate::telemetry::ReceivedHttpHeaders(request.headers())),
        );
        let started = Instant::now();
        let response = span.in_scope(|| self.inner.call(request));
        Box::pin(
            async move {
                let response = response.await;
                // A failed unary call answers with its status in the headers; a successful
                // one sends status 0 in the trailers.
                let code = match &response {
                    Ok(response) => response
                        .headers()
                        .get("grpc-status")
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or("0")
                        .to_owned(),
                    Err(_) => "transport".to_owned(),
                };
                metrics::histogram!(
                    "astral_grpc_server_duration_seconds",
                    "method" => method,
                    "code" => code,
                )
                .record(started.elapsed().as_secs_f64());
                response
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests;
