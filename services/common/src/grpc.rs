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

/// A server builder that already serves `grpc.health.v1` and server reflection over every
/// Astral proto, every call behind `guard`; over mutual TLS when the plane has it. Health
/// answers `NOT_SERVING` (for the server as a whole and for `S`) until `ready` finishes,
/// e.g. until the token keys are loaded, so nothing is sent here that would be refused.
pub async fn server_with_health<S: NamedService>(
    plane: &crate::plane::Plane,
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
///
/// Every call has a deadline ([`DEFAULT_DEADLINE`] unless the request sets a shorter one).
/// Among the replicas, a call goes to the less busy of two picked at random (power of two
/// choices over calls in flight); a replica that let a call time out, failed three in a
/// row, or has answered nothing for [`STALLED_AFTER`] while calls wait on it is left out for
/// a while (outlier ejection), then tried again.
pub fn channel(url: &str, tls: Option<ClientTlsConfig>) -> anyhow::Result<Channel> {
    let unreachable = std::sync::Arc::new(tokio::sync::Notify::new());
    let replicas = match url.strip_prefix("unix://") {
        Some(path) => Replicas::one(unix_channel(path.into())),
        None => balanced(url, tls, unreachable.clone())?,
    };
    Ok(Channel {
        replicas,
        unreachable,
    })
}

fn unix_channel(path: std::path::PathBuf) -> tonic::transport::Channel {
    Endpoint::from_static("http://astral.internal").connect_with_connector_lazy(tower::service_fn(
        move |_: http::Uri| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    tokio::net::UnixStream::connect(path).await?,
                ))
            }
        },
    ))
}

fn balanced(
    url: &str,
    tls: Option<ClientTlsConfig>,
    unreachable: std::sync::Arc<tokio::sync::Notify>,
) -> anyhow::Result<std::sync::Arc<Replicas>> {
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
    let replicas = std::sync::Arc::new(Replicas::default());
    tokio::spawn(follow(
        targets,
        tls,
        std::sync::Arc::downgrade(&replicas),
        unreachable,
    ));
    Ok(replicas)
}

/// How often endpoints' host names are looked up again, and their addresses probed.
const RESOLVE_EVERY: Duration = Duration::from_secs(2);
/// The soonest a failed call makes the addresses be probed again.
const REPROBE_AFTER: Duration = Duration::from_millis(50);
/// How long a probe waits for a connection.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// How soon a round follows one in which a named endpoint did not answer.
const PROBE_MISSING_EVERY: Duration = Duration::from_millis(250);

/// Keeps the replicas equal to what the targets resolve to and accept a connection (every
/// few seconds, and at once when a call could not reach its replica); ends when the channel
/// is dropped.
async fn follow(
    targets: Vec<tonic::codegen::http::Uri>,
    tls: Option<ClientTlsConfig>,
    replicas: std::sync::Weak<Replicas>,
    unreachable: std::sync::Arc<tokio::sync::Notify>,
) {
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
        let Some(current) = replicas.upgrade() else {
            return;
        };
        // Keep the last known addresses if a lookup found nothing (DNS hiccup).
        if !found.is_empty() {
            current.set(&found, |address| {
                endpoint(address, tls.as_ref())
                    .map(|endpoint| endpoint.connect_lazy())
                    .inspect_err(|error| {
                        tracing::warn!(error = format!("{error:#}"), "cannot make an endpoint");
                    })
                    .ok()
            });
        }
        drop(current);
        tokio::time::sleep(REPROBE_AFTER).await;
        // A replica that went away (a deploy, a crash) fails the calls sent its way until it
        // leaves the balancer: the first such failure starts the next round.
        let next_round = if missing {
            PROBE_MISSING_EVERY
        } else {
            RESOLVE_EVERY
        };
        let _ = tokio::time::timeout(next_round, unreachable.notified()).await;
    }
}

fn endpoint(
    address: std::net::SocketAddr,
    tls: Option<&ClientTlsConfig>,
) -> anyhow::Result<Endpoint> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let endpoint = Endpoint::from_shared(format!("{scheme}://{address}"))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30));
    Ok(match tls {
        Some(tls) => endpoint.tls_config(tls.clone())?,
        None => endpoint,
    })
}

