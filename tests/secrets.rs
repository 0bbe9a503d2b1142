//! `astral-admin secrets init` for real: the CLI writes a deployment's secrets once, and the
//! real nats-server, started with the generated nats.conf, admits only the roles' nkeys,
//! each within its permissions.

#![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap does

mod support;

use astral::secrets::role_env;
use astral_common::testing::{TempDir, unavailable};
use async_nats::{Client, ConnectErrorKind, ConnectOptions, Event, ServerError, Subscriber};
use futures::StreamExt as _;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use support::WAIT;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

const NATS_SERVER: &str = "/usr/sbin/nats-server";

#[tokio::test]
async fn the_cli_writes_secrets_once_and_refuses_to_write_over_them() {
    let temp = TempDir::new();
    let dir = temp.0.join("secrets");
    let first = secrets_init(&dir, 24_680).await;
    assert!(first.status.success(), "{}", stderr(&first));
    let config = std::fs::read_to_string(dir.join("nats.conf")).unwrap();
    assert!(config.contains("listen: 127.0.0.1:24680\n"), "{config}");

    let second = secrets_init(&dir, 24_680).await;
    assert!(!second.status.success());
    assert!(
        stderr(&second).contains(&dir.display().to_string()),
        "{}",
        stderr(&second)
    );
}

#[tokio::test]
async fn nats_refuses_anonymous_connections() {
    let Some(nats) = Nats::start().await else {
        return;
    };
    let anonymous = timeout(WAIT, async_nats::connect(&nats.url))
        .await
        .expect("nats-server answers");
    let error = anonymous.expect_err("an anonymous connection is refused");
    assert_eq!(error.kind(), ConnectErrorKind::AuthorizationViolation);
    nats.stop().await;
}

#[tokio::test]
async fn the_gateway_listens_to_everything_and_publishes_nothing() {
    let Some(nats) = Nats::start().await else {
        return;
    };
    let mut gateway = nats.connect("gateway").await;
    let messaging = nats.connect("messaging").await;
    let mut chat = gateway.subscribe("chat.x").await;

    gateway.publish("chat.x", "from the gateway").await;
    gateway.expect_permissions_violation("chat.x").await;
    // Had the server taken the gateway's message, it would arrive before this one.
    assert_eq!(
        delivered(&messaging, &mut chat, "chat.x", "from messaging").await,
        "from messaging"
    );
    nats.stop().await;
}

#[tokio::test]
async fn social_publishes_on_users_but_not_on_chats() {
    let Some(nats) = Nats::start().await else {
        return;
    };
    let gateway = nats.connect("gateway").await;
    let mut social = nats.connect("social").await;
    let messaging = nats.connect("messaging").await;
    let mut chat = gateway.subscribe("chat.x").await;
    let mut user = gateway.subscribe("user.1").await;

    social.publish("chat.x", "from social").await;
    social.expect_permissions_violation("chat.x").await;
    assert_eq!(
        delivered(&messaging, &mut chat, "chat.x", "from messaging").await,
        "from messaging"
    );

    assert_eq!(
        delivered(&social, &mut user, "user.1", "a friend request").await,
        "a friend request"
    );
    nats.stop().await;
}

#[tokio::test]
async fn auth_announces_revoked_sessions_to_gateways() {
    let Some(nats) = Nats::start().await else {
        return;
    };
    let gateway = nats.connect("gateway").await;
    let auth = nats.connect("auth").await;
    let mut revoked = gateway.subscribe("sessions.revoked").await;

    assert_eq!(
        delivered(&auth, &mut revoked, "sessions.revoked", "session 7").await,
        "session 7"
    );
    nats.stop().await;
}

#[tokio::test]
async fn the_admin_role_cannot_listen_to_chats() {
    let Some(nats) = Nats::start().await else {
        return;
    };
    let mut admin = nats.connect("admin").await;
    let _chat = admin.subscribe("chat.x").await;
    admin.expect_permissions_violation("chat.x").await;
    nats.stop().await;
}

