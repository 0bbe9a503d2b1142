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
mod tests {
    #![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap does
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::time::Instant;

    /// A stand-in auth service: counts the fetches, answers the keys it is given, after
    /// `delay` from the second fetch on.
    #[derive(Clone, Default)]
    struct Keys {
        fetches: Arc<AtomicUsize>,
        keys: Arc<Mutex<PublicKeys>>,
        delay: Arc<Mutex<Duration>>,
    }

    impl KeySource for Keys {
        fn fetch(&mut self) -> BoxFuture<'_, Result<PublicKeys, tonic::Status>> {
            let count = self.fetches.fetch_add(1, Ordering::SeqCst);
            let delay = *self.delay.lock().unwrap();
            let keys = self.keys.lock().unwrap().clone();
            Box::pin(async move {
                if count > 0 {
                    tokio::time::sleep(delay).await;
                }
                Ok(keys)
            })
        }
    }

    impl Keys {
        fn fetched(&self) -> usize {
            self.fetches.load(Ordering::SeqCst)
        }
    }

    /// A token signed by the key made from `seed`, naming `kid`, and that key's public half.
    fn token(kid: &str, seed: u8) -> (String, (String, Vec<u8>)) {
        use ed25519_dalek::pkcs8::EncodePrivateKey as _;
        let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
        let der = key.to_pkcs8_der().unwrap();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(kid.to_owned());
        let now = crate::time::now_ms() / 1000;
        let claims = Claims {
            sub: "1".into(),
            sid: "2".into(),
            iat: now,
            exp: now + 900,
            name: String::new(),
        };
        let encoding = jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes());
        let token = jsonwebtoken::encode(&header, &claims, &encoding).unwrap();
        let public = (kid.to_owned(), key.verifying_key().to_bytes().to_vec());
        (token, public)
    }

    /// An authenticator on `source`, once it has its first keys.
    async fn started(source: &Keys) -> Arc<Authenticator> {
        let authenticator = Arc::new(Authenticator::new());
        tokio::spawn(refresh_keys(
            Arc::downgrade(&authenticator),
            authenticator.key_fetches.clone(),
            source.clone(),
        ));
        let mut loaded = authenticator.loaded.subscribe();
        tokio::time::timeout(
            Duration::from_secs(5),
            loaded.wait_for(|loaded| loaded.keys),
        )
        .await
        .expect("keys never loaded")
        .unwrap();
        authenticator
    }

    /// Verifies `token` `n` times at once; the answers and how long the slowest took.
    async fn at_once(
        authenticator: &Authenticator,
        token: &str,
        n: usize,
    ) -> (Vec<Result<Claims, TokenError>>, Duration) {
        let started = Instant::now();
        let answers = futures::future::join_all((0..n).map(|_| authenticator.verify(token))).await;
        (answers, started.elapsed())
    }

    #[tokio::test]
    async fn fifty_tokens_with_a_forged_key_id_cost_one_key_fetch_and_are_answered_at_once() {
        let (_, genuine) = token("k1", 1);
        let source = Keys::default();
        *source.keys.lock().unwrap() = vec![genuine];
        let authenticator = started(&source).await;
        let (forged, _) = token("forged", 2);

        let (answers, took) = at_once(&authenticator, &forged, 50).await;
        assert!(answers.iter().all(|a| *a == Err(TokenError::UnknownKey)));
        assert_eq!(
            source.fetched(),
            2,
            "the start, and one fetch shared by all 50"
        );
        assert!(took < Duration::from_millis(500), "{took:?}");

        // Within the gap: answered without any fetch or wait.
        let (answers, took) = at_once(&authenticator, &forged, 50).await;
        assert!(answers.iter().all(|a| *a == Err(TokenError::UnknownKey)));
        assert_eq!(source.fetched(), 2);
        assert!(took < Duration::from_millis(50), "{took:?}");
    }

    #[tokio::test]
    async fn a_slow_auth_service_holds_a_forged_key_id_at_most_the_short_bound() {
        let source = Keys::default();
        let authenticator = started(&source).await;
        *source.delay.lock().unwrap() = Duration::from_secs(30);
        let (forged, _) = token("forged", 2);

        let (answers, took) = at_once(&authenticator, &forged, 50).await;
        assert!(answers.iter().all(|a| *a == Err(TokenError::UnknownKey)));
        assert_eq!(
            source.fetched(),
            2,
            "one fetch, still running, shared by all"
        );
        assert!(took >= UNKNOWN_KEY_WAIT && took < UNKNOWN_KEY_WAIT + Duration::from_millis(500));
        // A fetch still running is joined, never repeated.
        let (_, took) = at_once(&authenticator, &forged, 50).await;
        assert_eq!(source.fetched(), 2);
        assert!(took < UNKNOWN_KEY_WAIT + Duration::from_millis(500));
    }

    #[tokio::test]
    async fn a_rotated_key_is_learned_at_once_and_after_the_gap_when_forgeries_came_first() {
        let (old_token, old) = token("k1", 1);
        let (new_token, new) = token("k2", 3);
        let (newest_token, newest) = token("k3", 4);
        let source = Keys::default();
        *source.keys.lock().unwrap() = vec![old.clone()];
        let authenticator = started(&source).await;
        assert!(authenticator.verify(&old_token).await.is_ok());

        // A rotation: the first token signed by the new key waits for one fetch.
        *source.keys.lock().unwrap() = vec![old.clone(), new.clone()];
        assert_eq!(authenticator.verify(&new_token).await.unwrap().sub, "1");
        assert_eq!(source.fetched(), 2);

        // Another rotation right after: refused for now (the keys were just fetched), then
        // learned by the one fetch made when the gap ends.
        *source.keys.lock().unwrap() = vec![old, new, newest];
        assert_eq!(
            authenticator.verify(&newest_token).await,
            Err(TokenError::UnknownKey)
        );
        let deadline = Instant::now() + key_fetches::GAP + Duration::from_secs(2);
        while authenticator.verify(&newest_token).await.is_err() {
            assert!(Instant::now() < deadline, "the new key was never learned");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(source.fetched(), 3);
    }
}
