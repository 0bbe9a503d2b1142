//! Test support: fresh databases on both backends (migrated by a service's migrations if
//! asked), a service's gRPC server on a free port, a stand-in for the auth service, a real
//! S3-compatible server, a Web Push service with its browsers, and the rule that a test
//! needing PostgreSQL or NATS fails under CI (`CI` set) instead of skipping when they are down.

mod fake_auth;
mod push;
mod s3;
mod server;

pub use fake_auth::{FakeAuth, FakeUser};
pub use push::{PushDelivery, PushPeer, PushSubscription};
pub use s3::S3Server;
pub use server::TestServer;

use anyhow::Context as _;
use sqlx::Connection as _;

/// The PostgreSQL server tests use; `ASTRAL_TEST_POSTGRES` overrides it.
pub fn postgres_server() -> String {
    std::env::var("ASTRAL_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// The NATS server tests use; `ASTRAL_TEST_NATS` overrides it.
pub fn nats_server() -> String {
    std::env::var("ASTRAL_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// Whether a test that cannot reach `what` should skip (locally) or fail (under CI).
pub fn unavailable(what: &str, error: &anyhow::Error) -> bool {
    if std::env::var_os("CI").is_some() {
        panic!("{what} is required under CI and is unreachable: {error:#}");
    }
    eprintln!("skipping the {what} part of this test: {error:#}");
    true
}

/// A database made for one test, dropped when the value is dropped.
pub struct TestDatabase {
    pub url: String,
    name: Option<String>,
    /// The PostgreSQL server it lives on (`postgres://user@host:port`).
    server: String,
    _dir: Option<TempDir>,
}

impl TestDatabase {
    /// A new SQLite file in a fresh directory.
    pub fn sqlite() -> Self {
        let dir = TempDir::new();
        let url = format!("sqlite://{}", dir.0.join("test.db").display());
        Self {
            url,
            name: None,
            server: String::new(),
            _dir: Some(dir),
        }
    }

    /// A new PostgreSQL database, or an error when the server is unreachable.
    pub async fn postgres() -> anyhow::Result<Self> {
        Self::postgres_on(&postgres_server()).await
    }

    /// A new database on the PostgreSQL server at `server` (`postgres://user@host:port`).
    pub async fn postgres_on(server: &str) -> anyhow::Result<Self> {
        let name = format!("astral_test_{}", crate::ids::new_id());
        let server = server.to_owned();
        let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
            .await
            .with_context(|| format!("connect to PostgreSQL at {server}"))?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await?;
        admin.close().await?;
        Ok(Self {
            url: format!("{server}/{name}"),
            name: Some(name),
            server,
            _dir: None,
        })
    }

    /// Both backends: SQLite always, PostgreSQL when reachable (see [`unavailable`]).
    pub async fn both() -> Vec<(&'static str, Self)> {
        let mut databases = vec![("sqlite", Self::sqlite())];
        match Self::postgres().await {
            Ok(db) => databases.push(("postgres", db)),
            Err(error) => {
                unavailable("PostgreSQL", &error);
            }
        }
        databases
    }
}

/// A fresh database on one backend, migrated, with a pool on it: what a store test starts from.
pub struct MigratedDatabase {
    /// `"sqlite"` or `"postgres"`, for the test's messages.
    pub backend: &'static str,
    pub pool: crate::db::Pool,
    /// The database itself, dropped (on PostgreSQL: deleted) with this value.
    pub database: TestDatabase,
}

impl MigratedDatabase {
    /// Both backends (see [`TestDatabase::both`]), each migrated by `migrator` (a service's
    /// `MIGRATOR`: each service owns its migrations, this only runs them).
    pub async fn both(migrator: &sqlx::migrate::Migrator) -> Vec<Self> {
        let mut migrated = Vec::new();
        for (backend, database) in TestDatabase::both().await {
            migrated.push(Self::on(backend, database, migrator).await);
        }
        migrated
    }

    /// `database`, connected and migrated by `migrator`; panics (failing the test) if either
    /// fails.
    pub async fn on(
        backend: &'static str,
        database: TestDatabase,
        migrator: &sqlx::migrate::Migrator,
    ) -> Self {
        let pool = crate::db::connect(&database.url)
            .await
            .unwrap_or_else(|error| panic!("{backend}: connect: {error:#}"));
        migrator
            .run(&pool)
            .await
            .unwrap_or_else(|error| panic!("{backend}: migrate: {error:#}"));
        Self {
            backend,
            pool,
            database,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(name) = self.name.take() else { return };
        let server = std::mem::take(&mut self.server);
        // Drop runs outside any runtime we may block: use a thread with its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres")).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await?;
                anyhow::Ok(())
            })
        })
        .join();
        if let Ok(Err(error)) = dropped {
            eprintln!("could not drop a test database: {error:#}");
        }
    }
}

/// A directory removed when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let path = std::env::temp_dir().join(format!("astral-test-{}", crate::ids::new_id()));
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|error| panic!("create {}: {error}", path.display()));
        Self(path)
    }
}

impl Default for TempDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
