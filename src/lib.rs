//! The all-in-one Astral: the three services and the gateway in one process, each still
//! behind its gRPC interface (on a Unix socket in the private data directory: no other local
//! user can reach it), with SQLite files and the in-process event bus. Tests start it on
//! port 0.

/// A deployment's secrets, written by `astral-admin secrets init`.
pub mod secrets;

use anyhow::Context as _;
use astral_common::EventBus;
use astral_common::plane::Plane;
use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Where the all-in-one keeps its data, and how its gateway meets clients.
#[derive(Debug, Clone)]
pub struct Options {
    /// Holds `auth.db`, `social.db`, `messaging.db`, `auth.kek`, `push.key` and the
    /// attachments' files (`attachments/`); created if missing.
    pub data_dir: PathBuf,
    /// Publish events on NATS instead of the in-process bus.
    pub nats_url: Option<String>,
    /// Serve Prometheus `/metrics` on this address (none when unset: never on the gateway's
    /// port).
    pub metrics_listen: Option<String>,
    /// The gateway's settings (web files, origins, cookies, proxies, limits); its service
    /// endpoints are replaced by the all-in-one's own sockets.
    pub gateway: astral_gateway::Config,
    /// Registration throttle and session lifetimes.
    pub auth: astral_auth::Settings,
    /// Web Push: the key file (`push.key` in the data directory when unset, made on the
    /// first start), the contact, and (tests only) loopback endpoints.
    pub push: astral_messaging::push::PushArgs,
}

/// A running all-in-one system.
pub struct Running {
    /// Where the gateway listens.
    pub addr: SocketAddr,
    /// Where `/metrics` is served, if anywhere.
    pub metrics_addr: Option<SocketAddr>,
    /// The services' gRPC endpoints (`unix://` sockets in the data directory), for tools
    /// and tests.
    pub auth_url: String,
    pub social_url: String,
    pub messaging_url: String,
    stop: watch::Sender<bool>,
    tasks: JoinSet<anyhow::Result<()>>,
}

/// Starts every part; the gateway serves on `listener`.
pub async fn start(options: Options, listener: TcpListener) -> anyhow::Result<Running> {
    astral_common::metrics::install();
    private_data_dir(&options.data_dir)?;
    let kek = key_encryption_key(&options.data_dir)?;
    let push = push_config(&options.data_dir, &options.push)?;
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
    let mut tasks = JoinSet::new();
    let metrics_addr = match &options.metrics_listen {
        Some(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("metrics listener on {addr}"))?;
            let (metrics_addr, s) = (listener.local_addr()?, shutdown());
            tasks.spawn(async move {
                astral_common::metrics::serve(listener, s)
                    .await
                    .context("metrics listener")
            });
            Some(metrics_addr)
        }
        None => None,
    };
    let database = |name: &str| {
        format!(
            "sqlite://{}",
            options.data_dir.join(format!("{name}.db")).display()
        )
    };
    let (auth_listener, auth_url) = socket(&options.data_dir, "auth")?;
    let (social_listener, social_url) = socket(&options.data_dir, "social")?;
    let (messaging_listener, messaging_url) = socket(&options.data_dir, "messaging")?;
    let plane = Plane::trusted();

    let (db, b, s, settings) = (database("auth"), bus.clone(), shutdown(), options.auth);
    tasks.spawn(async move {
        astral_auth::serve(
            &db,
            Some(kek),
            settings,
            &Plane::trusted(),
            b,
            auth_listener,
            s,
        )
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
        astral_social::serve(&db, &a, &Plane::trusted(), b, social_listener, s)
            .await
            .context("social service")
    });
    let storage = astral_messaging::storage::Storage::local(&options.data_dir.join("attachments"))?;
    let (db, a, so, b, s) = (
        database("messaging"),
        auth_url.clone(),
        social_url.clone(),
        bus.clone(),
        shutdown(),
    );
    tasks.spawn(async move {
        astral_messaging::serve(
            &db,
            storage,
            Some(push),
            &a,
            &so,
            &Plane::trusted(),
            b,
            messaging_listener,
            s,
        )
        .await
        .context("messaging service")
    });
    let config = astral_gateway::Config {
        auth_url: auth_url.clone(),
        social_url: social_url.clone(),
        messaging_url: messaging_url.clone(),
        ..options.gateway
    };
    let addr = listener.local_addr()?;
    let s = shutdown();
    tasks.spawn(async move {
        astral_gateway::serve(config, &plane, bus, listener, s)
            .await
            .context("gateway")
    });
    Ok(Running {
        addr,
        metrics_addr,
        auth_url,
        social_url,
        messaging_url,
        stop,
        tasks,
    })
}

