//! Benchmark: what a password costs on this machine — one argon2id hash, one verification,
//! and a whole failed login for a known username (wrong password) and for an unknown one
//! (which must cost the same, or timing would reveal who has an account).
//!
//! `cargo run --release -p astral-auth --example password_cost`

#![allow(clippy::unwrap_used)] // a benchmark fails loudly

use astral_auth::password::Hasher;
use astral_auth::{AuthService, Settings, store::Store};
use astral_common::testing::TestDatabase;
use std::time::{Duration, Instant};

const RUNS: usize = 30;

#[tokio::main]
async fn main() {
    let hasher = Hasher::per_core();
    let hash = hasher.hash("correct horse".into()).await.unwrap();
    println!(
        "parameters: {}",
        hash.split('$').take(4).collect::<Vec<_>>().join("$")
    );
    report(
        "hash a password",
        time(|| hasher.hash("correct horse".into())).await,
    );
    report(
        "verify a password",
        time(|| hasher.verify("correct horse".into(), hash.clone())).await,
    );

    let database = TestDatabase::sqlite();
    let pool = astral_common::db::connect(&database.url).await.unwrap();
    astral_auth::MIGRATOR.run(&pool).await.unwrap();
    let kek = Some(astral_auth::Kek::random());
    let auth = AuthService::start(
        Store::new(
            pool.clone(),
            astral_common::outbox::Outbox::start(pool, astral_common::EventBus::local()),
        ),
        kek,
        Settings::default(),
    )
    .await
    .unwrap();
    // Fresh usernames and addresses each run, so that throttling never answers first.
    let mut wrong_password = Vec::new();
    let mut unknown_user = Vec::new();
    for run in 0..RUNS {
        let known = format!("known_{run}");
        auth.register(
            &known,
            "correct horse".into(),
            "bench",
            &format!("10.0.2.{run}"),
        )
        .await
        .unwrap();
        let start = Instant::now();
        auth.login(
            &known,
            "wrong password".into(),
            "bench",
            &format!("10.0.0.{run}"),
        )
        .await
        .unwrap_err();
        wrong_password.push(start.elapsed());
        let start = Instant::now();
        auth.login(
            &format!("nobody_{run}"),
            "wrong password".into(),
            "bench",
            &format!("10.0.1.{run}"),
        )
        .await
        .unwrap_err();
        unknown_user.push(start.elapsed());
    }
    report("failed login, wrong password", wrong_password);
    report("failed login, unknown username", unknown_user);
}

async fn time<F, Fut, T>(mut run: F) -> Vec<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let start = Instant::now();
        run().await;
        times.push(start.elapsed());
    }
    times
}

fn report(what: &str, mut times: Vec<Duration>) {
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0;
    println!(
        "{what:32} median {:6.1} ms   p90 {:6.1} ms   ({} runs)",
        at(0.5),
        at(0.9),
        times.len()
    );
}
