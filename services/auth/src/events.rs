//! The auth service's events, published after the change commits.

use astral_common::EventBus;
use astral_proto::events::{SessionEnded, event::Kind};
use astral_proto::subjects;

pub struct Events {
    bus: EventBus,
}

impl Events {
    pub fn new(bus: EventBus) -> Self {
        Self { bus }
    }

    /// `session.ended` on `user.<id>` (the session's connections close) and on
    /// `sessions.revoked` (every gateway refuses its access tokens from now on).
    pub async fn session_ended(&self, user_id: i64, session_id: i64, revoked_at_ms: i64) {
        let user_id = user_id.to_string();
        let kind = Kind::SessionEnded(SessionEnded {
            user_id: user_id.clone(),
            session_id: session_id.to_string(),
            revoked_at_ms,
        });
        let subjects = vec![
            subjects::user(&user_id),
            subjects::SESSIONS_REVOKED.to_owned(),
        ];
        astral_common::events::publish(&self.bus, subjects, kind).await;
    }
}
