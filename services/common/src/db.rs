//! Database pools for both backends: PostgreSQL (production) and SQLite (the all-in-one).
//!
//! Stores use `sqlx::Any`, so each query is written once wherever the dialects agree
//! (`$1` placeholders, `RETURNING`, `ON CONFLICT` work in both).

use anyhow::Context as _;
use sqlx::any::AnyPoolOptions;
use std::time::Duration;

pub use sqlx::AnyPool as Pool;

/// Connects to `url` (`postgres://…` or `sqlite://…`), creating a SQLite file and its
/// directory when missing.
pub async fn connect(url: &str) -> anyhow::Result<Pool> {
    sqlx::any::install_default_drivers();
    let sqlite = is_sqlite(url);
    let url = if sqlite {
        prepare_sqlite(url)?
    } else {
        url.to_owned()
    };
    let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
    let options = if sqlite {
        // One connection: SQLite allows one writer, and a single connection never meets
        // another's lock halfway through a transaction.
        options.max_connections(1).after_connect(|conn, _meta| {
            Box::pin(async move {
                sqlx::raw_sql(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
                )
                .execute(conn)
                .await?;
                Ok(())
            })
        })
    } else {
        options.max_connections(16)
    };
    let pool = options
        .connect(&url)
        .await
        .with_context(|| format!("connect to {}", redact(&url)))?;
    watch_pool(database_name(&url), &pool);
    Ok(pool)
}

/// A small PostgreSQL pool whose commits do not wait for the disk (`synchronous_commit =
/// off`): for counters that a crash may set back a moment without harm (rate limits), so
/// that a write per call costs no flush per call. Durable writes use [`connect`].
pub async fn connect_unflushed(url: &str) -> anyhow::Result<Pool> {
    sqlx::any::install_default_drivers();
    AnyPoolOptions::new()
        .acquire_timeout(Duration::from_secs(10))
        .max_connections(8)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                sqlx::raw_sql("SET synchronous_commit = off")
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .connect(url)
        .await
        .with_context(|| format!("connect to {}", redact(url)))
}

/// The database's name in `url`: `astral_messaging` in `postgres://h/astral_messaging`,
/// `messaging` in `sqlite://data/messaging.db`.
fn database_name(url: &str) -> &str {
    let path = url.split('?').next().unwrap_or_default();
    let file = path.rsplit('/').next().unwrap_or_default();
    file.split('.').next().unwrap_or(file)
}

/// Whether `url` names a SQLite database.
pub fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:")
}

fn prepare_sqlite(url: &str) -> anyhow::Result<String> {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = rest.split('?').next().unwrap_or_default();
    let parent = std::path::Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = parent.filter(|_| path != ":memory:") {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    Ok(if url.contains("mode=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    })
}

/// The URL without its password, for logs and errors.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Whether a database error is a unique-constraint violation (both backends).
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// The pools whose use `/metrics` reports.
static POOLS: std::sync::Mutex<Vec<(String, Pool)>> = std::sync::Mutex::new(Vec::new());

/// Reports `pool`'s use (when `/metrics` is rendered) as `astral_db_pool_connections{database, state}` from now on.
fn watch_pool(database: &str, pool: &Pool) {
    lock_pools().push((database.to_owned(), pool.clone()));
}

fn lock_pools() -> std::sync::MutexGuard<'static, Vec<(String, Pool)>> {
    POOLS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) fn sample_pools() {
    let mut pools = lock_pools();
    pools.retain(|(_, pool)| !pool.is_closed());
    for (database, pool) in pools.iter() {
        let idle = pool.num_idle() as f64;
        let open = f64::from(pool.size());
        let labels =
            |state: &'static str| [("database", database.clone()), ("state", state.into())];
        metrics::gauge!("astral_db_pool_connections", &labels("idle")).set(idle);
        metrics::gauge!("astral_db_pool_connections", &labels("in_use")).set(open - idle);
        metrics::gauge!("astral_db_pool_max_connections", "database" => database.clone())
            .set(f64::from(pool.options().get_max_connections()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite://data/a.db"), "sqlite://data/a.db");
    }

    #[test]
    fn database_names_come_from_the_url() {
        assert_eq!(
            database_name("postgres://u@h:5432/astral_auth"),
            "astral_auth"
        );
        assert_eq!(
            database_name("sqlite://data/messaging.db?mode=rwc"),
            "messaging"
        );
    }

    #[test]
    fn sqlite_urls_are_opened_read_write_create() {
        let dir = std::env::temp_dir().join(format!("astral-db-{}", crate::ids::new_id()));
        let url = format!("sqlite://{}/x.db", dir.display());
        assert!(prepare_sqlite(&url).unwrap().ends_with("x.db?mode=rwc"));
        assert!(dir.exists());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
