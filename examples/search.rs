//! Benchmark: search (`Store::search`, what `GET /api/search` runs) over many messages, on
//! SQLite and, when it answers, PostgreSQL (127.0.0.1:5432).
//!
//! `cargo run --release --example search -- [messages] [chats] [queries]` (defaults:
//! 1,000,000 messages in 10,000 chats, 200 queries of each kind). Every chat has four
//! members out of 2,000 users; the searcher is also in one chat in 100 (so 10,000 of the
//! messages are theirs to find), a second searcher in one in 1,000. A message is 6 to 15
//! words drawn from a vocabulary of 20,000 made-up words with Zipf's law (the most common
//! word is in about one message in ten, as "the" is in English chat), so a query of a common
//! word meets tens of thousands of matches that are not the searcher's. Reported per kind of
//! query: p50, p99 and max over the queries, each a first page of 20.

#![allow(clippy::unwrap_used)] // a benchmark fails loudly

use astral_common::EventBus;
use astral_common::db::Pool;
use astral_common::outbox::Outbox;
use astral_common::testing::MigratedDatabase;
use astral_messaging::search::{Query, index_words};
use astral_messaging::store::{Search, Store};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

const USERS: i64 = 2_000;
const VOCABULARY: usize = 20_000;
/// Searchers: (user id, one chat in how many has them).
const SEARCHERS: [(i64, i64); 2] = [(USERS + 1, 100), (USERS + 2, 1_000)];
/// Makes a query of one kind.
type QueryMaker<'a> = Box<dyn Fn(&mut StdRng) -> String + 'a>;

/// Rows per INSERT while seeding.
const ROWS: usize = 500;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let messages: i64 = args.next().map_or(1_000_000, |a| a.parse().unwrap());
    let chats: i64 = args.next().map_or(10_000, |a| a.parse().unwrap());
    let queries: usize = args.next().map_or(200, |a| a.parse().unwrap());
    let words = Words::new();
    for database in MigratedDatabase::both(&astral_messaging::MIGRATOR).await {
        let store = Store::new(
            database.pool.clone(),
            Outbox::start(database.pool.clone(), EventBus::local()),
        );
        store.prepare_search().await.unwrap();
        let started = Instant::now();
        seed(&database.pool, &words, messages, chats).await;
        if database.backend == "postgres" {
            // Fresh statistics, as a database in use has them (autovacuum).
            sqlx::query("VACUUM ANALYZE messages")
                .execute(&database.pool)
                .await
                .unwrap();
        }
        println!(
            "{:>8}: {messages} messages in {chats} chats seeded and indexed in {:.0} s",
            database.backend,
            started.elapsed().as_secs_f64()
        );
        let mut rng = StdRng::seed_from_u64(7);
        for (searcher, every) in SEARCHERS {
            let kinds: [(&str, QueryMaker); 4] = [
                (
                    "one common word (rank 1–10)",
                    Box::new(|rng| words.ranked(rng, 0..10)),
                ),
                (
                    "one word (rank 100–1,000)",
                    Box::new(|rng| words.ranked(rng, 100..1_000)),
                ),
                (
                    "one rare word (rank 5,000–20,000)",
                    Box::new(|rng| words.ranked(rng, 5_000..VOCABULARY)),
                ),
                (
                    "two words, as written",
                    Box::new(|rng| format!("{} {}", words.draw(rng), words.draw(rng))),
                ),
            ];
            for (kind, query_text) in &kinds {
                let mut took = Vec::with_capacity(queries);
                let mut results = 0;
                for _ in 0..queries {
                    let query = Query::parse(&query_text(&mut rng)).unwrap();
                    let search = Search {
                        user_id: searcher,
                        query: &query,
                        chat_id: None,
                        author_id: None,
                        before: None,
                        limit: 20,
                    };
                    let began = Instant::now();
                    results += store.search(&search).await.unwrap().len();
                    took.push(began.elapsed());
                }
                report(database.backend, every, kind, &mut took, results);
            }
        }
    }
}