/// Creates the data directory readable by its owner only (`0700`), and makes the files
/// already in it (SQLite databases, from an older version) `0600`. New SQLite files are made
/// `0600` before SQLite opens them; its journals take the same mode.
fn private_data_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("create the data directory {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("make {} private", dir.display()))?;
    for name in ["auth", "social", "messaging"] {
        let database = dir.join(format!("{name}.db"));
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&database)
            .with_context(|| format!("create {}", database.display()))?;
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("make {} private", entry.path().display()))?;
        }
    }
    Ok(())
}

/// The key that seals the auth service's signing keys: `auth.kek` in the data directory, made
/// (`0600`, 32 random bytes in base64) on the first start, so the auth database alone signs
/// nothing.
fn key_encryption_key(dir: &Path) -> anyhow::Result<astral_auth::Kek> {
    let path = dir.join("auth.kek");
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path);
    match created {
        Ok(mut file) => file
            .write_all(astral_auth::kek::new_key_text().as_bytes())
            .and_then(|()| file.sync_all())
            .with_context(|| format!("write {}", path.display()))?,
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(error) => return Err(error).with_context(|| format!("create {}", path.display())),
    }
    astral_auth::Kek::load(&path)
}

/// Web Push as configured, with the VAPID key from the file named, else `push.key` in the
/// data directory, made (`0600`, PKCS#8 PEM) on the first start: one key for the life of the
/// deployment, since browsers subscribe to it.
fn push_config(
    dir: &Path,
    args: &astral_messaging::push::PushArgs,
) -> anyhow::Result<astral_messaging::push::PushConfig> {
    use astral_messaging::push::{PushConfig, vapid::VapidKey};
    let path = args
        .vapid_key_file
        .clone()
        .unwrap_or_else(|| dir.join("push.key"));
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path);
    match created {
        Ok(mut file) => {
            let pem = VapidKey::generate().to_pem()?;
            file.write_all(pem.as_bytes())
                .and_then(|()| file.sync_all())
                .with_context(|| format!("write {}", path.display()))?;
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(error) => return Err(error).with_context(|| format!("create {}", path.display())),
    }
    PushConfig::load(&path, args.vapid_subject.clone(), args.endpoints())
}

/// A service's Unix socket in the data directory, and its URL.
fn socket(dir: &Path, name: &str) -> anyhow::Result<(UnixListener, String)> {
    let path = std::path::absolute(dir.join(format!("{name}.sock")))?;
    // Left behind by a process that was killed: nothing listens on it any more.
    if path.exists() {
        std::fs::remove_file(&path)
            .with_context(|| format!("remove the stale socket {}", path.display()))?;
    }
    let listener = UnixListener::bind(&path).with_context(|| {
        format!(
            "listen on {} (a Unix socket path is at most 107 bytes: choose a shorter ASTRAL_DATA_DIR)",
            path.display()
        )
    })?;
    Ok((listener, format!("unix://{}", path.display())))
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap does
    use super::*;

    #[test]
    fn the_key_encryption_key_is_made_once_readable_by_its_owner_only() {
        let dir = std::env::temp_dir().join(format!("astral-kek-{}", astral_common::ids::new_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let kek = key_encryption_key(&dir).unwrap();
        let path = dir.join("auth.kek");
        let text = std::fs::read_to_string(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let sealed = kek.seal("k", b"seed").unwrap();
        let again = key_encryption_key(&dir).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            text,
            "kept, not remade"
        );
        assert_eq!(again.open("k", &sealed).unwrap(), b"seed");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
