//! Sessions and tokens: refreshing (a reused token ends its session), checking an access
//! token, logging out, the session lists, and the signing keys.

use super::{AuthService, Authenticated, hash_refresh_token, new_refresh_token};
use crate::store::{Refreshed, RevokedSession, SessionInfo};
use anyhow::Context as _;
use astral_common::tokens::{Claims, TokenError};
use astral_common::{Error, Result, ids, time};
use tracing::instrument;

/// The most sessions one liveness check asks about.
pub const MAX_CHECKED_SESSIONS: usize = 1000;

impl AuthService {
    /// Exchanges a refresh token for a new pair, while its session is fresh (refreshed within
    /// the idle time, younger than its lifetime). A token presented twice was stolen or
    /// copied: the whole session is revoked, for the thief and the owner alike.
    #[instrument(skip_all, err(level = "info"))]
    pub async fn refresh(&self, refresh_token: &str) -> Result<Authenticated> {
        let (new_token, new_hash) = new_refresh_token();
        let now = time::now_ms();
        let refreshed = self
            .store
            .rotate_refresh(
                &hash_refresh_token(refresh_token),
                &new_hash,
                now,
                self.fresh(now),
            )
            .await?;
        match refreshed {
            Refreshed::Rotated { session_id, user } => {
                self.authenticated(user, session_id, new_token)
            }
            Refreshed::Reused {
                session_id,
                newly_revoked_user,
            } => {
                if newly_revoked_user.is_some() {
                    tracing::warn!(%session_id, "a spent refresh token was presented again: session revoked");
                }
                Err(Error::unauthenticated("the refresh token is not valid"))
            }
            Refreshed::Unknown => Err(Error::unauthenticated("the refresh token is not valid")),
        }
    }

    /// Who a token proves: its signature and expiry checked against the keys that still
    /// verify (reloaded once for a key another replica just made), its session still live.
    pub async fn authenticate(&self, token: &str) -> Result<Claims> {
        let claims = match self.keys().verifier().verify(token) {
            Err(TokenError::UnknownKey) => self.reload_keys().await?.verifier().verify(token),
            checked => checked,
        }
        .map_err(|error| Error::unauthenticated(error.to_string()))?;
        let (Ok(user_id), Ok(session_id)) = (claims.sub.parse(), claims.sid.parse()) else {
            return Err(Error::unauthenticated("the token is malformed"));
        };
        if !self.store.session_is_live(user_id, session_id).await? {
            return Err(Error::unauthenticated("this session has ended"));
        }
        Ok(claims)
    }

    /// Ends one session of the user (this one, or another from the account page).
    #[instrument(skip_all, fields(%user_id, %session_id), err(level = "info"))]
    pub async fn logout(&self, user_id: i64, session_id: i64) -> Result<()> {
        let now = time::now_ms();
        if !self.store.revoke_session(user_id, session_id, now).await? {
            return Err(Error::not_found("no such session"));
        }
        Ok(())
    }

    /// Ends every session of the user ("log out everywhere", or an operator's order).
    #[instrument(skip_all, fields(%user_id), err(level = "info"))]
    pub async fn logout_everywhere(&self, user_id: i64) -> Result<Vec<i64>> {
        let now = time::now_ms();
        self.store.revoke_sessions(user_id, None, now).await
    }

    pub async fn sessions(&self, user_id: i64) -> Result<Vec<SessionInfo>> {
        self.store
            .live_sessions(user_id, self.fresh(time::now_ms()))
            .await
    }

    /// Whether each session is live (at most [`MAX_CHECKED_SESSIONS`]), in their order.
    pub async fn live(&self, sessions: &[i64]) -> Result<Vec<bool>> {
        if sessions.len() > MAX_CHECKED_SESSIONS {
            return Err(Error::invalid(format!(
                "at most {MAX_CHECKED_SESSIONS} sessions a check"
            )));
        }
        self.store
            .live_among(sessions, self.fresh(time::now_ms()))
            .await
    }

    pub async fn revoked_since(&self, since_ms: i64) -> Result<Vec<RevokedSession>> {
        self.store.revoked_since(since_ms).await
    }

    /// Starts signing with a new key; the previous ones keep verifying until their tokens expire.
    #[instrument(skip_all, err)]
    pub async fn rotate_signing_key(&self) -> Result<(String, Vec<u8>)> {
        let kid = ids::new_id_string();
        self.vault.insert_new_key(&kid).await?;
        let keys = self.reload_keys().await?;
        let key = keys
            .public_keys()
            .iter()
            .find(|(id, _)| *id == kid)
            .cloned();
        Ok(key.context("the new key is not among the public keys")?)
    }

    /// The keys that verify access tokens now, read afresh so that a key rotated through any
    /// replica is published at once.
    pub async fn public_keys(&self) -> Result<Vec<(String, Vec<u8>)>> {
        Ok(self.vault.load().await?.public_keys().to_vec())
    }
}
