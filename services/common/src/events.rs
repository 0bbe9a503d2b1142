//! Publishing the `astral.events.v1.Event` envelope on NATS subjects.

use crate::EventBus;
use astral_proto::events::{Event, event::Kind};
use prost::Message as _;

/// Publishes one event (one envelope id) on every subject in `subjects`. Call it after the
/// transaction that caused it has committed. A failure is logged, not returned: the change
/// is already durable and clients catch up with `after=`.
pub async fn publish(bus: &EventBus, subjects: Vec<String>, kind: Kind) {
    let event = Event {
        id: crate::ids::new_id_string(),
        occurred_at_ms: crate::time::now_ms(),
        kind: Some(kind),
    };
    let payload = bytes::Bytes::from(event.encode_to_vec());
    if let Err(error) = bus.publish_on(&subjects, payload).await {
        tracing::warn!(error = format!("{error:#}"), "event not published");
    }
}
