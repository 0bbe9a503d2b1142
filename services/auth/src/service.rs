//! The auth use cases: one function each, holding the rules.

use crate::domain::{MAX_PASSWORD_BYTES, NewPassword, Username};
use crate::events::Events;
use crate::keys::SigningKeys;
use crate::store::{NewSession, Store, User};
use anyhow::Context as _;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use astral_common::{Error, EventBus, Result, ids, time};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use sha2::Digest as _;
use std::sync::Arc;
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

pub struct AuthService {
    store: Store,
    events: Events,
    keys: SigningKeys,
    /// Verified when the username is unknown, so that a miss costs what a wrong password costs.
    decoy_hash: String,
}

const WRONG_CREDENTIALS: &str = "wrong username or password";

impl AuthService {
    /// Loads the signing keys (creating the first one on a new database) and starts serving.
    pub async fn start(store: Store, bus: EventBus) -> anyhow::Result<Arc<Self>> {
        if store.signing_keys().await?.is_empty() {
            store
                .insert_signing_key(
                    &ids::new_id_string(),
                    &SigningKeys::new_seed(),
                    time::now_ms(),
                )
                .await?;
        }
        // Another replica may have inserted its key at the same moment: the newest wins for all.
        let keys = SigningKeys::from_stored(&store.signing_keys().await?)?;
        let decoy_hash = hash_password("decoy password".into()).await?;
        Ok(Arc::new(Self {
            store,
            events: Events::new(bus),
            keys,
            decoy_hash,
        }))
    }

    #[instrument(skip_all, fields(username = %username), err(level = "info"))]
    pub async fn register(
        &self,
        username: &str,
        password: String,
        user_agent: &str,
    ) -> Result<Authenticated> {
        let username = Username::parse(username)?;
        let password = NewPassword::parse(password)?;
        let user = User {
            id: ids::new_id(),
            username: username.as_str().to_owned(),
        };
        let password_hash = hash_password(password.as_str().to_owned()).await?;
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

    #[instrument(skip_all, fields(username = %username), err(level = "info"))]
    pub async fn login(
        &self,
        username: &str,
        password: String,
        user_agent: &str,
    ) -> Result<Authenticated> {
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
        let matches = verify_password(password, hash).await?;
        let Some(credentials) = credentials.filter(|_| matches) else {
            return Err(Error::unauthenticated(WRONG_CREDENTIALS));
        };
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

    #[instrument(skip_all, err(level = "info"))]
    pub async fn refresh(&self, refresh_token: &str) -> Result<Authenticated> {
        let (new_token, new_hash) = new_refresh_token();
        let rotated = self
            .store
            .rotate_refresh(
                &hash_refresh_token(refresh_token),
                &new_hash,
                time::now_ms(),
            )
            .await?;
        let Some((session_id, user)) = rotated else {
            return Err(Error::unauthenticated("the refresh token is not valid"));
        };
        self.authenticated(user, session_id, new_token)
    }

    #[instrument(skip_all, fields(%user_id, %session_id), err(level = "info"))]
    pub async fn logout(&self, user_id: i64, session_id: i64) -> Result<()> {
        if self
            .store
            .revoke_session(user_id, session_id, time::now_ms())
            .await?
        {
            self.events.session_ended(user_id, session_id).await;
        }
        Ok(())
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

    pub async fn users(&self, ids: &[i64]) -> Result<Vec<User>> {
        self.store.users(ids).await
    }

    pub fn public_keys(&self) -> &[(String, Vec<u8>)] {
        self.keys.public_keys()
    }

    fn authenticated(
        &self,
        user: User,
        session_id: i64,
        refresh_token: String,
    ) -> Result<Authenticated> {
        let (access_token, expires_at_s) =
            self.keys.sign(user.id, session_id, time::now_ms() / 1000)?;
        Ok(Authenticated {
            access_token,
            access_token_expires_at_ms: expires_at_s * 1000,
            refresh_token,
            session_id,
            user,
        })
    }
}

/// argon2id with the crate's default parameters (m = 19 MiB, t = 2, p = 1), off the async runtime.
async fn hash_password(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        argon2::Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|error| anyhow::anyhow!("hash a password: {error}"))
    })
    .await
    .context("password hashing task")?
}

async fn verify_password(password: String, hash: String) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || {
        let hash =
            PasswordHash::new(&hash).map_err(|error| anyhow::anyhow!("stored hash: {error}"))?;
        Ok(argon2::Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok())
    })
    .await
    .context("password verification task")?
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