/// The longest a call waits for its answer unless the request asks for less
/// (`grpc-timeout`, which the server also honours). Above the auth service's longest wait
/// for a password check (5 s).
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);
/// A replica with calls waiting that has answered nothing for this long is passed over
/// (a stopped or frozen process still accepts connections; only its silence shows).
pub const STALLED_AFTER: Duration = Duration::from_secs(1);
/// Calls failing in a row (unreachable, reset) that eject a replica.
const FAILURES_TO_EJECT: u32 = 3;
/// How long a first ejection lasts; each ejection in a row lasts twice the one before, up
/// to [`LONGEST_EJECTION`].
const FIRST_EJECTION: Duration = Duration::from_secs(1);
const LONGEST_EJECTION: Duration = Duration::from_secs(30);

/// The replicas of one service, as last found.
struct Replicas {
    list: std::sync::RwLock<std::sync::Arc<Vec<std::sync::Arc<Replica>>>>,
    /// Counts the changes of the list, for calls waiting for a first replica.
    changes: tokio::sync::watch::Sender<u64>,
}

impl Default for Replicas {
    fn default() -> Self {
        Self {
            list: std::sync::RwLock::default(),
            changes: tokio::sync::watch::Sender::new(0),
        }
    }
}

/// One replica: its connection, the calls it has in flight and how it has been answering.
struct Replica {
    address: String,
    channel: tonic::transport::Channel,
    in_flight: std::sync::atomic::AtomicUsize,
    health: std::sync::Mutex<Health>,
}

struct Health {
    /// Calls failed in a row.
    failures: u32,
    /// Ejections in a row (reset by an answer).
    ejections: u32,
    ejected_until: Option<Instant>,
    /// When it last answered a call, or started being asked after it had nothing to do.
    last_progress: Instant,
}

impl Replicas {
    fn one(channel: tonic::transport::Channel) -> std::sync::Arc<Self> {
        let replicas = Self::default();
        *replicas.write() = std::sync::Arc::new(vec![std::sync::Arc::new(Replica::new(
            "unix socket".into(),
            channel,
        ))]);
        std::sync::Arc::new(replicas)
    }

