//! Revoked sessions, so that their access tokens are refused before they expire.

use std::collections::HashMap;
use std::sync::Mutex;

/// How long a revoked session must be remembered: its access tokens live at most this long
/// (15 minutes) after the revocation, plus slack for clocks.
pub const REMEMBER_MS: i64 = 17 * 60 * 1000;

/// Session id → when its last token has certainly expired (Unix ms).
#[derive(Default)]
pub struct Revocations {
    sessions: Mutex<HashMap<String, i64>>,
}

impl Revocations {
    pub fn revoke(&self, session_id: String, revoked_at_ms: i64) {
        let now = crate::time::now_ms();
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

    pub fn is_revoked(&self, session_id: &str) -> bool {
        let sessions = self
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        sessions.contains_key(session_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revoked_session_is_remembered_until_its_tokens_expire() {
        let revocations = Revocations::default();
        revocations.revoke("1".into(), crate::time::now_ms());
        assert!(revocations.is_revoked("1"));
        assert!(!revocations.is_revoked("2"));
        // Revoked so long ago that its tokens have all expired: nothing to remember.
        revocations.revoke("old".into(), crate::time::now_ms() - 2 * REMEMBER_MS);
        revocations.revoke("3".into(), crate::time::now_ms());
        assert!(!revocations.is_revoked("old"));
        assert!(revocations.is_revoked("1") && revocations.is_revoked("3"));
    }
}
