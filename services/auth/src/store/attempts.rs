//! Throttled attempts (logins, registrations): reserved before the work they guard, under
//! a lock per key, so parallel attempts count like sequential ones on every replica.

use super::Store;
use crate::throttle::{self, Limit};
use astral_common::{Result, ids};

impl Store {
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
