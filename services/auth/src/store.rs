//! The auth database: SQL only, written once for PostgreSQL and SQLite.

use crate::events;
use crate::throttle::{self, Limit};
use astral_common::db::{Pool, is_unique_violation};
use astral_common::outbox::Outbox;
use astral_common::{Error, Result, ids};

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

/// The database, and the relay that publishes the events its transactions write to the
/// outbox (each change and its events commit together; `astral_common::outbox`).
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    outbox: Outbox,
}

impl Store {
    pub fn new(pool: Pool, outbox: Outbox) -> Self {
        Self { pool, outbox }
    }

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

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "insert_session"))]
    pub async fn insert_session(&self, session: &NewSession<'_>) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        insert_session(&mut tx, session).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Exchanges a refresh token: a live session's current token is swapped for `new_hash`
    /// (and remembered as spent); a spent one revokes its session.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "rotate_refresh"))]
    pub async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        now_ms: i64,
        fresh: Fresh,
    ) -> Result<Refreshed> {
        let mut tx = self.pool.begin().await?;
        let rotated: Option<(i64, i64)> = sqlx::query_as(
            "UPDATE sessions SET refresh_hash = $1, last_used_at_ms = $2 \
             WHERE refresh_hash = $3 AND revoked_at_ms IS NULL \
             AND last_used_at_ms > $4 AND created_at_ms > $5 RETURNING id, user_id",
        )
        .bind(new_hash)
        .bind(now_ms)
        .bind(old_hash)
        .bind(fresh.used_after_ms)
        .bind(fresh.created_after_ms)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((session_id, user_id)) = rotated {
            sqlx::query("INSERT INTO spent_refresh_tokens (hash, session_id, spent_at_ms) VALUES ($1, $2, $3)")
                .bind(old_hash)
                .bind(session_id)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
            let (id, username): (i64, String) =
                sqlx::query_as("SELECT id, username FROM users WHERE id = $1")
                    .bind(user_id)
                    .fetch_one(&mut *tx)
                    .await?;
            tx.commit().await?;
            return Ok(Refreshed::Rotated {
                session_id,
                user: User { id, username },
            });
        }
        let spent: Option<(i64,)> =
            sqlx::query_as("SELECT session_id FROM spent_refresh_tokens WHERE hash = $1")
                .bind(old_hash)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((session_id,)) = spent else {
            return Ok(Refreshed::Unknown);
        };
        let revoked: Option<(i64,)> = sqlx::query_as(
            "UPDATE sessions SET revoked_at_ms = $1 WHERE id = $2 AND revoked_at_ms IS NULL RETURNING user_id",
        )
        .bind(now_ms)
        .bind(session_id)
        .fetch_optional(&mut *tx)
        .await?;
        let ended = revoked
            .iter()
            .map(|(user_id,)| events::session_ended(*user_id, session_id, now_ms))
            .collect();
        self.outbox.commit(tx, ended).await?;
        Ok(Refreshed::Reused {
            session_id,
            newly_revoked_user: revoked.map(|(user_id,)| user_id),
        })
    }

    /// Ends a live session of `user_id` (with its `session.ended`); false if there was none.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "revoke_session"))]
    pub async fn revoke_session(&self, user_id: i64, session_id: i64, now_ms: i64) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let result = sqlx::query(
            "UPDATE sessions SET revoked_at_ms = $1 WHERE id = $2 AND user_id = $3 AND revoked_at_ms IS NULL",
        )
        .bind(now_ms)
        .bind(session_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        if result.rows_affected() != 1 {
            return Ok(false);
        }
        let ended = events::session_ended(user_id, session_id, now_ms);
        self.outbox.commit(tx, vec![ended]).await?;
        Ok(true)
    }

    /// Ends every live session of `user_id` but `keep` (if any), each with its
    /// `session.ended`; returns the ended ids.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "revoke_sessions"))]
    pub async fn revoke_sessions(
        &self,
        user_id: i64,
        keep: Option<i64>,
        now_ms: i64,
    ) -> Result<Vec<i64>> {
        let mut tx = self.pool.begin().await?;
        let ended: Vec<(i64,)> = sqlx::query_as(
            "UPDATE sessions SET revoked_at_ms = $1 WHERE user_id = $2 AND revoked_at_ms IS NULL AND id <> $3 RETURNING id",
        )
        .bind(now_ms)
        .bind(user_id)
        .bind(keep.unwrap_or(-1))
        .fetch_all(&mut *tx)
        .await?;
        let ended: Vec<i64> = ended.into_iter().map(|(id,)| id).collect();
        let events = ended
            .iter()
            .map(|session_id| events::session_ended(user_id, *session_id, now_ms))
            .collect();
        self.outbox.commit(tx, events).await?;
        Ok(ended)
    }

    /// Whether `session_id` is a live session of `user_id`.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "session_is_live"))]
    pub async fn session_is_live(&self, user_id: i64, session_id: i64) -> Result<bool> {
        let found: Option<(i64,)> = sqlx::query_as(
            "SELECT id FROM sessions WHERE id = $1 AND user_id = $2 AND revoked_at_ms IS NULL",
        )
        .bind(session_id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    /// A user's live sessions (not ended, still fresh), most recently used first.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "live_sessions"))]
    pub async fn live_sessions(&self, user_id: i64, fresh: Fresh) -> Result<Vec<SessionInfo>> {
        let rows: Vec<(i64, String, i64, i64)> = sqlx::query_as(
            "SELECT id, user_agent, created_at_ms, last_used_at_ms FROM sessions \
             WHERE user_id = $1 AND revoked_at_ms IS NULL AND last_used_at_ms > $2 \
             AND created_at_ms > $3 ORDER BY last_used_at_ms DESC, id DESC",
        )
        .bind(user_id)
        .bind(fresh.used_after_ms)
        .bind(fresh.created_after_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, user_agent, created_at_ms, last_used_at_ms)| SessionInfo {
                    id,
                    user_agent,
                    created_at_ms,
                    last_used_at_ms,
                },
            )
            .collect())
    }

    /// Sessions revoked after `since_ms`: `(session_id, user_id, revoked_at_ms)`.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "revoked_since"))]
    pub async fn revoked_since(&self, since_ms: i64) -> Result<Vec<(i64, i64, i64)>> {
        Ok(sqlx::query_as(
            "SELECT id, user_id, revoked_at_ms FROM sessions WHERE revoked_at_ms > $1",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?)
    }

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "password_hash"))]
    pub async fn password_hash(&self, user_id: i64) -> Result<Option<String>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT password_hash FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(hash,)| hash))
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

    /// Reserves one attempt under each key, before the work it guards, or says how many
    /// milliseconds to wait. Each key's row is locked first (in key order, so that two
    /// reservations never wait on each other): parallel attempts are counted like sequential
    /// ones, on every replica. A key that spends its budget is blocked, longer each time.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "reserve_attempt"))]
    pub async fn reserve_attempt(
        &self,
        keys: &[(String, Limit)],
        now_ms: i64,
    ) -> Result<Reservation> {
        let mut keys = keys.to_vec();
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        let mut tx = self.pool.begin().await?;
        for (key, limit) in &keys {
            // The key's clock never goes back: an attempt that waited for the lock behind a
            // later one is judged at that later time.
            let (lockouts, blocked_until_ms, now_ms): (i64, i64, i64) = sqlx::query_as(
                "INSERT INTO throttle_keys (key, lockouts, blocked_until_ms, touched_at_ms) \
                 VALUES ($1, 0, 0, $2) ON CONFLICT (key) DO UPDATE SET touched_at_ms = \
                 CASE WHEN throttle_keys.touched_at_ms > $2 THEN throttle_keys.touched_at_ms ELSE $2 END \
                 RETURNING lockouts, blocked_until_ms, touched_at_ms",
            )
            .bind(key)
            .bind(now_ms)
            .fetch_one(&mut *tx)
            .await?;
            if blocked_until_ms > now_ms {
                tx.commit().await?;
                return Ok(Reservation::Refused {
                    wait_ms: blocked_until_ms - now_ms,
                });
            }
            let (count, oldest_ms): (i64, Option<i64>) = sqlx::query_as(
                "SELECT COUNT(*), MIN(at_ms) FROM throttle_attempts WHERE key = $1 AND at_ms > $2",
            )
            .bind(key)
            .bind(now_ms - limit.window_ms)
            .fetch_one(&mut *tx)
            .await?;
            if count < limit.attempts {
                continue;
            }
            let wait_ms = if limit.longest_block_ms <= limit.window_ms {
                oldest_ms.unwrap_or(now_ms) + limit.window_ms - now_ms
            } else {
                let forgotten = blocked_until_ms + throttle::FORGET_LOCKOUTS_AFTER_MS < now_ms;
                let lockouts = if forgotten { 1 } else { lockouts + 1 };
                let wait_ms = throttle::block_ms(*limit, lockouts);
                sqlx::query(
                    "UPDATE throttle_keys SET lockouts = $2, blocked_until_ms = $3 WHERE key = $1",
                )
                .bind(key)
                .bind(lockouts)
                .bind(now_ms + wait_ms)
                .execute(&mut *tx)
                .await?;
                wait_ms
            };
            tx.commit().await?;
            return Ok(Reservation::Refused { wait_ms });
        }
        let mut attempts = Vec::with_capacity(keys.len());
        for (key, _) in &keys {
            let id = ids::new_id();
            sqlx::query("INSERT INTO throttle_attempts (id, key, at_ms) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(key)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
            attempts.push(id);
        }
        tx.commit().await?;
        Ok(Reservation::Granted(attempts))
    }

    /// Gives back reserved attempts (the login succeeded; the registration did not happen).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "release_attempts"))]
    pub async fn release_attempts(&self, attempts: &[i64]) -> Result<()> {
        for id in attempts {
            sqlx::query("DELETE FROM throttle_attempts WHERE id = $1")
                .bind(id)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Restarts `key`'s back-off (its owner just proved who they are). The attempts in its
    /// window still count, and a block under way stays: forgetting them would let the guesses
    /// that raced a right password through.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "reset_backoff"))]
    pub async fn reset_backoff(&self, key: &str) -> Result<()> {
        sqlx::query("UPDATE throttle_keys SET lockouts = 0 WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes what no rule needs any more: attempts and keys long out of their windows,
    /// sessions expired, or revoked before `revoked_before_ms` (with their spent tokens),
    /// spent tokens older than `spent_before_ms`. Returns how many rows went.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "prune"))]
    pub async fn prune(&self, cutoffs: &Pruning) -> Result<u64> {
        let mut deleted = 0;
        let statements: [(&str, &[i64]); 4] = [
            (
                "DELETE FROM throttle_attempts WHERE at_ms < $1",
                &[cutoffs.attempts_before_ms],
            ),
            (
                "DELETE FROM throttle_keys WHERE touched_at_ms < $1 AND blocked_until_ms < $1",
                &[cutoffs.attempts_before_ms],
            ),
            (
                "DELETE FROM spent_refresh_tokens WHERE spent_at_ms < $1 OR session_id IN \
                 (SELECT id FROM sessions WHERE revoked_at_ms < $2 OR last_used_at_ms < $3 \
                 OR created_at_ms < $4)",
                &[
                    cutoffs.spent_before_ms,
                    cutoffs.revoked_before_ms,
                    cutoffs.sessions.used_after_ms,
                    cutoffs.sessions.created_after_ms,
                ],
            ),
            (
                "DELETE FROM sessions WHERE revoked_at_ms < $1 OR last_used_at_ms < $2 \
                 OR created_at_ms < $3",
                &[
                    cutoffs.revoked_before_ms,
                    cutoffs.sessions.used_after_ms,
                    cutoffs.sessions.created_after_ms,
                ],
            ),
        ];
        for (sql, binds) in statements {
            let mut query = sqlx::query(sql);
            for bind in binds {
                query = query.bind(*bind);
            }
            deleted += query.execute(&self.pool).await?.rows_affected();
        }
        Ok(deleted)
    }

    /// Stored signing keys `(kid, seed, created_at_ms)`, newest first.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "signing_keys"))]
    pub async fn signing_keys(&self) -> Result<Vec<(String, String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT kid, seed, created_at_ms FROM signing_keys ORDER BY created_at_ms DESC, kid DESC",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Stores a signing key unless one with that id exists.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "insert_signing_key"))]
    pub async fn insert_signing_key(&self, kid: &str, seed: &str, now_ms: i64) -> Result<()> {
        sqlx::query("INSERT INTO signing_keys (kid, seed, created_at_ms) VALUES ($1, $2, $3) ON CONFLICT (kid) DO NOTHING")
            .bind(kid)
            .bind(seed)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Replaces the stored seed of key `kid` if it still is `current`; false if it was not
    /// (another replica replaced it first).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "replace_signing_seed"))]
    pub async fn replace_signing_seed(&self, kid: &str, current: &str, new: &str) -> Result<bool> {
        let result = sqlx::query("UPDATE signing_keys SET seed = $1 WHERE kid = $2 AND seed = $3")
            .bind(new)
            .bind(kid)
            .bind(current)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() == 1)
    }
}

/// What exchanging a refresh token did.
#[derive(Debug, PartialEq, Eq)]
pub enum Refreshed {
    /// A live session's current token: here is its new one.
    Rotated { session_id: i64, user: User },
    /// An already-spent token: its session is revoked (`newly_revoked_user` is its user if
    /// this call revoked it).
    Reused {
        session_id: i64,
        newly_revoked_user: Option<i64>,
    },
    /// Not a token of ours.
    Unknown,
}

/// A live session as its owner sees it in their account page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub id: i64,
    pub user_agent: String,
    pub created_at_ms: i64,
    pub last_used_at_ms: i64,
}

/// The outcome of [`Store::reserve_attempt`].
#[derive(Debug, PartialEq, Eq)]
pub enum Reservation {
    /// The attempts reserved, one per key, to release if the attempt did not count.
    Granted(Vec<i64>),
    Refused {
        wait_ms: i64,
    },
}

/// Which sessions may still be refreshed: used after one moment and created after another.
#[derive(Debug, Clone, Copy)]
pub struct Fresh {
    pub used_after_ms: i64,
    pub created_after_ms: i64,
}

/// What [`Store::prune`] deletes.
#[derive(Debug, Clone, Copy)]
pub struct Pruning {
    pub attempts_before_ms: i64,
    /// Sessions no longer this fresh are deleted.
    pub sessions: Fresh,
    pub revoked_before_ms: i64,
    pub spent_before_ms: i64,
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