fn report(backend: &str, every: i64, kind: &str, took: &mut [Duration], results: usize) {
    took.sort();
    let at = |q: f64| took[((took.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
    println!(
        "{backend:>8}: in 1 chat in {every:>5}, {kind:<36} p50 {:6.2} ms, p99 {:6.2} ms, max {:6.2} ms ({:.1} results a query)",
        at(0.5),
        at(0.99),
        at(1.0),
        results as f64 / took.len() as f64
    );
}

/// Made-up words, and how often each is written (Zipf's law: the r-th word in proportion to
/// 1/r).
struct Words {
    words: Vec<String>,
    cumulative: Vec<f64>,
}

impl Words {
    fn new() -> Self {
        const SYLLABLES: [&str; 32] = [
            "ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ba", "de", "fi", "go", "hu", "ja",
            "ke", "li", "ma", "no", "pe", "qui", "ra", "se", "to", "un", "ve", "wa", "xe", "yo",
            "zu", "an", "el", "or",
        ];
        let words = (0..VOCABULARY)
            .map(|mut n| {
                let mut word = String::new();
                loop {
                    word.push_str(SYLLABLES[n % SYLLABLES.len()]);
                    n /= SYLLABLES.len();
                    if n == 0 {
                        break word;
                    }
                }
            })
            .collect();
        let mut total = 0.0;
        let cumulative = (1..=VOCABULARY)
            .map(|rank| {
                total += 1.0 / rank as f64;
                total
            })
            .collect();
        Self { words, cumulative }
    }

    /// A word as often as it is written.
    fn draw(&self, rng: &mut StdRng) -> &str {
        let total = self.cumulative[VOCABULARY - 1];
        let at = rng.r#gen::<f64>() * total;
        let rank = self.cumulative.partition_point(|&c| c < at);
        &self.words[rank.min(VOCABULARY - 1)]
    }

    /// A word of a rank in `ranks`, each as likely.
    fn ranked(&self, rng: &mut StdRng, ranks: std::ops::Range<usize>) -> String {
        self.words[rng.gen_range(ranks)].clone()
    }

    fn sentence(&self, rng: &mut StdRng) -> String {
        let count = rng.gen_range(6..=15);
        let words: Vec<&str> = (0..count).map(|_| self.draw(rng)).collect();
        words.join(" ")
    }
}

/// `chats` chats of four members each (and the searchers in some), `messages` messages spread
/// evenly over them, each stored with its words as a send stores them.
async fn seed(pool: &Pool, words: &Words, messages: i64, chats: i64) {
    let mut rng = StdRng::seed_from_u64(1);
    let mut tx = pool.begin().await.unwrap();
    for user in 1..=USERS + SEARCHERS.len() as i64 {
        sqlx::query("INSERT INTO users (id, username) VALUES ($1, $2)")
            .bind(user)
            .bind(format!("user{user}"))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    for chat in 0..chats {
        sqlx::query(
            "INSERT INTO chats (id, kind, name, owner_id, last_seq, last_activity_ms, created_at_ms) \
             VALUES ($1, 'group', 'a group', $2, $3, 0, 0)",
        )
        .bind(format!("g{chat}"))
        .bind(chat % USERS + 1)
        .bind(messages / chats)
        .execute(&mut *tx)
        .await
        .unwrap();
        let mut members: Vec<i64> = (0..4).map(|k| (chat * 7 + k * 613) % USERS + 1).collect();
        for (searcher, every) in SEARCHERS {
            if chat % every == 0 {
                members.push(searcher);
            }
        }
        members.sort_unstable();
        members.dedup();
        for member in members {
            sqlx::query(
                "INSERT INTO chat_members (chat_id, user_id, joined_at_ms, read_seq) \
                 VALUES ($1, $2, 0, 0)",
            )
            .bind(format!("g{chat}"))
            .bind(member)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
    }
    tx.commit().await.unwrap();
    let mut id = 0;
    while id < messages {
        let rows = (messages - id).min(ROWS as i64);
        let mut sql = String::from(
            "INSERT INTO messages (id, chat_id, seq, version, author_id, content, created_at_ms, search_words) VALUES ",
        );
        for row in 0..rows {
            let p = row * 7;
            let _ = write!(
                sql,
                "{}(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                if row == 0 { "" } else { ", " },
                p + 1,
                p + 2,
                p + 3,
                p + 3,
                p + 4,
                p + 5,
                p + 6,
                p + 7
            );
        }
        let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
        for n in id + 1..=id + rows {
            // Messages go round the chats, so every chat's history spans the whole time.
            let chat = n % chats;
            let content = words.sentence(&mut rng);
            insert = insert
                .bind(n)
                .bind(format!("g{chat}"))
                .bind(n / chats + 1)
                .bind((chat * 7) % USERS + 1)
                .bind(content.clone())
                .bind(n)
                .bind(index_words(&format!("g{chat}"), &content));
        }
        insert.execute(pool).await.unwrap();
        id += rows;
    }
}
