//! Web Push subscriptions: the deployment's key for browsers, and each browser's
//! subscription kept or removed. Sending is the sender's (`push/sender.rs`).

use super::MessagingService;
use crate::push::encrypt::check_keys;
use crate::store::Subscription;
use astral_common::guard::Actor;
use astral_common::{Error, Result, time};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tracing::instrument;

/// A browser's subscription as it sends it.
pub struct NewSubscription {
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
}

fn push_off() -> Error {
    Error::not_found("push notifications are not offered here")
}

impl MessagingService {
    /// The deployment's VAPID public key (base64url).
    pub fn push_key(&self) -> Result<String> {
        let push = self.push.as_ref().ok_or_else(push_off)?;
        Ok(push.config.key.public_key_base64url())
    }

    /// Keeps a browser's subscription for the actor: an endpoint that may be pushed to (its
    /// host resolving to public addresses only) and keys that encrypt.
    #[instrument(skip_all, fields(actor = actor.user_id), err(level = "info"))]
    pub async fn add_push_subscription(&self, actor: &Actor, new: NewSubscription) -> Result<()> {
        let push = self.push.as_ref().ok_or_else(push_off)?;
        let policy = push.config.endpoints;
        let uri = policy.check(&new.endpoint).map_err(Error::invalid)?;
        let host = uri
            .host()
            .unwrap_or_default()
            .trim_matches(|c| c == '[' || c == ']');
        let port = uri.port_u16().unwrap_or(443);
        if let Err(error) = policy.resolve(host, port).await {
            return Err(Error::invalid(format!(
                "the push endpoint is refused: {error}"
            )));
        }
        let keys = (
            URL_SAFE_NO_PAD.decode(new.p256dh.trim_end_matches('=')),
            URL_SAFE_NO_PAD.decode(new.auth.trim_end_matches('=')),
        );
        let (Ok(p256dh), Ok(auth)) = keys else {
            return Err(Error::invalid(
                "keys.p256dh and keys.auth must be base64url",
            ));
        };
        check_keys(&p256dh, &auth).map_err(|error| Error::invalid(error.to_string()))?;
        let subscription = Subscription {
            endpoint: new.endpoint,
            user_id: actor.user_id,
            session_id: actor.session_id,
            p256dh: URL_SAFE_NO_PAD.encode(p256dh),
            auth: URL_SAFE_NO_PAD.encode(auth),
        };
        self.store
            .subscribe_push(&subscription, time::now_ms())
            .await
    }

    /// Removes the actor's subscription at `endpoint`, if they have one there.
    #[instrument(skip_all, fields(%actor), err(level = "info"))]
    pub async fn remove_push_subscription(&self, actor: i64, endpoint: &str) -> Result<()> {
        self.push.as_ref().ok_or_else(push_off)?;
        self.store.unsubscribe_push(actor, endpoint).await
    }
}
