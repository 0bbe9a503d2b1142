//! One server process: how to start it (program, environment, log file), started, and
//! killed; free ports to give it; a private scratch directory.

use anyhow::Context as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// How to start one process, to start it again the same way.
#[derive(Clone, Debug)]
pub struct Spec {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub log: PathBuf,
}

/// A process the benchmark started; killed when dropped.
pub struct Process {
    pub spec: Spec,
    pub child: Child,
}

impl Spec {
    pub fn spawn(self) -> anyhow::Result<Process> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("open {}", self.log.display()))?;
        let child = Command::new(&self.program)
            .args(&self.args)
            .envs(self.env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {}", self.program.display()))?;
        Ok(Process { spec: self, child })
    }
}

impl Process {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, then reaped.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The last lines of its log, to explain a failure.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.spec.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port for a server to listen on, below the kernel's ephemeral range (so no outgoing
/// connection holds it meanwhile), claimed as the workspace's tests claim theirs: by an
/// exclusive lock on `/tmp/astral-test-ports/<port>.lock`, held while the benchmark runs.
pub fn free_port() -> anyhow::Result<u16> {
    use std::sync::Mutex;
    static CLAIMED: Mutex<Vec<(u16, std::fs::File)>> = Mutex::new(Vec::new());
    let dir = std::env::temp_dir().join("astral-test-ports");
    std::fs::create_dir_all(&dir)?;
    let mut claimed = CLAIMED
        .lock()
        .map_err(|_| anyhow::anyhow!("port lock poisoned"))?;
    for _ in 0..10_000 {
        let port = rand::Rng::gen_range(&mut rand::thread_rng(), 20_000..32_000);
        if claimed.iter().any(|(given, _)| *given == port) {
            continue;
        }
        let Ok(lock) = std::fs::File::create(dir.join(format!("{port}.lock"))) else {
            continue;
        };
        if lock.try_lock().is_ok() && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            claimed.push((port, lock));
            return Ok(port);
        }
    }
    anyhow::bail!("no free port between 20000 and 32000")
}

/// A private directory under the system's temporary directory, removed when dropped.
pub struct ScratchDir(pub PathBuf);

impl ScratchDir {
    pub fn new() -> anyhow::Result<Self> {
        let name = format!(
            "astral-bench-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        );
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).with_context(|| format!("create {}", path.display()))?;
        Ok(Self(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Waits until something listens on `port` (127.0.0.1), up to `within`.
pub async fn wait_listening(port: u16, within: std::time::Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "nothing listens on port {port} after {within:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Ok(())
}
