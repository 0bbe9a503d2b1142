//! Presence and social settings. Each gateway holds a lease on its users' connections
//! (`presence_leases`); a user's status is computed from their leases in the transaction that
//! changes them, and their friends are told only when it differs from what they were last
//! told (`presence`): a transition, never a heartbeat.

use super::{Store, Tx};
use crate::model::{Presence, Settings, Shown, Status};
use astral_common::Result;
use astral_common::outbox::Outgoing;
use std::collections::BTreeMap;

/// How long a gateway's report holds without renewal: a gateway that dies without a word
/// loses its users this long after its last renewal, at most.
pub const LEASE_MS: i64 = 45_000;
/// `last_seen_at` is kept to the minute, and written at most once a minute.
const MINUTE_MS: i64 = 60_000;

/// The SQL for "does user `$N` share their presence", as 0 or 1.
fn shares_presence(user: &str) -> String {
    format!("COALESCE((SELECT s.share_presence FROM user_settings s WHERE s.user_id = {user}), 1)")
}

impl Store {
    /// Applies a gateway's changes (a user's status on it; offline: their last connection
    /// there closed) and leases them for [`LEASE_MS`], with the `events` of the users whose
    /// presence changed.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "report_presence"))]
    pub async fn report_presence(
        &self,
        gateway: &str,
        changes: &[(i64, Status)],
        now_ms: i64,
        events: impl Fn(&Shown) -> Outgoing,
    ) -> Result<()> {
        // One change per user (the last), taken in user order: two transactions settling the
        // same users lock them in the same order.
        let changes: BTreeMap<i64, Status> = changes.iter().copied().collect();
        let mut tx = self.pool.begin().await?;
        for (&user, &status) in &changes {
            lease(&mut tx, gateway, user, status, now_ms + LEASE_MS).await?;
        }
        let users: Vec<(i64, i64)> = changes.keys().map(|&user| (user, now_ms)).collect();
        let shown = settle_all(&mut tx, &users, now_ms).await?;
        self.outbox
            .commit(tx, shown.iter().map(events).collect())
            .await
    }

    /// Extends a gateway's lease on all its users; how many it holds. Those online have
    /// their `last_seen_at` brought to this minute if it is older.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "renew_presence"))]
    pub async fn renew_presence(&self, gateway: &str, now_ms: i64) -> Result<i64> {
        let mut tx = self.pool.begin().await?;
        let held = sqlx::query("UPDATE presence_leases SET until_ms = $1 WHERE gateway_id = $2")
            .bind(now_ms + LEASE_MS)
            .bind(gateway)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query(
            "UPDATE presence SET last_seen_at_ms = $1 WHERE status <> 'offline' \
             AND last_seen_at_ms < $1 \
             AND user_id IN (SELECT user_id FROM presence_leases WHERE gateway_id = $2)",
        )
        .bind(to_minute(now_ms))
        .bind(gateway)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(i64::try_from(held).unwrap_or(i64::MAX))
    }

