//! The transactional outbox: every event is written to the service's `outbox` table in the
//! transaction of the change that caused it, so a change never commits without its event.
//!
//! After the commit the use case hands the events to this process's relay, which publishes
//! them at once and then forgets them (deletes their rows, once NATS has them). Whatever is
//! left behind — the process died between commit and publish, NATS was down, the hand-off
//! queue was full — is swept up by any replica: rows older than [`STALE_AFTER`] are claimed
//! (for [`CLAIM_FOR`], so two replicas do not both take them), published and forgotten.
//! Delivery is therefore at least once; each event keeps its envelope id, by which
//! subscribers drop the copies. Writers never wait for the bus: a hand-off that finds the
//! relay's queue full is left to the sweeper.

use crate::EventBus;
use crate::db::Pool;
use astral_proto::events::{Event, event::Kind};
use bytes::Bytes;
use prost::Message as _;
use std::fmt::Write as _;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::Instrument as _;

/// How old an unpublished row must be before the sweeper takes it (the relay normally has
/// published and forgotten it within milliseconds).
pub const STALE_AFTER: Duration = Duration::from_secs(2);
/// How often each replica looks for rows left behind.
const SWEEP_EVERY: Duration = Duration::from_millis(500);
/// After the bus (re)connects, how long the sweeper waits before it publishes what was left
/// behind: the subscribers (gateways reconnect within 750 ms) are back to receive it live.
const AFTER_RECONNECT: Duration = Duration::from_secs(1);
/// How long a sweeper's claim on rows lasts; past it another replica may take them.
const CLAIM_FOR: Duration = Duration::from_secs(10);
/// Rows claimed by one sweep.
const SWEEP_BATCH: i64 = 500;
/// Hand-offs waiting for the relay; past this, events wait for the sweeper instead.
const HANDOFF_QUEUE: usize = 4096;
/// Rows written or deleted by one statement.
const ROWS_PER_STATEMENT: usize = 200;

/// One event to publish: its envelope (already encoded) and the subjects it goes to.
#[derive(Debug, Clone)]
pub struct Outgoing {
    id: i64,
    subjects: Vec<String>,
    payload: Bytes,
    /// The span of the change, so the published event continues its trace.
    span: tracing::Span,
}

impl Outgoing {
    /// The event `kind` for `subjects`, under a new envelope id.
    pub fn new(subjects: Vec<String>, kind: Kind) -> Self {
        let id = crate::ids::new_id();
        let event = Event {
            id: id.to_string(),
            occurred_at_ms: crate::time::now_ms(),
            kind: Some(kind),
        };
        Self {
            id,
            subjects,
            payload: Bytes::from(event.encode_to_vec()),
            span: tracing::Span::current(),
        }
    }

    /// Publishes it on `subject` too (the same event: subscribers of both get one copy).
    pub fn also_on(&mut self, subject: &str) {
        self.subjects.push(subject.to_owned());
    }
}

