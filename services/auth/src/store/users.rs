//! Accounts: creating one (with its first session), finding users, passwords.

use super::sessions::{NewSession, insert_session};
use super::{Credentials, Store, User};
use astral_common::db::is_unique_violation;
use astral_common::{Error, Result};

impl Store {
    /// Creates an account and its first session in one transaction. `AlreadyExists` if the
    /// username is taken.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "insert_user_with_session"))]
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

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "credentials"))]
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

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "user"))]
    pub async fn user(&self, id: i64) -> Result<Option<User>> {
        let row: Option<(i64, String)> =
            sqlx::query_as("SELECT id, username FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(id, username)| User { id, username }))
    }

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "user_by_username"))]
    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>> {
        let row: Option<(i64, String)> =
            sqlx::query_as("SELECT id, username FROM users WHERE username = $1")
                .bind(username)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(id, username)| User { id, username }))
    }

    /// Up to `limit` users whose username sorts after `after`, by username.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "users_after"))]
    pub async fn users_after(&self, after: &str, limit: i64) -> Result<Vec<User>> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, username FROM users WHERE username > $1 ORDER BY username LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, username)| User { id, username })
            .collect())
    }

    /// The users among `ids` that exist.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "users"))]
    pub async fn users(&self, ids: &[i64]) -> Result<Vec<User>> {
        let mut users = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT id, username FROM users WHERE id IN ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query_as::<_, User>(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(*id);
            }
            users.extend(query.fetch_all(&self.pool).await?);
        }
        Ok(users)
    }

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "password_hash"))]
    pub async fn password_hash(&self, user_id: i64) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "set_password_hash"))]
    pub async fn set_password_hash(&self, user_id: i64, hash: &str) -> Result<()> {
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(hash)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
