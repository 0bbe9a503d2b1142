//! Per-user rate limits of user calls, counted by the service that owns the call: its guard
//! takes one request from the user's budget for that method before the call runs.
//!
//! The budget is a GCRA (generic cell rate algorithm): `requests` at once, then one every
//! `period / requests`; one number per user and method, the theoretical arrival time. A
//! service on SQLite is one process (the all-in-one), so it counts in memory; a service on
//! PostgreSQL may run as several replicas behind several gateways, so it counts in its
//! database, in one atomic statement: a user's calls spread over gateways and replicas share
//! one budget (docs/architecture.md, "Rate limits").

use crate::db::Pool;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// At most `requests` in any `period_ms`, all at once if need be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub requests: u32,
    pub period_ms: i64,
}

impl Rate {
    pub const fn per_minute(requests: u32) -> Self {
        Self {
            requests,
            period_ms: 60_000,
        }
    }

    pub const fn per_seconds(requests: u32, seconds: i64) -> Self {
        Self {
            requests,
            period_ms: seconds * 1000,
        }
    }

    /// The time one request's share of the budget takes to come back.
    fn interval_ms(self) -> i64 {
        (self.period_ms / i64::from(self.requests.max(1))).max(1)
    }

    /// GCRA: with the theoretical arrival time `tat_ms`, whether a request at `now_ms` fits,
    /// as the new arrival time, or else how long until it would.
    fn admit(self, tat_ms: i64, now_ms: i64) -> Result<i64, i64> {
        let next = tat_ms.max(now_ms) + self.interval_ms();
        if next - now_ms <= self.period_ms {
            Ok(next)
        } else {
            Err(next - self.period_ms - now_ms)
        }
    }
}

/// Why a request was not admitted.
#[derive(Debug)]
pub enum Limited {
    /// The user's budget for this call is spent: try again after this long.
    Wait(Duration),
    /// The budget could not be read (the database is unreachable).
    Unavailable(String),
}

/// Takes one request from a user's budget for an action.
pub trait Limiter: Send + Sync + 'static {
    fn take<'a>(
        &'a self,
        user_id: i64,
        action: &'a str,
        rate: Rate,
    ) -> BoxFuture<'a, Result<(), Limited>>;
}

/// The limiter a service on this database uses: in memory on SQLite (one process), in the
/// database on PostgreSQL (shared by replicas). The table is `rate_limits` in each service's
/// migrations.
pub async fn for_database(url: &str) -> anyhow::Result<Arc<dyn Limiter>> {
    if crate::db::is_sqlite(url) {
        Ok(Arc::new(InMemory::default()))
    } else {
        // Its own pool, whose commits do not wait for the disk: a crash may forget the last
        // moment's counts, which only gives a few users a few calls back.
        let pool = crate::db::connect_unflushed(url).await?;
        let limiter = Arc::new(InDatabase::new(pool));
        let weak = Arc::downgrade(&limiter);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PRUNE_EVERY).await;
                let Some(limiter) = weak.upgrade() else { break };
                if let Err(error) = limiter.prune(crate::time::now_ms()).await {
                    tracing::warn!(%error, "cannot prune rate limits");
                }
            }
        });
        Ok(limiter)
    }
}

const PRUNE_EVERY: Duration = Duration::from_secs(10 * 60);

/// Budgets of one process.
#[derive(Default)]
pub struct InMemory {
    arrivals: Mutex<HashMap<(i64, String), i64>>,
}

impl Limiter for InMemory {
    fn take<'a>(
        &'a self,
        user_id: i64,
        action: &'a str,
        rate: Rate,
    ) -> BoxFuture<'a, Result<(), Limited>> {
        let now = crate::time::now_ms();
        let mut arrivals = self
            .arrivals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if arrivals.len() > 100_000 {
            // A budget whose arrival time has passed is full: nothing to remember.
            arrivals.retain(|_, tat| *tat > now);
        }
        // A budget not seen before is full: its arrival time is now.
        let tat = arrivals.entry((user_id, action.to_owned())).or_insert(now);
        let admitted = match rate.admit(*tat, now) {
            Ok(next) => {
                *tat = next;
                Ok(())
            }
            Err(wait_ms) => Err(wait(wait_ms)),
        };
        Box::pin(std::future::ready(admitted))
    }
}

/// Budgets shared by every replica on one PostgreSQL database. A replica takes a slice of a
/// user's budget at once (a lease: a tenth of a budget of 50 or more, else one call) and
/// spends it locally for up to a second, so that a busy user costs one write per slice, not
/// per call; what was leased is already counted, so the replicas together never exceed the
/// budget (a lease left unspent only gives a user fewer calls, never more). A replica asks
/// for one slice of a user's budget at a time: concurrent calls wait for it and share it,
/// rather than each leasing a slice the others then leave unspent.
pub struct InDatabase {
    pool: Pool,
    keys: Mutex<HashMap<(i64, String), Arc<KeyLease>>>,
}

/// One user's budget for one call, as this replica holds it.
#[derive(Default)]
struct KeyLease {
    /// Held while asking the database for a slice.
    asking: tokio::sync::Mutex<()>,
    lease: Mutex<Lease>,
}

/// Calls of one user's budget this replica may still make without asking the database.
struct Lease {
    calls: i64,
    until: std::time::Instant,
}

impl Default for Lease {
    fn default() -> Self {
        Self {
            calls: 0,
            until: std::time::Instant::now(),
        }
    }
}

