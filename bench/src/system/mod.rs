//! The system under test, started from the built binaries: distributed (the three
//! services and one gateway as separate processes on fresh PostgreSQL databases, with a
//! NATS server of its own, secured as a deployment is: `astral-admin secrets init`) or the
//! all-in-one `astral` (SQLite in a scratch directory, in-process bus). Everything it
//! started is killed, and its databases dropped, when it is dropped.

mod postgres;
pub mod process;

use crate::measure::Watched;
use anyhow::Context as _;
use postgres::Databases;
use process::{Process, ScratchDir, Spec, free_port, wait_listening};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a process may take to start answering.
const START_WITHIN: Duration = Duration::from_secs(30);
/// A benchmark registers its thousands of users from a few addresses: the knob meant for
/// that (`ASTRAL_REGISTRATIONS_PER_10_MIN`), raised.
const REGISTRATIONS: &str = "1000000";
const NATS_SERVER: &str = "nats-server";

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// auth, social, messaging and one gateway as processes; PostgreSQL; NATS.
    Distributed,
    /// `astral`: everything in one process; SQLite; the in-process bus.
    AllInOne,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Self::Distributed => "distributed",
            Self::AllInOne => "all-in-one",
        }
    }
}

/// What to start.
pub struct Options {
    pub mode: Mode,
    /// Where the binaries are (`target/release`).
    pub bin_dir: PathBuf,
    /// More settings for the gateway (connection caps for the idle and storm scenarios).
    pub gateway_env: Vec<(String, String)>,
}

pub struct System {
    /// The gateway's base URL, `http://127.0.0.1:<port>`.
    pub base: String,
    pub port: u16,
    /// Every process started, the gateway (or the all-in-one) last.
    processes: Vec<Process>,
    databases: Option<Databases>,
    /// NATS's monitoring port (distributed mode).
    nats_monitor: Option<u16>,
    _dir: ScratchDir,
}

impl System {
    pub async fn start(options: &Options) -> anyhow::Result<Self> {
        let dir = ScratchDir::new()?;
        let port = free_port()?;
        let mut system = Self {
            base: format!("http://127.0.0.1:{port}"),
            port,
            processes: Vec::new(),
            databases: None,
            nats_monitor: None,
            _dir: dir,
        };
        match options.mode {
            Mode::Distributed => system.start_distributed(options).await?,
            Mode::AllInOne => system.start_all_in_one(options)?,
        }
        system.wait_ready().await?;
        Ok(system)
    }

    fn start_all_in_one(&mut self, options: &Options) -> anyhow::Result<()> {
        let data = self._dir.path().join("data");
        let mut env = vec![
            (
                "ASTRAL_LISTEN".to_owned(),
                format!("127.0.0.1:{}", self.port),
            ),
            ("ASTRAL_DATA_DIR".to_owned(), data.display().to_string()),
            (
                "ASTRAL_REGISTRATIONS_PER_10_MIN".to_owned(),
                REGISTRATIONS.to_owned(),
            ),
            ("RUST_LOG".to_owned(), "warn".to_owned()),
        ];
        env.extend(options.gateway_env.iter().cloned());
        self.spawn(
            "astral",
            binary(&options.bin_dir, "astral")?,
            Vec::new(),
            env,
        )
    }

    async fn start_distributed(&mut self, options: &Options) -> anyhow::Result<()> {
        let secrets = self._dir.path().join("secrets");
        let nats_port = free_port()?;
        run_admin(&options.bin_dir, &secrets, nats_port)?;
        let config = secrets.join("nats.conf").display().to_string();
        let monitor = free_port()?;
        self.nats_monitor = Some(monitor);
        let nats_args = vec![
            "-c".to_owned(),
            config,
            "-p".to_owned(),
            nats_port.to_string(),
            "-m".to_owned(),
            monitor.to_string(),
        ];
        self.spawn(
            "nats-server",
            PathBuf::from(NATS_SERVER),
            nats_args,
            Vec::new(),
        )?;
        wait_listening(nats_port, START_WITHIN).await?;
        let databases = Databases::create(&["auth", "social", "messaging"])?;
        let [auth, social, messaging] = [free_port()?, free_port()?, free_port()?];
        let grpc = |port: u16| format!("https://127.0.0.1:{port}");
        let common = vec![
            (
                "NATS_URL".to_owned(),
                format!("nats://127.0.0.1:{nats_port}"),
            ),
            ("ASTRAL_AUTH_URL".to_owned(), grpc(auth)),
            ("ASTRAL_SOCIAL_URL".to_owned(), grpc(social)),
            ("ASTRAL_MESSAGING_URL".to_owned(), grpc(messaging)),
            ("RUST_LOG".to_owned(), "warn".to_owned()),
        ];
        let services = [
            ("auth", auth, 0),
            ("social", social, 1),
            ("messaging", messaging, 2),
        ];
        for (role, port, database) in services {
            let mut env = role_env(&secrets, role)?;
            env.extend(common.iter().cloned());
            env.push(("ASTRAL_LISTEN".to_owned(), format!("127.0.0.1:{port}")));
            env.push((
                "ASTRAL_METRICS_LISTEN".to_owned(),
                format!("127.0.0.1:{}", free_port()?),
            ));
            env.push(("DATABASE_URL".to_owned(), databases.url(database)));
            if role == "messaging" {
                let files = secrets.with_file_name("attachments");
                env.push((
                    "ASTRAL_STORAGE_URL".to_owned(),
                    format!("file://{}", files.display()),
                ));
            }
            if role == "auth" {
                env.push((
                    "ASTRAL_REGISTRATIONS_PER_10_MIN".to_owned(),
                    REGISTRATIONS.to_owned(),
                ));
            }
            let name = format!("astral-{role}");
            self.spawn(&name, binary(&options.bin_dir, &name)?, Vec::new(), env)?;
        }
        self.databases = Some(databases);
        for port in [auth, social, messaging] {
            wait_listening(port, START_WITHIN).await?;
        }
        let mut env = role_env(&secrets, "gateway")?;
        env.extend(common);
        env.push((
            "ASTRAL_LISTEN".to_owned(),
            format!("127.0.0.1:{}", self.port),
        ));
        env.extend(options.gateway_env.iter().cloned());
        let gateway = binary(&options.bin_dir, "astral-gateway")?;
        self.spawn("astral-gateway", gateway, Vec::new(), env)
    }

