//! An event on its way to the WebSockets: decoded from the bus once and rendered once as its
//! `{"op":"event","t","d"}` frame, then shared by every connection that delivers it (one
//! event to 15,000 connections is one decode and one serialization, not 15,000).

use crate::json;
use astral_proto::events::Event;
use bytes::Bytes;
use prost::Message as _;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// One event, as every connection that receives it shares it.
#[derive(Debug)]
pub struct Delivery {
    /// The event (its `id` moved to [`Delivery::id`]).
    pub event: Event,
    /// The event's id, shared by the connections that remember it (`ws/seen.rs`).
    pub id: Arc<str>,
    /// The frame to send, the same bytes for every connection; `None` for an event of a
    /// kind this gateway does not know (nothing to deliver).
    pub frame: Option<Utf8Bytes>,
    /// Whether a connection has already acted on the event for the whole gateway.
    noted: AtomicBool,
}

/// The event frame: `{"op":"event","t":<type>,"d":<the event's JSON>}`.
#[derive(Serialize)]
struct EventFrame<'a> {
    op: &'static str,
    t: &'static str,
    d: &'a Value,
}

impl Delivery {
    /// Decodes a payload from the bus; `None` if it is not an event.
    pub fn decode(payload: Bytes) -> Option<Arc<Self>> {
        let event = Event::decode(payload).ok()?;
        Some(Arc::new(Self::new(event)))
    }

    /// Renders `event`'s frame.
    pub fn new(mut event: Event) -> Self {
        let frame = event.kind.as_ref().map(|kind| {
            let (t, d) = json::event(kind);
            let frame = EventFrame {
                op: "event",
                t,
                d: &d,
            };
            // Serializing a `Value` cannot fail: every map key is a string.
            Utf8Bytes::from(serde_json::to_string(&frame).unwrap_or_default())
        });
        let id = Arc::from(std::mem::take(&mut event.id));
        Self {
            event,
            id,
            frame,
            noted: AtomicBool::new(false),
        }
    }

    /// True for the first caller only: what the gateway does once per event (not once per
    /// connection) is done by whoever asks first.
    pub fn first_to_note(&self) -> bool {
        !self.noted.swap(true, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use astral_proto::events::{ChatDeleted, event::Kind};
    use serde_json::json;

    #[test]
    fn an_event_is_rendered_as_op_t_and_d_once_for_everyone() {
        let event = Event {
            id: "e1".into(),
            occurred_at_ms: 0,
            kind: Some(Kind::ChatDeleted(ChatDeleted {
                chat_id: "7".into(),
            })),
        };
        let delivery = Delivery::decode(event.encode_to_vec().into()).unwrap();
        let frame: Value = serde_json::from_str(delivery.frame.as_deref().unwrap()).unwrap();
        assert_eq!(
            frame,
            json!({ "op": "event", "t": "chat.deleted", "d": { "chat_id": "7" } })
        );
        assert_eq!(&*delivery.id, "e1");
        assert!(delivery.first_to_note());
        assert!(!delivery.first_to_note(), "only the first");
    }

    #[test]
    fn a_payload_that_is_no_event_is_dropped_and_an_unknown_kind_has_no_frame() {
        assert!(Delivery::decode(Bytes::from_static(b"\xff\xff\xff")).is_none());
        let unknown = Delivery::new(Event::default());
        assert!(unknown.frame.is_none());
    }
}