/// Writes `events` to the outbox inside the caller's transaction.
pub async fn write(conn: &mut sqlx::AnyConnection, events: &[Outgoing]) -> crate::Result<()> {
    let now = crate::time::now_ms();
    for chunk in events.chunks(ROWS_PER_STATEMENT) {
        let mut sql =
            String::from("INSERT INTO outbox (id, subjects, payload, created_at_ms) VALUES ");
        for row in 0..chunk.len() {
            let p = row * 4;
            let _ = write!(
                sql,
                "{}(${}, ${}, ${}, ${})",
                if row == 0 { "" } else { ", " },
                p + 1,
                p + 2,
                p + 3,
                p + 4
            );
        }
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for event in chunk {
            query = query
                .bind(event.id)
                .bind(event.subjects.join(" "))
                .bind(event.payload.to_vec())
                .bind(now);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// This process's relay. Cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    handoff: mpsc::Sender<Vec<Outgoing>>,
}

impl Outbox {
    /// Starts the relay and the sweeper of the outbox in `pool`, publishing on `bus`.
    pub fn start(pool: Pool, bus: EventBus) -> Self {
        let (handoff, committed) = mpsc::channel(HANDOFF_QUEUE);
        let (published, to_forget) = mpsc::unbounded_channel();
        let postgres = pool
            .connect_options()
            .database_url
            .scheme()
            .starts_with("postgres");
        tokio::spawn(relay(committed, bus.clone(), published.clone()));
        tokio::spawn(forget(to_forget, pool.clone(), bus.clone(), postgres));
        tokio::spawn(sweep(pool, bus, published, postgres));
        Self { handoff }
    }

    /// Writes a change's `events` in its transaction `tx`, commits it, and hands them to the
    /// relay: what every store calls to end a change that has events.
    pub async fn commit(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Any>,
        events: Vec<Outgoing>,
    ) -> crate::Result<()> {
        write(&mut tx, &events).await?;
        tx.commit().await?;
        self.committed(events);
        Ok(())
    }

    /// Hands events whose transaction has committed to the relay; never waits. If the relay
    /// is behind (NATS down, say), they stay in the table for the sweeper.
    pub fn committed(&self, events: Vec<Outgoing>) {
        if events.is_empty() {
            return;
        }
        if self.handoff.try_send(events).is_err() {
            metrics::counter!("astral_outbox_handoffs_skipped_total").increment(1);
        }
    }
}

/// Publishes what was handed over, as it comes, then passes the ids on to be forgotten.
async fn relay(
    mut committed: mpsc::Receiver<Vec<Outgoing>>,
    bus: EventBus,
    published: mpsc::UnboundedSender<Vec<i64>>,
) {
    while let Some(events) = committed.recv().await {
        let ids = publish_all(&bus, events).await;
        if published.send(ids).is_err() {
            return;
        }
    }
}

/// Publishes each event on each of its subjects; the ids of those fully published.
async fn publish_all(bus: &EventBus, events: Vec<Outgoing>) -> Vec<i64> {
    let mut ids = Vec::with_capacity(events.len());
    for event in events {
        let publish = bus.publish_on(&event.subjects, event.payload.clone());
        match publish.instrument(event.span.clone()).await {
            Ok(()) => ids.push(event.id),
            Err(error) => tracing::warn!(
                error = format!("{error:#}"),
                "event not published yet; the outbox keeps it"
            ),
        }
    }
    ids
}

/// Deletes the rows of published events, once NATS has confirmed it holds everything
/// published before (a flush): a row is only forgotten when its event cannot be lost here.
async fn forget(
    mut published: mpsc::UnboundedReceiver<Vec<i64>>,
    pool: Pool,
    bus: EventBus,
    postgres: bool,
) {
    // A deletion a crash undoes only publishes its event again (subscribers drop the copy):
    // on PostgreSQL they need not wait for the disk, and do not take turns with the commits
    // that must.
    let pool = if postgres {
        let url = pool.connect_options().database_url.to_string();
        crate::db::connect_unflushed(&url).await.unwrap_or(pool)
    } else {
        pool
    };
    let mut ids = Vec::new();
    while let Some(first) = published.recv().await {
        ids.extend(first);
        while let Ok(more) = published.try_recv() {
            ids.extend(more);
        }
        if ids.is_empty() {
            continue;
        }
        if let Err(error) = bus.flush().await {
            tracing::warn!(
                error = format!("{error:#}"),
                "NATS did not confirm; the outbox keeps the events"
            );
            ids.clear();
            continue;
        }
        if let Err(error) = delete(&pool, &ids).await {
            // They are published: left in the table, the sweeper sends them again and
            // subscribers drop the copies.
            tracing::warn!(
                error = format!("{error:#}"),
                "published events not forgotten"
            );
        }
        ids.clear();
    }
}

async fn delete(pool: &Pool, ids: &[i64]) -> Result<(), sqlx::Error> {
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "DELETE FROM outbox WHERE id IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(*id);
        }
        query.execute(pool).await?;
    }
    Ok(())
}

/// Every [`SWEEP_EVERY`], claims the rows left behind and publishes them — while the bus is
/// connected, and from [`AFTER_RECONNECT`] after it (re)connected.
async fn sweep(
    pool: Pool,
    bus: EventBus,
    published: mpsc::UnboundedSender<Vec<i64>>,
    postgres: bool,
) {
    let mut connections = bus.connections();
    connections.mark_unchanged();
    let mut settled_at = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(SWEEP_EVERY).await;
        if connections.has_changed().unwrap_or(false) {
            connections.mark_unchanged();
            settled_at = tokio::time::Instant::now() + AFTER_RECONNECT;
        }
        if !bus.is_connected() || tokio::time::Instant::now() < settled_at {
            continue;
        }
        loop {
            let claimed = match claim(&pool, postgres).await {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), "outbox sweep failed");
                    break;
                }
            };
            let count = claimed.len();
            if count == 0 {
                break;
            }
            metrics::counter!("astral_outbox_swept_total").increment(count as u64);
            tracing::info!(count, "publishing events left in the outbox");
            let ids = publish_all(&bus, claimed).await;
            if published.send(ids).is_err() {
                return;
            }
            if count < usize::try_from(SWEEP_BATCH).unwrap_or(usize::MAX) {
                break;
            }
        }
    }
}

/// Claims the oldest rows left behind (older than [`STALE_AFTER`], not claimed by another
/// sweeper in the last [`CLAIM_FOR`]), oldest first.
async fn claim(pool: &Pool, postgres: bool) -> Result<Vec<Outgoing>, sqlx::Error> {
    let now = crate::time::now_ms();
    let stale_ms = i64::try_from(STALE_AFTER.as_millis()).unwrap_or(i64::MAX);
    let claim_ms = i64::try_from(CLAIM_FOR.as_millis()).unwrap_or(i64::MAX);
    // PostgreSQL: replicas sweeping at once skip each other's rows instead of waiting.
    let skip_locked = if postgres {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    let sql = format!(
        "UPDATE outbox SET claimed_until_ms = $1 WHERE id IN \
         (SELECT id FROM outbox WHERE created_at_ms <= $2 AND claimed_until_ms <= $3 \
          ORDER BY id LIMIT $4{skip_locked}) \
         RETURNING id, subjects, payload"
    );
    let mut rows: Vec<(i64, String, Vec<u8>)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(now + claim_ms)
        .bind(now - stale_ms)
        .bind(now)
        .bind(SWEEP_BATCH)
        .fetch_all(pool)
        .await?;
    rows.sort_by_key(|(id, _, _)| *id);
    Ok(rows
        .into_iter()
        .map(|(id, subjects, payload)| Outgoing {
            id,
            subjects: subjects
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            payload: Bytes::from(payload),
            span: tracing::Span::none(),
        })
        .collect())
}

#[cfg(test)]
mod tests;
