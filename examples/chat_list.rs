//! Benchmark: the chat list of a user in many chats, as `ready` and `GET /api/chats` load it
//! (`Store::chats_of`: each chat with its members, unread count and newest message).
//!
//! `cargo run --release --example chat_list -- [chats] [repeats]` (defaults: 1,000 chats,
//! 30 loads). Half the chats are direct, half groups of five; each holds 20 messages, ten of
//! them unread. Runs on SQLite and, when it answers, PostgreSQL (127.0.0.1:5432).

#![allow(clippy::unwrap_used)] // a benchmark fails loudly

use astral_common::EventBus;
use astral_common::db::Pool;
use astral_common::outbox::Outbox;
use astral_common::testing::MigratedDatabase;
use astral_messaging::store::Store;
use std::time::{Duration, Instant};

const VIEWER: i64 = 1;
const MESSAGES_PER_CHAT: i64 = 20;
const READ_UP_TO: i64 = 10;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let chats: i64 = args.next().map_or(1_000, |a| a.parse().unwrap());
    let repeats: usize = args.next().map_or(30, |a| a.parse().unwrap());
    for database in MigratedDatabase::both(&astral_messaging::MIGRATOR).await {
        seed(&database.pool, chats).await;
        if database.backend == "postgres" {
            // Fresh statistics, as a database in use has them (autovacuum).
            sqlx::query("ANALYZE")
                .execute(&database.pool)
                .await
                .unwrap();
        }
        let store = Store::new(
            database.pool.clone(),
            Outbox::start(database.pool.clone(), EventBus::local()),
        );
        let listed = store.chats_of(VIEWER).await.unwrap();
        assert_eq!(listed.len(), usize::try_from(chats).unwrap());
        assert!(
            listed
                .iter()
                .all(|chat| chat.unread == MESSAGES_PER_CHAT - READ_UP_TO)
        );
        let mut took: Vec<Duration> = Vec::with_capacity(repeats);
        for _ in 0..repeats {
            let started = Instant::now();
            store.chats_of(VIEWER).await.unwrap();
            took.push(started.elapsed());
        }
        took.sort();
        let at = |q: f64| took[((took.len() - 1) as f64 * q).round() as usize];
        println!(
            "{:>8}: {chats} chats, {repeats} loads: p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms",
            database.backend,
            at(0.5).as_secs_f64() * 1e3,
            at(0.9).as_secs_f64() * 1e3,
            at(1.0).as_secs_f64() * 1e3,
        );
    }
}

/// The viewer in `chats` chats: even ones direct (with one other user), odd ones groups of
/// five; every chat with its messages, the others' half of them unread.
async fn seed(pool: &Pool, chats: i64) {
    let mut tx = pool.begin().await.unwrap();
    for user in 1..=chats * 4 + 1 {
        sqlx::query("INSERT INTO users (id, username) VALUES ($1, $2)")
            .bind(user)
            .bind(format!("user{user}"))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    for n in 0..chats {
        let direct = n % 2 == 0;
        let others: Vec<i64> = if direct {
            vec![n * 4 + 2]
        } else {
            (n * 4 + 2..n * 4 + 6).collect()
        };
        let id = if direct {
            astral_messaging::model::direct_chat_id(VIEWER, others[0])
        } else {
            format!("group{n}")
        };
        sqlx::query(
            "INSERT INTO chats (id, kind, name, owner_id, last_seq, last_activity_ms, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, 0)",
        )
        .bind(&id)
        .bind(if direct { "direct" } else { "group" })
        .bind(if direct { "" } else { "a group" })
        .bind((!direct).then_some(VIEWER))
        .bind(MESSAGES_PER_CHAT)
        .bind(n)
        .execute(&mut *tx)
        .await
        .unwrap();
        for (order, member) in (0_i64..).zip(std::iter::once(VIEWER).chain(others.clone())) {
            sqlx::query(
                "INSERT INTO chat_members (chat_id, user_id, joined_at_ms, read_seq) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(&id)
            .bind(member)
            .bind(order)
            .bind(if member == VIEWER { READ_UP_TO } else { 0 })
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        for seq in 1..=MESSAGES_PER_CHAT {
            sqlx::query(
                "INSERT INTO messages (id, chat_id, seq, version, author_id, content, created_at_ms) \
                 VALUES ($1, $2, $3, $3, $4, $5, $3)",
            )
            .bind(n * MESSAGES_PER_CHAT + seq)
            .bind(&id)
            .bind(seq)
            .bind(others[usize::try_from(seq).unwrap() % others.len()])
            .bind(format!("message {seq} of chat {n}"))
            .execute(&mut *tx)
            .await
            .unwrap();
        }
    }
    tx.commit().await.unwrap();
}
