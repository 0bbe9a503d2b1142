//! Serving and calling gRPC: health checking, reflection, balanced client channels, and the
//! trace context and latency of every call.

use crate::guard::Guard;
use anyhow::Context as _;
use futures::StreamExt as _;
use futures::future::BoxFuture;
use std::future::Future;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tonic::server::NamedService;
use tonic::transport::channel::Change;
use tonic::transport::{ClientTlsConfig, Endpoint};
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

/// A server builder that already serves `grpc.health.v1` (reporting `S` as serving) and
/// server reflection over every Astral proto, every call behind `guard`; over mutual TLS
/// when the plane has it.
pub async fn server_with_health<S: NamedService>(
    plane: &crate::plane::Plane,
    guard: Guard,
) -> anyhow::Result<Router> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<S>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(astral_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    // Many clients (grpcurl among them) still ask only the older `v1alpha` reflection.
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(astral_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = plane.tls() {
        builder = builder
            .tls_config(tls.server())
            .context("the TLS certificate or key is not usable")?;
    }
    Ok(builder
        .timeout(Duration::from_secs(30))
        .layer(ObserveLayer)
        .layer(guard)
        .add_service(health)
        .add_service(reflection)
        .add_service(reflection_v1alpha))
}

/// A channel to a service that connects on first use and reconnects as needed, so services
/// can start in any order. `url` may name several endpoints, comma-separated
/// (`http://10.0.0.1:50052,http://10.0.0.2:50052`), and each host name is looked up again
/// every few seconds: calls are balanced over every address found, so a headless
/// Kubernetes Service (one DNS record per pod) spreads them over its replicas, and a
/// replica that goes away is dropped while a new one is picked up. With `tls`, every
/// connection is mutual TLS (the scheme may then be `https` or `http`); `unix:///path` is a
/// Unix socket.
pub fn channel(url: &str, tls: Option<ClientTlsConfig>) -> anyhow::Result<Channel> {
    let unreachable = std::sync::Arc::new(tokio::sync::Notify::new());
    let inner = match url.strip_prefix("unix://") {
        Some(path) => unix_channel(path.into()),
        None => balanced_channel(url, tls, unreachable.clone())?,
    };
    Ok(Channel { inner, unreachable })
}

fn unix_channel(path: std::path::PathBuf) -> tonic::transport::Channel {
    Endpoint::from_static("http://astral.internal")
        .timeout(Duration::from_secs(30))
        .connect_with_connector_lazy(tower::service_fn(move |_: http::Uri| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    tokio::net::UnixStream::connect(path).await?,
                ))
            }
        }))
}

fn balanced_channel(
    url: &str,
    tls: Option<ClientTlsConfig>,
    unreachable: std::sync::Arc<tokio::sync::Notify>,
) -> anyhow::Result<tonic::transport::Channel> {
    let targets: Vec<tonic::codegen::http::Uri> = url
        .split(',')
        .map(|part| part.trim().parse())
        .collect::<Result<_, _>>()?;
    if targets.is_empty() || targets.iter().any(|uri| uri.host().is_none()) {
        anyhow::bail!("{url} is not a list of https://host:port endpoints");
    }
    if tls.is_none() && targets.iter().any(|uri| uri.scheme_str() == Some("https")) {
        anyhow::bail!("{url} asks for TLS, but this process has no TLS settings (ASTRAL_TLS_*)");
    }
    let (channel, changes) = tonic::transport::Channel::balance_channel::<std::net::SocketAddr>(64);
    tokio::spawn(follow(targets, tls, changes, unreachable));
    Ok(channel)
}

/// How often endpoints' host names are looked up again, and their addresses probed.
const RESOLVE_EVERY: Duration = Duration::from_secs(2);
/// The soonest a failed call makes the addresses be probed again.
const REPROBE_AFTER: Duration = Duration::from_millis(50);
/// How long a probe waits for a connection.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// How soon a round follows one in which a named endpoint did not answer.
const PROBE_MISSING_EVERY: Duration = Duration::from_millis(250);

