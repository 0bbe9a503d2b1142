//! Starting Astral for a test: all-in-one in this process, or distributed as separate
//! processes (the four binaries) on fresh PostgreSQL databases and a NATS server of the
//! test's own, secured as a deployment is: secrets from `astral-admin secrets init`, mutual
//! TLS between processes, NATS users per role, signed events.

use super::WAIT;
use astral_common::grpc::Channel;
use astral_common::guard::Role;
use astral_common::testing::{S3Server, TempDir, TestDatabase, unavailable};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// The role of a service by its name in [`System::services`] (`messaging-2` is messaging).
pub fn server_role(service: &str) -> Role {
    Role::parse(service.split('-').next().unwrap_or_default())
        .unwrap_or_else(|| panic!("no service {service}"))
}

pub struct System {
    /// The first gateway's base URL.
    pub base: String,
    /// Every gateway's base URL (several in distributed mode if asked for).
    pub bases: Vec<String>,
    /// Set in distributed mode: the NATS server the services publish to.
    pub nats_url: Option<String>,
    /// Each service's name and gRPC endpoint.
    pub services: Vec<(&'static str, String)>,
    /// The auth service's database (where the signing keys are).
    pub auth_database_url: String,
    /// The (first) messaging service's database.
    pub messaging_database_url: String,
    /// Each process's Prometheus `/metrics` URL, by process name (each on a listener of its
    /// own, never a gateway's port; none for an all-in-one started without metrics).
    pub metrics: Vec<(String, String)>,
    /// The port of the test's own NATS server, if it has one.
    private_nats: Option<u16>,
    /// The deployment's secrets (`astral-admin secrets init`), in distributed mode.
    secrets: Option<PathBuf>,
    /// How each process was started, to start it again (distributed mode).
    specs: Vec<(String, Spec)>,
    /// Where attachments' objects land on disk: the all-in-one's `attachments/` directory,
    /// or the bucket's directory of the distributed mode's S3 server.
    pub storage_dir: PathBuf,
    /// The distributed mode's S3-compatible server (`s3s-fs`), stopped with the system.
    _s3: Option<S3Server>,
    running: Running,
}

/// How to start one process: its program, environment and log file.
#[derive(Clone)]
struct Spec {
    program: PathBuf,
    env: Vec<(String, String)>,
    log: PathBuf,
}

impl Spec {
    fn spawn(&self) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        Command::new(&self.program)
            .envs(self.env.iter().cloned())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("start {}: {error}", self.program.display()))
    }
}

enum Running {
    InProcess(Option<astral::Running>, TempDir),
    Processes(Vec<(String, Child)>, Vec<TestDatabase>, TempDir),
}

/// How to start a distributed system.
pub struct Distributed {
    pub gateways: usize,
    /// Social service processes on the one database (the first is the one others call).
    pub social_replicas: usize,
    /// Messaging service processes on the one database (the first is the one others call).
    pub messaging_replicas: usize,
    pub rust_log: &'static str,
    /// More environment for every process (tracing export, log format).
    pub env: Vec<(&'static str, String)>,
    /// The PostgreSQL server for the databases (`postgres://user@host:port`); the shared
    /// one if `None`.
    pub postgres: Option<String>,
}

impl Default for Distributed {
    fn default() -> Self {
        Self {
            gateways: 1,
            social_replicas: 1,
            messaging_replicas: 1,
            rust_log: "info",
            env: Vec::new(),
            postgres: None,
        }
    }
}

impl System {
    /// Astral in this process: SQLite files in a temporary directory, the in-process bus.
    pub async fn all_in_one() -> Self {
        Self::all_in_one_with_heartbeat(30_000).await
    }

    /// The same, asking WebSocket clients for a heartbeat every `heartbeat_ms`.
    pub async fn all_in_one_with_heartbeat(heartbeat_ms: u64) -> Self {
        Self::all_in_one_with(astral_gateway::Config {
            heartbeat_ms,
            ..astral_gateway::Config::default()
        })
        .await
    }

    /// The same, its gateway configured as `gateway` (service endpoints aside).
    pub async fn all_in_one_with(gateway: astral_gateway::Config) -> Self {
        Self::start_all_in_one(gateway, None).await
    }

    /// The same, with Prometheus `/metrics` on a listener of its own (as
    /// `ASTRAL_METRICS_LISTEN` gives it; without, the all-in-one serves none).
    pub async fn all_in_one_with_metrics(gateway: astral_gateway::Config) -> Self {
        Self::start_all_in_one(gateway, Some("127.0.0.1:0".to_owned())).await
    }

