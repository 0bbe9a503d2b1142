//! The auth service's events: built here and written to the outbox in the change's
//! transaction (`store/`), which publishes them after the commit.

use astral_common::outbox::Outgoing;
use astral_proto::events::{SessionEnded, event::Kind};
use astral_proto::subjects;

/// `session.ended` on `user.<id>` (the session's connections close) and on
/// `sessions.revoked` (every gateway refuses its access tokens from now on).
pub fn session_ended(user_id: i64, session_id: i64, revoked_at_ms: i64) -> Outgoing {
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
    Outgoing::new(subjects, kind)
}
