//! A Web Push service for tests (RFC 8030) together with the browsers subscribed to it: it
//! checks each push's VAPID token (RFC 8292) and decrypts its payload (RFC 8291) as the
//! subscribed browser would; on a free port, stopped when dropped.
//!
//! The verification and decryption here repeat a little of astral-messaging's `push` module on
//! purpose: this plays the other parties (the push service and the browser), checks the token
//! with a second implementation (jsonwebtoken), and a service's crate is never a dependency of
//! this one.

use aes_gcm::aead::AeadInPlace as _;
use aes_gcm::{Aes128Gcm, KeyInit as _};
use anyhow::Context as _;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use p256::SecretKey;
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use rand::RngCore as _;
use rand::rngs::OsRng;
use sha2::Sha256;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{Notify, oneshot};

/// The largest body a push service must accept (RFC 8291 §4), and the largest this one takes.
const MAX_BODY: usize = 4096;
/// The furthest ahead a VAPID token may expire (RFC 8292 §2).
const MAX_VALIDITY_SECS: u64 = 24 * 60 * 60;
/// salt | rs | idlen | keyid (the sender's 65-byte public key): RFC 8188's header.
const HEADER_LEN: usize = 16 + 4 + 1 + 65;

/// The push service and its browsers, on `http://127.0.0.1:<port>`.
pub struct PushPeer {
    shared: Arc<Shared>,
    /// Dropped with the peer, which stops the server.
    _stop: oneshot::Sender<()>,
}

/// A browser's subscription, as `PushSubscription.toJSON()` hands it to an application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSubscription {
    /// `http://127.0.0.1:<port>/push/<id>`.
    pub endpoint: String,
    /// The browser's public key: an uncompressed P-256 point, base64url.
    pub p256dh: String,
    /// The 16-byte auth secret, base64url.
    pub auth: String,
}

/// A push the service accepted and the browser decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushDelivery {
    pub endpoint: String,
    pub payload: Vec<u8>,
    pub ttl: u32,
    pub urgency: Option<String>,
    /// The VAPID token's `sub`.
    pub subject: String,
}

struct Shared {
    origin: String,
    state: Mutex<PeerState>,
    /// Woken at every delivery, for [`PushPeer::next`].
    delivered: Notify,
}

#[derive(Default)]
struct PeerState {
    /// By endpoint.
    browsers: HashMap<String, Browser>,
    expected_key: Option<String>,
    delay: Duration,
    failures: Vec<String>,
}

/// One subscription's browser: its keys, and what reached it.
struct Browser {
    private: SecretKey,
    auth: [u8; 16],
    gone: bool,
    hits: usize,
    delivered: usize,
    untaken: VecDeque<PushDelivery>,
}

/// Why a push was refused, and the status that says so.
type Refusal = (StatusCode, String);

