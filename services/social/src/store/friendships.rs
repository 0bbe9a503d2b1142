//! Friendships and blocks: ending a friendship, blocking and unblocking, and who is whose
//! friend.

use super::requests::pending_between;
use super::{Blocked, Store, Tx, lock_pair, pair};
use crate::model::{FriendRequest, User};
use astral_common::Result;
use astral_common::outbox::Outgoing;

impl Store {
    /// Ends a friendship, with its `events`; false if there was none.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "remove_friendship"))]
    pub async fn remove_friendship(&self, a: i64, b: i64, events: Vec<Outgoing>) -> Result<bool> {
        let (low, high) = pair(a, b);
        let mut tx = self.pool.begin().await?;
        lock_pair(&mut tx, low, high).await?;
        let removed = unfriend(&mut tx, low, high).await?;
        if removed {
            self.outbox.commit(tx, events).await?;
        }
        Ok(removed)
    }

    /// `blocker` blocks `blocked`: the friendship and pending requests between them end, with
    /// the `events` of what it undid. Blocking twice changes nothing.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "block"))]
    pub async fn block(
        &self,
        blocker: i64,
        blocked: i64,
        now_ms: i64,
        events: impl FnOnce(&Blocked) -> Vec<Outgoing>,
    ) -> Result<Blocked> {
        let (low, high) = pair(blocker, blocked);
        let mut tx = self.pool.begin().await?;
        lock_pair(&mut tx, low, high).await?;
        sqlx::query(
            "INSERT INTO blocks (blocker_id, blocked_id, created_at_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (blocker_id, blocked_id) DO NOTHING",
        )
        .bind(blocker)
        .bind(blocked)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        let unfriended = unfriend(&mut tx, low, high).await?;
        let requests: Vec<FriendRequest> = pending_between(&mut tx, low, high)
            .await?
            .into_iter()
            .collect();
        sqlx::query("DELETE FROM friend_requests WHERE low_id = $1 AND high_id = $2")
            .bind(low)
            .bind(high)
            .execute(&mut *tx)
            .await?;
        let undone = Blocked {
            unfriended,
            requests,
        };
        self.outbox.commit(tx, events(&undone)).await?;
        Ok(undone)
    }

    /// Lifts a block; false if there was none.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "unblock"))]
    pub async fn unblock(&self, blocker: i64, blocked: i64) -> Result<bool> {
        let (low, high) = pair(blocker, blocked);
        let mut tx = self.pool.begin().await?;
        lock_pair(&mut tx, low, high).await?;
        let deleted = sqlx::query("DELETE FROM blocks WHERE blocker_id = $1 AND blocked_id = $2")
            .bind(blocker)
            .bind(blocked)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(deleted.rows_affected() == 1)
    }

    /// The users `blocker` has blocked, by username.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "blocked_users"))]
    pub async fn blocked_users(&self, blocker: i64) -> Result<Vec<User>> {
        let rows = sqlx::query_as(
            "SELECT u.id, u.username FROM blocks b JOIN users u ON u.id = b.blocked_id \
             WHERE b.blocker_id = $1 ORDER BY u.username",
        )
        .bind(blocker)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// For each pair, whether its two users are friends, in one statement.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "friendships_among"))]
    pub async fn friendships_among(&self, pairs: &[(i64, i64)]) -> Result<Vec<bool>> {
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (0..pairs.len())
            .map(|n| format!("(${}, ${})", 2 * n + 1, 2 * n + 2))
            .collect();
        let sql = format!(
            "SELECT low_id, high_id FROM friendships WHERE (low_id, high_id) IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query_as::<_, (i64, i64)>(sqlx::AssertSqlSafe(sql));
        for &(a, b) in pairs {
            let (low, high) = pair(a, b);
            query = query.bind(low).bind(high);
        }
        let found: std::collections::HashSet<(i64, i64)> =
            query.fetch_all(&self.pool).await?.into_iter().collect();
        Ok(pairs
            .iter()
            .map(|&(a, b)| found.contains(&pair(a, b)))
            .collect())
    }

    /// Up to `limit` of `user`'s friends whose username sorts after `after`, by username.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "friends"))]
    pub async fn friends(&self, user: i64, after: &str, limit: i64) -> Result<Vec<User>> {
        let rows = sqlx::query_as(
            "SELECT u.id, u.username FROM friendships f \
             JOIN users u ON u.id = CASE WHEN f.low_id = $1 THEN f.high_id ELSE f.low_id END \
             WHERE (f.low_id = $1 OR f.high_id = $1) AND u.username > $2 ORDER BY u.username LIMIT $3",
        )
        .bind(user)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }
}

async fn unfriend(tx: &mut Tx, low: i64, high: i64) -> Result<bool> {
    let deleted = sqlx::query("DELETE FROM friendships WHERE low_id = $1 AND high_id = $2")
        .bind(low)
        .bind(high)
        .execute(&mut **tx)
        .await?;
    Ok(deleted.rows_affected() == 1)
}
