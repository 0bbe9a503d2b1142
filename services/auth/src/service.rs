//! The auth use cases: one function each, holding the rules.

use crate::domain::{MAX_PASSWORD_BYTES, NewPassword, Username};
use crate::kek::Kek;
use crate::keys::SigningKeys;
use crate::password::Hasher;
use crate::store::{Fresh, NewSession, Pruning, Refreshed, Reservation, SessionInfo, Store, User};
use crate::throttle::{self, Limit};
use crate::vault::KeyVault;
use anyhow::Context as _;
use astral_common::tokens::{Claims, TokenError};
use astral_common::{Error, Result, ids, time};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use sha2::Digest as _;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tracing::instrument;

/// A session just opened or refreshed.
#[derive(Debug)]
pub struct Authenticated {
    pub access_token: String,
    pub access_token_expires_at_ms: i64,
    pub refresh_token: String,
    pub session_id: i64,
    pub user: User,
}

/// What an operator may tune.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Accounts one client address may create in any ten minutes.
    pub registrations_per_10_min: i64,
    /// A session not refreshed for this long ends.
    pub session_idle_ms: i64,
    /// A session ends this long after its login, however used.
    pub session_lifetime_ms: i64,
}

pub(crate) const DAY_MS: i64 = 24 * 60 * 60 * 1000;

impl Default for Settings {
    fn default() -> Self {
        Self {
            registrations_per_10_min: throttle::REGISTRATIONS_PER_10_MIN,
            session_idle_ms: 30 * DAY_MS,
            session_lifetime_ms: 365 * DAY_MS,
        }
    }
}

/// How often expired rows are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(10 * 60);

pub struct AuthService {
    store: Store,
    settings: Settings,
    hasher: Hasher,
    /// The signing keys' table, sealed with the key-encryption key.
    vault: KeyVault,
    /// The newest key signs; reloaded from the database every half minute so that a key
    /// rotated through one replica soon signs on every replica.
    keys: RwLock<Arc<SigningKeys>>,
    /// Verified when the username is unknown, so that a miss costs what a wrong password costs.
    decoy_hash: String,
}

const WRONG_CREDENTIALS: &str = "wrong username or password";

impl AuthService {
    /// Loads the signing keys (sealing legacy clear seeds with `kek`, creating the first key on
    /// a new database) and starts serving. Refuses to start when `kek` does not open them.
    pub async fn start(
        store: Store,
        kek: Option<Kek>,
        settings: Settings,
    ) -> anyhow::Result<Arc<Self>> {
        let (vault, keys) = KeyVault::open(store.clone(), kek).await?;
        let hasher = Hasher::per_core();
        let decoy_hash = hasher.hash("decoy password".into()).await?;
        let service = Arc::new(Self {
            store,
            settings,
            hasher,
            vault,
            keys: RwLock::new(Arc::new(keys)),
            decoy_hash,
        });
        let weak = Arc::downgrade(&service);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(30)).await;
                let Some(service) = weak.upgrade() else { break };
                if let Err(error) = service.reload_keys().await {
                    tracing::warn!(error = format!("{error:#}"), "cannot reload signing keys");
                }
            }
        });
        let weak = Arc::downgrade(&service);
        tokio::spawn(async move {
            loop {
                let Some(service) = weak.upgrade() else { break };
                match service.prune().await {
                    Ok(0) => {}
                    Ok(deleted) => tracing::info!(deleted, "pruned expired rows"),
                    Err(error) => tracing::warn!(%error, "cannot prune expired rows"),
                }
                drop(service);
                tokio::time::sleep(PRUNE_EVERY).await;
            }
        });
        Ok(service)
    }

    /// Deletes the rows no rule needs any more: old attempts, sessions that expired or were
    /// revoked a day ago (past every access token's life), spent refresh tokens older than a
    /// session may sit unused.
    async fn prune(&self) -> Result<u64> {
        let now = time::now_ms();
        let fresh = self.fresh(now);
        self.store
            .prune(&Pruning {
                attempts_before_ms: now - DAY_MS,
                sessions: Fresh {
                    used_after_ms: fresh.used_after_ms - DAY_MS,
                    created_after_ms: fresh.created_after_ms - DAY_MS,
                },
                revoked_before_ms: now - DAY_MS,
                spent_before_ms: now - self.settings.session_idle_ms,
            })
            .await
    }

    /// Which sessions may still be refreshed at `now_ms`.
    fn fresh(&self, now_ms: i64) -> Fresh {
        Fresh {
            used_after_ms: now_ms - self.settings.session_idle_ms,
            created_after_ms: now_ms - self.settings.session_lifetime_ms,
        }
    }

    /// Reserves an attempt under each key or refuses with how long to wait.
    async fn reserve(&self, keys: &[(String, Limit)], what: &str) -> Result<Vec<i64>> {
        match self.store.reserve_attempt(keys, time::now_ms()).await? {
            Reservation::Granted(attempts) => Ok(attempts),
            Reservation::Refused { wait_ms } => {
                let retry_after_s = throttle::seconds(wait_ms);
                Err(Error::RateLimited {
                    message: format!("too many {what}: try again in {retry_after_s} s"),
                    retry_after_s,
                })
            }
        }
    }

    async fn reload_keys(&self) -> anyhow::Result<Arc<SigningKeys>> {
        let keys = Arc::new(self.vault.load().await?);
        *self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = keys.clone();
        Ok(keys)
    }

    fn keys(&self) -> Arc<SigningKeys> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

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
        let new_hash = self.hasher.hash(new.as_str().to_owned()).await?;
        self.store.set_password_hash(user_id, &new_hash).await?;
        let now = time::now_ms();
        self.store
            .revoke_sessions(user_id, Some(session_id), now)
            .await
    }

    pub async fn sessions(&self, user_id: i64) -> Result<Vec<SessionInfo>> {
        self.store
            .live_sessions(user_id, self.fresh(time::now_ms()))
            .await
    }

    pub async fn revoked_since(&self, since_ms: i64) -> Result<Vec<(i64, i64, i64)>> {
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
    pub async fn list_users(&self, after: &str, limit: i64) -> Result<Vec<User>> {
        let limit = match limit {
            0 => 100,
            1..=1000 => limit,
            _ => return Err(Error::invalid("limit is between 1 and 1000")),
        };
        self.store.users_after(after, limit).await
    }

    pub async fn users(&self, ids: &[i64]) -> Result<Vec<User>> {
        self.store.users(ids).await
    }

    /// The keys that verify access tokens now, read afresh so that a key rotated through any
    /// replica is published at once.
    pub async fn public_keys(&self) -> Result<Vec<(String, Vec<u8>)>> {
        Ok(self.vault.load().await?.public_keys().to_vec())
    }

    fn authenticated(
        &self,
        user: User,
        session_id: i64,
        refresh_token: String,
    ) -> Result<Authenticated> {
        let (access_token, expires_at_s) =
            self.keys().sign(&user, session_id, time::now_ms() / 1000)?;
        Ok(Authenticated {
            access_token,
            access_token_expires_at_ms: expires_at_s * 1000,
            refresh_token,
            session_id,
            user,
        })
    }
}

/// A new opaque refresh token and the hash that is stored in its place.
fn new_refresh_token() -> (String, String) {
    let token = B64URL.encode(rand::random::<[u8; 32]>());
    let hash = hash_refresh_token(&token);
    (token, hash)
}

fn hash_refresh_token(token: &str) -> String {
    B64URL.encode(sha2::Sha256::digest(token.as_bytes()))
}
