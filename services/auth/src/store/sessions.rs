//! Sessions: opening, refreshing (a spent token ends its session), ending, listing, and
//! pruning what no rule needs any more.

use super::{Store, User};
use crate::events;
use astral_common::Result;

impl Store {
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
    /// Whether each of `sessions` is live under `fresh`, in their order.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "live_among"))]
    pub async fn live_among(&self, sessions: &[i64], fresh: Fresh) -> Result<Vec<bool>> {
        if sessions.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = (0..sessions.len()).map(|n| format!("${}", n + 3)).collect();
        let sql = format!(
            "SELECT id FROM sessions WHERE revoked_at_ms IS NULL AND last_used_at_ms > $1 \
             AND created_at_ms > $2 AND id IN ({})",
            ids.join(", ")
        );
        let mut query = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
            .bind(fresh.used_after_ms)
            .bind(fresh.created_after_ms);
        for session in sessions {
            query = query.bind(*session);
        }
        let live: std::collections::HashSet<i64> =
            query.fetch_all(&self.pool).await?.into_iter().collect();
        Ok(sessions
            .iter()
            .map(|session| live.contains(session))
            .collect())
    }

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

    /// Sessions revoked after `since_ms`.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "revoked_since"))]
    pub async fn revoked_since(&self, since_ms: i64) -> Result<Vec<RevokedSession>> {
        Ok(sqlx::query_as(
            "SELECT id AS session_id, user_id, revoked_at_ms FROM sessions WHERE revoked_at_ms > $1",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?)
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

/// A session that ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct RevokedSession {
    pub session_id: i64,
    pub user_id: i64,
    pub revoked_at_ms: i64,
}

/// A live session as its owner sees it in their account page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub id: i64,
    pub user_agent: String,
    pub created_at_ms: i64,
    pub last_used_at_ms: i64,
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

pub(super) async fn insert_session(
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
