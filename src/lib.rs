//! The all-in-one Astral: the three services and the gateway in one process, each still
//! behind its gRPC interface (on loopback ports of its own), with SQLite files and the
//! in-process event bus. Tests start it on port 0.

/// A deployment's secrets, written by `astral-admin secrets init`.
pub mod secrets;

use anyhow::Context as _;
use astral_common::EventBus;
use std::net::SocketAddr;
use std::path::PathBuf;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Where the all-in-one keeps its data and finds its web files.
#[derive(Debug, Clone)]
pub struct Options {
    /// Holds `auth.db`, `social.db` and `messaging.db`; created if missing.
    pub data_dir: PathBuf,
    /// Serve the web client from this folder instead of the built-in copy.
    pub web_dir: Option<PathBuf>,
    /// Publish events on NATS instead of the in-process bus.
    pub nats_url: Option<String>,
    /// How often WebSocket clients must send a heartbeat.
    pub heartbeat_ms: u64,
}

/// A running all-in-one system.
pub struct Running {
    /// Where the gateway listens.
    pub addr: SocketAddr,
    /// The services' gRPC endpoints (on loopback), for tools and tests.
    pub auth_url: String,
    pub social_url: String,
    pub messaging_url: String,
    stop: watch::Sender<bool>,
    tasks: JoinSet<anyhow::Result<()>>,
}

/// Starts every part; the gateway serves on `listener`.
pub async fn start(options: Options, listener: TcpListener) -> anyhow::Result<Running> {
    astral_common::metrics::install();
    std::fs::create_dir_all(&options.data_dir)
        .with_context(|| format!("create the data directory {}", options.data_dir.display()))?;
    let bus = match &options.nats_url {
        Some(url) => EventBus::nats(url).await?,
        None => EventBus::local(),
    };
    let (stop, stopped) = watch::channel(false);
    let shutdown = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };
    let database = |name: &str| {
        format!(
            "sqlite://{}",
            options.data_dir.join(format!("{name}.db")).display()
        )
    };
    let loopback = || TcpListener::bind("127.0.0.1:0");
    let (auth_listener, social_listener, messaging_listener) =
        (loopback().await?, loopback().await?, loopback().await?);
    let url = |listener: &TcpListener| listener.local_addr().map(|addr| format!("http://{addr}"));
    let (auth_url, social_url, messaging_url) = (
        url(&auth_listener)?,
        url(&social_listener)?,
        url(&messaging_listener)?,
    );

    let mut tasks = JoinSet::new();
    let (db, b, s) = (database("auth"), bus.clone(), shutdown());
    tasks.spawn(async move {
        astral_auth::serve(&db, b, auth_listener, s)
            .await
            .context("auth service")
    });
    let (db, a, b, s) = (
        database("social"),
        auth_url.clone(),
        bus.clone(),
        shutdown(),
    );
    tasks.spawn(async move {
        astral_social::serve(&db, &a, b, social_listener, s)
            .await
            .context("social service")
    });
    let (db, a, so, b, s) = (
        database("messaging"),
        auth_url.clone(),
        social_url.clone(),
        bus.clone(),
        shutdown(),
    );
    tasks.spawn(async move {
        astral_messaging::serve(&db, &a, &so, b, messaging_listener, s)
            .await
            .context("messaging service")
    });
    let mut config =
        astral_gateway::Config::new(auth_url.clone(), social_url.clone(), messaging_url.clone());
    config.web_dir = options.web_dir;
    config.heartbeat_ms = options.heartbeat_ms;
    let addr = listener.local_addr()?;
    let s = shutdown();
    tasks.spawn(async move {
        astral_gateway::serve(config, bus, listener, s)
            .await
            .context("gateway")
    });
    Ok(Running {
        addr,
        auth_url,
        social_url,
        messaging_url,
        stop,
        tasks,
    })
}

impl Running {
    /// Runs until `signal` completes or a part fails, then stops every part.
    pub async fn run_until(
        mut self,
        signal: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let outcome = tokio::select! {
            () = signal => Ok(()),
            Some(ended) = self.tasks.join_next() => match ended {
                Ok(Ok(())) => Err(anyhow::anyhow!("a part of Astral stopped unexpectedly")),
                Ok(Err(error)) => Err(error),
                Err(panic) => Err(anyhow::Error::new(panic).context("a part of Astral panicked")),
            },
        };
        self.stop().await;
        outcome
    }

    /// Stops every part and waits for them.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        while let Some(ended) = self.tasks.join_next().await {
            if let Ok(Err(error)) = ended {
                tracing::warn!(error = format!("{error:#}"), "stopped with an error");
            }
        }
    }
}
