//! Tests of `outbox.rs`.

use super::*;
use astral_proto::events::TypingStarted;
use futures::StreamExt as _;

async fn database() -> (Pool, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("astral-outbox-{}", crate::ids::new_id()));
    let url = format!("sqlite://{}/outbox.db", dir.display());
    let pool = crate::db::connect(&url).await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE outbox (id BIGINT PRIMARY KEY, subjects TEXT NOT NULL, payload BYTEA NOT NULL, \
         created_at_ms BIGINT NOT NULL, claimed_until_ms BIGINT NOT NULL DEFAULT 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    (pool, dir)
}

fn typing(chat_id: &str) -> Outgoing {
    let kind = Kind::TypingStarted(TypingStarted {
        chat_id: chat_id.to_owned(),
        user: None,
    });
    Outgoing::new(vec![format!("chat.{chat_id}"), "user.1".to_owned()], kind)
}

async fn rows(pool: &Pool) -> i64 {
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox")
        .fetch_one(pool)
        .await
        .unwrap();
    count
}

async fn next_id(subscription: &mut crate::bus::Subscription) -> String {
    let delivery = tokio::time::timeout(Duration::from_secs(10), subscription.next())
        .await
        .expect("an event within 10 s")
        .unwrap();
    Event::decode(delivery.payload).unwrap().id
}

#[tokio::test]
async fn committed_events_are_published_on_each_subject_then_forgotten() {
    let (pool, dir) = database().await;
    let bus = EventBus::local();
    let mut chat = bus.subscribe("chat.a".into()).await.unwrap();
    let mut user = bus.subscribe("user.1".into()).await.unwrap();
    let outbox = Outbox::start(pool.clone(), bus);
    let event = typing("a");
    let mut conn = pool.acquire().await.unwrap();
    write(&mut conn, std::slice::from_ref(&event))
        .await
        .unwrap();
    drop(conn);
    outbox.committed(vec![event.clone()]);
    assert_eq!(next_id(&mut chat).await, event.id.to_string());
    assert_eq!(next_id(&mut user).await, event.id.to_string());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while rows(&pool).await != 0 {
        assert!(tokio::time::Instant::now() < deadline, "the row stays");
        tokio::task::yield_now().await;
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn events_written_but_never_handed_over_are_swept_up_in_order() {
    let (pool, dir) = database().await;
    let bus = EventBus::local();
    let mut chat = bus.subscribe("chat.b".into()).await.unwrap();
    // Written and committed by a process that died before its relay saw them.
    let events: Vec<Outgoing> = (0..3).map(|_| typing("b")).collect();
    let mut conn = pool.acquire().await.unwrap();
    write(&mut conn, &events).await.unwrap();
    drop(conn);
    let _outbox = Outbox::start(pool.clone(), bus);
    for event in &events {
        assert_eq!(next_id(&mut chat).await, event.id.to_string());
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while rows(&pool).await != 0 {
        assert!(tokio::time::Instant::now() < deadline, "the rows stay");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    std::fs::remove_dir_all(dir).unwrap();
}