    async fn start_all_in_one(
        gateway: astral_gateway::Config,
        metrics_listen: Option<String>,
    ) -> Self {
        let dir = TempDir::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let options = astral::Options {
            data_dir: dir.0.clone(),
            nats_url: None,
            metrics_listen,
            gateway,
            auth: astral_auth::Settings::default(),
            // Pushes go to the tests' own push service on a loopback address.
            push: astral_messaging::push::PushArgs {
                vapid_key_file: None,
                vapid_subject: astral_messaging::push::DEFAULT_SUBJECT.to_owned(),
                push_insecure_endpoints: true,
            },
        };
        let running = astral::start(options, listener).await.unwrap();
        let metrics = running
            .metrics_addr
            .map(|addr| ("astral".to_owned(), format!("http://{addr}/metrics")))
            .into_iter()
            .collect();
        let base = format!("http://{}", running.addr);
        let system = Self {
            bases: vec![base.clone()],
            base,
            nats_url: None,
            services: vec![
                ("auth", running.auth_url.clone()),
                ("social", running.social_url.clone()),
                ("messaging", running.messaging_url.clone()),
            ],
            auth_database_url: format!("sqlite://{}", dir.0.join("auth.db").display()),
            messaging_database_url: format!("sqlite://{}", dir.0.join("messaging.db").display()),
            metrics,
            private_nats: None,
            secrets: None,
            specs: Vec::new(),
            storage_dir: dir.0.join("attachments"),
            _s3: None,
            running: Running::InProcess(Some(running), dir),
        };
        system.wait_ready().await;
        system
    }

    /// Astral as four processes on PostgreSQL and NATS; `None` (locally) when either is down.
    pub async fn distributed() -> Option<Self> {
        Self::distributed_with(Distributed::default()).await
    }