/// Runs `astral-admin secrets init DIR --nats-port PORT`.
async fn secrets_init(dir: &Path, nats_port: u16) -> Output {
    Command::new(env!("CARGO_BIN_EXE_astral-admin"))
        .args(["secrets", "init"])
        .arg(dir)
        .args(["--nats-port", &nats_port.to_string()])
        .output()
        .await
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A nats-server started with the configuration `secrets init` wrote; killed when dropped.
struct Nats {
    url: String,
    dir: PathBuf,
    child: Child,
    _temp: TempDir,
}

impl Nats {
    /// Writes a deployment's secrets and starts nats-server on them; `None` when nats-server
    /// is not installed (outside CI).
    async fn start() -> Option<Nats> {
        if !Path::new(NATS_SERVER).exists() {
            let missing = anyhow::anyhow!("{NATS_SERVER} is not installed");
            unavailable("nats-server", &missing);
            return None;
        }
        let temp = TempDir::new();
        let dir = temp.0.join("secrets");
        let port = support::system::free_port();
        let written = secrets_init(&dir, port).await;
        assert!(written.status.success(), "{}", stderr(&written));
        let log = temp.0.join("nats.log");
        let mut child = Command::new(NATS_SERVER)
            .arg("-c")
            .arg(dir.join("nats.conf"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        wait_for_port(port, &mut child, &log).await;
        Some(Nats {
            url: format!("nats://127.0.0.1:{port}"),
            dir,
            child,
            _temp: temp,
        })
    }

    /// A client with `role`'s nkey, found through the role's env file.
    async fn connect(&self, role: &str) -> Connection {
        let env = role_env(&self.dir, role).unwrap();
        let (_, nkey_file) = env
            .iter()
            .find(|(key, _)| key == "ASTRAL_NATS_NKEY")
            .unwrap();
        let seed = std::fs::read_to_string(nkey_file).unwrap();
        let (errors_tx, errors) = mpsc::unbounded_channel();
        let options =
            ConnectOptions::with_nkey(seed.trim().to_owned()).event_callback(move |event| {
                let errors_tx = errors_tx.clone();
                async move {
                    if let Event::ServerError(error) = event {
                        let _ = errors_tx.send(error);
                    }
                }
            });
        let client = timeout(WAIT, options.connect(&self.url))
            .await
            .expect("nats-server answers")
            .unwrap_or_else(|error| panic!("{role} connects: {error}"));
        Connection { client, errors }
    }

    async fn stop(mut self) {
        self.child.kill().await.unwrap();
    }
}

/// Waits until nats-server accepts connections on `port`; fails if it exits first.
async fn wait_for_port(port: u16, child: &mut Child, log: &Path) {
    let deadline = Instant::now() + WAIT;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        let log = || std::fs::read_to_string(log).unwrap_or_default();
        if let Some(status) = child.try_wait().unwrap() {
            panic!("nats-server exited ({status}):\n{}", log());
        }
        assert!(
            Instant::now() < deadline,
            "nats-server did not start:\n{}",
            log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A client connected with one role's nkey, and the errors the server reported to it.
struct Connection {
    client: Client,
    errors: mpsc::UnboundedReceiver<ServerError>,
}

impl Connection {
    /// Subscribes, and makes sure the server has the subscription before going on.
    async fn subscribe(&self, subject: &str) -> Subscriber {
        let subscriber = self.client.subscribe(subject.to_owned()).await.unwrap();
        self.client.flush().await.unwrap();
        subscriber
    }

    /// Publishes, and makes sure the server has handled the message before going on.
    async fn publish(&self, subject: &str, payload: &str) {
        let payload = payload.to_owned().into();
        self.client
            .publish(subject.to_owned(), payload)
            .await
            .unwrap();
        self.client.flush().await.unwrap();
    }

    async fn expect_permissions_violation(&mut self, subject: &str) {
        let error = timeout(WAIT, self.errors.recv())
            .await
            .expect("a permissions violation in time")
            .unwrap();
        let message = error.to_string();
        assert!(
            message.to_lowercase().contains("permissions violation")
                && message.contains(&format!("\"{subject}\"")),
            "{message}"
        );
    }
}

/// Publishes `payload` until `subscriber` receives a message (a flush only writes to the
/// socket: the server may take another connection's message before it has handled the
/// subscription), and returns that first message's payload.
async fn delivered(
    publisher: &Connection,
    subscriber: &mut Subscriber,
    subject: &str,
    payload: &str,
) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        publisher.publish(subject, payload).await;
        let wait = std::time::Duration::from_millis(100);
        if let Ok(Some(message)) = timeout(wait, subscriber.next()).await {
            return String::from_utf8(message.payload.to_vec()).unwrap();
        }
        assert!(Instant::now() < deadline, "nothing arrived on {subject}");
    }
}
