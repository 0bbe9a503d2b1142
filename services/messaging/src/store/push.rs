//! Web Push: browsers' subscriptions, and the queue of messages to push to them — written in
//! the send's transaction (`queue_pushes`), taken by the sender (`push/sender.rs`), which
//! leases what it takes so that a sender that dies leaves it to another.

use super::{Store, Tx};
use astral_common::Result;

/// The most subscriptions (browsers) one user keeps; a new one past it replaces the oldest.
pub const MAX_SUBSCRIPTIONS_PER_USER: i64 = 10;

/// A browser's subscription with its push service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub endpoint: String,
    pub user_id: i64,
    /// The session that subscribed: its end ends the subscription.
    pub session_id: i64,
    /// The browser's P-256 public key and auth secret, base64url.
    pub p256dh: String,
    pub auth: String,
}

/// A push taken from the queue: one message for one subscription, with what its
/// notification says. `message` is `None` when the message is gone or deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuePush {
    pub subscription: Subscription,
    pub message_id: i64,
    /// How many times it has been taken, this time included.
    pub attempts: i64,
    pub message: Option<PushedMessage>,
}

/// What a notification says of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedMessage {
    pub chat_id: String,
    /// The group's name; `None` for a direct chat.
    pub group: Option<String>,
    pub author_id: i64,
    pub author: String,
    /// The beginning of the content.
    pub content: String,
    pub attachment_count: i64,
}

#[derive(sqlx::FromRow)]
struct DueRow {
    endpoint: String,
    message_id: i64,
    user_id: i64,
    session_id: i64,
    attempts: i64,
    p256dh: String,
    auth: String,
    chat_id: Option<String>,
    kind: Option<String>,
    name: Option<String>,
    author_id: Option<i64>,
    author: Option<String>,
    content: Option<String>,
    deleted_at_ms: Option<i64>,
    attachment_count: i64,
}

impl From<DueRow> for DuePush {
    fn from(row: DueRow) -> Self {
        let message = match (row.chat_id, row.kind, row.author_id, row.author) {
            (Some(chat_id), Some(kind), Some(author_id), Some(author))
                if row.deleted_at_ms.is_none() =>
            {
                Some(PushedMessage {
                    chat_id,
                    group: (kind == "group").then(|| row.name.unwrap_or_default()),
                    author_id,
                    author,
                    content: row.content.unwrap_or_default(),
                    attachment_count: row.attachment_count,
                })
            }
            _ => None,
        };
        Self {
            subscription: Subscription {
                endpoint: row.endpoint,
                user_id: row.user_id,
                session_id: row.session_id,
                p256dh: row.p256dh,
                auth: row.auth,
            },
            message_id: row.message_id,
            attempts: row.attempts,
            message,
        }
    }
}

