//! A PostgreSQL server of the test's own, on a free port, for tests that restart it (the
//! shared one is never restarted). Run as the `postgres` user when the test runs as root
//! (PostgreSQL refuses to run as root).

use astral_common::testing::TempDir;
use std::path::PathBuf;
use std::process::Command;

pub struct PrivatePostgres {
    dir: TempDir,
    pub port: u16,
}

impl PrivatePostgres {
    /// A new cluster, started; `None` if PostgreSQL's programs are not installed.
    pub fn start() -> Option<Self> {
        let bin = bin_dir()?;
        let dir = TempDir::new();
        let port = super::system::free_port();
        let server = Self { dir, port };
        if as_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&server.dir.0)
                .status()
                .unwrap();
            assert!(status.success(), "chown the cluster's directory");
        }
        let data = server.data();
        server.run(
            bin.join("initdb"),
            &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        server.pg_ctl(&["start"]);
        Some(server)
    }

    /// `postgres://postgres@127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    /// Stops the server (fast shutdown: connections are cut) and starts it again.
    pub fn restart(&self) {
        self.pg_ctl(&["restart", "-m", "fast"]);
    }

    fn data(&self) -> String {
        self.dir.0.join("data").display().to_string()
    }

    fn pg_ctl(&self, action: &[&str]) {
        let bin = bin_dir().expect("PostgreSQL is installed");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300",
            self.port,
            self.dir.0.display()
        );
        let log = self.dir.0.join("postgres.log").display().to_string();
        let data = self.data();
        let mut args = vec!["-D", &data, "-l", &log, "-o", &options, "-w"];
        args.extend_from_slice(action);
        self.run(bin.join("pg_ctl"), &args);
    }

    fn run(&self, program: PathBuf, args: &[&str]) {
        let mut command = if as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program);
            command
        } else {
            Command::new(&program)
        };
        let output = command.args(args).output().unwrap();
        assert!(
            output.status.success(),
            "{} {args:?}: {}",
            program.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if let Some(bin) = bin_dir() {
            let data = self.data();
            let mut command = if as_root() {
                let mut command = Command::new("runuser");
                command
                    .args(["-u", "postgres", "--"])
                    .arg(bin.join("pg_ctl"));
                command
            } else {
                Command::new(bin.join("pg_ctl"))
            };
            let _ = command
                .args(["-D", &data, "-m", "immediate", "-w", "stop"])
                .output();
        }
    }
}

/// The newest installed PostgreSQL's programs (Debian: /usr/lib/postgresql/<n>/bin).
fn bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
        .filter(|bin| bin.join("pg_ctl").exists())
        .collect();
    versions.sort();
    versions.pop()
}

fn as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}