impl KeyLease {
    /// Spends one call of the lease, if one is left and still good.
    fn spend(&self) -> bool {
        let mut lease = self
            .lease
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if lease.calls > 0 && lease.until > std::time::Instant::now() {
            lease.calls -= 1;
            true
        } else {
            false
        }
    }

    /// Keeps `calls` more to spend within the lease time.
    fn keep(&self, calls: i64) {
        let mut lease = self
            .lease
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *lease = Lease {
            calls,
            until: std::time::Instant::now() + LEASE_TIME,
        };
    }
}

/// How long a leased slice may be spent.
const LEASE_TIME: Duration = Duration::from_secs(1);

/// How many calls to lease at once for a budget of this rate.
fn lease_size(rate: Rate) -> i64 {
    let requests = i64::from(rate.requests);
    if requests >= 50 { requests / 10 } else { 1 }
}

impl InDatabase {
    fn new(pool: Pool) -> Self {
        Self {
            pool,
            keys: Mutex::default(),
        }
    }

    /// This replica's lease of one user's budget for one call.
    fn key(&self, user_id: i64, action: &str) -> Arc<KeyLease> {
        let mut keys = self
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if keys.len() > 100_000 {
            let now = std::time::Instant::now();
            keys.retain(|_, key| {
                Arc::strong_count(key) > 1
                    || key
                        .lease
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .until
                        > now
            });
        }
        keys.entry((user_id, action.to_owned()))
            .or_default()
            .clone()
    }

    async fn take(&self, user_id: i64, action: &str, rate: Rate) -> sqlx::Result<Result<(), i64>> {
        let key = self.key(user_id, action);
        if key.spend() {
            return Ok(Ok(()));
        }
        let _asking = key.asking.lock().await;
        // Whoever asked before us may have brought back enough for us too.
        if key.spend() {
            return Ok(Ok(()));
        }
        let now = crate::time::now_ms();
        let interval = rate.interval_ms();
        // One statement takes up to a lease's worth of the budget, as much as is left; the
        // row's lock makes concurrent takes of one user (on any replica) take turns.
        let leased: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO rate_limits (user_id, action, tat_ms, leased) \
             VALUES ($1, $2, $3 + $4 * LEAST($5, $6 / $4), LEAST($5, $6 / $4)) \
             ON CONFLICT (user_id, action) DO UPDATE \
             SET tat_ms = GREATEST(rate_limits.tat_ms, $3) \
                 + $4 * LEAST($5, ($3 + $6 - GREATEST(rate_limits.tat_ms, $3)) / $4), \
             leased = LEAST($5, ($3 + $6 - GREATEST(rate_limits.tat_ms, $3)) / $4) \
             WHERE GREATEST(rate_limits.tat_ms, $3) + $4 <= $3 + $6 \
             RETURNING leased",
        )
        .bind(user_id)
        .bind(action)
        .bind(now)
        .bind(interval)
        .bind(lease_size(rate))
        .bind(rate.period_ms)
        .fetch_optional(&self.pool)
        .await?;
        if let Some((leased,)) = leased {
            key.keep(leased - 1);
            return Ok(Ok(()));
        }
        let (tat,): (i64,) =
            sqlx::query_as("SELECT tat_ms FROM rate_limits WHERE user_id = $1 AND action = $2")
                .bind(user_id)
                .bind(action)
                .fetch_one(&self.pool)
                .await?;
        Ok(rate.admit(tat, now).map(|_| ()))
    }

    /// Forgets budgets that are full again.
    async fn prune(&self, now_ms: i64) -> sqlx::Result<u64> {
        Ok(sqlx::query("DELETE FROM rate_limits WHERE tat_ms < $1")
            .bind(now_ms)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}

impl Limiter for InDatabase {
    fn take<'a>(
        &'a self,
        user_id: i64,
        action: &'a str,
        rate: Rate,
    ) -> BoxFuture<'a, Result<(), Limited>> {
        Box::pin(async move {
            match self.take(user_id, action, rate).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(wait_ms)) => Err(wait(wait_ms)),
                Err(error) => {
                    tracing::warn!(%error, "cannot read a rate limit");
                    Err(Limited::Unavailable(
                        "the service's database is unavailable, try again".into(),
                    ))
                }
            }
        })
    }
}

fn wait(ms: i64) -> Limited {
    Limited::Wait(Duration::from_millis(u64::try_from(ms.max(1)).unwrap_or(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_the_whole_budget_passes_then_one_per_interval() {
        let rate = Rate::per_minute(3);
        let mut tat = 0;
        for _ in 0..3 {
            tat = rate.admit(tat, 0).unwrap();
        }
        assert_eq!(
            rate.admit(tat, 0),
            Err(20_000),
            "the first comes back in 20 s"
        );
        assert!(rate.admit(tat, 20_000).is_ok());
        assert!(rate.admit(tat, 19_999).is_err());
    }

    #[tokio::test]
    async fn in_memory_budgets_are_per_user_and_action() {
        let limiter = InMemory::default();
        let rate = Rate::per_minute(2);
        for _ in 0..2 {
            assert!(limiter.take(1, "Edit", rate).await.is_ok());
        }
        assert!(matches!(
            limiter.take(1, "Edit", rate).await,
            Err(Limited::Wait(wait)) if wait > Duration::from_secs(29) && wait <= Duration::from_secs(30)
        ));
        assert!(limiter.take(2, "Edit", rate).await.is_ok());
        assert!(limiter.take(1, "Delete", rate).await.is_ok());
    }
}