impl Store {
    /// Keeps a subscription for its user (moved from whoever had the endpoint before, with
    /// nothing of theirs left queued for it), dropping their oldest past the most kept.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "subscribe_push"))]
    pub async fn subscribe_push(&self, subscription: &Subscription, now_ms: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO push_subscriptions (endpoint, user_id, session_id, p256dh, auth, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (endpoint) DO UPDATE SET \
             user_id = excluded.user_id, session_id = excluded.session_id, \
             p256dh = excluded.p256dh, auth = excluded.auth, created_at_ms = excluded.created_at_ms",
        )
        .bind(&subscription.endpoint)
        .bind(subscription.user_id)
        .bind(subscription.session_id)
        .bind(&subscription.p256dh)
        .bind(&subscription.auth)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM push_queue WHERE endpoint = $1 AND user_id <> $2")
            .bind(&subscription.endpoint)
            .bind(subscription.user_id)
            .execute(&mut *tx)
            .await?;
        let oldest: Vec<String> = sqlx::query_scalar(
            "SELECT endpoint FROM push_subscriptions WHERE user_id = $1 \
             ORDER BY created_at_ms DESC, endpoint LIMIT 1000 OFFSET $2",
        )
        .bind(subscription.user_id)
        .bind(MAX_SUBSCRIPTIONS_PER_USER)
        .fetch_all(&mut *tx)
        .await?;
        for endpoint in oldest {
            forget_in(&mut tx, &endpoint).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes `user`'s subscription at `endpoint` (nothing if it is not theirs).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "unsubscribe_push"))]
    pub async fn unsubscribe_push(&self, user: i64, endpoint: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let removed =
            sqlx::query("DELETE FROM push_subscriptions WHERE endpoint = $1 AND user_id = $2")
                .bind(endpoint)
                .bind(user)
                .execute(&mut *tx)
                .await?;
        if removed.rows_affected() > 0 {
            forget_in(&mut tx, endpoint).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes a subscription its push service no longer knows (404, 410), whoever's it is.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "forget_push"))]
    pub async fn forget_push_subscription(&self, endpoint: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        forget_in(&mut tx, endpoint).await?;
        tx.commit().await?;
        Ok(())
    }

    /// `user`'s subscriptions' endpoints.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "push_endpoints"))]
    pub async fn push_endpoints(&self, user: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT endpoint FROM push_subscriptions WHERE user_id = $1 ORDER BY endpoint",
        )
        .bind(user)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Takes up to `limit` due pushes, leased until `lease_until_ms` (taken again then, by
    /// any sender, unless finished or put off meanwhile).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "take_pushes"))]
    pub async fn take_pushes(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: i64,
    ) -> Result<Vec<DuePush>> {
        let mut tx = self.pool.begin().await?;
        // `due_at_ms <= $2` again outside: a row another sender took meanwhile is re-checked
        // against its new lease (PostgreSQL) and left to that sender.
        let taken: Vec<(String, i64)> = sqlx::query_as(
            "UPDATE push_queue SET due_at_ms = $1, attempts = attempts + 1 \
             WHERE due_at_ms <= $2 AND (endpoint, message_id) IN \
             (SELECT endpoint, message_id FROM push_queue WHERE due_at_ms <= $2 \
              ORDER BY due_at_ms LIMIT $3) \
             RETURNING endpoint, message_id",
        )
        .bind(lease_until_ms)
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        if taken.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let pairs: Vec<String> = (0..taken.len())
            .map(|n| format!("(${}, ${})", 2 * n + 1, 2 * n + 2))
            .collect();
        let sql = format!(
            "SELECT q.endpoint, q.message_id, q.user_id, s.session_id, q.attempts, s.p256dh, s.auth, \
             m.chat_id, c.kind, c.name, m.author_id, u.username AS author, \
             SUBSTR(m.content, 1, 200) AS content, m.deleted_at_ms, \
             (SELECT COUNT(*) FROM attachments a WHERE a.message_id = q.message_id) AS attachment_count \
             FROM push_queue q JOIN push_subscriptions s ON s.endpoint = q.endpoint \
             LEFT JOIN messages m ON m.id = q.message_id LEFT JOIN chats c ON c.id = m.chat_id \
             LEFT JOIN users u ON u.id = m.author_id \
             WHERE (q.endpoint, q.message_id) IN ({})",
            pairs.join(", ")
        );
        let mut query = sqlx::query_as::<_, DueRow>(sqlx::AssertSqlSafe(sql));
        for (endpoint, message_id) in &taken {
            query = query.bind(endpoint).bind(*message_id);
        }
        let due = query.fetch_all(&mut *tx).await?;
        tx.commit().await?;
        Ok(due.into_iter().map(DuePush::from).collect())
    }

    /// A push sent, or given up: off the queue.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "finish_push"))]
    pub async fn finish_push(&self, endpoint: &str, message_id: i64) -> Result<()> {
        sqlx::query("DELETE FROM push_queue WHERE endpoint = $1 AND message_id = $2")
            .bind(endpoint)
            .bind(message_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A push to try again at `due_at_ms`.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "put_off_push"))]
    pub async fn put_off_push(
        &self,
        endpoint: &str,
        message_id: i64,
        due_at_ms: i64,
    ) -> Result<()> {
        sqlx::query("UPDATE push_queue SET due_at_ms = $1 WHERE endpoint = $2 AND message_id = $3")
            .bind(due_at_ms)
            .bind(endpoint)
            .bind(message_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// Queues a push of each new message to every subscription of its chat's members but its
/// author and those who muted it, in the send's transaction; whether it queued any.
pub(super) async fn queue_pushes(tx: &mut Tx, message_ids: &[i64], now_ms: i64) -> Result<bool> {
    if message_ids.is_empty() {
        return Ok(false);
    }
    let ids: Vec<String> = (0..message_ids.len())
        .map(|n| format!("${}", n + 2))
        .collect();
    let sql = format!(
        "INSERT INTO push_queue (endpoint, message_id, user_id, attempts, due_at_ms) \
         SELECT s.endpoint, msg.id, s.user_id, 0, $1 FROM messages msg \
         JOIN chat_members m ON m.chat_id = msg.chat_id AND m.user_id <> msg.author_id \
           AND m.muted = 0 \
         JOIN push_subscriptions s ON s.user_id = m.user_id \
         WHERE msg.id IN ({}) ON CONFLICT DO NOTHING",
        ids.join(", ")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now_ms);
    for id in message_ids {
        query = query.bind(*id);
    }
    Ok(query.execute(&mut **tx).await?.rows_affected() > 0)
}

/// Removes a subscription and what is queued for it.
async fn forget_in(tx: &mut Tx, endpoint: &str) -> Result<()> {
    sqlx::query("DELETE FROM push_queue WHERE endpoint = $1")
        .bind(endpoint)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM push_subscriptions WHERE endpoint = $1")
        .bind(endpoint)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
