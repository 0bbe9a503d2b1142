//! Client channels: every endpoint a service's URL names, found and followed, each call
//! sent with the caller's trace context and a deadline to the less busy of two replicas.

use super::replicas::{BoxError, Replicas, no_answer};
use futures::future::BoxFuture;
use std::task::{Context, Poll};
use std::time::Duration;
use tonic::transport::{ClientTlsConfig, Endpoint};

/// A channel to a service that connects on first use and reconnects as needed, so services
/// can start in any order. `url` may name several endpoints, comma-separated
/// (`http://10.0.0.1:50052,http://10.0.0.2:50052`), and each host name is looked up again
/// every few seconds: calls are balanced over every address found, so a headless
/// Kubernetes Service (one DNS record per pod) spreads them over its replicas, and a
/// replica that goes away is dropped while a new one is picked up. With `tls`, every
/// connection is mutual TLS (the scheme may then be `https` or `http`); `unix:///path` is a
/// Unix socket.
///
/// Every call has a deadline: [`DEFAULT_DEADLINE`] unless the request sets its own (a file's
/// upload sets a long one).
/// Among the replicas, a call goes to the less busy of two picked at random (power of two
/// choices over calls in flight); a replica that let a call time out, failed three in a
/// row, or has answered nothing for [`STALLED_AFTER`](super::STALLED_AFTER) while calls wait on it is left out for
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
    windows(Endpoint::from_static("http://astral.internal")).connect_with_connector_lazy(
        tower::service_fn(move |_: http::Uri| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    tokio::net::UnixStream::connect(path).await?,
                ))
            }
        }),
    )
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
    let endpoint = windows(Endpoint::from_shared(format!("{scheme}://{address}"))?)
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30));
    Ok(match tls {
        Some(tls) => endpoint.tls_config(tls.clone())?,
        None => endpoint,
    })
}

/// HTTP/2 flow control for a connection that carries files as well as small calls. Data a
/// stream has received and its reader has not taken yet counts against its connection's
/// window too: with the default 64 KiB for both, one download read slowly (by a slow HTTP
/// client at the gateway) stalled every call on the connection. Streams get 1 MiB and the
/// connection 32: it takes more than 32 stalled streams to stall it, and the gateway never
/// has that many downloads at once.
fn windows(endpoint: Endpoint) -> Endpoint {
    endpoint
        .initial_stream_window_size(super::STREAM_WINDOW)
        .initial_connection_window_size(super::CONNECTION_WINDOW)
}

/// How long a call waits for its answer unless the request asks otherwise (`grpc-timeout`,
/// which the server also honours). Above the auth service's longest wait for a password
/// check (5 s).
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

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

/// A client channel (see [`channel`]) that sends the caller's trace context with each call.
#[derive(Clone)]
pub struct Channel {
    pub(super) replicas: std::sync::Arc<Replicas>,
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
            Some(asked) => asked,
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
