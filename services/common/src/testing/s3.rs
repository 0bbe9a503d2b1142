//! A real S3-compatible server for tests: `s3s-fs` (installed from crates.io by `.ci/run`),
//! storing on disk under a temporary directory, on a free port, stopped when dropped.

use super::TempDir;
use anyhow::Context as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One running `s3s-fs` with one bucket.
pub struct S3Server {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Where it keeps the objects (`<root>/<bucket>/<key>`).
    pub root: TempDir,
    child: Child,
}

impl S3Server {
    /// Starts one with a bucket `astral`; fails if `s3s-fs` is not installed (`.ci/run`
    /// installs it: `cargo install s3s-fs --features binary --locked`).
    pub async fn start() -> anyhow::Result<Self> {
        let root = TempDir::new();
        let bucket = "astral".to_owned();
        std::fs::create_dir_all(root.0.join(&bucket))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let (access_key_id, secret_access_key) =
            ("astral-test".to_owned(), crate::ids::new_id().to_string());
        let child = Command::new(binary())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", &access_key_id, "--secret-key", &secret_access_key])
            .arg(&root.0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start s3s-fs (install it: cargo install s3s-fs --version 0.14.1 --features binary --locked)")?;
        let server = Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket,
            access_key_id,
            secret_access_key,
            root,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            anyhow::ensure!(
                Instant::now() < deadline,
                "s3s-fs did not listen within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(server)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `s3s-fs` on the `PATH`, else where `cargo install` puts it.
fn binary() -> std::path::PathBuf {
    let on_path = std::env::var_os("PATH").into_iter().flat_map(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("s3s-fs"))
            .collect::<Vec<_>>()
    });
    let installed = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| std::path::Path::new(&home).join(".cargo")))
        .map(|home| home.join("bin/s3s-fs"));
    on_path
        .chain(installed)
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| "s3s-fs".into())
}
