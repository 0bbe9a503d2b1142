//! The session's state machine driven through channels, with a fake backend: no socket, no
//! services. (The real socket is tested end to end in tests/gateway.rs.)

use super::backend::Backend;
use super::session::{COOKIE_GRACE, ReadError, Session, Settings};
use crate::connections::Connections;
use crate::error::ApiError;
use crate::hub::Hub;
use crate::identify_queue::IdentifyQueue;
use astral_common::EventBus;
use astral_common::tokens::Claims;
use astral_proto::events::{ChatDeleted, Event, SessionEnded, event::Kind};
use astral_proto::{auth, messaging, subjects};
use futures::channel::mpsc;
use futures::{SinkExt as _, StreamExt as _};
use prost::Message as _;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tonic::Status;

const WAIT: Duration = Duration::from_secs(5);

/// Tokens it knows, and one chat, `1_2`, at version 7. With a `gate`, the chat list is
/// answered only once the test lets it.
#[derive(Default)]
struct Fake {
    tokens: HashMap<String, Claims>,
    gate: Option<Gate>,
    loads: Option<Loads>,
}

/// Chat lists held until the test opens them, counted: how many began, and the most loaded
/// at once.
struct Loads {
    open: tokio::sync::watch::Sender<bool>,
    began: tokio::sync::watch::Sender<usize>,
    now: AtomicUsize,
    most: AtomicUsize,
}

impl Default for Loads {
    fn default() -> Self {
        Self {
            open: tokio::sync::watch::Sender::new(false),
            began: tokio::sync::watch::Sender::new(0),
            now: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
        }
    }
}

impl Loads {
    async fn load(&self) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        self.began.send_modify(|began| *began += 1);
        let _ = self.open.subscribe().wait_for(|open| *open).await;
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Holds the answer to a chat list: `asked` is told when the list is asked for, and the
/// answer waits for `open`.
#[derive(Default)]
struct Gate {
    asked: tokio::sync::Notify,
    open: tokio::sync::Notify,
}

impl Fake {
    /// `alice` (user 1) in sessions `s1` (tokens `a1`, `a1-fresh`) and `s2` (token `a2`);
    /// `bob` (user 2) in session `s3` (token `b`).
    fn new() -> Arc<Self> {
        let claims = |sub: &str, sid: &str, name: &str| Claims {
            sub: sub.into(),
            sid: sid.into(),
            iat: 0,
            exp: i64::MAX,
            name: name.into(),
        };
        let tokens = HashMap::from([
            ("a1".into(), claims("1", "s1", "alice")),
            ("a1-fresh".into(), claims("1", "s1", "alice")),
            ("a2".into(), claims("1", "s2", "alice")),
            ("b".into(), claims("2", "s3", "bob")),
        ]);
        Arc::new(Self {
            tokens,
            ..Self::default()
        })
    }
}

impl Backend for Fake {
    async fn authenticate(&self, token: &str) -> Result<Claims, ApiError> {
        let claims = self.tokens.get(token).cloned();
        claims.ok_or_else(|| ApiError::unauthenticated("not a token"))
    }

    fn revoke(&self, _session_id: String, _revoked_at_ms: i64) {}

    async fn user(&self, _user_id: String) -> Result<auth::User, Status> {
        Err(Status::unavailable("every token names its user"))
    }

    async fn chats(&self, _token: &str) -> Result<(Vec<messaging::Chat>, bool), Status> {
        if let Some(gate) = &self.gate {
            let open = gate.open.notified();
            gate.asked.notify_one();
            open.await;
        }
        if let Some(loads) = &self.loads {
            loads.load().await;
        }
        Ok((vec![chat()], true))
    }

    async fn chat(&self, chat_id: String, _token: &str) -> Result<messaging::Chat, Status> {
        match chat_id.as_str() {
            "1_2" => Ok(chat()),
            _ => Err(Status::not_found("no such chat")),
        }
    }

    async fn typing(&self, _chat_id: String, _token: &str) -> Result<(), Status> {
        Ok(())
    }

    async fn changes(
        &self,
        _chat_id: String,
        _after: i64,
        _limit: i64,
        _token: &str,
    ) -> Result<Vec<messaging::Message>, Status> {
        Ok(Vec::new())
    }
}

fn chat() -> messaging::Chat {
    messaging::Chat {
        id: "1_2".into(),
        last_seq: 7,
        ..Default::default()
    }
}

/// The client's end of a session, and the gateway parts it runs against.
struct Client {
    to_server: mpsc::Sender<Result<Message, ReadError>>,
    from_server: mpsc::Receiver<Message>,
    bus: EventBus,
    connections: Connections,
}

impl Client {
    /// A session started with `cookie` (the session cookie's token), if any.
    fn start(cookie: Option<&str>, identify_timeout: Duration) -> Self {
        Self::start_with(Fake::new(), cookie, identify_timeout)
    }

