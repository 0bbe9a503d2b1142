//! Tests of `bus.rs`.

#[test]
fn reconnecting_waits_at_most_three_quarters_of_a_second() {
    use std::time::Duration;
    assert_eq!(super::reconnect_delay(1), Duration::ZERO);
    for attempt in 2..1000 {
        let delay = super::reconnect_delay(attempt);
        assert!(delay >= Duration::from_millis(100), "{attempt}: {delay:?}");
        assert!(delay < Duration::from_millis(750), "{attempt}: {delay:?}");
    }
}

use super::*;
use std::time::Duration;

#[tokio::test]
async fn local_bus_delivers_to_every_subscriber_of_the_subject_only() {
    let bus = EventBus::local();
    let mut first = bus.subscribe("chat.1".into()).await.unwrap();
    let mut second = bus.subscribe("chat.1".into()).await.unwrap();
    let mut other = bus.subscribe("chat.2".into()).await.unwrap();
    bus.publish("chat.1".into(), Bytes::from_static(b"hi"))
        .await
        .unwrap();
    let wait = Duration::from_secs(5);
    assert_eq!(
        tokio::time::timeout(wait, first.next())
            .await
            .unwrap()
            .unwrap()
            .payload,
        "hi"
    );
    assert_eq!(
        tokio::time::timeout(wait, second.next())
            .await
            .unwrap()
            .unwrap()
            .payload,
        "hi"
    );
    // The other subject's first payload is its own, not chat.1's.
    bus.publish("chat.2".into(), Bytes::from_static(b"other"))
        .await
        .unwrap();
    assert_eq!(
        tokio::time::timeout(wait, other.next())
            .await
            .unwrap()
            .unwrap()
            .payload,
        "other"
    );
}