    /// A gateway is stopping: all its users' connections there are gone.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "close_gateway"))]
    pub async fn close_gateway(
        &self,
        gateway: &str,
        now_ms: i64,
        events: impl Fn(&Shown) -> Outgoing,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let mut users: Vec<(i64, i64)> = sqlx::query_scalar::<_, i64>(
            "DELETE FROM presence_leases WHERE gateway_id = $1 RETURNING user_id",
        )
        .bind(gateway)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|user| (user, now_ms))
        .collect();
        users.sort_unstable();
        let shown = settle_all(&mut tx, &users, now_ms).await?;
        self.outbox
            .commit(tx, shown.iter().map(events).collect())
            .await
    }

    /// Removes up to `limit` leases that ran out (their gateway stopped renewing them), with
    /// the `events` of the users now gone; how many it removed.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "expire_presence"))]
    pub async fn expire_presence(
        &self,
        now_ms: i64,
        limit: i64,
        events: impl Fn(&Shown) -> Outgoing,
    ) -> Result<usize> {
        let mut tx = self.pool.begin().await?;
        let expired: Vec<(i64, i64)> = sqlx::query_as(
            "DELETE FROM presence_leases WHERE (user_id, gateway_id) IN \
             (SELECT user_id, gateway_id FROM presence_leases WHERE until_ms < $1 \
              ORDER BY until_ms LIMIT $2) \
             RETURNING user_id, until_ms",
        )
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        if expired.is_empty() {
            return Ok(0);
        }
        // Last seen when their gateway last renewed the lease, not now.
        let mut last_renewed: BTreeMap<i64, i64> = BTreeMap::new();
        for &(user, until_ms) in &expired {
            let renewed = last_renewed.entry(user).or_insert(i64::MIN);
            *renewed = (*renewed).max(until_ms - LEASE_MS);
        }
        let users: Vec<(i64, i64)> = last_renewed.into_iter().collect();
        let shown = settle_all(&mut tx, &users, now_ms).await?;
        self.outbox
            .commit(tx, shown.iter().map(events).collect())
            .await?;
        Ok(expired.len())
    }

    /// Whether each user has a live lease on some gateway (an identified connection), in
    /// their order, whatever they share.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "connected"))]
    pub async fn connected(&self, users: &[i64], now_ms: i64) -> Result<Vec<bool>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT DISTINCT user_id FROM presence_leases WHERE until_ms >= $1 AND user_id IN ({})",
            placeholders(2, users.len())
        );
        let mut query = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql)).bind(now_ms);
        for &user in users {
            query = query.bind(user);
        }
        let found: std::collections::HashSet<i64> =
            query.fetch_all(&self.pool).await?.into_iter().collect();
        Ok(users.iter().map(|user| found.contains(user)).collect())
    }

    /// What friends see of each user's presence, in their order.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "presence_of"))]
    pub async fn presence_of(&self, users: &[i64]) -> Result<Vec<Presence>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT p.user_id, p.status, p.last_seen_at_ms, {} AS shares FROM presence p \
             WHERE p.user_id IN ({})",
            shares_presence("p.user_id"),
            placeholders(1, users.len())
        );
        let mut query =
            sqlx::query_as::<_, (i64, String, Option<i64>, i64)>(sqlx::AssertSqlSafe(sql));
        for &user in users {
            query = query.bind(user);
        }
        let known: std::collections::HashMap<i64, Presence> = query
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|(user, status, last_seen_at_ms, shares)| {
                let presence = Presence {
                    status: Status::parse(&status).unwrap_or(Status::Offline),
                    last_seen_at_ms,
                };
                (
                    user,
                    if shares != 0 {
                        presence
                    } else {
                        Presence::HIDDEN
                    },
                )
            })
            .collect();
        Ok(users
            .iter()
            .map(|user| known.get(user).copied().unwrap_or(Presence::HIDDEN))
            .collect())
    }

    /// `user`'s settings.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "settings_of"))]
    pub async fn settings_of(&self, user: i64) -> Result<Settings> {
        let mut conn = self.pool.acquire().await?;
        Ok(Settings {
            share_presence: shares(&mut conn, user).await?,
        })
    }

    /// Sets whether `user` shares their presence, with the `events` of the change: the new
    /// settings, and (if it changed) the presence their friends now see.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "set_share_presence"))]
    pub async fn set_share_presence(
        &self,
        user: i64,
        share: bool,
        events: impl FnOnce(&Settings, Option<&Shown>) -> Vec<Outgoing>,
    ) -> Result<Settings> {
        let mut tx = self.pool.begin().await?;
        lock_presence(&mut tx, user).await?;
        let shared = shares(&mut tx, user).await?;
        sqlx::query(
            "INSERT INTO user_settings (user_id, share_presence) VALUES ($1, $2) \
             ON CONFLICT (user_id) DO UPDATE SET share_presence = excluded.share_presence",
        )
        .bind(user)
        .bind(i64::from(share))
        .execute(&mut *tx)
        .await?;
        let settings = Settings {
            share_presence: share,
        };
        let shown = if shared == share {
            None
        } else {
            let presence = if share {
                current(&mut tx, user).await?
            } else {
                Presence::HIDDEN
            };
            Some(Shown {
                user,
                presence,
                friends: friends_of(&mut tx, user).await?,
            })
        };
        let events = events(&settings, shown.as_ref());
        self.outbox.commit(tx, events).await?;
        Ok(settings)
    }
}

