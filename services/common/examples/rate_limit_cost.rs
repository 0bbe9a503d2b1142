//! Benchmark: what a per-user budget costs when it is counted in PostgreSQL (services that
//! may run as replicas): one `take` per call, from many users at once, with the send budget
//! (100 at once, 20 a second), as the send path does.
//!
//! `cargo run --release -p astral-common --features testing --example rate_limit_cost -- [seconds] [users] [in flight]`

#![allow(clippy::unwrap_used)] // a benchmark fails loudly

use astral_common::ratelimit::{self, Rate};
use astral_common::testing::TestDatabase;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let seconds = args.first().copied().unwrap_or(5);
    let users = args.get(1).copied().unwrap_or(2000);
    let in_flight = args.get(2).copied().unwrap_or(64);
    let database = TestDatabase::postgres().await.unwrap();
    let pool = astral_common::db::connect(&database.url).await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE rate_limits (user_id BIGINT NOT NULL, action TEXT NOT NULL, \
         tat_ms BIGINT NOT NULL, leased BIGINT NOT NULL DEFAULT 1, \
         PRIMARY KEY (user_id, action))",
    )
    .execute(&pool)
    .await
    .unwrap();
    let limiter = ratelimit::for_database(&database.url).await.unwrap();
    let rate = Rate::per_seconds(100, 5);
    let refused = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..in_flight)
        .map(|worker| {
            let (limiter, stop, refused) = (limiter.clone(), stop.clone(), refused.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut user = worker;
                while !stop.load(Ordering::Relaxed) {
                    let start = Instant::now();
                    let taken = limiter
                        .take(i64::try_from(user % users).unwrap(), "SendMessage", rate)
                        .await;
                    match taken {
                        Ok(()) => {}
                        Err(ratelimit::Limited::Wait(_)) => {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(ratelimit::Limited::Unavailable(why)) => panic!("{why}"),
                    }
                    latencies.push(start.elapsed());
                    user += in_flight;
                }
                latencies
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize].as_secs_f64() * 1000.0;
    println!(
        "{} takes in {elapsed:.1} s ({} refused): {:.0}/s, p50 {:.3} ms, p99 {:.3} ms ({users} users, {in_flight} in flight)",
        latencies.len(),
        refused.load(Ordering::Relaxed),
        latencies.len() as f64 / elapsed,
        at(0.5),
        at(0.99)
    );
}
