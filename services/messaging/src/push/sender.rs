//! The push sender: takes due pushes off the queue the sends fill (`store/push.rs`), forgets
//! the browsers whose session has ended (signed out, everywhere or there), drops the pushes
//! for people who have a connection open somewhere (they see the message live), and sends
//! the rest to their push services, encrypted and signed. Off the send path: a slow
//! or failing push service only delays its own pushes, retried with growing waits. Each
//! replica runs one; a push is leased while it is being sent, so each goes once.

use super::PushConfig;
use super::encrypt::{MAX_PAYLOAD, encrypt};
use super::endpoint::PublicResolver;
use crate::store::{DuePush, PushedMessage, Store};
use astral_common::grpc::Channel;
use astral_common::time;
use astral_proto::auth::CheckSessionsRequest;
use astral_proto::auth::auth_service_client::AuthServiceClient;
use astral_proto::social::CheckConnectedRequest;
use astral_proto::social::social_service_client::SocialServiceClient;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use futures::StreamExt as _;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// How often the sender looks when no send wakes it (pushes put off come due).
const LOOK_EVERY: Duration = Duration::from_secs(2);
/// Pushes taken at a time, and how long they are the taker's.
const BATCH: i64 = 100;
const LEASE_MS: i64 = 60_000;
/// Pushes in flight at once, and how long one may take.
const AT_ONCE: usize = 16;
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How many times a push is tried before it is given up, and the first wait between tries
/// (doubling each time, at most an hour).
const MAX_ATTEMPTS: i64 = 8;
const FIRST_RETRY_MS: i64 = 5_000;
const LONGEST_RETRY_MS: i64 = 60 * 60 * 1000;
/// How long a push service keeps a push for a browser that is offline (RFC 8030 `TTL`).
const TTL_SECS: u32 = 24 * 60 * 60;
/// The most of a message's text a notification shows.
const BODY_CHARS: usize = 140;

type PushClient = Client<hyper_rustls::HttpsConnector<HttpConnector<PublicResolver>>, Full<Bytes>>;

/// The running sender; it stops when dropped.
pub struct Sender {
    task: tokio::task::JoinHandle<()>,
}

impl Sender {
    pub fn start(
        store: Store,
        auth: AuthServiceClient<Channel>,
        social: SocialServiceClient<Channel>,
        config: Arc<PushConfig>,
    ) -> anyhow::Result<Self> {
        let client = client(&config)?;
        let pushing = Pushing {
            store,
            auth,
            social,
            config,
            client,
        };
        let task = tokio::spawn(async move {
            loop {
                if let Err(error) = pushing.work_off().await {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "the push sender failed a round"
                    );
                }
                tokio::select! {
                    () = pushing.store.pushes_waiting() => {}
                    () = tokio::time::sleep(LOOK_EVERY) => {}
                }
            }
        });
        Ok(Self { task })
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An HTTPS client (HTTP too for tests' loopback endpoints) whose every connection goes
/// only to addresses the endpoint policy allows.
fn client(config: &PushConfig) -> anyhow::Result<PushClient> {
    let mut http = HttpConnector::new_with_resolver(PublicResolver(config.endpoints));
    http.enforce_http(false);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()?
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(https))
}

struct Pushing {
    store: Store,
    auth: AuthServiceClient<Channel>,
    social: SocialServiceClient<Channel>,
    config: Arc<PushConfig>,
    client: PushClient,
}

/// What became of one push.
enum Outcome {
    /// Delivered to the push service, or not needed (the user is here; the message gone).
    Done,
    /// The push service no longer knows the subscription (404, 410), or it is unusable.
    Gone,
    /// Worth another try (a timeout, a refused connection, 429, 5xx).
    Retry,
}

impl Pushing {
    /// Sends every due push, a batch at a time.
    async fn work_off(&self) -> anyhow::Result<()> {
        loop {
            let now = time::now_ms();
            let due = self.store.take_pushes(now, now + LEASE_MS, BATCH).await?;
            if due.is_empty() {
                return Ok(());
            }
            let (ended, connected) = match tokio::try_join!(self.ended(&due), self.connected(&due))
            {
                Ok(known) => known,
                Err(status) => {
                    // Without knowing whose sessions live and who is here, send nothing:
                    // the lease brings them back.
                    tracing::warn!(%status, "cannot check sessions and connections; pushes wait");
                    return Ok(());
                }
            };
            let outcomes = futures::stream::iter(due)
                .map(|push| async {
                    let subscription = &push.subscription;
                    let outcome = if ended.contains(&subscription.session_id) {
                        Outcome::Gone
                    } else if connected.contains(&subscription.user_id) {
                        Outcome::Done
                    } else {
                        self.send(&push).await
                    };
                    (push, outcome)
                })
                .buffer_unordered(AT_ONCE)
                .collect::<Vec<_>>()
                .await;
            for (push, outcome) in outcomes {
                self.settle(&push, outcome).await?;
            }
        }
    }

