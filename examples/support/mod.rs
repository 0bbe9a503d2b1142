//! What the benchmarks share: the three services started in the benchmark's own process.

#![allow(dead_code, clippy::unwrap_used)]

use astral_auth::Kek;
use astral_common::EventBus;
use astral_common::plane::Plane;
use astral_common::testing::TestDatabase;
use tokio::net::TcpListener;

/// Starts auth, social and messaging in this process, each on its own PostgreSQL database
/// and a loopback port, publishing to NATS; returns their gRPC endpoints (plaintext: the
/// benchmark measures the send path, not TLS, and calls them as a trusted peer).
pub async fn start_services(
    databases: &[TestDatabase; 3],
    bus: EventBus,
) -> (String, String, String) {
    let listeners = [
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
    ];
    let urls: Vec<String> = listeners
        .iter()
        .map(|l| format!("http://{}", l.local_addr().unwrap()))
        .collect();
    let [auth, social, messaging] = listeners;
    let never = std::future::pending::<()>;
    let (db, b) = (databases[0].url.clone(), bus.clone());
    tokio::spawn(async move {
        astral_auth::serve(
            &db,
            Some(Kek::random()),
            // A benchmark registers its thousands of users from one address.
            astral_auth::Settings {
                registrations_per_10_min: 1_000_000,
                ..astral_auth::Settings::default()
            },
            &Plane::trusted(),
            b,
            auth,
            never(),
        )
        .await
        .unwrap()
    });
    let (db, a, b) = (databases[1].url.clone(), urls[0].clone(), bus.clone());
    tokio::spawn(async move {
        astral_social::serve(&db, &a, &Plane::trusted(), b, social, never())
            .await
            .unwrap()
    });
    let (db, a, s) = (databases[2].url.clone(), urls[0].clone(), urls[1].clone());
    // Benchmarks send no files: an empty directory of their own.
    let files = std::env::temp_dir().join(format!("astral-bench-files-{}", std::process::id()));
    let storage = astral_messaging::storage::Storage::local(&files).unwrap();
    tokio::spawn(async move {
        astral_messaging::serve(
            &db,
            storage,
            None,
            &a,
            &s,
            &Plane::trusted(),
            bus,
            messaging,
            never(),
        )
        .await
        .unwrap()
    });
    (urls[0].clone(), urls[1].clone(), urls[2].clone())
}