    /// Astral as separate processes, with as many gateways as asked.
    pub async fn distributed_with(options: Distributed) -> Option<Self> {
        if !std::path::Path::new(NATS_SERVER).exists() {
            unavailable("NATS", &anyhow::anyhow!("{NATS_SERVER} is not installed"));
            return None;
        }
        let mut databases = Vec::new();
        for _ in 0..3 {
            let database = match &options.postgres {
                Some(server) => TestDatabase::postgres_on(server).await,
                None => TestDatabase::postgres().await,
            };
            match database {
                Ok(database) => databases.push(database),
                Err(error) => {
                    unavailable("PostgreSQL", &error);
                    return None;
                }
            }
        }
        let logs = TempDir::new();
        let s3 = S3Server::start().await.unwrap();
        let s3_secret = logs.0.join("s3-secret");
        std::fs::write(&s3_secret, &s3.secret_access_key).unwrap();
        // Every messaging replica stores attachments in the one bucket (after the role's
        // env file, so these win).
        let storage = [
            ("ASTRAL_STORAGE_URL", format!("s3://{}", s3.bucket)),
            ("ASTRAL_S3_ENDPOINT", s3.endpoint.clone()),
            ("ASTRAL_S3_REGION", "us-east-1".to_owned()),
            ("ASTRAL_S3_ACCESS_KEY_ID", s3.access_key_id.clone()),
            (
                "ASTRAL_S3_SECRET_ACCESS_KEY_FILE",
                s3_secret.display().to_string(),
            ),
            // Pushes go to the tests' own push service on a loopback address.
            ("ASTRAL_PUSH_INSECURE_ENDPOINTS", "1".to_owned()),
        ];
        let secrets = logs.0.join("secrets");
        let nats_port = free_port();
        astral::secrets::init(&secrets, &astral::secrets::InitOptions { nats_port }).unwrap();
        let mut children = vec![(
            "nats".to_owned(),
            start_nats(&secrets, nats_port, &logs).await,
        )];
        let nats_url = format!("nats://127.0.0.1:{nats_port}");
        let [auth, social, messaging] = [free_port(), free_port(), free_port()];
        let social_replicas: Vec<u16> = (1..options.social_replicas).map(|_| free_port()).collect();
        // Callers balance over every replica (a comma-separated list of endpoints).
        let social_urls: Vec<String> = std::iter::once(social)
            .chain(social_replicas.iter().copied())
            .map(|port| format!("https://127.0.0.1:{port}"))
            .collect();
        let messaging_replicas: Vec<u16> = (1..options.messaging_replicas)
            .map(|_| free_port())
            .collect();
        let messaging_urls: Vec<String> = std::iter::once(messaging)
            .chain(messaging_replicas.iter().copied())
            .map(|port| format!("https://127.0.0.1:{port}"))
            .collect();
        let gateways: Vec<u16> = (0..options.gateways).map(|_| free_port()).collect();
        let url = |port: u16| format!("http://127.0.0.1:{port}");
        let grpc_url = |port: u16| format!("https://127.0.0.1:{port}");
        let common = [
            ("NATS_URL", nats_url.clone()),
            ("ASTRAL_AUTH_URL", grpc_url(auth)),
            ("ASTRAL_SOCIAL_URL", social_urls.join(",")),
            ("ASTRAL_MESSAGING_URL", messaging_urls.join(",")),
            ("RUST_LOG", options.rust_log.to_owned()),
        ];
        let mut processes = vec![
            (
                "astral-auth".to_owned(),
                "astral-auth",
                auth,
                Some(databases[0].url.clone()),
            ),
            (
                "astral-social".to_owned(),
                "astral-social",
                social,
                Some(databases[1].url.clone()),
            ),
            (
                "astral-messaging".to_owned(),
                "astral-messaging",
                messaging,
                Some(databases[2].url.clone()),
            ),
        ];
        for (i, port) in social_replicas.iter().enumerate() {
            processes.push((
                format!("astral-social-{}", i + 2),
                "astral-social",
                *port,
                Some(databases[1].url.clone()),
            ));
        }
        for (i, port) in messaging_replicas.iter().enumerate() {
            let name = format!("astral-messaging-{}", i + 2);
            processes.push((
                name,
                "astral-messaging",
                *port,
                Some(databases[2].url.clone()),
            ));
        }
        for (i, port) in gateways.iter().enumerate() {
            processes.push((format!("astral-gateway-{i}"), "astral-gateway", *port, None));
        }
        let mut metrics = Vec::new();
        let mut specs = Vec::new();
        for (name, binary, port, database) in processes {
            let metrics_port = free_port();
            metrics.push((name.clone(), format!("{}/metrics", url(metrics_port))));
            let role = server_role(binary.trim_start_matches("astral-"));
            let mut env: Vec<(String, String)> =
                astral::secrets::role_env(&secrets, role.as_str()).unwrap();
            env.extend(common.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
            env.extend(
                options
                    .env
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.clone())),
            );
            env.push(("ASTRAL_LISTEN".into(), format!("127.0.0.1:{port}")));
            env.push((
                "ASTRAL_METRICS_LISTEN".into(),
                format!("127.0.0.1:{metrics_port}"),
            ));
            if let Some(database) = database {
                env.push(("DATABASE_URL".into(), database));
            }
            if binary == "astral-messaging" {
                env.extend(storage.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
            }
            let spec = Spec {
                program: binary_path(binary),
                env,
                log: logs.0.join(format!("{name}.log")),
            };
            children.push((name.clone(), spec.spawn()));
            specs.push((name, spec));
        }
        let bases: Vec<String> = gateways.iter().map(|port| url(*port)).collect();
        let system = Self {
            base: bases[0].clone(),
            bases,
            nats_url: Some(nats_url),
            services: [
                ("auth", grpc_url(auth)),
                ("social", grpc_url(social)),
                ("messaging", grpc_url(messaging)),
            ]
            .into_iter()
            .chain(
                social_replicas
                    .iter()
                    .map(|port| ("social-2", grpc_url(*port))),
            )
            .chain(
                messaging_replicas
                    .iter()
                    .map(|port| ("messaging-2", grpc_url(*port))),
            )
            .collect(),
            auth_database_url: databases[0].url.clone(),
            messaging_database_url: databases[2].url.clone(),
            metrics,
            private_nats: Some(nats_port),
            secrets: Some(secrets),
            specs,
            storage_dir: s3.root.0.join(&s3.bucket),
            _s3: Some(s3),
            running: Running::Processes(children, databases, logs),
        };
        system.wait_ready().await;
        Some(system)
    }

    /// A gRPC channel to a service (by name: `auth`, `social-2`, …) as a process of role
    /// `caller` would open it.
    pub fn channel(&self, caller: Role, service: &str) -> Channel {
        self.channel_to(caller, &self.service_url(service), server_role(service))
    }