    fn read(&self) -> std::sync::Arc<Vec<std::sync::Arc<Replica>>> {
        self.list
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn write(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, std::sync::Arc<Vec<std::sync::Arc<Replica>>>> {
        self.list
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes the replicas those at `addresses`, keeping the ones already known (with their
    /// connections and history) and connecting to the new ones.
    fn set(
        &self,
        addresses: &std::collections::HashSet<std::net::SocketAddr>,
        connect: impl Fn(std::net::SocketAddr) -> Option<tonic::transport::Channel>,
    ) {
        let known = self.read();
        let mut list = Vec::with_capacity(addresses.len());
        for address in addresses {
            let name = address.to_string();
            match known.iter().find(|replica| replica.address == name) {
                Some(replica) => list.push(replica.clone()),
                None => list.extend(
                    connect(*address)
                        .map(|channel| std::sync::Arc::new(Replica::new(name, channel))),
                ),
            }
        }
        list.sort_by(|a, b| a.address.cmp(&b.address));
        *self.write() = std::sync::Arc::new(list);
        self.changes.send_modify(|count| *count += 1);
    }

    /// A replica for the next call, waiting for one to be found (a service starting) until
    /// `deadline`.
    async fn wait_pick(&self, deadline: tokio::time::Instant) -> Option<std::sync::Arc<Replica>> {
        let mut changes = self.changes.subscribe();
        loop {
            if let Some(replica) = self.pick() {
                return Some(replica);
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                _ => return None,
            }
        }
    }

    /// The replica for the next call: the less busy of two picked at random among those not
    /// ejected or stalled (among all of them if none is left).
    fn pick(&self) -> Option<std::sync::Arc<Replica>> {
        use rand::Rng as _;
        let list = self.read();
        let now = Instant::now();
        let healthy: Vec<&std::sync::Arc<Replica>> = list
            .iter()
            .filter(|replica| replica.eligible(now))
            .collect();
        let pool = if healthy.is_empty() {
            list.iter().collect()
        } else {
            healthy
        };
        let mut random = rand::thread_rng();
        match pool.len() {
            0 => None,
            1 => Some(pool[0].clone()),
            n => {
                let first = random.gen_range(0..n);
                let mut second = random.gen_range(0..n - 1);
                if second >= first {
                    second += 1;
                }
                let (a, b) = (pool[first], pool[second]);
                Some(if b.load() < a.load() {
                    b.clone()
                } else {
                    a.clone()
                })
            }
        }
    }
}

impl Replica {
    fn new(address: String, channel: tonic::transport::Channel) -> Self {
        Self {
            address,
            channel,
            in_flight: std::sync::atomic::AtomicUsize::new(0),
            health: std::sync::Mutex::new(Health {
                failures: 0,
                ejections: 0,
                ejected_until: None,
                last_progress: Instant::now(),
            }),
        }
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn load(&self) -> usize {
        self.in_flight.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Neither ejected nor silent with calls waiting.
    fn eligible(&self, now: Instant) -> bool {
        let health = self.health();
        let ejected = health.ejected_until.is_some_and(|until| until > now);
        let stalled = self.load() > 0 && now.duration_since(health.last_progress) > STALLED_AFTER;
        !ejected && !stalled
    }

    /// A call starts; it counts as in flight until the returned guard is dropped.
    fn start(self: &std::sync::Arc<Self>) -> InFlight {
        let before = self
            .in_flight
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if before == 0 {
            // Idle until now: its silence counts from this call on.
            self.health().last_progress = Instant::now();
        }
        InFlight(self.clone())
    }

    fn answered(&self) {
        let mut health = self.health();
        health.failures = 0;
        health.ejections = 0;
        health.ejected_until = None;
        health.last_progress = Instant::now();
    }

    /// A call failed: `timed_out` (no answer within its deadline) ejects at once, other
    /// failures after [`FAILURES_TO_EJECT`] in a row.
    fn failed(&self, timed_out: bool) {
        let mut health = self.health();
        if health
            .ejected_until
            .is_some_and(|until| until > Instant::now())
        {
            // Calls that were on their way when it was ejected: nothing new.
            return;
        }
        health.failures += 1;
        if !timed_out && health.failures < FAILURES_TO_EJECT {
            return;
        }
        let factor = 1_u32 << health.ejections.min(5);
        let ejection = (FIRST_EJECTION * factor).min(LONGEST_EJECTION);
        health.ejections += 1;
        health.failures = 0;
        health.ejected_until = Some(Instant::now() + ejection);
        metrics::counter!("astral_grpc_ejections_total").increment(1);
        tracing::warn!(replica = %self.address, ?ejection, timed_out, "a replica is left out of the balancer for a while");
    }
}

/// A call in flight on a replica.
struct InFlight(std::sync::Arc<Replica>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0
            .in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The deadline a request asks for (`grpc-timeout`: digits and a unit), if it asks.
fn requested_deadline(request: &http::Request<tonic::body::Body>) -> Option<Duration> {
    let value = request.headers().get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// Whether a call's error is its deadline passing.
fn timed_out(error: &tonic::transport::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = source {
        if error.is::<tonic::TimeoutExpired>() {
            return true;
        }
        source = error.source();
    }
    false
}

/// A call that got no answer within its deadline: the replica is ejected for a while.
fn no_answer(replica: &Replica, deadline: Duration) -> BoxError {
    replica.failed(true);
    let message = format!("{} did not answer within {deadline:?}", replica.address);
    tonic::Status::deadline_exceeded(message).into()
}

/// A client channel (see [`channel`]) that sends the caller's trace context with each call.
#[derive(Clone)]
pub struct Channel {
    replicas: std::sync::Arc<Replicas>,
    /// Told when a call could not reach its replica.
    unreachable: std::sync::Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let replicas: Vec<String> = self
            .replicas
            .read()
            .iter()
            .map(|replica| replica.address.clone())
            .collect();
        f.debug_struct("Channel")
            .field("replicas", &replicas)
            .finish()
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower::Service<http::Request<tonic::body::Body>> for Channel {
    type Response = http::Response<tonic::body::Body>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Each call waits for its replica's connection (within its deadline).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        crate::telemetry::inject(&mut crate::telemetry::HttpHeaders(request.headers_mut()));
        let deadline = match requested_deadline(&request) {
            Some(asked) => asked.min(DEFAULT_DEADLINE),
            None => {
                let millis = DEFAULT_DEADLINE.as_millis().to_string() + "m";
                if let Ok(value) = http::HeaderValue::from_str(&millis) {
                    request.headers_mut().insert("grpc-timeout", value);
                }
                DEFAULT_DEADLINE
            }
        };
        let replicas = self.replicas.clone();
        let unreachable = self.unreachable.clone();
        Box::pin(async move {
            let started = tokio::time::Instant::now();
            let Some(replica) = replicas.wait_pick(started + deadline).await else {
                unreachable.notify_one();
                return Err(
                    tonic::Status::unavailable("no replica of the service is reachable").into(),
                );
            };
            let deadline = deadline.saturating_sub(started.elapsed());
            let _in_flight = replica.start();
            let mut channel = replica.channel.clone();
            let answer = tokio::time::timeout(deadline, async {
                tower::ServiceExt::ready(&mut channel).await?;
                tower::Service::call(&mut channel, request).await
            })
            .await;
            match answer {
                Ok(Ok(response)) => {
                    replica.answered();
                    Ok(response)
                }
                // The connection enforces the request's `grpc-timeout` itself.
                Ok(Err(error)) if timed_out(&error) => Err(no_answer(&replica, deadline)),
                Ok(Err(error)) => {
                    // Never reached, or the connection broke: another replica may answer.
                    replica.failed(false);
                    unreachable.notify_one();
                    let message = format!("{} is unreachable: {error}", replica.address);
                    Err(tonic::Status::unavailable(message).into())
                }
                Err(_) => Err(no_answer(&replica, deadline)),
            }
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
        >(
            &crate::plane::Plane::trusted(),
            guard,
            std::future::ready(()),
        )
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

    /// A listener that accepts connections and never answers, as a stopped (SIGSTOP) or
    /// frozen process does: the kernel still completes the TCP handshake.
    async fn silent_replica() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        url
    }

    async fn answering_replica() -> String {
        replica_ready_after(std::future::ready(())).await
    }

    /// A replica whose health reports serving once `ready` finishes.
    async fn replica_ready_after(ready: impl Future<Output = ()> + Send + 'static) -> String {
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
        >(&crate::plane::Plane::trusted(), guard, ready)
        .await
        .unwrap();
        tokio::spawn(serve(router, listener, std::future::pending()));
        url
    }

    #[tokio::test]
    async fn health_says_not_serving_until_the_server_is_ready() {
        use tonic_health::pb::health_check_response::ServingStatus;
        use tonic_health::pb::health_client::HealthClient;
        use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
        let (became_ready, ready) = tokio::sync::oneshot::channel::<()>();
        let url = replica_ready_after(async {
            let _ = ready.await;
        })
        .await;
        let mut health = HealthClient::new(channel(&url, None).unwrap());
        let whole_server = || HealthCheckRequest {
            service: String::new(),
        };
        let status = |answer: HealthCheckResponse| answer.status();
        let before = health.check(whole_server()).await.unwrap().into_inner();
        assert_eq!(status(before), ServingStatus::NotServing);
        let mut watched = health.watch(whole_server()).await.unwrap().into_inner();
        became_ready.send(()).unwrap();
        let serving = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(answer) = watched.next().await {
                if status(answer.unwrap()) == ServingStatus::Serving {
                    return;
                }
            }
            panic!("the health stream ended");
        });
        serving.await.expect("health never said serving");
    }

    #[tokio::test]
    async fn a_silent_replica_is_passed_over_and_the_calls_keep_their_pace() {
        use tonic_health::pb::HealthCheckRequest;
        use tonic_health::pb::health_client::HealthClient;
        let url = format!("{},{}", answering_replica().await, silent_replica().await);
        let channel = channel(&url, None).unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while channel.replicas.read().len() < 2 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "both replicas found"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // 100 calls, one every 20 ms, each allowed 1.5 s.
        let mut calls = Vec::new();
        for _ in 0..100 {
            let mut client = HealthClient::new(channel.clone());
            calls.push(tokio::spawn(async move {
                let mut request = tonic::Request::new(HealthCheckRequest::default());
                request.set_timeout(Duration::from_millis(1500));
                let started = Instant::now();
                let answer = client.check(request).await;
                (
                    answer.map(|_| ()).map_err(|status| status.code()),
                    started.elapsed(),
                )
            }));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut failed = Vec::new();
        let mut slowest_answer = Duration::ZERO;
        for call in calls {
            match call.await.unwrap() {
                (Ok(()), took) => slowest_answer = slowest_answer.max(took),
                (Err(code), took) => failed.push((code, took)),
            }
        }
        assert!(
            failed.len() <= 3,
            "only the calls sent before the silence showed may wait for it: {failed:?}"
        );
        assert!(
            failed
                .iter()
                .all(|(code, _)| *code == tonic::Code::DeadlineExceeded),
            "{failed:?}"
        );
        assert!(
            slowest_answer < Duration::from_millis(500),
            "every other call answered at once: {slowest_answer:?}"
        );
    }
}
