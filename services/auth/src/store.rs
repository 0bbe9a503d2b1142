//! The auth database: SQL only, written once for PostgreSQL and SQLite.

use astral_common::db::{Pool, is_unique_violation};
use astral_common::{Error, Result};

/// A user as other services see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: String,
}

/// A user with what login needs.
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
}

#[derive(Clone)]
pub struct Store {
    pool: Pool,
}

impl Store {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    /// Creates an account and its first session in one transaction. `AlreadyExists` if the
    /// username is taken.
    pub async fn insert_user_with_session(
        &self,
        user: &User,
        password_hash: &str,
        session: &NewSession<'_>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query("INSERT INTO users (id, username, password_hash, created_at_ms) VALUES ($1, $2, $3, $4)")
            .bind(user.id)
            .bind(&user.username)
            .bind(password_hash)
            .bind(session.now_ms)
            .execute(&mut *tx)
            .await;
        match inserted {
            Err(error) if is_unique_violation(&error) => {
                return Err(Error::conflict("that username is taken"));
            }
            other => other?,
        };
        insert_session(&mut tx, session).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn credentials(&self, username: &str) -> Result<Option<Credentials>> {
        let row: Option<(i64, String, String)> =
            sqlx::query_as("SELECT id, username, password_hash FROM users WHERE username = $1")
                .bind(username)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(id, username, password_hash)| Credentials {
            user: User { id, username },
            password_hash,
        }))
    }

    pub async fn user(&self, id: i64) -> Result<Option<User>> {
        let row: Option<(i64, String)> =
            sqlx::query_as("SELECT id, username FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(id, username)| User { id, username }))
    }

    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>> {
        let row: Option<(i64, String)> =
            sqlx::query_as("SELECT id, username FROM users WHERE username = $1")
                .bind(username)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(id, username)| User { id, username }))
    }

    /// The users among `ids` that exist.
    pub async fn users(&self, ids: &[i64]) -> Result<Vec<User>> {
        let mut users = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT id, username FROM users WHERE id IN ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query_as::<_, (i64, String)>(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(*id);
            }
            users.extend(
                query
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(|(id, username)| User { id, username }),
            );
        }
        Ok(users)
    }

    pub async fn insert_session(&self, session: &NewSession<'_>) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        insert_session(&mut tx, session).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Swaps a live session's refresh token for a new one; `None` if `old_hash` belongs to no
    /// live session. Returns `(session_id, user)`.
    pub async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        now_ms: i64,
    ) -> Result<Option<(i64, User)>> {
        let mut tx = self.pool.begin().await?;
        let row: Option<(i64, i64)> = sqlx::query_as(
            "UPDATE sessions SET refresh_hash = $1, last_used_at_ms = $2 \
             WHERE refresh_hash = $3 AND revoked_at_ms IS NULL RETURNING id, user_id",
        )
        .bind(new_hash)
        .bind(now_ms)
        .bind(old_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((session_id, user_id)) = row else {
            return Ok(None);
        };
        let (id, username): (i64, String) =
            sqlx::query_as("SELECT id, username FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_one(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(Some((session_id, User { id, username })))
    }

    /// Ends a live session of `user_id`; false if there was none.
    pub async fn revoke_session(&self, user_id: i64, session_id: i64, now_ms: i64) -> Result<bool> {
        let result = sqlx::query(
            "UPDATE sessions SET revoked_at_ms = $1 WHERE id = $2 AND user_id = $3 AND revoked_at_ms IS NULL",
        )
        .bind(now_ms)
        .bind(session_id)
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Stored signing keys `(kid, seed)`, newest first.
    pub async fn signing_keys(&self) -> Result<Vec<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT kid, seed FROM signing_keys ORDER BY created_at_ms DESC, kid DESC",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Stores a signing key unless one with that id exists.
    pub async fn insert_signing_key(&self, kid: &str, seed: &str, now_ms: i64) -> Result<()> {
        sqlx::query("INSERT INTO signing_keys (kid, seed, created_at_ms) VALUES ($1, $2, $3) ON CONFLICT (kid) DO NOTHING")
            .bind(kid)
            .bind(seed)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// A session about to be stored.
pub struct NewSession<'a> {
    pub id: i64,
    pub user_id: i64,
    pub refresh_hash: &'a str,
    pub user_agent: &'a str,
    pub now_ms: i64,
}

async fn insert_session(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    session: &NewSession<'_>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO sessions (id, user_id, refresh_hash, user_agent, created_at_ms, last_used_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(session.id)
    .bind(session.user_id)
    .bind(session.refresh_hash)
    .bind(session.user_agent)
    .bind(session.now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
