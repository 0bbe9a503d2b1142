//! Revoked sessions, so that their access tokens are refused before they expire — without
//! asking the auth service on every request. Loaded from the auth service at start (and
//! after every NATS reconnection), then kept current from `sessions.revoked` on the bus.

use crate::state::AppState;
use astral_proto::auth::ListRevokedSessionsRequest;
use astral_proto::events::{Event, event::Kind};
use astral_proto::subjects;
use futures::StreamExt as _;
use prost::Message as _;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a revoked session must be remembered: its access tokens live at most this long
/// (15 minutes) after the revocation, plus slack for clocks.
const REMEMBER_MS: i64 = 17 * 60 * 1000;

/// Session id → when its last token has certainly expired (Unix ms).
#[derive(Default)]
pub struct Revocations {
    sessions: Mutex<HashMap<String, i64>>,
}

impl Revocations {
    pub fn revoke(&self, session_id: String, revoked_at_ms: i64) {
        let now = astral_common::time::now_ms();
        let mut sessions = self
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        sessions.retain(|_, forget_at| *forget_at > now);
        let forget_at = revoked_at_ms + REMEMBER_MS;
        if forget_at > now {
            sessions.insert(session_id, forget_at);
        }
    }

    /// Sessions this gateway just saw end (it answered the logout): refused from now on,
    /// before the news comes back over the bus.
    pub fn revoke_now(&self, session_ids: Vec<String>) {
        let now = astral_common::time::now_ms();
        for session_id in session_ids {
            self.revoke(session_id, now);
        }
    }

    pub fn is_revoked(&self, session_id: &str) -> bool {
        let sessions = self
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        sessions.contains_key(session_id)
    }
}

/// Follows `sessions.revoked` and reloads the list whenever the bus (re)connects; sets
/// `revocations_loaded` once the first load is done.
pub fn spawn_follow(state: Arc<AppState>) {
    tokio::spawn(async move {
        let mut subscription = loop {
            match state
                .bus
                .subscribe(subjects::SESSIONS_REVOKED.to_owned())
                .await
            {
                Ok(subscription) => break subscription,
                Err(error) => {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "cannot follow revoked sessions; retrying"
                    );
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        };
        let mut connections = state.bus.connections();
        connections.mark_changed();
        loop {
            tokio::select! {
                changed = connections.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    load(&state).await;
                }
                delivery = subscription.next() => {
                    let Some(delivery) = delivery else { break };
                    if let Ok(Event { kind: Some(Kind::SessionEnded(ended)), .. }) = Event::decode(delivery.payload) {
                        state.revocations.revoke(ended.session_id, ended.revoked_at_ms);
                    }
                }
            }
        }
    });
}

/// Loads every revocation recent enough to matter, retrying until the auth service answers.
async fn load(state: &AppState) {
    loop {
        let since_ms = astral_common::time::now_ms() - REMEMBER_MS;
        match state
            .auth
            .clone()
            .list_revoked_sessions(ListRevokedSessionsRequest { since_ms })
            .await
        {
            Ok(response) => {
                for revoked in response.into_inner().sessions {
                    state
                        .revocations
                        .revoke(revoked.session_id, revoked.revoked_at_ms);
                }
                state
                    .revocations_loaded
                    .store(true, std::sync::atomic::Ordering::Release);
                return;
            }
            Err(status) => {
                tracing::warn!(%status, "cannot load revoked sessions; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revoked_session_is_remembered_until_its_tokens_expire() {
        let revocations = Revocations::default();
        revocations.revoke("1".into(), astral_common::time::now_ms());
        assert!(revocations.is_revoked("1"));
        assert!(!revocations.is_revoked("2"));
        // Revoked so long ago that its tokens have all expired: nothing to remember.
        revocations.revoke(
            "old".into(),
            astral_common::time::now_ms() - 2 * REMEMBER_MS,
        );
        revocations.revoke("3".into(), astral_common::time::now_ms());
        assert!(!revocations.is_revoked("old"));
        assert!(revocations.is_revoked("1") && revocations.is_revoked("3"));
    }
}