impl PushPeer {
    /// Starts the push service on a free local port.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("bind a free port for the push service")?;
        let shared = Arc::new(Shared {
            origin: format!("http://{}", listener.local_addr()?),
            state: Mutex::default(),
            delivered: Notify::new(),
        });
        let app = axum::Router::new()
            .route("/push/{id}", axum::routing::post(receive))
            .with_state(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(error) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                eprintln!("the test push service stopped: {error}");
            }
        });
        Ok(Self {
            shared,
            _stop: stop,
        })
    }

    /// A new browser subscription, with its own key pair and auth secret.
    pub fn subscribe(&self) -> PushSubscription {
        let private = SecretKey::random(&mut OsRng);
        let (mut auth, mut id) = ([0; 16], [0; 16]);
        OsRng.fill_bytes(&mut auth);
        OsRng.fill_bytes(&mut id);
        let subscription = PushSubscription {
            endpoint: format!("{}/push/{}", self.shared.origin, URL_SAFE_NO_PAD.encode(id)),
            p256dh: URL_SAFE_NO_PAD.encode(private.public_key().to_encoded_point(false)),
            auth: URL_SAFE_NO_PAD.encode(auth),
        };
        let browser = Browser {
            private,
            auth,
            gone: false,
            hits: 0,
            delivered: 0,
            untaken: VecDeque::new(),
        };
        self.lock()
            .browsers
            .insert(subscription.endpoint.clone(), browser);
        subscription
    }

    /// From now on, refuses (403) a push whose VAPID key is not `public_key_base64url`, as a
    /// push service does for a subscription made with that `applicationServerKey`.
    pub fn expect_vapid_key(&self, public_key_base64url: &str) {
        self.lock().expected_key = Some(public_key_base64url.to_owned());
    }

    /// From now on, `endpoint` answers 410 Gone: the browser unsubscribed.
    pub fn gone(&self, endpoint: &str) {
        if let Some(browser) = self.lock().browsers.get_mut(endpoint) {
            browser.gone = true;
        }
    }

    /// From now on, every answer waits `delay` first: a slow push service.
    pub fn set_delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// The pushes refused so far, each with its status and reason.
    pub fn failures(&self) -> Vec<String> {
        self.lock().failures.clone()
    }

    /// How many requests reached `endpoint`, whatever their answer.
    pub fn hits(&self, endpoint: &str) -> usize {
        self.lock().browsers.get(endpoint).map_or(0, |b| b.hits)
    }

    /// How many pushes `endpoint` accepted so far.
    pub fn deliveries(&self, endpoint: &str) -> usize {
        self.lock()
            .browsers
            .get(endpoint)
            .map_or(0, |b| b.delivered)
    }

    /// The next push accepted for `endpoint` that no call has taken yet, waiting for it at most
    /// `timeout`.
    pub async fn next(&self, endpoint: &str, timeout: Duration) -> anyhow::Result<PushDelivery> {
        let waiting = async {
            loop {
                // Listening before looking, so that a delivery in between is not missed.
                let delivered = self.shared.delivered.notified();
                tokio::pin!(delivered);
                delivered.as_mut().enable();
                let taken = {
                    let mut state = self.lock();
                    let browser = state.browsers.get_mut(endpoint).with_context(|| {
                        format!("{endpoint} is not a subscription of this push service")
                    })?;
                    browser.untaken.pop_front()
                };
                if let Some(delivery) = taken {
                    return Ok(delivery);
                }
                delivered.await;
            }
        };
        match tokio::time::timeout(timeout, waiting).await {
            Ok(taken) => taken,
            Err(_) => anyhow::bail!(
                "no push reached {endpoint} within {timeout:?}; refused so far: {:?}",
                self.failures()
            ),
        }
    }

    fn lock(&self) -> MutexGuard<'_, PeerState> {
        self.shared.lock()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, PeerState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `POST /push/<id>`: answers as a push service would, after the configured delay.
async fn receive(
    State(peer): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let delay = peer.lock().delay;
    tokio::time::sleep(delay).await;
    let endpoint = format!("{}/push/{id}", peer.origin);
    let mut state = peer.lock();
    match state.accept(&peer.origin, &endpoint, &headers, &body) {
        Ok(status) => {
            if status == StatusCode::CREATED {
                peer.delivered.notify_waiters();
            }
            status
        }
        Err((status, reason)) => {
            state
                .failures
                .push(format!("{status} for {endpoint}: {reason}"));
            status
        }
    }
}

impl PeerState {
    /// Checks one push as the push service and then the browser would, and keeps it.
    fn accept(
        &mut self,
        origin: &str,
        endpoint: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<StatusCode, Refusal> {
        let expected_key = self.expected_key.clone();
        let browser = self.browsers.get_mut(endpoint).ok_or_else(|| {
            let reason = "not a subscription of this push service";
            (StatusCode::NOT_FOUND, reason.to_owned())
        })?;
        browser.hits += 1;
        if browser.gone {
            return Ok(StatusCode::GONE);
        }
        if body.len() > MAX_BODY {
            let reason = format!("a body of {} bytes (at most {MAX_BODY})", body.len());
            return Err((StatusCode::PAYLOAD_TOO_LARGE, reason));
        }
        let request = Request::check(headers, origin, expected_key.as_deref())?;
        let payload = decrypt(body, &browser.private, &browser.auth)
            .map_err(|reason| (StatusCode::BAD_REQUEST, reason.to_owned()))?;
        browser.delivered += 1;
        browser.untaken.push_back(PushDelivery {
            endpoint: endpoint.to_owned(),
            payload,
            ttl: request.ttl,
            urgency: request.urgency,
            subject: request.vapid.subject,
        });
        Ok(StatusCode::CREATED)
    }
}

/// A push request's headers, checked.
struct Request {
    ttl: u32,
    urgency: Option<String>,
    vapid: Vapid,
}

impl Request {
    /// RFC 8030's and RFC 8292's headers: `Content-Encoding: aes128gcm`, a `TTL`, and a VAPID
    /// `Authorization` for this `origin` (with `expected_key`'s key, when one is expected).
    fn check(
        headers: &HeaderMap,
        origin: &str,
        expected_key: Option<&str>,
    ) -> Result<Self, Refusal> {
        let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
        let bad = |reason: &str| (StatusCode::BAD_REQUEST, reason.to_owned());
        if header("content-encoding") != Some("aes128gcm") {
            return Err(bad("Content-Encoding is not aes128gcm"));
        }
        let ttl = header("ttl")
            .and_then(|ttl| ttl.parse().ok())
            .ok_or_else(|| bad("no TTL header, or not a number of seconds"))?;
        let vapid = header("authorization")
            .ok_or_else(|| "no Authorization header".to_owned())
            .and_then(|authorization| verify_vapid(authorization, origin))
            .map_err(|reason| (StatusCode::UNAUTHORIZED, reason))?;
        if let Some(expected) = expected_key
            && vapid.key != expected
        {
            let reason = format!("VAPID key {} is not the expected {expected}", vapid.key);
            return Err((StatusCode::FORBIDDEN, reason));
        }
        Ok(Self {
            ttl,
            urgency: header("urgency").map(str::to_owned),
            vapid,
        })
    }
}

/// What a verified VAPID header says.
struct Vapid {
    key: String,
    subject: String,
}

#[derive(serde::Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
}

