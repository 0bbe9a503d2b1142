//! Keeps the auth service's public keys: fetched at start, refreshed every few minutes and
//! whenever a token names an unknown key (so a rotated key is picked up at once).

use crate::state::AppState;
use astral_proto::auth::GetPublicKeysRequest;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

const REFRESH_EVERY: Duration = Duration::from_secs(300);
const RETRY_AFTER: Duration = Duration::from_millis(500);
/// The least time between two fetches asked for by unknown key ids.
const MIN_GAP: Duration = Duration::from_secs(1);

pub fn spawn_refresh(state: Arc<AppState>) {
    tokio::spawn(async move {
        loop {
            match state
                .auth
                .clone()
                .get_public_keys(GetPublicKeysRequest {})
                .await
            {
                Ok(response) => {
                    let keys = response.into_inner().keys;
                    let keys = keys
                        .into_iter()
                        .filter(|k| k.algorithm == "EdDSA")
                        .map(|k| (k.kid, k.public_key));
                    state.verifier.set_keys(keys);
                    state.keys_loaded.store(true, Ordering::Release);
                    tokio::time::sleep(MIN_GAP).await;
                    let _ =
                        tokio::time::timeout(REFRESH_EVERY, state.refresh_keys.notified()).await;
                }
                Err(status) => {
                    tracing::warn!(%status, "cannot fetch token keys from the auth service; retrying");
                    tokio::time::sleep(RETRY_AFTER).await;
                }
            }
        }
    });
}