/// Keeps the balanced channel's endpoints equal to what the targets resolve to (every few
/// seconds, and at once when a call could not reach its endpoint); ends when the channel is
/// dropped.
async fn follow(
    targets: Vec<tonic::codegen::http::Uri>,
    tls: Option<ClientTlsConfig>,
    changes: tokio::sync::mpsc::Sender<Change<std::net::SocketAddr, Endpoint>>,
    unreachable: std::sync::Arc<tokio::sync::Notify>,
) {
    let mut current: std::collections::HashSet<std::net::SocketAddr> =
        std::collections::HashSet::new();
    loop {
        let mut found = std::collections::HashSet::new();
        for uri in &targets {
            let host = uri
                .host()
                .unwrap_or_default()
                .trim_start_matches('[')
                .trim_end_matches(']');
            let port = uri.port_u16().unwrap_or(80);
            match tokio::net::lookup_host((host, port)).await {
                Ok(addresses) => found.extend(addresses),
                Err(error) => tracing::warn!(%uri, %error, "cannot resolve a service endpoint"),
            }
        }
        // Only addresses that accept a connection: a replica that died leaves the balancer
        // within one round, even when its name (or a fixed list) still names it.
        let mut reachable = std::collections::HashSet::new();
        for address in &found {
            if let Ok(Ok(_)) =
                tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(address)).await
            {
                reachable.insert(*address);
            }
        }
        // A named endpoint that did not answer (a replica still starting, or gone) is asked
        // again soon, so that it joins the balancer as soon as it listens.
        let missing = reachable.len() < found.len();
        if !reachable.is_empty() {
            found = reachable;
        }
        // Keep the last known addresses if a lookup found nothing (DNS hiccup).
        if !found.is_empty() {
            for gone in current.difference(&found) {
                if changes.send(Change::Remove(*gone)).await.is_err() {
                    return;
                }
            }
            for new in found.difference(&current) {
                let endpoint = match endpoint(*new, tls.as_ref()) {
                    Ok(endpoint) => endpoint,
                    Err(error) => {
                        tracing::warn!(error = format!("{error:#}"), "cannot make an endpoint");
                        continue;
                    }
                };
                if changes.send(Change::Insert(*new, endpoint)).await.is_err() {
                    return;
                }
            }
            current = found;
        }
        tokio::time::sleep(REPROBE_AFTER).await;
        // A replica that went away (a deploy, a crash) fails the calls sent its way until it
        // leaves the balancer: the first such failure starts the next round.
        let next_round = if missing {
            PROBE_MISSING_EVERY
        } else {
            RESOLVE_EVERY
        };
        let _ = tokio::time::timeout(next_round, unreachable.notified()).await;
        if changes.is_closed() {
            return;
        }
    }
}

fn endpoint(
    address: std::net::SocketAddr,
    tls: Option<&ClientTlsConfig>,
) -> anyhow::Result<Endpoint> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let endpoint = Endpoint::from_shared(format!("{scheme}://{address}"))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30));
    Ok(match tls {
        Some(tls) => endpoint.tls_config(tls.clone())?,
        None => endpoint,
    })
}

/// A client channel (see [`channel`]) that sends the caller's trace context with each call.
#[derive(Clone, Debug)]
pub struct Channel {
    inner: tonic::transport::Channel,
    /// Told when a call could not reach its endpoint.
    unreachable: std::sync::Arc<tokio::sync::Notify>,
}

impl tower::Service<http::Request<tonic::body::Body>> for Channel {
    type Response = http::Response<tonic::body::Body>;
    type Error = tonic::transport::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower::Service::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        crate::telemetry::inject(&mut crate::telemetry::HttpHeaders(request.headers_mut()));
        let response = self.inner.call(request);
        let unreachable = self.unreachable.clone();
        Box::pin(async move {
            let response = response.await;
            if response.is_err() {
                unreachable.notify_one();
            }
            response
        })
    }
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
mod tests {
    use super::*;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;

    struct NoUsers;

    impl crate::guard::VerifyToken for NoUsers {
        fn verify<'a>(
            &'a self,
            _token: &'a str,
        ) -> BoxFuture<'a, Result<crate::tokens::Claims, crate::guard::Refused>> {
            Box::pin(async { Err(crate::guard::Refused::Unauthenticated("no users".into())) })
        }
    }

    #[tokio::test]
    async fn a_stopping_server_waits_for_running_calls_only_so_long() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let guard = crate::guard::Guard::new(
            &[],
            std::sync::Arc::new(NoUsers),
            crate::guard::Transport::Trusted,
            std::sync::Arc::new(crate::ratelimit::InMemory::default()),
        );
        let router = server_with_health::<
            tonic_health::pb::health_server::HealthServer<tonic_health::server::HealthService>,
        >(&crate::plane::Plane::trusted(), guard)
        .await
        .unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let limit = Duration::from_millis(300);
        let server = tokio::spawn(serve_draining_within(
            router,
            listener.into(),
            async {
                let _ = stopped.await;
            },
            limit,
        ));
        // A call that never ends by itself: a reflection stream the client keeps open.
        let (requests, pending) = tokio::sync::mpsc::channel(1);
        requests
            .send(ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            })
            .await
            .unwrap();
        let mut client = ServerReflectionClient::new(channel(&url, None).unwrap());
        let mut answers = client
            .server_reflection_info(tokio_stream::wrappers::ReceiverStream::new(pending))
            .await
            .unwrap()
            .into_inner();
        assert!(
            answers.message().await.unwrap().is_some(),
            "the stream is open"
        );

        let started = tokio::time::Instant::now();
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("the server stops despite the open stream")
            .unwrap()
            .unwrap();
        assert!(
            started.elapsed() >= limit,
            "it waited for the running call first"
        );
        drop(requests);
    }
}
