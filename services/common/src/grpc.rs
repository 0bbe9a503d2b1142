//! Serving and calling gRPC: health checking, reflection, lazy client channels.

use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tonic::server::NamedService;
use tonic::transport::channel::Change;
use tonic::transport::{Channel, Endpoint};

/// Serves `router` (a service's gRPC API plus health and reflection) on `listener` until
/// `shutdown` completes.
pub async fn serve(
    router: tonic::transport::server::Router,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    router
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    Ok(())
}

/// A server builder that already serves `grpc.health.v1` (reporting `S` as serving) and
/// server reflection over every Astral proto.
pub async fn server_with_health<S: NamedService>()
-> anyhow::Result<tonic::transport::server::Router> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<S>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(astral_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    Ok(tonic::transport::Server::builder()
        .timeout(Duration::from_secs(30))
        .add_service(health)
        .add_service(reflection))
}

/// A channel to a service that connects on first use and reconnects as needed, so services
/// can start in any order. `url` may name several endpoints, comma-separated
/// (`http://10.0.0.1:50052,http://10.0.0.2:50052`), and each host name is looked up again
/// every few seconds: calls are balanced over every address found, so a headless
/// Kubernetes Service (one DNS record per pod) spreads them over its replicas, and a
/// replica that goes away is dropped while a new one is picked up.
pub fn channel(url: &str) -> anyhow::Result<Channel> {
    let targets: Vec<tonic::codegen::http::Uri> = url
        .split(',')
        .map(|part| part.trim().parse())
        .collect::<Result<_, _>>()?;
    if targets.is_empty() || targets.iter().any(|uri| uri.host().is_none()) {
        anyhow::bail!("{url} is not a list of http://host:port endpoints");
    }
    let (channel, changes) = Channel::balance_channel::<std::net::SocketAddr>(64);
    tokio::spawn(follow(targets, changes));
    Ok(channel)
}

/// How often endpoints' host names are looked up again, and their addresses probed.
const RESOLVE_EVERY: Duration = Duration::from_secs(2);
/// How long a probe waits for a connection.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// Keeps the balanced channel's endpoints equal to what the targets resolve to; ends when the
/// channel is dropped.
async fn follow(
    targets: Vec<tonic::codegen::http::Uri>,
    changes: tokio::sync::mpsc::Sender<Change<std::net::SocketAddr, Endpoint>>,
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
                let Ok(endpoint) = endpoint(*new) else {
                    continue;
                };
                if changes.send(Change::Insert(*new, endpoint)).await.is_err() {
                    return;
                }
            }
            current = found;
        }
        tokio::time::sleep(RESOLVE_EVERY).await;
        if changes.is_closed() {
            return;
        }
    }
}

fn endpoint(address: std::net::SocketAddr) -> anyhow::Result<Endpoint> {
    Ok(Endpoint::from_shared(format!("http://{address}"))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30)))
}
