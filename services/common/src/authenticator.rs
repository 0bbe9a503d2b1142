//! Access tokens checked where they arrive (the gateway, social, messaging) without asking
//! the auth service each time: its public keys are fetched at start, every few minutes and
//! when a token names an unknown key (a rotation; rationed, see [`key_fetches`]), and the
//! sessions it revoked are loaded at start (and after every bus reconnection), then followed
//! on `sessions.revoked`.

mod key_fetches;
mod revocations;

use crate::grpc::Channel;
use crate::guard::{Refused, VerifyToken};
use crate::tokens::{Claims, TokenError, TokenVerifier};
use astral_proto::auth::auth_service_client::AuthServiceClient;
use astral_proto::auth::{GetPublicKeysRequest, ListRevokedSessionsRequest};
use astral_proto::events::{Event, event::Kind};
use futures::StreamExt as _;
use futures::future::BoxFuture;
use key_fetches::{Asked, KeyFetches};
use prost::Message as _;
use revocations::{REMEMBER_MS, Revocations};
use std::sync::{Arc, Weak};
use std::time::Duration;

const REFRESH_EVERY: Duration = Duration::from_secs(300);
const RETRY_AFTER: Duration = Duration::from_millis(500);
/// The longest a token naming an unknown key waits for a key fetch under way. The auth
/// service answers in milliseconds, so a rotated key is learned well within it; a forged key
/// id is answered 401 after at most this long (at once when the keys were fetched less than
/// [`key_fetches::GAP`] ago).
const UNKNOWN_KEY_WAIT: Duration = Duration::from_secs(2);

/// Verifies access tokens against the auth service's keys and revocations.
pub struct Authenticator {
    verifier: TokenVerifier,
    /// What has been loaded so far; watched by [`Authenticator::until_ready`].
    loaded: tokio::sync::watch::Sender<Loaded>,
    /// Key fetches asked for by tokens naming a key this process does not know.
    key_fetches: Arc<KeyFetches>,
    revocations: Revocations,
}

/// What an authenticator needs before it judges tokens.
#[derive(Clone, Copy, Default)]
struct Loaded {
    /// The public keys have been fetched.
    keys: bool,
    /// The revoked sessions have been loaded.
    revocations: bool,
}

impl Loaded {
    fn all(self) -> bool {
        self.keys && self.revocations
    }
}

impl Authenticator {
    /// Starts fetching keys and following revocations; both stop when the last handle is
    /// dropped.
    pub fn start(auth: AuthServiceClient<Channel>, bus: crate::EventBus) -> Arc<Self> {
        let authenticator = Arc::new(Self::new());
        tokio::spawn(refresh_keys(
            Arc::downgrade(&authenticator),
            authenticator.key_fetches.clone(),
            auth.clone(),
        ));
        tokio::spawn(follow_revocations(
            Arc::downgrade(&authenticator),
            auth,
            bus,
        ));
        authenticator
    }

    fn new() -> Self {
        Self {
            verifier: TokenVerifier::default(),
            loaded: tokio::sync::watch::Sender::default(),
            key_fetches: Arc::default(),
            revocations: Revocations::default(),
        }
    }

    /// Whether keys and revocations are both loaded (before that, tokens are not judged).
    pub fn ready(&self) -> bool {
        self.loaded.borrow().all()
    }

    /// Finishes once keys and revocations are both loaded; holds no handle on the
    /// authenticator (it never finishes if the authenticator is dropped first).
    pub fn until_ready(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut loaded = self.loaded.subscribe();
        async move {
            if loaded.wait_for(|loaded| loaded.all()).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
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

    /// Verifies a token. One naming an unknown key waits (briefly) for a key fetch, unless
    /// the keys were fetched a moment ago.
    async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        match self.verifier.verify(token) {
            Err(TokenError::UnknownKey) => match self.key_fetches.ask() {
                Asked::TooSoon => Err(TokenError::UnknownKey),
                Asked::Wait(mut finished) => {
                    let _ = tokio::time::timeout(UNKNOWN_KEY_WAIT, finished.changed()).await;
                    self.verifier.verify(token)
                }
            },
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

/// The auth service's public keys: (key id, raw Ed25519 public key).
type PublicKeys = Vec<(String, Vec<u8>)>;

/// Where the keys come from: the auth service (a stand-in in tests).
trait KeySource: Send + 'static {
    fn fetch(&mut self) -> BoxFuture<'_, Result<PublicKeys, tonic::Status>>;
}

impl KeySource for AuthServiceClient<Channel> {
    fn fetch(&mut self) -> BoxFuture<'_, Result<PublicKeys, tonic::Status>> {
        Box::pin(async move {
            let keys = self
                .get_public_keys(GetPublicKeysRequest {})
                .await?
                .into_inner()
                .keys;
            Ok(keys
                .into_iter()
                .filter(|k| k.algorithm == "EdDSA")
                .map(|k| (k.kid, k.public_key))
                .collect())
        })
    }
}

/// Fetches the keys at start (again every [`RETRY_AFTER`] until it works), then whenever
/// one is due (periodically, or asked for by an unknown key id), until the authenticator is
/// dropped.
async fn refresh_keys(
    authenticator: Weak<Authenticator>,
    fetches: Arc<KeyFetches>,
    mut source: impl KeySource,
) {
    loop {
        let fetched = source.fetch().await;
        metrics::counter!("astral_token_key_fetches_total").increment(1);
        let Some(this) = authenticator.upgrade() else {
            return;
        };
        match fetched {
            Ok(keys) => {
                this.verifier.set_keys(keys);
                this.loaded.send_modify(|loaded| loaded.keys = true);
            }
            Err(status) => {
                tracing::warn!(%status, "cannot fetch token keys from the auth service");
            }
        }
        let loaded = this.loaded.borrow().keys;
        drop(this);
        fetches.finished();
        fetches
            .due(if loaded { REFRESH_EVERY } else { RETRY_AFTER })
            .await;
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
                            this.loaded.send_modify(|loaded| loaded.revocations = true);
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

#[cfg(test)]
mod tests;