    /// A gRPC channel to `url`, where a process of role `server` listens, as a process of
    /// role `caller` would open it (with that role's certificate in distributed mode).
    pub fn channel_to(&self, caller: Role, url: &str, server: Role) -> Channel {
        self.plane(caller).channel(url, server).unwrap()
    }

    /// How a process of role `caller` joins the internal plane.
    pub fn plane(&self, caller: Role) -> astral_common::plane::Plane {
        let mut args = astral_common::plane::PlaneArgs::default();
        for (key, value) in self.role_env(caller) {
            let value = Some(PathBuf::from(value));
            match key.as_str() {
                "ASTRAL_TLS_CA" => args.tls.ca = value,
                "ASTRAL_TLS_CERT" => args.tls.cert = value,
                "ASTRAL_TLS_KEY" => args.tls.key = value,
                _ => {}
            }
        }
        match self.secrets {
            Some(_) => astral_common::plane::Plane::from_args(&args).unwrap(),
            None => astral_common::plane::Plane::trusted(),
        }
    }

    /// A NATS client of this system's server with the credentials of `role`.
    pub async fn nats_client(&self, role: Role) -> async_nats::Client {
        let url = self.nats_url.as_deref().expect("distributed");
        let seed = self
            .role_env(role)
            .into_iter()
            .find(|(key, _)| key == "ASTRAL_NATS_NKEY")
            .map(|(_, path)| std::fs::read_to_string(path).unwrap())
            .unwrap();
        async_nats::ConnectOptions::with_nkey(seed.trim().to_owned())
            .connect(url)
            .await
            .unwrap()
    }

    /// What a process of role `role` needs in its environment to join this system's
    /// internal plane (nothing in the all-in-one: its sockets are the proof).
    pub fn role_env(&self, role: Role) -> Vec<(String, String)> {
        match &self.secrets {
            Some(secrets) => astral::secrets::role_env(secrets, role.as_str()).unwrap(),
            None => Vec::new(),
        }
    }

    /// The all-in-one's data directory.
    pub fn data_dir(&self) -> Option<&std::path::Path> {
        match &self.running {
            Running::InProcess(_, dir) => Some(&dir.0),
            Running::Processes(..) => None,
        }
    }