    /// The same, against `fake`.
    fn start_with(fake: Arc<Fake>, cookie: Option<&str>, identify_timeout: Duration) -> Self {
        Self::start_on(fake, cookie, identify_timeout, Connections::default())
    }

    /// The same, on a gateway with these `connections`.
    fn start_on(
        fake: Arc<Fake>,
        cookie: Option<&str>,
        identify_timeout: Duration,
        connections: Connections,
    ) -> Self {
        let (to_server, read) = mpsc::channel(16);
        let (write, from_server) = mpsc::channel(16);
        let bus = EventBus::local();
        let settings = Settings {
            heartbeat: Duration::from_secs(30),
            identify_timeout,
        };
        // Any number of clients may wait to identify here: these tests share one gateway's
        // `connections` between several clients from one address.
        let unidentified = connections
            .admit_unidentified("test", usize::MAX)
            .expect("a place to identify");
        let session = Session::new(
            write,
            read,
            fake,
            Hub::new(bus.clone()),
            connections.clone(),
            settings,
        );
        tokio::spawn(session.run(cookie.map(str::to_owned), unidentified));
        Self {
            to_server,
            from_server,
            bus,
            connections,
        }
    }

    /// A session whose client already had its `hello` and identified with `token`.
    async fn identified(token: &str) -> Self {
        let mut client = Self::start(None, WAIT);
        assert_eq!(client.next().await["op"], "hello");
        client.identify(token).await;
        assert_eq!(client.next().await["op"], "ready");
        client
    }

    async fn send(&mut self, frame: Value) {
        let text = Message::Text(frame.to_string().into());
        self.to_server.send(Ok(text)).await.expect("session reads");
    }

    async fn identify(&mut self, token: &str) {
        self.send(json!({ "op": "identify", "d": { "token": token } }))
            .await;
    }