    /// The sessions of `due`'s subscriptions that have ended.
    async fn ended(&self, due: &[DuePush]) -> Result<HashSet<i64>, tonic::Status> {
        let sessions: Vec<i64> = due
            .iter()
            .map(|push| push.subscription.session_id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let request = CheckSessionsRequest {
            session_ids: sessions.iter().map(ToString::to_string).collect(),
        };
        let answer = self.auth.clone().check_sessions(request).await?;
        Ok(sessions
            .into_iter()
            .zip(answer.into_inner().live)
            .filter_map(|(session, live)| (!live).then_some(session))
            .collect())
    }

    /// The users of `due` with an identified connection somewhere.
    async fn connected(&self, due: &[DuePush]) -> Result<HashSet<i64>, tonic::Status> {
        let users: Vec<i64> = due
            .iter()
            .map(|push| push.subscription.user_id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let request = CheckConnectedRequest {
            user_ids: users.iter().map(ToString::to_string).collect(),
        };
        let answer = self.social.clone().check_connected(request).await?;
        Ok(users
            .into_iter()
            .zip(answer.into_inner().connected)
            .filter_map(|(user, connected)| connected.then_some(user))
            .collect())
    }

    async fn settle(&self, push: &DuePush, outcome: Outcome) -> anyhow::Result<()> {
        let endpoint = &push.subscription.endpoint;
        match outcome {
            Outcome::Done => self.store.finish_push(endpoint, push.message_id).await?,
            Outcome::Gone => self.store.forget_push_subscription(endpoint).await?,
            Outcome::Retry if push.attempts >= MAX_ATTEMPTS => {
                tracing::warn!(attempts = push.attempts, "a push was given up");
                self.store.finish_push(endpoint, push.message_id).await?;
            }
            Outcome::Retry => {
                let due = time::now_ms() + retry_after_ms(push.attempts);
                self.store
                    .put_off_push(endpoint, push.message_id, due)
                    .await?;
            }
        }
        Ok(())
    }

    /// Sends one push to its push service.
    async fn send(&self, push: &DuePush) -> Outcome {
        let Some(message) = &push.message else {
            return Outcome::Done; // deleted since: nothing to tell
        };
        let subscription = &push.subscription;
        let Ok(uri) = self.config.endpoints.check(&subscription.endpoint) else {
            return Outcome::Gone;
        };
        let keys = (
            URL_SAFE_NO_PAD.decode(&subscription.p256dh),
            URL_SAFE_NO_PAD.decode(&subscription.auth),
        );
        let (Ok(p256dh), Ok(auth)) = keys else {
            return Outcome::Gone;
        };
        let payload = payload(push.message_id, message);
        let Ok(body) = encrypt(&payload, &p256dh, &auth) else {
            return Outcome::Gone;
        };
        let now_secs = u64::try_from(time::now_ms() / 1000).unwrap_or(0);
        let authorization = match self.config.key.authorization(
            &subscription.endpoint,
            &self.config.subject,
            now_secs,
        ) {
            Ok(authorization) => authorization,
            Err(error) => {
                tracing::warn!(%error, "cannot sign a push");
                return Outcome::Gone;
            }
        };
        let request = http::Request::post(uri)
            .header("TTL", TTL_SECS)
            .header("Urgency", "high")
            .header(http::header::CONTENT_ENCODING, "aes128gcm")
            .header(http::header::CONTENT_TYPE, "application/octet-stream")
            .header(http::header::AUTHORIZATION, authorization)
            .body(Full::new(Bytes::from(body)));
        let Ok(request) = request else {
            return Outcome::Gone;
        };
        match tokio::time::timeout(SEND_TIMEOUT, self.client.request(request)).await {
            Ok(Ok(response)) => outcome_of(response.status()),
            Ok(Err(error)) => {
                tracing::info!(%error, "a push could not reach its push service");
                Outcome::Retry
            }
            Err(_) => Outcome::Retry,
        }
    }
}

/// What a push service's answer means for the push.
fn outcome_of(status: http::StatusCode) -> Outcome {
    match status.as_u16() {
        200..=299 => Outcome::Done,
        404 | 410 => Outcome::Gone,
        429 | 500..=599 => Outcome::Retry,
        other => {
            // A push it will never take (too large, badly signed): not tried again.
            tracing::warn!(status = other, "a push service refused a push");
            Outcome::Done
        }
    }
}

/// The wait before the next try of a push tried `attempts` times.
fn retry_after_ms(attempts: i64) -> i64 {
    let doublings = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(u32::MAX)
        .min(20);
    FIRST_RETRY_MS
        .saturating_mul(1 << doublings)
        .min(LONGEST_RETRY_MS)
}

/// The notification, as JSON the service worker shows: who wrote, where, and the start of it.
fn payload(message_id: i64, message: &PushedMessage) -> Vec<u8> {
    let title = match &message.group {
        Some(group) => format!("{} in {group}", message.author),
        None => message.author.clone(),
    };
    let body = match (message.content.trim(), message.attachment_count) {
        ("", 1) => "Sent a file".to_owned(),
        ("", n) => format!("Sent {n} files"),
        (text, _) => shorten(text),
    };
    let payload = serde_json::json!({
        "type": "message",
        "chat_id": message.chat_id,
        "message_id": message_id.to_string(),
        "author_id": message.author_id.to_string(),
        "title": title,
        "body": body,
    });
    let bytes = payload.to_string().into_bytes();
    debug_assert!(bytes.len() <= MAX_PAYLOAD);
    bytes
}

/// At most [`BODY_CHARS`] characters, with an ellipsis when cut.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(BODY_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(content: &str, attachments: i64, group: Option<&str>) -> PushedMessage {
        PushedMessage {
            chat_id: "c1".into(),
            group: group.map(str::to_owned),
            author_id: 7,
            author: "alice".into(),
            content: content.into(),
            attachment_count: attachments,
        }
    }