/// Holds (or drops, for offline) `user`'s lease on `gateway`.
async fn lease(tx: &mut Tx, gateway: &str, user: i64, status: Status, until_ms: i64) -> Result<()> {
    if status == Status::Offline {
        sqlx::query("DELETE FROM presence_leases WHERE user_id = $1 AND gateway_id = $2")
            .bind(user)
            .bind(gateway)
            .execute(&mut **tx)
            .await?;
    } else {
        sqlx::query(
            "INSERT INTO presence_leases (user_id, gateway_id, idle, until_ms) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, gateway_id) \
             DO UPDATE SET idle = excluded.idle, until_ms = excluded.until_ms",
        )
        .bind(user)
        .bind(gateway)
        .bind(i64::from(status == Status::Idle))
        .bind(until_ms)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// [`settle`] for each `(user, last seen)`, in order; the changes friends are to see.
async fn settle_all(tx: &mut Tx, users: &[(i64, i64)], now_ms: i64) -> Result<Vec<Shown>> {
    let mut shown = Vec::new();
    for &(user, seen_at_ms) in users {
        if let Some(change) = settle(tx, user, now_ms, seen_at_ms).await? {
            shown.push(change);
        }
    }
    Ok(shown)
}

/// Computes `user`'s status from their leases and records it; what their friends are to be
/// told if it changed and they share it. `seen_at_ms` is when they were last online if they
/// are now offline.
async fn settle(tx: &mut Tx, user: i64, now_ms: i64, seen_at_ms: i64) -> Result<Option<Shown>> {
    let before = lock_presence(tx, user).await?;
    let (leases, min_idle): (i64, Option<i64>) =
        sqlx::query_as("SELECT COUNT(*), MIN(idle) FROM presence_leases WHERE user_id = $1")
            .bind(user)
            .fetch_one(&mut **tx)
            .await?;
    let status = match (leases, min_idle) {
        (0, _) => Status::Offline,
        (_, Some(0)) => Status::Online,
        _ => Status::Idle,
    };
    if status == before.status {
        return Ok(None);
    }
    let seen = if status == Status::Offline {
        seen_at_ms
    } else {
        now_ms
    };
    let presence = Presence {
        status,
        last_seen_at_ms: Some(to_minute(seen)),
    };
    sqlx::query("UPDATE presence SET status = $1, last_seen_at_ms = $2 WHERE user_id = $3")
        .bind(status.as_str())
        .bind(presence.last_seen_at_ms)
        .bind(user)
        .execute(&mut **tx)
        .await?;
    if !shares(tx, user).await? {
        return Ok(None);
    }
    Ok(Some(Shown {
        user,
        presence,
        friends: friends_of(tx, user).await?,
    }))
}

/// Whether `user` shares their presence.
async fn shares(conn: &mut sqlx::AnyConnection, user: i64) -> Result<bool> {
    let sql = format!("SELECT {} AS shares", shares_presence("$1"));
    let shares: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(user)
        .fetch_one(conn)
        .await?;
    Ok(shares != 0)
}

/// Takes `user`'s presence row (made offline if new) for this transaction; what it held.
async fn lock_presence(tx: &mut Tx, user: i64) -> Result<Presence> {
    sqlx::query(
        "INSERT INTO presence (user_id, status, last_seen_at_ms) VALUES ($1, 'offline', NULL) \
         ON CONFLICT (user_id) DO UPDATE SET status = presence.status",
    )
    .bind(user)
    .execute(&mut **tx)
    .await?;
    current(tx, user).await
}

/// `user`'s recorded presence.
async fn current(tx: &mut Tx, user: i64) -> Result<Presence> {
    let (status, last_seen_at_ms): (String, Option<i64>) =
        sqlx::query_as("SELECT status, last_seen_at_ms FROM presence WHERE user_id = $1")
            .bind(user)
            .fetch_optional(&mut **tx)
            .await?
            .unwrap_or_else(|| ("offline".to_owned(), None));
    Ok(Presence {
        status: Status::parse(&status).unwrap_or(Status::Offline),
        last_seen_at_ms,
    })
}

/// The ids of `user`'s friends.
async fn friends_of(tx: &mut Tx, user: i64) -> Result<Vec<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT CASE WHEN low_id = $1 THEN high_id ELSE low_id END FROM friendships \
         WHERE low_id = $1 OR high_id = $1",
    )
    .bind(user)
    .fetch_all(&mut **tx)
    .await?)
}

/// `$first, $first+1, …`: `count` placeholders.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn to_minute(ms: i64) -> i64 {
    ms - ms.rem_euclid(MINUTE_MS)
}
