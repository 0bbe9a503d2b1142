//! A service's real gRPC server, started by a test on a free local port.

use crate::grpc::Channel;
use futures::future::BoxFuture;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// How long a server may take to answer its health check as serving.
const START_WITHIN: Duration = Duration::from_secs(10);

/// A gRPC server on `127.0.0.1:<free port>`, in plaintext: the trusted plane, on which every
/// caller role is allowed and users' tokens are still checked. Stopped with
/// [`TestServer::stop`] (or when the test's runtime ends).
pub struct TestServer {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    stop: oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl TestServer {
    /// Binds a free port, runs `serve(listener, shutdown)` on it (a service's `serve`), and
    /// waits until the server answers its health check as serving (services say
    /// `NOT_SERVING` until they can verify tokens).
    pub async fn start<F>(serve: impl FnOnce(TcpListener, BoxFuture<'static, ()>) -> F) -> Self
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a free port");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown: BoxFuture<'static, ()> = Box::pin(async move {
            let _ = stopped.await;
        });
        let serving = tokio::spawn(serve(listener, shutdown));
        let mut server = Self { url, stop, serving };
        server.wait_until_serving().await;
        server
    }

    /// A plaintext channel to the server.
    pub fn channel(&self) -> Channel {
        crate::grpc::channel(&self.url, None).expect("a channel to the test server")
    }

    /// Watches the server's health (a stream of its status changes) until it says serving.
    async fn wait_until_serving(&mut self) {
        let mut health = HealthClient::new(self.channel());
        let serving = async {
            let mut statuses = health
                .watch(HealthCheckRequest::default())
                .await?
                .into_inner();
            while let Some(answer) = statuses.message().await? {
                if answer.status() == ServingStatus::Serving {
                    return Ok(());
                }
            }
            Err(tonic::Status::unavailable("the health stream ended"))
        };
        let why = match tokio::time::timeout(START_WITHIN, serving).await {
            Ok(Ok(())) => return,
            Ok(Err(status)) => status.to_string(),
            Err(_) => format!("not serving after {START_WITHIN:?}"),
        };
        if self.serving.is_finished() {
            let ended = (&mut self.serving).await.expect("the server task");
            panic!("the server at {} stopped: {ended:?}", self.url);
        }
        panic!("the server at {}: {why}", self.url);
    }

    /// Asks the server to stop, and waits until it has: panics if it ended with an error.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.serving
            .await
            .expect("the server task")
            .unwrap_or_else(|error| panic!("the server at {} failed: {error:#}", self.url));
    }
}
