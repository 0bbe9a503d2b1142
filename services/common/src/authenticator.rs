//! Access tokens checked where they arrive (the gateway, social, messaging) without asking
//! the auth service each time: its public keys are fetched at start, every few minutes and at
//! once when a token names an unknown key (a rotation), and the sessions it revoked are
//! loaded at start (and after every bus reconnection), then followed on `sessions.revoked`.

mod revocations;

use crate::grpc::Channel;
use crate::guard::{Refused, VerifyToken};
use crate::tokens::{Claims, TokenError, TokenVerifier};
use astral_proto::auth::auth_service_client::AuthServiceClient;
use astral_proto::auth::{GetPublicKeysRequest, ListRevokedSessionsRequest};
use astral_proto::events::{Event, event::Kind};
use futures::StreamExt as _;
use futures::future::BoxFuture;
use prost::Message as _;
use revocations::{REMEMBER_MS, Revocations};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

const REFRESH_EVERY: Duration = Duration::from_secs(300);
const RETRY_AFTER: Duration = Duration::from_millis(500);
/// The least time between two key fetches asked for by unknown key ids.
const MIN_GAP: Duration = Duration::from_secs(1);
/// How long a token naming an unknown key waits for the keys to be fetched again.
const UNKNOWN_KEY_WAIT: Duration = Duration::from_secs(3);

/// Verifies access tokens against the auth service's keys and revocations.
pub struct Authenticator {
    verifier: TokenVerifier,
    /// Set once the public keys have been fetched.
    keys_loaded: AtomicBool,
    /// Wakes the key refresher when a token names a key this process does not know.
    refresh_keys: tokio::sync::Notify,
    revocations: Revocations,
    /// Set once the revoked sessions have been loaded.
    revocations_loaded: AtomicBool,
}

impl Authenticator {
    /// Starts fetching keys and following revocations; both stop when the last handle is
    /// dropped.
    pub fn start(auth: AuthServiceClient<Channel>, bus: crate::EventBus) -> Arc<Self> {
        let authenticator = Arc::new(Self {
            verifier: TokenVerifier::default(),
            keys_loaded: AtomicBool::new(false),
            refresh_keys: tokio::sync::Notify::new(),
            revocations: Revocations::default(),
            revocations_loaded: AtomicBool::new(false),
        });
        tokio::spawn(refresh_keys(Arc::downgrade(&authenticator), auth.clone()));
        tokio::spawn(follow_revocations(
            Arc::downgrade(&authenticator),
            auth,
            bus,
        ));
        authenticator
    }

    /// Whether keys and revocations are both loaded (before that, tokens are not judged).
    pub fn ready(&self) -> bool {
        self.keys_loaded.load(Ordering::Acquire) && self.revocations_loaded.load(Ordering::Acquire)
    }

    /// Verifies a token and refuses it if its session has ended.
    pub async fn authenticate(&self, token: &str) -> Result<Claims, Refused> {
        if !self.ready() {
            return Err(Refused::Unavailable(
                "token keys are not loaded yet: try again".into(),
            ));
        }
        let claims = self
            .verify(token)
            .await
            .map_err(|error| Refused::Unauthenticated(error.to_string()))?;
        if self.revocations.is_revoked(&claims.sid) {
            return Err(Refused::Unauthenticated("this session has ended".into()));
        }
        Ok(claims)
    }

    /// Verifies a token, fetching the keys once more if it names an unknown key.
    async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        match self.verifier.verify(token) {
            Err(TokenError::UnknownKey) => {
                self.refresh_keys.notify_one();
                // A rotated key reaches this process within moments; one short wait covers it.
                let kid = TokenVerifier::key_id(token)?;
                let deadline = tokio::time::Instant::now() + UNKNOWN_KEY_WAIT;
                while !self.verifier.knows(&kid) && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                self.verifier.verify(token)
            }
            other => other,
        }
    }

    /// A session that ended at `revoked_at_ms`: its tokens are refused from now on.
    pub fn revoke(&self, session_id: String, revoked_at_ms: i64) {
        self.revocations.revoke(session_id, revoked_at_ms);
    }

    /// Sessions this process just saw end (it relayed the logout): refused at once, before
    /// the news comes back over the bus.
    pub fn revoke_now(&self, session_ids: Vec<String>) {
        let now = crate::time::now_ms();
        for session_id in session_ids {
            self.revocations.revoke(session_id, now);
        }
    }
}

impl VerifyToken for Authenticator {
    fn verify<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Claims, Refused>> {
        Box::pin(self.authenticate(token))
    }
}

async fn refresh_keys(authenticator: Weak<Authenticator>, mut auth: AuthServiceClient<Channel>) {
    loop {
        let fetched = auth.get_public_keys(GetPublicKeysRequest {}).await;
        let Some(this) = authenticator.upgrade() else {
            return;
        };
        match fetched {
            Ok(response) => {
                let keys = response.into_inner().keys;
                let keys = keys
                    .into_iter()
                    .filter(|k| k.algorithm == "EdDSA")
                    .map(|k| (k.kid, k.public_key));
                this.verifier.set_keys(keys);
                this.keys_loaded.store(true, Ordering::Release);
                tokio::time::sleep(MIN_GAP).await;
                let _ = tokio::time::timeout(REFRESH_EVERY, this.refresh_keys.notified()).await;
            }
            Err(status) => {
                tracing::warn!(%status, "cannot fetch token keys from the auth service; retrying");
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    }
}

/// Follows `sessions.revoked` and reloads the list whenever the bus (re)connects.
async fn follow_revocations(
    authenticator: Weak<Authenticator>,
    mut auth: AuthServiceClient<Channel>,
    bus: crate::EventBus,
) {
    let mut subscription = loop {
        match bus
            .subscribe(astral_proto::subjects::SESSIONS_REVOKED.to_owned())
            .await
        {
            Ok(subscription) => break subscription,
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "cannot follow revoked sessions; retrying"
                );
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    };
    let mut connections = bus.connections();
    connections.mark_changed();
    loop {
        tokio::select! {
            changed = connections.changed() => {
                if changed.is_err() {
                    return;
                }
                loop {
                    let since_ms = crate::time::now_ms() - REMEMBER_MS;
                    let listed = auth
                        .list_revoked_sessions(ListRevokedSessionsRequest { since_ms })
                        .await;
                    let Some(this) = authenticator.upgrade() else { return };
                    match listed {
                        Ok(response) => {
                            for revoked in response.into_inner().sessions {
                                this.revoke(revoked.session_id, revoked.revoked_at_ms);
                            }
                            this.revocations_loaded.store(true, Ordering::Release);
                            break;
                        }
                        Err(status) => {
                            tracing::warn!(%status, "cannot load revoked sessions; retrying");
                            tokio::time::sleep(RETRY_AFTER).await;
                        }
                    }
                }
            }
            delivery = subscription.next() => {
                let Some(delivery) = delivery else { return };
                let Some(this) = authenticator.upgrade() else { return };
                if let Ok(Event { kind: Some(Kind::SessionEnded(ended)), .. }) = Event::decode(delivery.payload) {
                    this.revoke(ended.session_id, ended.revoked_at_ms);
                }
            }
        }
    }
}
