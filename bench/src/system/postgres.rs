//! Fresh databases on the shared PostgreSQL server (`psql`, user `postgres`, trust auth),
//! dropped again when the benchmark ends. The server itself is never restarted.

use anyhow::Context as _;
use std::process::Command;

/// The shared server the benchmark creates its databases on.
pub const SERVER: &str = "postgres://postgres@127.0.0.1:5432";

/// Databases created for one run; dropped (connections cut) when this is dropped.
pub struct Databases {
    pub names: Vec<String>,
}

impl Databases {
    /// One new database per name in `roles`, named `astral_bench_<tag>_<role>`.
    pub fn create(roles: &[&str]) -> anyhow::Result<Self> {
        let tag = format!("{}_{:06x}", std::process::id(), rand::random::<u32>() >> 8);
        let mut databases = Self { names: Vec::new() };
        for role in roles {
            let name = format!("astral_bench_{tag}_{role}");
            psql(&format!("CREATE DATABASE {name}"))
                .with_context(|| format!("create database {name}"))?;
            databases.names.push(name);
        }
        Ok(databases)
    }

    pub fn url(&self, index: usize) -> String {
        format!("{SERVER}/{}", self.names[index])
    }
}

impl Drop for Databases {
    fn drop(&mut self) {
        for name in &self.names {
            if let Err(error) = psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")) {
                eprintln!("astral-bench: could not drop database {name}: {error:#}");
            }
        }
    }
}

fn psql(statement: &str) -> anyhow::Result<()> {
    let output = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            "5432",
            "-U",
            "postgres",
            "-d",
            "postgres",
        ])
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", statement])
        .output()
        .context("run psql (is PostgreSQL's client installed?)")?;
    anyhow::ensure!(
        output.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(())
}