    fn spawn(
        &mut self,
        name: &str,
        program: PathBuf,
        args: Vec<String>,
        env: Vec<(String, String)>,
    ) -> anyhow::Result<()> {
        let log = self._dir.path().join(format!("{name}.log"));
        let spec = Spec {
            name: name.to_owned(),
            program,
            args,
            env,
            log,
        };
        self.processes.push(spec.spawn()?);
        Ok(())
    }

    /// Waits until the gateway answers `/readyz` (its token keys are loaded).
    async fn wait_ready(&mut self) -> anyhow::Result<Duration> {
        let started = tokio::time::Instant::now();
        let client = reqwest::Client::new();
        loop {
            let ready = client.get(format!("{}/readyz", self.base)).send().await;
            if ready.is_ok_and(|answer| answer.status().is_success()) {
                return Ok(started.elapsed());
            }
            if let Some(exited) = self.exited() {
                anyhow::bail!("{exited}");
            }
            anyhow::ensure!(
                started.elapsed() < START_WITHIN,
                "the gateway did not become ready: {}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A process that has exited, with its log.
    fn exited(&mut self) -> Option<String> {
        self.processes.iter_mut().find_map(|process| {
            let status = process.child.try_wait().ok()??;
            Some(format!(
                "{} exited ({status}):\n{}",
                process.spec.name,
                process.log_tail()
            ))
        })
    }

    fn logs(&self) -> String {
        self.processes
            .iter()
            .map(|process| format!("==== {}\n{}", process.spec.name, process.log_tail()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The gateway process (the all-in-one in that mode).
    pub fn gateway_pid(&self) -> Option<u32> {
        self.processes.last().map(Process::pid)
    }

    /// Kills the gateway (SIGKILL) and starts it again at once, as it was started; returns
    /// how long it took to answer `/readyz` again.
    pub async fn restart_gateway(&mut self) -> anyhow::Result<Duration> {
        let gateway = self.processes.pop().context("no gateway")?;
        let spec = gateway.spec.clone();
        drop(gateway);
        self.processes.push(spec.spawn()?);
        self.wait_ready().await
    }

    /// The processes to measure: each server process, PostgreSQL's backends of this run's
    /// databases, and every PostgreSQL process on the machine.
    /// Messages NATS has received so far (`in_msgs` of its `/varz`); `None` without NATS.
    pub async fn bus_messages(&self) -> anyhow::Result<Option<u64>> {
        let Some(port) = self.nats_monitor else {
            return Ok(None);
        };
        let varz: serde_json::Value = reqwest::get(format!("http://127.0.0.1:{port}/varz"))
            .await?
            .error_for_status()?
            .json()
            .await?;
        let received = varz["in_msgs"]
            .as_u64()
            .ok_or_else(|| anyhow::anyhow!("NATS's /varz has no in_msgs"))?;
        Ok(Some(received))
    }

    pub fn watched(&self) -> Vec<(String, Watched)> {
        let mut watched: Vec<(String, Watched)> = self
            .processes
            .iter()
            .map(|process| (process.spec.name.clone(), Watched::Pid(process.pid())))
            .collect();
        if let Some(databases) = &self.databases {
            let ours = Watched::Postgres(Some(databases.names.clone()));
            watched.push(("postgres (this run's backends)".to_owned(), ours));
            watched.push((
                "postgres (all processes)".to_owned(),
                Watched::Postgres(None),
            ));
        }
        watched
    }
}

fn binary(dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(name);
    anyhow::ensure!(
        path.exists(),
        "{} is missing: build the binaries first (`cargo build --release --workspace --bins`)",
        path.display()
    );
    Ok(path)
}

/// `astral-admin secrets init DIR --nats-port PORT`: the deployment's secrets.
fn run_admin(bin_dir: &Path, secrets: &Path, nats_port: u16) -> anyhow::Result<()> {
    let output = std::process::Command::new(binary(bin_dir, "astral-admin")?)
        .args(["secrets", "init"])
        .arg(secrets)
        .args(["--nats-port", &nats_port.to_string()])
        .output()
        .context("run astral-admin secrets init")?;
    anyhow::ensure!(
        output.status.success(),
        "astral-admin secrets init: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// The `KEY=VALUE` lines of `DIR/<role>.env`.
fn role_env(secrets: &Path, role: &str) -> anyhow::Result<Vec<(String, String)>> {
    let path = secrets.join(format!("{role}.env"));
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect())
}
