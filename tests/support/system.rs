//! Starting Astral for a test: all-in-one in this process, or distributed as separate
//! processes (the four binaries) on fresh PostgreSQL databases and the local NATS.

use super::WAIT;
use astral_common::testing::{TempDir, TestDatabase, nats_server, unavailable};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub struct System {
    pub base: String,
    /// Set in distributed mode: the NATS server the services publish to.
    pub nats_url: Option<String>,
    /// Set in distributed mode: each service's name and gRPC endpoint.
    pub services: Vec<(&'static str, String)>,
    running: Running,
}

enum Running {
    InProcess(Option<astral::Running>, TempDir),
    Processes(Vec<Child>, Vec<TestDatabase>, TempDir),
}

impl System {
    /// Astral in this process: SQLite files in a temporary directory, the in-process bus.
    pub async fn all_in_one() -> Self {
        let dir = TempDir::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let options = astral::Options {
            data_dir: dir.0.clone(),
            web_dir: None,
            nats_url: None,
        };
        let running = astral::start(options, listener).await.unwrap();
        let system = Self {
            base: format!("http://{}", running.addr),
            nats_url: None,
            services: Vec::new(),
            running: Running::InProcess(Some(running), dir),
        };
        system.wait_ready().await;
        system
    }

    /// Astral as four processes on PostgreSQL and NATS; `None` (locally) when either is down.
    pub async fn distributed() -> Option<Self> {
        let nats_url = nats_server();
        if let Err(error) = async_nats::connect(&nats_url).await {
            unavailable("NATS", &anyhow::Error::new(error));
            return None;
        }
        let mut databases = Vec::new();
        for _ in 0..3 {
            match TestDatabase::postgres().await {
                Ok(database) => databases.push(database),
                Err(error) => {
                    unavailable("PostgreSQL", &error);
                    return None;
                }
            }
        }
        let logs = TempDir::new();
        let [auth, social, messaging, gateway] =
            [free_port(), free_port(), free_port(), free_port()];
        let url = |port: u16| format!("http://127.0.0.1:{port}");
        let common = [
            ("NATS_URL", nats_url.clone()),
            ("ASTRAL_AUTH_URL", url(auth)),
            ("ASTRAL_SOCIAL_URL", url(social)),
            ("ASTRAL_MESSAGING_URL", url(messaging)),
            ("RUST_LOG", "info".to_owned()),
        ];
        let mut children = Vec::new();
        for (binary, port, database) in [
            ("astral-auth", auth, Some(&databases[0])),
            ("astral-social", social, Some(&databases[1])),
            ("astral-messaging", messaging, Some(&databases[2])),
            ("astral-gateway", gateway, None),
        ] {
            let log = std::fs::File::create(logs.0.join(format!("{binary}.log"))).unwrap();
            let mut command = Command::new(binary_path(binary));
            command
                .envs(common.iter().cloned())
                .env("ASTRAL_LISTEN", format!("127.0.0.1:{port}"));
            if let Some(database) = database {
                command.env("DATABASE_URL", &database.url);
            }
            let child = command
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|error| panic!("start {binary}: {error}"));
            children.push(child);
        }
        let system = Self {
            base: url(gateway),
            nats_url: Some(nats_url),
            services: vec![
                ("auth", url(auth)),
                ("social", url(social)),
                ("messaging", url(messaging)),
            ],
            running: Running::Processes(children, databases, logs),
        };
        system.wait_ready().await;
        Some(system)
    }

    /// Waits until the gateway answers `/readyz` (it has the token keys).
    async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + WAIT * 3;
        loop {
            let ready = client.get(format!("{}/readyz", self.base)).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                self.dump_logs();
                panic!("the system at {} did not become ready", self.base);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Prints the processes' logs (distributed mode) to help explain a failure.
    pub fn dump_logs(&self) {
        if let Running::Processes(_, _, logs) = &self.running {
            for entry in std::fs::read_dir(&logs.0).into_iter().flatten().flatten() {
                eprintln!("==== {}", entry.path().display());
                eprintln!(
                    "{}",
                    std::fs::read_to_string(entry.path()).unwrap_or_default()
                );
            }
        }
    }

    pub async fn stop(mut self) {
        if let Running::InProcess(running, _) = &mut self.running
            && let Some(running) = running.take()
        {
            running.stop().await;
        }
    }
}

impl Drop for System {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_logs();
        }
        if let Running::Processes(children, _, _) = &mut self.running {
            for child in children.iter_mut() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A workspace binary next to this test's own (`cargo build --workspace --bins` builds them).
fn binary_path(name: &str) -> PathBuf {
    let astral = PathBuf::from(env!("CARGO_BIN_EXE_astral"));
    let path = astral.with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}
