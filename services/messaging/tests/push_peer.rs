//! Web Push end to end over HTTP: a push encrypted and signed by this crate's `push` module,
//! sent to the test push service, which verifies it and decrypts it as the browser would.
#![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap does

use astral_common::testing::{PushPeer, PushSubscription};
use astral_messaging::push::encrypt::encrypt;
use astral_messaging::push::vapid::VapidKey;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SUBJECT: &str = "mailto:ops@astral.example";
const WAIT: Duration = Duration::from_secs(5);

/// The application server's side of one push.
struct Sender {
    key: VapidKey,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl Sender {
    fn new() -> Self {
        Self {
            key: VapidKey::generate(),
            http: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// Encrypts `payload` for `subscription`, signs for its push service, and POSTs it:
    /// the status the push service answered.
    async fn push(&self, subscription: &PushSubscription, payload: &[u8]) -> http::StatusCode {
        let body = encrypted(subscription, payload);
        self.send(self.signed(subscription).body(body).unwrap())
            .await
    }

    /// A push's request to `subscription` without its body: headers and VAPID token.
    fn signed(&self, subscription: &PushSubscription) -> http::request::Builder {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let authorization = self
            .key
            .authorization(&subscription.endpoint, SUBJECT, now.as_secs())
            .unwrap();
        http::Request::post(&subscription.endpoint)
            .header("content-encoding", "aes128gcm")
            .header("ttl", "60")
            .header("urgency", "high")
            .header("authorization", authorization)
    }

    async fn send(&self, request: http::Request<Full<Bytes>>) -> http::StatusCode {
        self.http.request(request).await.unwrap().status()
    }
}

/// `payload` encrypted for `subscription`'s browser.
fn encrypted(subscription: &PushSubscription, payload: &[u8]) -> Full<Bytes> {
    let p256dh = URL_SAFE_NO_PAD.decode(&subscription.p256dh).unwrap();
    let auth = URL_SAFE_NO_PAD.decode(&subscription.auth).unwrap();
    Full::new(Bytes::from(encrypt(payload, &p256dh, &auth).unwrap()))
}

#[tokio::test]
async fn a_push_reaches_the_browser_decrypted() {
    let peer = PushPeer::start().await.unwrap();
    let browser = peer.subscribe();
    let sender = Sender::new();
    peer.expect_vapid_key(&sender.key.public_key_base64url());

    let payload = br#"{"chat_id":"42","body":"hello"}"#;
    assert_eq!(
        sender.push(&browser, payload).await,
        http::StatusCode::CREATED
    );
    let delivery = peer.next(&browser.endpoint, WAIT).await.unwrap();
    assert_eq!(delivery.payload, payload);
    assert_eq!(
        (
            delivery.ttl,
            delivery.urgency.as_deref(),
            delivery.subject.as_str()
        ),
        (60, Some("high"), SUBJECT)
    );
    assert_eq!(peer.deliveries(&browser.endpoint), 1);
    assert!(peer.failures().is_empty(), "{:?}", peer.failures());
}

#[tokio::test]
async fn a_push_signed_by_another_vapid_key_is_refused_and_recorded() {
    let peer = PushPeer::start().await.unwrap();
    let browser = peer.subscribe();
    peer.expect_vapid_key(&VapidKey::generate().public_key_base64url());

    let status = Sender::new().push(&browser, b"hello").await;
    assert_eq!(status, http::StatusCode::FORBIDDEN);
    assert_eq!(peer.deliveries(&browser.endpoint), 0);
    let failures = peer.failures();
    assert!(
        failures.len() == 1 && failures[0].contains("is not the expected"),
        "{failures:?}"
    );
    let waited = peer
        .next(&browser.endpoint, Duration::from_millis(50))
        .await;
    assert!(
        waited
            .unwrap_err()
            .to_string()
            .contains("is not the expected"),
        "the timeout names what was refused"
    );
}

#[tokio::test]
async fn a_push_to_an_unsubscribed_browser_answers_gone() {
    let peer = PushPeer::start().await.unwrap();
    let browser = peer.subscribe();
    peer.gone(&browser.endpoint);

    let sender = Sender::new();
    assert_eq!(
        sender.push(&browser, b"hello").await,
        http::StatusCode::GONE
    );
    assert_eq!(
        sender.push(&browser, b"hello").await,
        http::StatusCode::GONE
    );
    assert_eq!(peer.hits(&browser.endpoint), 2);
    assert_eq!(peer.deliveries(&browser.endpoint), 0);
}

#[tokio::test]
async fn a_push_to_an_unknown_subscription_answers_not_found() {
    let peer = PushPeer::start().await.unwrap();
    let mut unknown = peer.subscribe();
    unknown.endpoint.push_str("-unknown");

    let status = Sender::new().push(&unknown, b"hello").await;
    assert_eq!(status, http::StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_slow_push_service_still_delivers_each_push_once() {
    let peer = PushPeer::start().await.unwrap();
    let browser = peer.subscribe();
    peer.set_delay(Duration::from_millis(100));

    let sender = Sender::new();
    let (first, second) = tokio::join!(
        sender.push(&browser, b"first"),
        sender.push(&browser, b"second")
    );
    assert_eq!(
        (first, second),
        (http::StatusCode::CREATED, http::StatusCode::CREATED)
    );
    let mut payloads = vec![
        peer.next(&browser.endpoint, WAIT).await.unwrap().payload,
        peer.next(&browser.endpoint, WAIT).await.unwrap().payload,
    ];
    payloads.sort();
    assert_eq!(payloads, [b"first".to_vec(), b"second".to_vec()]);
    assert!(
        peer.next(&browser.endpoint, Duration::from_millis(50))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_push_too_large_or_without_a_ttl_is_refused_with_the_reason() {
    let peer = PushPeer::start().await.unwrap();
    let browser = peer.subscribe();
    let sender = Sender::new();

    let oversize = Full::new(Bytes::from(vec![0; 4097]));
    let request = sender.signed(&browser).body(oversize).unwrap();
    assert_eq!(
        sender.send(request).await,
        http::StatusCode::PAYLOAD_TOO_LARGE
    );

    let mut request = sender
        .signed(&browser)
        .body(encrypted(&browser, b"hello"))
        .unwrap();
    request.headers_mut().remove("ttl");
    assert_eq!(sender.send(request).await, http::StatusCode::BAD_REQUEST);

    let failures = peer.failures();
    assert!(
        failures.len() == 2 && failures[0].contains("4097 bytes") && failures[1].contains("TTL"),
        "{failures:?}"
    );
    assert_eq!(peer.deliveries(&browser.endpoint), 0);
}
