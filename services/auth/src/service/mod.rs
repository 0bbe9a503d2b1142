//! The auth use cases: one function each, holding the rules. Accounts live in
//! `accounts.rs`, sessions and tokens in `sessions.rs`; what both need is here.

mod accounts;
mod sessions;

use crate::kek::Kek;
use crate::keys::SigningKeys;
use crate::password::Hasher;
use crate::store::{Fresh, Pruning, Reservation, Store, User};
use crate::throttle::{self, Limit};
use crate::vault::KeyVault;
use astral_common::{Error, Result, time};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use sha2::Digest as _;
use std::sync::{Arc, RwLock};
use std::time::Duration;

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