    /// The next text frame, as JSON.
    async fn next(&mut self) -> Value {
        match tokio::time::timeout(WAIT, self.from_server.next()).await {
            Ok(Some(Message::Text(text))) => serde_json::from_str(&text).expect("JSON"),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// The code of the Close that ends the session.
    async fn closed_with(&mut self) -> u16 {
        loop {
            match tokio::time::timeout(WAIT, self.from_server.next()).await {
                Ok(Some(Message::Close(Some(frame)))) => return frame.code.into(),
                Ok(Some(Message::Text(_))) => continue,
                other => panic!("expected a close, got {other:?}"),
            }
        }
    }

    /// The `error` code of the next frame.
    async fn error_code(&mut self) -> Value {
        let frame = self.next().await;
        assert_eq!(frame["op"], "error", "{frame}");
        frame["d"]["code"].clone()
    }

    /// Answers a heartbeat: everything sent before it has been answered.
    async fn heartbeat_is_next(&mut self) {
        self.send(json!({ "op": "heartbeat" })).await;
        assert_eq!(self.next().await["op"], "heartbeat_ack");
    }

    async fn publish(&self, subject: String, event: Event) {
        let payload = bytes::Bytes::from(event.encode_to_vec());
        self.bus.publish(subject, payload).await.expect("published");
    }
}

#[tokio::test]
async fn a_client_says_hello_identifies_and_is_ready_with_its_user_and_chats() {
    let mut client = Client::start(None, WAIT);
    let hello = client.next().await;
    assert_eq!(
        hello,
        json!({ "op": "hello", "d": { "heartbeat_ms": 30_000 } })
    );
    client.heartbeat_is_next().await;
    client.identify("a1").await;
    let ready = client.next().await;
    assert_eq!(ready["op"], "ready");
    assert_eq!(
        ready["d"]["user"],
        json!({ "id": "1", "username": "alice" })
    );
    assert_eq!(ready["d"]["session_id"], "s1");
    assert_eq!(ready["d"]["chats"][0]["id"], "1_2");
    assert!(
        ready["d"].get("friends").is_none(),
        "the client loads friends"
    );
    assert_eq!(client.connections.total(), 1);
}

#[tokio::test]
async fn before_identifying_other_frames_are_refused_and_a_bad_token_closes_with_4001() {
    let mut client = Client::start(None, WAIT);
    client.next().await;
    client
        .send(json!({ "op": "subscribe", "d": { "chat_id": "1_2" } }))
        .await;
    assert_eq!(client.error_code().await, "unauthenticated");
    client.send(json!("not a frame")).await;
    assert_eq!(client.error_code().await, "invalid_frame");
    client.send(json!({ "op": "identify", "d": {} })).await;
    assert_eq!(client.error_code().await, "invalid_argument");
    client.identify("forged").await;
    assert_eq!(client.error_code().await, "unauthenticated");
    assert_eq!(client.closed_with().await, 4001);
}

#[tokio::test]
async fn a_connection_that_does_not_identify_in_time_closes_with_4003() {
    let mut client = Client::start(None, Duration::from_millis(200));
    client.next().await;
    client.send(json!({ "op": "heartbeat" })).await;
    assert_eq!(client.closed_with().await, 4003);
}

#[tokio::test]
async fn the_cookie_identifies_a_connection_that_sends_no_identify() {
    let mut client = Client::start(Some("a1"), WAIT);
    client.next().await;
    let started = tokio::time::Instant::now();
    let ready = client.next().await;
    assert_eq!(ready["d"]["session_id"], "s1");
    assert!(started.elapsed() >= COOKIE_GRACE - Duration::from_millis(100));
}

#[tokio::test]
async fn an_identify_after_the_cookies_ready_of_the_same_session_is_taken_without_answer() {
    let mut client = Client::start(Some("a1"), WAIT);
    client.next().await;
    assert_eq!(client.next().await["op"], "ready");
    client.identify("a1-fresh").await;
    client.heartbeat_is_next().await;
}

#[tokio::test]
async fn an_identify_after_the_cookies_ready_naming_another_session_wins() {
    let mut client = Client::start(Some("a1"), WAIT);
    client.next().await;
    assert_eq!(client.next().await["d"]["session_id"], "s1");
    client.identify("b").await;
    let ready = client.next().await;
    assert_eq!(
        (&ready["op"], &ready["d"]["user"]["id"]),
        (&json!("ready"), &json!("2"))
    );
    assert_eq!(
        client.connections.total(),
        1,
        "the cookie's identity is gone"
    );
    // From now on the connection is bob's, identified by his own token.
    client.identify("a2").await;
    assert_eq!(client.error_code().await, "invalid_argument");
}

#[tokio::test]
async fn a_bad_token_after_the_cookies_ready_closes_as_it_would_have_before() {
    let mut client = Client::start(Some("a1"), WAIT);
    client.next().await;
    client.next().await;
    client.identify("forged").await;
    assert_eq!(client.error_code().await, "unauthenticated");
    assert_eq!(client.closed_with().await, 4001);
}

#[tokio::test]
async fn an_identified_connection_renews_its_token_within_its_session_only() {
    let mut client = Client::identified("a1").await;
    client.identify("a1-fresh").await;
    client.heartbeat_is_next().await;
    for (other, code) in [
        ("a2", "invalid_argument"),
        ("b", "invalid_argument"),
        ("forged", "unauthenticated"),
    ] {
        client.identify(other).await;
        assert_eq!(client.error_code().await, code, "{other}");
    }
    client.heartbeat_is_next().await;
}

#[tokio::test]
async fn bad_frames_are_answered_and_keep_the_connection() {
    let mut client = Client::identified("a1").await;
    client.send(json!({ "op": "dance" })).await;
    assert_eq!(client.error_code().await, "invalid_frame");
    client.send(json!({ "op": "typing", "d": {} })).await;
    assert_eq!(client.error_code().await, "invalid_argument");
    let binary = Message::Binary(bytes::Bytes::from_static(b"\x00"));
    client.to_server.send(Ok(binary)).await.unwrap();
    assert_eq!(client.error_code().await, "invalid_frame");
    client.heartbeat_is_next().await;
}

#[tokio::test]
async fn a_frame_over_the_limit_closes_with_1009() {
    let mut client = Client::identified("a1").await;
    client
        .to_server
        .send(Err(ReadError::TooLarge))
        .await
        .unwrap();
    assert_eq!(client.closed_with().await, 1009);
}

#[tokio::test]
async fn subscribing_answers_the_chats_version_or_not_found() {
    let mut client = Client::identified("a1").await;
    client
        .send(json!({ "op": "subscribe", "d": { "chat_id": "1_2" } }))
        .await;
    assert_eq!(
        client.next().await,
        json!({ "op": "subscribed", "d": { "chat_id": "1_2", "version": 7 } })
    );
    client
        .send(json!({ "op": "subscribe", "d": { "chat_id": "1_3" } }))
        .await;
    assert_eq!(client.error_code().await, "not_found");
    client
        .send(json!({ "op": "unsubscribe", "d": { "chat_id": "1_2" } }))
        .await;
    assert_eq!(
        client.next().await,
        json!({ "op": "unsubscribed", "d": { "chat_id": "1_2" } })
    );
}

#[tokio::test]
async fn an_event_reaches_the_client_once_and_its_own_session_ending_closes_it() {
    let mut client = Client::identified("a1").await;
    let deleted = Event {
        id: "e1".into(),
        kind: Some(Kind::ChatDeleted(ChatDeleted {
            chat_id: "1_2".into(),
        })),
        ..Default::default()
    };
    client.publish(subjects::user("1"), deleted.clone()).await;
    client.publish(subjects::user("1"), deleted).await;
    let ended = Event {
        id: "e2".into(),
        kind: Some(Kind::SessionEnded(SessionEnded {
            user_id: "1".into(),
            session_id: "s1".into(),
            ..Default::default()
        })),
        ..Default::default()
    };
    client.publish(subjects::user("1"), ended).await;
    let event = client.next().await;
    assert_eq!(
        (&event["t"], &event["d"]),
        (&json!("chat.deleted"), &json!({ "chat_id": "1_2" }))
    );
    assert_eq!(
        client.next().await["t"],
        "session.ended",
        "the copy was dropped"
    );
    assert_eq!(client.closed_with().await, 4001);
}

#[tokio::test]
async fn an_event_published_while_ready_loads_follows_ready() {
    let mut fake = Arc::into_inner(Fake::new()).expect("one handle");
    fake.gate = Some(Gate::default());
    let fake = Arc::new(fake);
    let mut client = Client::start_with(fake.clone(), None, WAIT);
    assert_eq!(client.next().await["op"], "hello");
    client.identify("a1").await;
    let gate = fake.gate.as_ref().expect("a gate");
    tokio::time::timeout(WAIT, gate.asked.notified())
        .await
        .expect("ready asks for the chats");
    // Published after the chat list was read for `ready`, before `ready` is sent.
    let deleted = Event {
        id: "e1".into(),
        kind: Some(Kind::ChatDeleted(ChatDeleted {
            chat_id: "1_2".into(),
        })),
        ..Default::default()
    };
    client.publish(subjects::user("1"), deleted).await;
    gate.open.notify_one();
    let ready = client.next().await;
    assert_eq!(ready["op"], "ready", "{ready}");
    assert_eq!(ready["d"]["chats"][0]["id"], "1_2", "read before the event");
    let event = client.next().await;
    assert_eq!(
        event["t"], "chat.deleted",
        "the event follows ready: {event}"
    );
}

#[tokio::test]
async fn a_draining_gateway_asks_its_clients_to_reconnect_and_closes_with_1012() {
    let mut client = Client::identified("a1").await;
    client.connections.drain();
    assert_eq!(client.next().await["op"], "reconnect");
    assert_eq!(client.closed_with().await, 1012);
}

/// Waits (with a timeout) until `done` holds.
async fn until(mut done: impl FnMut() -> bool) {
    let wait = async {
        while !done() {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(WAIT, wait).await.expect("in time");
}

#[tokio::test]
async fn identifies_past_the_limit_wait_their_turn_or_come_back_later_and_all_get_in() {
    let mut fake = Arc::into_inner(Fake::new()).expect("one handle");
    fake.loads = Some(Loads::default());
    let fake = Arc::new(fake);
    let loads = fake.loads.as_ref().expect("counted");
    // Two load `ready` at once, two may wait.
    let connections = Connections::new(IdentifyQueue::new(2, 2));
    let start = || Client::start_on(fake.clone(), None, WAIT, connections.clone());
    let mut admitted = Vec::new();
    for n in 0..4 {
        let mut client = start();
        assert_eq!(client.next().await["op"], "hello");
        client.identify("a1").await;
        if n < 2 {
            let mut began = loads.began.subscribe();
            let began = began.wait_for(|began| *began == n + 1);
            tokio::time::timeout(WAIT, began)
                .await
                .expect("loading")
                .ok();
        } else {
            until(|| connections.waiting_to_identify() == n - 1).await;
        }
        admitted.push(client);
    }
    // Past the queue: told to come back later, with a hint, not refused.
    let mut deferred = 0;
    for _ in 0..3 {
        let mut client = start();
        assert_eq!(client.next().await["op"], "hello");
        client.identify("a1").await;
        let busy = client.next().await;
        assert_eq!(busy["d"]["code"], "unavailable", "{busy}");
        assert_eq!(busy["d"]["retry_after_ms"], 1000, "{busy}");
        assert_eq!(client.closed_with().await, 1013);
        deferred += 1;
    }
    loads.open.send_replace(true);
    for client in &mut admitted {
        assert_eq!(client.next().await["op"], "ready", "waited its turn");
    }
    for _ in 0..deferred {
        let mut client = start();
        assert_eq!(client.next().await["op"], "hello");
        client.identify("a1").await;
        assert_eq!(client.next().await["op"], "ready", "came back and got in");
    }
    assert_eq!(
        loads.most.load(Ordering::SeqCst),
        2,
        "never more than two loads at once"
    );
}