/// `vapid t=<JWT>, k=<key>` checked as a push service does: the ES256 token verifies with `k`,
/// is for this service's `origin`, and expires within the next 24 hours.
fn verify_vapid(value: &str, origin: &str) -> Result<Vapid, String> {
    let params = value
        .strip_prefix("vapid ")
        .ok_or("the scheme is not vapid")?;
    let param = |name: &str| {
        params
            .split(',')
            .find_map(|param| param.trim().strip_prefix(name)?.strip_prefix('='))
    };
    let (token, key) = param("t").zip(param("k")).ok_or("no t= or no k=")?;
    let point = URL_SAFE_NO_PAD.decode(key).unwrap_or_default();
    if point.len() != 65 || point[0] != 0x04 {
        return Err("k is not an uncompressed P-256 point in base64url".to_owned());
    }
    let (x, y) = point[1..].split_at(32);
    let key_for_jwt = jsonwebtoken::DecodingKey::from_ec_components(
        &URL_SAFE_NO_PAD.encode(x),
        &URL_SAFE_NO_PAD.encode(y),
    )
    .map_err(|error| format!("k: {error}"))?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[origin]);
    validation.set_required_spec_claims(&["aud", "exp", "sub"]);
    validation.leeway = 0;
    let claims = jsonwebtoken::decode::<Claims>(token, &key_for_jwt, &validation)
        .map_err(|error| format!("the VAPID token: {error}"))?
        .claims;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    if claims.exp > now + MAX_VALIDITY_SECS {
        return Err("the VAPID token expires more than 24 hours from now".to_owned());
    }
    Ok(Vapid {
        key: key.to_owned(),
        subject: claims.sub,
    })
}

/// The browser's side of RFC 8291: the single aes128gcm record of `body` decrypted with the
/// subscription's keys, without its padding.
fn decrypt(body: &[u8], private: &SecretKey, auth: &[u8]) -> Result<Vec<u8>, &'static str> {
    if body.len() < HEADER_LEN + 17 || body[20] != 65 {
        return Err("not an aes128gcm body with a 65-byte key id and a record");
    }
    let (salt, keyid, record) = (&body[..16], &body[21..HEADER_LEN], &body[HEADER_LEN..]);
    let rs = u32::from_be_bytes([body[16], body[17], body[18], body[19]]);
    if record.len() > rs as usize {
        return Err("more than one record");
    }
    let sender =
        p256::PublicKey::from_sec1_bytes(keyid).map_err(|_| "the key id is not a point")?;
    let ua_public = private.public_key().to_encoded_point(false);
    let shared = p256::ecdh::diffie_hellman(private.to_nonzero_scalar(), sender.as_affine());
    let (mut ikm, mut cek, mut nonce) = ([0; 32], [0; 16], [0; 12]);
    Hkdf::<Sha256>::new(Some(auth), shared.raw_secret_bytes())
        .expand_multi_info(&[b"WebPush: info\0", ua_public.as_bytes(), keyid], &mut ikm)
        .and_then(|()| {
            let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
            prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)?;
            prk.expand(b"Content-Encoding: nonce\0", &mut nonce)
        })
        .map_err(|_| "key derivation")?;
    let mut plain = record.to_vec();
    Aes128Gcm::new(&cek.into())
        .decrypt_in_place(&nonce.into(), b"", &mut plain)
        .map_err(|_| "the record does not decrypt with the subscription's keys")?;
    match plain.iter().rposition(|&byte| byte != 0) {
        Some(end) if plain[end] == 0x02 => {
            plain.truncate(end);
            Ok(plain)
        }
        _ => Err("no last-record delimiter (0x02) after the payload"),
    }
}