    /// The gRPC endpoint of a service.
    pub fn service_url(&self, name: &str) -> String {
        self.services
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, url)| url.clone())
            .unwrap()
    }

    /// Sends a signal (`TERM`, `KILL`) to one process of a distributed system and waits for it
    /// to exit; the time it took, or `None` if it was still running after `within`.
    pub async fn signal(
        &mut self,
        process: &str,
        signal: &str,
        within: std::time::Duration,
    ) -> Option<std::time::Duration> {
        let child = self.child(process);
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal}");
        let start = std::time::Instant::now();
        while start.elapsed() < within {
            if child.try_wait().unwrap().is_some() {
                return Some(start.elapsed());
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        None
    }

    /// How a process that has exited ended (`None` while it runs).
    pub fn exit_status(&mut self, process: &str) -> Option<std::process::ExitStatus> {
        self.child(process).try_wait().unwrap()
    }

    fn child(&mut self, process: &str) -> &mut Child {
        let Running::Processes(children, _, _) = &mut self.running else {
            panic!("not distributed")
        };
        children
            .iter_mut()
            .find(|(name, _)| name == process)
            .map(|(_, child)| child)
            .unwrap_or_else(|| panic!("no process {process}"))
    }

    /// The Prometheus page of one process, by name.
    pub async fn metrics_of(&self, process: &str) -> String {
        let url = &self
            .metrics
            .iter()
            .find(|(name, _)| name == process)
            .unwrap_or_else(|| panic!("no process {process}"))
            .1;
        let response = reqwest::get(url).await.unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::OK, "{url}");
        response.text().await.unwrap()
    }

    /// Starts a process again as it was started (after `signal` stopped it; one still
    /// running is killed first).
    pub fn restart(&mut self, process: &str) {
        let spec = self
            .specs
            .iter()
            .find(|(name, _)| name == process)
            .map(|(_, spec)| spec.clone())
            .unwrap_or_else(|| panic!("no process {process}"));
        let child = self.child(process);
        let _ = child.kill();
        let _ = child.wait();
        *child = spec.spawn();
    }

    /// Starts the test's own NATS server again (after `signal("nats", …)` stopped it).
    pub async fn restart_nats(&mut self) {
        let port = self.private_nats.expect("a private NATS server");
        let Running::Processes(children, _, logs) = &mut self.running else {
            panic!("not distributed")
        };
        let secrets = self.secrets.clone().expect("distributed");
        let child = start_nats(&secrets, port, logs).await;
        children.retain(|(name, _)| name != "nats");
        children.push(("nats".to_owned(), child));
    }

    /// Waits until every service answers its gRPC health check as serving and every
    /// gateway answers `/readyz` (token keys and revocations loaded).
    async fn wait_ready(&self) {
        use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
        let client = reqwest::Client::new();
        // Generous: many distributed systems may be starting at once on a 2-core machine.
        let deadline = tokio::time::Instant::now() + WAIT * 6;
        for (name, url) in &self.services {
            let mut health = HealthClient::new(self.channel(Role::Admin, name));
            loop {
                let request = HealthCheckRequest {
                    service: String::new(),
                };
                if health.check(request).await.is_ok_and(|answer| {
                    answer.into_inner().status()
                        == tonic_health::pb::health_check_response::ServingStatus::Serving
                }) {
                    break;
                }
                if tokio::time::Instant::now() > deadline {
                    self.dump_logs();
                    panic!("the {name} service at {url} did not become ready");
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
        for base in &self.bases {
            loop {
                let ready = client.get(format!("{base}/readyz")).send().await;
                if ready.is_ok_and(|r| r.status().is_success()) {
                    break;
                }
                if tokio::time::Instant::now() > deadline {
                    self.dump_logs();
                    panic!("the gateway at {base} did not become ready");
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }

    /// Everything the processes logged so far (distributed mode), by process name.
    pub fn logs(&self) -> Vec<(String, String)> {
        let Running::Processes(_, _, dir) = &self.running else {
            return Vec::new();
        };
        let mut logs: Vec<(String, String)> = std::fs::read_dir(&dir.0)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "log"))
            .map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                (
                    name,
                    std::fs::read_to_string(entry.path()).unwrap_or_default(),
                )
            })
            .collect();
        logs.sort();
        logs
    }

    /// Prints the processes' logs (distributed mode) to help explain a failure.
    pub fn dump_logs(&self) {
        for (name, text) in self.logs() {
            eprintln!("==== {name}\n{text}");
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
            for (_, child) in children.iter_mut() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Runs an async scenario `fn(&System)` as two tests, one per run mode.
#[macro_export]
macro_rules! in_both_modes {
    ($($scenario:ident),* $(,)?) => {
        mod all_in_one {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let system = $crate::support::System::all_in_one().await;
                    super::$scenario(&system).await;
                    system.stop().await;
                }
            )*
        }
        mod distributed {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let Some(system) = $crate::support::System::distributed().await else { return };
                    super::$scenario(&system).await;
                    system.stop().await;
                }
            )*
        }
    };
}

const NATS_SERVER: &str = "/usr/sbin/nats-server";

/// The deployment's NATS server (`secrets/nats.conf`) on `port`, answering.
async fn start_nats(secrets: &std::path::Path, port: u16, logs: &TempDir) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(logs.0.join("nats.log"))
        .unwrap();
    let config = secrets.join("nats.conf");
    let child = Command::new(NATS_SERVER)
        .arg("-c")
        .arg(&config)
        .args(["-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start nats-server");
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nats-server did not start"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    child
}

/// A port for a process to listen on. Taken at random below the kernel's ephemeral range
/// (32768 and up on Linux): a port the kernel hands out for port 0 is one it may also give an
/// outgoing connection (to PostgreSQL, NATS…) before our process binds it, and tests running
/// side by side would draw from the same small pool.
pub fn free_port() -> u16 {
    use std::sync::Mutex;
    // Each test runs in its own process (nextest), so a port is also claimed across
    // processes: by an exclusive lock on a file named after it, held until this process
    // ends (the system then lets go of it, however the process ends).
    static CLAIMED: Mutex<Vec<(u16, std::fs::File)>> = Mutex::new(Vec::new());
    let dir = std::env::temp_dir().join("astral-test-ports");
    std::fs::create_dir_all(&dir).unwrap();
    let mut claimed = CLAIMED.lock().unwrap();
    loop {
        let port = rand::Rng::gen_range(&mut rand::thread_rng(), 20_000..32_000);
        if claimed.iter().any(|(given, _)| *given == port) {
            continue;
        }
        let Ok(lock) = std::fs::File::create(dir.join(format!("{port}.lock"))) else {
            continue;
        };
        if lock.try_lock().is_ok() && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            claimed.push((port, lock));
            return port;
        }
    }
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
