//! Tests of `authenticator.rs`.

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