    fn json(message: &PushedMessage) -> serde_json::Value {
        serde_json::from_slice(&payload(42, message)).unwrap()
    }

    #[test]
    fn a_notification_names_the_author_the_group_and_the_start_of_the_message() {
        let direct = json(&message("hello there", 0, None));
        assert_eq!(
            direct,
            serde_json::json!({
                "type": "message", "chat_id": "c1", "message_id": "42", "author_id": "7",
                "title": "alice", "body": "hello there",
            })
        );
        assert_eq!(
            json(&message("hi", 0, Some("Team")))["title"],
            "alice in Team"
        );
        assert_eq!(json(&message("", 1, None))["body"], "Sent a file");
        assert_eq!(json(&message("  ", 3, None))["body"], "Sent 3 files");
        let long = "é".repeat(200);
        let body = json(&message(&long, 0, None))["body"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            body.chars().count(),
            BODY_CHARS + 1,
            "cut, with an ellipsis"
        );
        assert!(
            payload(
                42,
                &message(&"\u{10FFFF}".repeat(200), 0, Some(&"g".repeat(100)))
            )
            .len()
                <= MAX_PAYLOAD
        );
    }

    #[test]
    fn retries_wait_longer_each_time_up_to_an_hour() {
        assert_eq!(retry_after_ms(1), 5_000);
        assert_eq!(retry_after_ms(2), 10_000);
        assert_eq!(retry_after_ms(5), 80_000);
        assert_eq!(retry_after_ms(30), LONGEST_RETRY_MS);
    }

    #[test]
    fn push_services_answers_decide_a_pushs_fate() {
        use http::StatusCode;
        assert!(matches!(outcome_of(StatusCode::CREATED), Outcome::Done));
        assert!(matches!(outcome_of(StatusCode::GONE), Outcome::Gone));
        assert!(matches!(outcome_of(StatusCode::NOT_FOUND), Outcome::Gone));
        assert!(matches!(
            outcome_of(StatusCode::TOO_MANY_REQUESTS),
            Outcome::Retry
        ));
        assert!(matches!(
            outcome_of(StatusCode::BAD_GATEWAY),
            Outcome::Retry
        ));
        assert!(matches!(
            outcome_of(StatusCode::PAYLOAD_TOO_LARGE),
            Outcome::Done
        ));
    }
}
