//! The HTTP server: connections accepted within the limits, each served by hyper (HTTP/1.1,
//! WebSocket upgrades) under the timeouts, and a graceful stop.
//!
//! axum's `serve` takes no configuration, so the gateway runs its own accept loop: a client
//! that opens connections and sends nothing, or sends its headers a byte at a time, would
//! otherwise hold a connection (and a file descriptor) for as long as it likes.

mod admission;
mod limits;
mod timeouts;

pub use admission::address_group;
pub use limits::ConnectionLimits;

use admission::OpenConnections;
use axum::Router;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use timeouts::{Activity, Watched};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How long to pause accepting after the process ran out of file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `router` on `listener` until `stop` completes, then lets the requests running
/// finish. `per_address` applies [`ConnectionLimits::max_per_address`] to peer addresses.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &ConnectionLimits,
    per_address: bool,
    stop: impl Future<Output = ()>,
) {
    let open = OpenConnections::new(
        limits.max_connections,
        per_address.then_some(limits.max_per_address),
    );
    // Connections watch `stopping`; each holds a `running` receiver until it is done.
    let (stopping, _) = watch::channel(false);
    let (all_done, running) = watch::channel(());
    let mut stop = std::pin::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(&error).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let Some(permit) = open.admit(peer.ip()) else {
            // Closed at once, unread: nothing of it is worth a file descriptor for longer.
            continue;
        };
        // Events go out at once: with Nagle's algorithm on, a frame written right after
        // another waits for the client's delayed acknowledgement (tens of milliseconds).
        if let Err(error) = stream.set_nodelay(true) {
            tracing::warn!(%error, "cannot set TCP_NODELAY");
        }
        let connection = Connection {
            peer,
            router: router.clone(),
            limits: limits.clone(),
            stopping: stopping.subscribe(),
        };
        let running = running.clone();
        tokio::spawn(async move {
            connection.serve(stream, permit).await;
            drop(running);
        });
    }
    drop(listener);
    stopping.send_replace(true);
    drop(running);
    all_done.closed().await;
}

/// Errors of `accept` are about one connection (gone before it was taken), or about the
/// process (out of file descriptors: wait a moment rather than spin).
async fn accept_failed(error: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(%error, "cannot accept a connection");
    tokio::time::sleep(ACCEPT_BACKOFF).await;
}

/// One accepted connection.
struct Connection {
    peer: SocketAddr,
    router: Router,
    limits: ConnectionLimits,
    stopping: watch::Receiver<bool>,
}

impl Connection {
    /// Serves the connection's requests until the client or a timeout ends it, or it is
    /// upgraded to a WebSocket (which then keeps `permit`, in its socket, until it closes).
    async fn serve(mut self, stream: TcpStream, permit: admission::Permit) {
        let activity = Arc::new(Activity::new(&self.limits));
        let io = TokioIo::new(Watched::new(stream, activity.clone(), permit));
        let (peer, router) = (self.peer, self.router);
        let deadlines = timeouts::BodyDeadlines {
            body: self.limits.body_timeout,
            upload: self.limits.upload_timeout,
        };
        let handler = activity.clone();
        let service = hyper::service::service_fn(move |request| {
            let (router, activity) = (router.clone(), handler.clone());
            async move {
                Ok::<_, Infallible>(
                    timeouts::handle(request, peer, router, &activity, deadlines).await,
                )
            }
        });
        let mut http = hyper::server::conn::http1::Builder::new();
        // The timeouts are the watchdog's below (hyper's header timeout would also cut
        // keep-alive connections idle for as long).
        http.header_read_timeout(None);
        let connection = http.serve_connection(io, service).with_upgrades();
        let mut connection = std::pin::pin!(connection);
        let mut stopping = false;
        loop {
            let deadline = activity.deadline();
            tokio::select! {
                served = connection.as_mut() => {
                    if let Err(error) = served {
                        tracing::debug!(%error, peer = %self.peer, "connection ended");
                    }
                    return;
                }
                () = until(deadline) => {
                    if let Some(phase) = activity.expired() {
                        metrics::counter!("astral_http_timeouts_total", "phase" => phase)
                            .increment(1);
                        return;
                    }
                }
                () = activity.changed() => {}
                true = stop_asked(&mut self.stopping), if !stopping => {
                    stopping = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Whether the server is stopping (false: it is gone without saying so).
async fn stop_asked(stopping: &mut watch::Receiver<bool>) -> bool {
    stopping.wait_for(|stop| *stop).await.is_ok()
}
