//! Accounts: registering, logging in (throttled), changing the password, and looking users
//! up.

use super::{AuthService, Authenticated, WRONG_CREDENTIALS, new_refresh_token};
use crate::domain::{MAX_PASSWORD_BYTES, NewPassword, Username};
use crate::store::{NewSession, User};
use crate::throttle;
use astral_common::{Error, Result, ids, time};
use tracing::instrument;

impl AuthService {
    /// Creates an account. A taken username is refused before any hashing; each client
    /// address may create a few accounts an hour.
    #[instrument(skip_all, fields(username = ?username), err(level = "info"))]
    pub async fn register(
        &self,
        username: &str,
        password: String,
        user_agent: &str,
        client_addr: &str,
    ) -> Result<Authenticated> {
        let username = Username::parse(username)?;
        let password = NewPassword::parse(password)?;
        if self
            .store
            .user_by_username(username.as_str())
            .await?
            .is_some()
        {
            return Err(Error::conflict("that username is taken"));
        }
        let limit = throttle::registrations(self.settings.registrations_per_10_min);
        let attempts = self
            .reserve(&[(format!("register:{client_addr}"), limit)], "accounts")
            .await?;
        let user = User {
            id: ids::new_id(),
            username: username.as_str().to_owned(),
        };
        let password_hash = match self.hasher.hash(password.as_str().to_owned()).await {
            Ok(hash) => hash,
            Err(error) => {
                self.store.release_attempts(&attempts).await?;
                return Err(error);
            }
        };
        let (refresh_token, refresh_hash) = new_refresh_token();
        let session = NewSession {
            id: ids::new_id(),
            user_id: user.id,
            refresh_hash: &refresh_hash,
            user_agent,
            now_ms: time::now_ms(),
        };
        self.store
            .insert_user_with_session(&user, &password_hash, &session)
            .await?;
        self.authenticated(user, session.id, refresh_token)
    }

    /// Opens a session. Each attempt is reserved under its (username, client address) and
    /// its address before the password is checked, so parallel guesses are counted like
    /// sequential ones; a right password gives its reservation back. An unknown username
    /// costs a password check like a wrong password does.
    #[instrument(skip_all, fields(username = ?username), err(level = "info"))]
    pub async fn login(
        &self,
        username: &str,
        password: String,
        user_agent: &str,
        client_addr: &str,
    ) -> Result<Authenticated> {
        let name_key = format!(
            "login:{}@{client_addr}",
            username.trim().to_ascii_lowercase()
        );
        let attempts = self
            .reserve(
                &[
                    (name_key.clone(), throttle::PER_NAME_AND_ADDRESS),
                    (
                        format!("login-address:{client_addr}"),
                        throttle::PER_ADDRESS,
                    ),
                ],
                "failed logins",
            )
            .await?;
        let credentials = match Username::parse(username) {
            Ok(username) if password.len() <= MAX_PASSWORD_BYTES => {
                self.store.credentials(username.as_str()).await?
            }
            _ => None,
        };
        let password = if password.len() <= MAX_PASSWORD_BYTES {
            password
        } else {
            String::new()
        };
        let hash = credentials
            .as_ref()
            .map_or(self.decoy_hash.clone(), |c| c.password_hash.clone());
        let matches = match self.hasher.verify(password, hash).await {
            Ok(matches) => matches,
            Err(error) => {
                self.store.release_attempts(&attempts).await?;
                return Err(error);
            }
        };
        let Some(credentials) = credentials.filter(|_| matches) else {
            return Err(Error::unauthenticated(WRONG_CREDENTIALS));
        };
        self.store.release_attempts(&attempts).await?;
        self.store.reset_backoff(&name_key).await?;
        let (refresh_token, refresh_hash) = new_refresh_token();
        let session_id = ids::new_id();
        let session = NewSession {
            id: session_id,
            user_id: credentials.user.id,
            refresh_hash: &refresh_hash,
            user_agent,
            now_ms: time::now_ms(),
        };
        self.store.insert_session(&session).await?;
        self.authenticated(credentials.user, session_id, refresh_token)
    }

    /// Changes the password after checking the current one; every other session ends.
    #[instrument(skip_all, fields(%user_id, %session_id), err(level = "info"))]
    pub async fn change_password(
        &self,
        user_id: i64,
        session_id: i64,
        current: String,
        new: String,
    ) -> Result<Vec<i64>> {
        let new = NewPassword::parse(new)?;
        let unchanged = current == new.as_str();
        let hash = self.store.password_hash(user_id).await?;
        let hash = hash.ok_or_else(|| Error::not_found("no such user"))?;
        let current = if current.len() <= MAX_PASSWORD_BYTES {
            current
        } else {
            String::new()
        };
        if !self.hasher.verify(current, hash).await? {
            return Err(Error::forbidden("the current password is wrong"));
        }
        if unchanged {
            return Err(Error::invalid(
                "the new password must differ from the current one",
            ));
        }
        let new_hash = self.hasher.hash(new.as_str().to_owned()).await?;
        self.store.set_password_hash(user_id, &new_hash).await?;
        let now = time::now_ms();
        self.store
            .revoke_sessions(user_id, Some(session_id), now)
            .await
    }

    pub async fn user(&self, id: i64) -> Result<User> {
        self.store
            .user(id)
            .await?
            .ok_or_else(|| Error::not_found("no such user"))
    }

    pub async fn user_by_username(&self, username: &str) -> Result<User> {
        let Ok(username) = Username::parse(username) else {
            return Err(Error::not_found("no such user"));
        };
        self.store
            .user_by_username(username.as_str())
            .await?
            .ok_or_else(|| Error::not_found("no such user"))
    }

    /// A page of users by username, for admin tools.
    pub async fn list_users(&self, after: &str, limit: Option<i64>) -> Result<Vec<User>> {
        let limit = astral_common::paging::page_size(limit, 100, 1000)?;
        self.store.users_after(after, limit).await
    }

    pub async fn users(&self, ids: &[i64]) -> Result<Vec<User>> {
        self.store.users(ids).await
    }
}
