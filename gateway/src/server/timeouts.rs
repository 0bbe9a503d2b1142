//! The timeouts of one HTTP connection. Its phase (waiting for a request's headers, serving
//! a request, idle between requests) says when it must end; the socket tells it when bytes
//! arrive, the response body when a request is done, and the request body is given a deadline
//! of its own.

use super::admission::Permit;
use super::limits::ConnectionLimits;
use crate::error::ApiError;
use axum::Router;
use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use http_body::{Body, Frame, SizeHint};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt as _;

/// Where a connection is in its life, and until when it may stay there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading a request's headers: complete by `until`.
    Head { until: Instant },
    /// Serving a request (its body has a deadline of its own).
    Busy,
    /// Between requests: the next one must start by `until`.
    Idle { until: Instant },
}

/// The phase of one connection, and the watchdog's wake-up call when it changes.
pub struct Activity {
    phase: Mutex<Phase>,
    changed: Notify,
    header_timeout: Duration,
    idle_timeout: Duration,
}

impl Activity {
    /// A connection just accepted: its first request's headers are due.
    pub fn new(limits: &ConnectionLimits) -> Self {
        Self {
            phase: Mutex::new(Phase::Head {
                until: Instant::now() + limits.header_timeout,
            }),
            changed: Notify::new(),
            header_timeout: limits.header_timeout,
            idle_timeout: limits.idle_timeout,
        }
    }

    /// When the connection must be closed, unless its phase changes first.
    pub fn deadline(&self) -> Option<Instant> {
        match *self.lock() {
            Phase::Head { until } | Phase::Idle { until } => Some(until),
            Phase::Busy => None,
        }
    }

    /// The phase whose time ran out (`header` or `idle`), if one did.
    pub fn expired(&self) -> Option<&'static str> {
        let now = Instant::now();
        match *self.lock() {
            Phase::Head { until } if now >= until => Some("header"),
            Phase::Idle { until } if now >= until => Some("idle"),
            _ => None,
        }
    }

    /// Completes when the phase has changed (since the last call).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Bytes arrived: on an idle connection, they begin a request, whose headers are due.
    fn received(&self) {
        let mut phase = self.lock();
        if let Phase::Idle { .. } = *phase {
            *phase = Phase::Head {
                until: Instant::now() + self.header_timeout,
            };
            drop(phase);
            self.changed.notify_one();
        }
    }

    /// A request's headers are in: no connection deadline until its response is written.
    fn start_request(self: &Arc<Self>) -> Serving {
        *self.lock() = Phase::Busy;
        Serving(self.clone())
    }

    fn lock(&self) -> MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A request being served; its end (the response written, or dropped) makes the connection
/// idle.
struct Serving(Arc<Activity>);

impl Drop for Serving {
    fn drop(&mut self) {
        *self.0.lock() = Phase::Idle {
            until: Instant::now() + self.0.idle_timeout,
        };
        self.0.changed.notify_one();
    }
}

/// A connection's socket: its reads tell the connection's [`Activity`], and it holds the
/// connection's place in the gateway's count (an upgraded WebSocket keeps both).
pub struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
    _permit: Permit,
}

impl Watched {
    pub fn new(stream: TcpStream, activity: Arc<Activity>, permit: Permit) -> Self {
        Self {
            stream,
            activity,
            _permit: permit,
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.received();
        }
        read
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// How long a request's body may take after its headers.
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadlines {
    pub body: Duration,
    /// A file upload's (`POST /api/attachments`).
    pub upload: Duration,
}

impl BodyDeadlines {
    fn of(self, request: &hyper::Request<hyper::body::Incoming>) -> Duration {
        if request.method() == hyper::Method::POST && request.uri().path() == "/api/attachments" {
            self.upload
        } else {
            self.body
        }
    }
}

/// Serves one request: the router sees the peer address (`ConnectInfo`) and a body that must
/// arrive within its deadline; a body that did not is answered 408 and ends the connection.
pub async fn handle(
    request: hyper::Request<hyper::body::Incoming>,
    peer: SocketAddr,
    router: Router,
    activity: &Arc<Activity>,
    deadlines: BodyDeadlines,
) -> Response<Served> {
    let serving = activity.start_request();
    let late = Arc::new(AtomicBool::new(false));
    let until = Instant::now() + deadlines.of(&request);
    let mut request =
        request.map(|body| axum::body::Body::new(Due::new(body, until, late.clone())));
    request.extensions_mut().insert(ConnectInfo(peer));
    let response = match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let response = if late.load(Ordering::Acquire) {
        metrics::counter!("astral_http_timeouts_total", "phase" => "body").increment(1);
        body_too_slow()
    } else {
        response
    };
    response.map(|body| Served {
        body,
        _serving: serving,
    })
}

/// 408: the body did not arrive in time. The rest of it is not read: the connection closes.
fn body_too_slow() -> Response {
    let mut response = ApiError::new(
        crate::error::ErrorCode::RequestTimeout,
        "the request body did not arrive in time",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A response body that marks its request done when it is dropped (written or abandoned).
pub struct Served {
    body: axum::body::Body,
    _serving: Serving,
}

impl Body for Served {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A request body due by a deadline: once it has passed, reading fails and `late` is set.
struct Due {
    body: hyper::body::Incoming,
    until: Instant,
    /// Made when the body first has to be waited for.
    sleep: Option<Pin<Box<Sleep>>>,
    late: Arc<AtomicBool>,
}

impl Due {
    fn new(body: hyper::body::Incoming, until: Instant, late: Arc<AtomicBool>) -> Self {
        Self {
            body,
            until,
            sleep: None,
            late,
        }
    }
}

/// The error a late body's reader gets.
#[derive(Debug)]
struct BodyTooSlow;

impl std::fmt::Display for BodyTooSlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive in time")
    }
}

impl std::error::Error for BodyTooSlow {}

impl Body for Due {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        let until = this.until;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(until)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.late.store(true, Ordering::Release);
                Poll::Ready(Some(Err(BodyTooSlow.into())))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            ..ConnectionLimits::default()
        }
    }

    fn remaining(activity: &Activity) -> Option<Duration> {
        activity
            .deadline()
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    #[test]
    fn headers_are_due_from_the_start_then_nothing_while_serving_then_idle_then_headers_again() {
        let activity = Arc::new(Activity::new(&limits()));
        let header = remaining(&activity).expect("headers due");
        assert!(header <= Duration::from_secs(10) && header > Duration::from_secs(9));
        activity.received();
        assert!(
            remaining(&activity).expect("still due") <= header,
            "bytes of the first request do not move the deadline"
        );

        let serving = activity.start_request();
        assert_eq!(
            activity.deadline(),
            None,
            "a request being served has no deadline"
        );
        drop(serving);
        let idle = remaining(&activity).expect("idle");
        assert!(idle > Duration::from_secs(70), "keep-alive: {idle:?}");

        activity.received();
        let header = remaining(&activity).expect("headers due again");
        assert!(header <= Duration::from_secs(10), "{header:?}");
        assert_eq!(activity.expired(), None);
    }

    #[test]
    fn a_phase_whose_time_ran_out_says_which() {
        let activity = Activity::new(&ConnectionLimits {
            header_timeout: Duration::ZERO,
            idle_timeout: Duration::ZERO,
            ..limits()
        });
        assert_eq!(activity.expired(), Some("header"));
        let activity = Arc::new(activity);
        drop(activity.start_request());
        assert_eq!(activity.expired(), Some("idle"));
    }
}
