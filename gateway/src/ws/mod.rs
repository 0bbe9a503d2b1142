//! `GET /ws`: one WebSocket session — hello, identify, ready, heartbeats, chat subscriptions,
//! and the user's events from the bus, each delivered at most once.

use crate::connections::{ConnectionSlot, MAX_CONNECTIONS_PER_USER, UnidentifiedSlot};
use crate::error::ApiError;
use crate::hub::Subscriptions;
use crate::json;
use crate::limits::{Admit, FrameRate};
use crate::origin::origin_allowed;
use crate::session;
use crate::state::AppState;
use order::Ordering;
use seen::Seen;

mod order;
mod seen;

use astral_common::guard::for_user;
use astral_common::tokens::Claims;
use astral_proto::events::{Event, event::Kind};
use astral_proto::{auth, messaging, social, subjects};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use prost::Message as _;
use serde::Deserialize;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The largest frame a client may send.
pub const MAX_FRAME: usize = 64 * 1024;
/// The read buffer of a connection; frames larger than this are read in several steps.
const READ_BUFFER: usize = 1024;
/// How long a closing connection waits for the client's Close.
const CLOSE_HANDSHAKE: Duration = Duration::from_secs(2);
/// Close codes of the protocol.
const CLOSE_UNAUTHENTICATED: u16 = 4001;
const CLOSE_HEARTBEAT_TIMEOUT: u16 = 4000;
const CLOSE_IDENTIFY_TIMEOUT: u16 = 4003;
const CLOSE_TOO_BIG: u16 = 1009;
const CLOSE_GOING_AWAY: u16 = 1012;
const CLOSE_TOO_SLOW: u16 = 4008;
const CLOSE_TOO_FAST: u16 = 4029;
const CLOSE_TOO_MANY_CONNECTIONS: u16 = 4030;

pub async fn upgrade(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&headers, &state.config, false) {
        return ApiError::forbidden("cross-site WebSocket refused").into_response();
    }
    // A connection that has not identified costs the gateway without proving anything: each
    // address may hold a few, and each only for the identify timeout.
    let limits = &state.config.limits;
    let address = crate::address::client_addr(&headers, peer, state.config.trusted_proxy_hops);
    let address = match address.parse() {
        Ok(ip) => crate::server::address_group(ip).to_string(),
        Err(_) => address,
    };
    let Some(unidentified) = state
        .connections
        .admit_unidentified(&address, limits.max_unidentified_per_address)
    else {
        let message = format!(
            "at most {} connections per address waiting to identify",
            limits.max_unidentified_per_address
        );
        return ApiError::rate_limited(message, limits.identify_timeout).into_response();
    };
    let cookie = session::cookie(&headers);
    upgrade
        // tungstenite's defaults (128 KiB each way) would cost every idle connection ~256 KiB.
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| async move {
            let mut connection = Connection {
                state,
                socket,
                seen: Seen::default(),
                order: Ordering::default(),
            };
            if let Err(error) = connection.run(cookie, unidentified).await {
                tracing::debug!(error = format!("{error:#}"), "websocket closed");
            }
        })
}

#[derive(Deserialize)]
struct Frame {
    op: String,
    #[serde(default)]
    d: Value,
}

/// What ended a session early.
enum Closing {
    /// Close with this code and reason.
    Close(u16, &'static str),
    /// The socket is gone.
    Gone,
}

type Step<T> = Result<T, Closing>;

fn heartbeat_timeout() -> Closing {
    Closing::Close(CLOSE_HEARTBEAT_TIMEOUT, "heartbeat timeout")
}

fn identify_timeout() -> Closing {
    Closing::Close(CLOSE_IDENTIFY_TIMEOUT, "identify timeout")
}

struct Connection {
    state: Arc<AppState>,
    socket: WebSocket,
    seen: Seen,
    /// The order of the subscribed chats' message events.
    order: Ordering,
}

/// The identified user of a connection.
struct Identity {
    user: auth::User,
    session_id: String,
    /// The user's access token, passed on to the services; a client replaces it with a
    /// fresh one (another `identify`) before it expires.
    token: String,
    _slot: ConnectionSlot,
}

/// An identified connection, already subscribed to its user's events (queued since before
/// `ready`).
struct Identified {
    identity: Identity,
    subscriptions: Subscriptions,
    queue: tokio::sync::mpsc::Receiver<bytes::Bytes>,
}

impl Identity {
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        astral_common::guard::for_user(message, &self.token)
    }
}

/// Changes fetched per call when filling a gap in a chat's events, and the most pages
/// fetched before the client is told to catch up by itself.
const FILL_PAGE: i32 = 100;
const MAX_FILL_PAGES: usize = 10;

/// Completes at `at`, or never.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// How long a connection opened with the session cookie waits for an explicit `identify`
/// before it uses the cookie.
const COOKIE_GRACE: Duration = Duration::from_millis(1500);

impl Connection {
    async fn run(
        &mut self,
        cookie: Option<String>,
        unidentified: UnidentifiedSlot,
    ) -> anyhow::Result<()> {
        let heartbeat_ms = self.state.config.heartbeat_ms;
        let outcome = async {
            self.send(json!({ "op": "hello", "d": { "heartbeat_ms": heartbeat_ms } }))
                .await?;
            // Boxed: the identify and ready steps hold big gRPC futures that an idle
            // connection's task should not carry for the rest of its life.
            let identity = Box::pin(self.identify(cookie)).await;
            drop(unidentified);
            let identity = identity?;
            self.serve(identity).await
        }
        .await;
        if let Err(Closing::Close(code, reason)) = outcome {
            let frame = CloseFrame {
                code,
                reason: reason.into(),
            };
            // Bounded: a client that does not read may never make room for it.
            let close = self.socket.send(Message::Close(Some(frame)));
            if tokio::time::timeout(CLOSE_HANDSHAKE, close).await.is_err() {
                return Ok(());
            }
            // Finish the closing handshake: drop what the client still sends until its Close.
            // Closing with unread input would reset the connection, and the client could
            // lose the close frame and its reason.
            let drain = async {
                while let Some(Ok(message)) = self.socket.recv().await {
                    if matches!(message, Message::Close(_)) {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(CLOSE_HANDSHAKE, drain).await;
        }
        Ok(())
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.state.config.heartbeat_ms * 2)
    }

    async fn send(&mut self, frame: Value) -> Step<()> {
        self.socket
            .send(Message::Text(frame.to_string().into()))
            .await
            .map_err(|_| Closing::Gone)
    }

    async fn send_error(&mut self, code: &str, message: &str) -> Step<()> {
        self.send(json!({ "op": "error", "d": { "code": code, "message": message } }))
            .await
    }

    /// The next client frame, parsed; `None` after answering a malformed one with an error.
    /// Past `deadline`, the connection closes with `timed_out`.
    async fn next_frame(&mut self, deadline: Instant, timed_out: Closing) -> Step<Option<Frame>> {
        let message = match tokio::time::timeout_at(deadline, self.socket.recv()).await {
            Err(_) => return Err(timed_out),
            Ok(None) => return Err(Closing::Gone),
            Ok(Some(Err(error))) => {
                return Err(
                    if error.to_string().contains("too long")
                        || error.to_string().contains("Space limit")
                    {
                        Closing::Close(CLOSE_TOO_BIG, "frame too large")
                    } else {
                        Closing::Gone
                    },
                );
            }
            Ok(Some(Ok(message))) => message,
        };
        let text = match message {
            Message::Text(text) => text,
            Message::Close(_) => return Err(Closing::Gone),
            Message::Ping(_) | Message::Pong(_) => return Ok(None),
            Message::Binary(_) => {
                self.send_error("invalid_frame", "frames are JSON text")
                    .await?;
                return Ok(None);
            }
        };
        match serde_json::from_str::<Frame>(&text) {
            Ok(frame) => Ok(Some(frame)),
            Err(_) => {
                self.send_error("invalid_frame", "a frame is {\"op\": …, \"d\": {…}}")
                    .await?;
                Ok(None)
            }
        }
    }

    /// Waits for a valid identify and answers `ready`. A connection opened with the session
    /// cookie uses the cookie's token unless an `identify` comes within [`COOKIE_GRACE`]: an
    /// explicit token wins over a cookie (which another site may have set by a login CSRF).
    /// Without either within the identify timeout (heartbeats do not extend it), the
    /// connection closes with 4003.
    async fn identify(&mut self, cookie: Option<String>) -> Step<Identified> {
        let deadline = Instant::now() + self.state.config.limits.identify_timeout;
        let mut cookie = cookie.map(|token| (token, Instant::now() + COOKIE_GRACE));
        loop {
            let next = self.next_frame(deadline, identify_timeout());
            let frame = match &cookie {
                Some((_, grace)) => match tokio::time::timeout_at(*grace, next).await {
                    Ok(frame) => frame?,
                    Err(_) => match cookie.take() {
                        Some((token, _)) => return self.accept(token).await,
                        None => continue,
                    },
                },
                None => next.await?,
            };
            let Some(frame) = frame else {
                continue;
            };
            match frame.op.as_str() {
                "identify" => match frame.d.get("token").and_then(Value::as_str) {
                    Some(candidate) => return self.accept(candidate.to_owned()).await,
                    None => {
                        self.send_error("invalid_argument", "identify needs d.token")
                            .await?
                    }
                },
                "heartbeat" => self.send(json!({ "op": "heartbeat_ack" })).await?,
                _ => self.send_error("unauthenticated", "identify first").await?,
            }
        }
    }

    /// Identifies the connection with `token`, or closes it with 4001.
    async fn accept(&mut self, token: String) -> Step<Identified> {
        match session::authenticate(&self.state.tokens, &token).await {
            Ok(claims) => self.ready(claims, token).await,
            Err(error) => {
                self.send_error("unauthenticated", &error.message).await?;
                Err(Closing::Close(CLOSE_UNAUTHENTICATED, "unauthenticated"))
            }
        }
    }

    /// Subscribes to the user's events, then loads and sends `ready`: an event published
    /// while `ready` is being put together waits in the connection's queue and follows it
    /// (it may repeat what `ready` already shows; clients apply events idempotently).
    async fn ready(&mut self, claims: Claims, token: String) -> Step<Identified> {
        let (user_id, session_id, name) = (claims.sub, claims.sid, claims.name);
        let Some(slot) = self.state.connections.admit(&user_id) else {
            let message = format!("at most {MAX_CONNECTIONS_PER_USER} connections per user");
            self.send_error("too_many_connections", &message).await?;
            return Err(Closing::Close(
                CLOSE_TOO_MANY_CONNECTIONS,
                "too many connections",
            ));
        };
        let (mut subscriptions, queue) = self.state.hub.listener();
        if let Err(error) = subscriptions.join(subjects::user(&user_id)).await {
            tracing::error!(error = format!("{error:#}"), "cannot subscribe");
            return Err(Closing::Close(1011, "event bus unavailable"));
        }
        let state = self.state.clone();
        let loaded = async {
            // The token names the user: `ready` does not need the auth service (older
            // tokens without the name ask it).
            let user = if name.is_empty() {
                state
                    .services
                    .auth
                    .clone()
                    .get_user(auth::GetUserRequest {
                        id: user_id.clone(),
                    })
                    .await?
                    .into_inner()
            } else {
                auth::User {
                    id: user_id.clone(),
                    username: name,
                }
            };
            let (mut messaging_client, mut social_client) = (
                state.services.messaging.clone(),
                state.services.social.clone(),
            );
            let chats =
                messaging_client.list_chats(for_user(messaging::ListChatsRequest {}, &token));
            // `ready` carries the first 1,000 friends; `GET /api/friends` pages through the rest.
            let friends = social_client.list_friends(for_user(
                social::ListFriendsRequest {
                    limit: 1000,
                    after: String::new(),
                },
                &token,
            ));
            let (chats, friends) = tokio::try_join!(chats, friends)?;
            Ok::<_, tonic::Status>((user, chats.into_inner(), friends.into_inner()))
        }
        .await;
        let (user, chats, friends) = match loaded {
            Ok(loaded) => loaded,
            Err(status) => {
                let error = ApiError::from(status);
                self.send_error(error.code, &error.message).await?;
                return Err(Closing::Close(1011, "cannot load the session"));
            }
        };
        self.send(json!({ "op": "ready", "d": {
            "user": json::user(&user),
            "session_id": session_id,
            "chats": chats.chats.iter().map(json::chat).collect::<Vec<_>>(),
            "friends": friends.friends.iter().map(json::user).collect::<Vec<_>>(),
            "incoming": friends.incoming.iter().map(json::friend_request).collect::<Vec<_>>(),
            "outgoing": friends.outgoing.iter().map(json::friend_request).collect::<Vec<_>>(),
        }}))
        .await?;
        let identity = Identity {
            user,
            session_id,
            token,
            _slot: slot,
        };
        Ok(Identified {
            identity,
            subscriptions,
            queue,
        })
    }

    /// The identified session: client frames, bus events, the heartbeat deadline, a queue
    /// that overflowed, and the gateway draining.
    async fn serve(&mut self, identified: Identified) -> Step<()> {
        let Identified {
            mut identity,
            mut subscriptions,
            mut queue,
        } = identified;
        let overflowed = subscriptions.overflowed();
        let mut draining = std::pin::pin!(self.state.connections.draining());
        let mut bus_connections = self.state.hub.bus_connections();
        bus_connections.mark_unchanged();
        let mut rate = FrameRate::default();
        let mut deadline = Instant::now() + self.timeout();
        loop {
            let next_fetch = self.order.next_fetch();
            tokio::select! {
                frame = self.next_frame(deadline, heartbeat_timeout()) => {
                    let Some(frame) = frame? else { continue };
                    deadline = Instant::now() + self.timeout();
                    match rate.admit(Instant::now()) {
                        Admit::Yes => Box::pin(self.handle(&mut identity, frame, &mut subscriptions)).await?,
                        Admit::Refuse => self.send_error("rate_limited", "too many frames: slow down").await?,
                        Admit::Close => return Err(Closing::Close(CLOSE_TOO_FAST, "too many frames")),
                    }
                }
                Some(payload) = queue.recv() => {
                    let Ok(event) = Event::decode(payload) else { continue };
                    if let Some(Kind::ChatDeleted(deleted)) = &event.kind {
                        // Left, removed, or the chat is gone: its events are no longer theirs.
                        subscriptions.leave(&subjects::chat(&deleted.chat_id));
                        self.order.forget(&deleted.chat_id);
                    }
                    let ready = self.order.accept(event, Instant::now());
                    // A client that stops reading blocks this send once the socket's buffers are
                    // full; its queue then overflows, which ends the wait.
                    tokio::select! {
                        delivered = Box::pin(self.deliver_all(&identity, ready)) => delivered?,
                        () = overflowed.notified() => {
                            return Err(Closing::Close(CLOSE_TOO_SLOW, "too slow: reconnect and catch up"));
                        }
                    }
                }
                () = sleep_until_some(next_fetch) => {
                    Box::pin(self.fill_gaps(&identity)).await?;
                }
                Ok(()) = bus_connections.changed() => {
                    // The bus reconnected: events published meanwhile never reached us.
                    self.send(json!({ "op": "catch_up" })).await?;
                }
                () = overflowed.notified() => {
                    return Err(Closing::Close(CLOSE_TOO_SLOW, "too slow: reconnect and catch up"));
                }
                () = &mut draining => {
                    self.send(json!({ "op": "reconnect" })).await?;
                    return Err(Closing::Close(CLOSE_GOING_AWAY, "the gateway is restarting"));
                }
            }
        }
    }

    async fn handle(
        &mut self,
        identity: &mut Identity,
        frame: Frame,
        subscriptions: &mut Subscriptions,
    ) -> Step<()> {
        let chat_id = frame
            .d
            .get("chat_id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        match (frame.op.as_str(), chat_id) {
            ("heartbeat", _) => self.send(json!({ "op": "heartbeat_ack" })).await,
            ("identify", _) => self.renew(identity, &frame).await,
            ("subscribe", Some(chat_id)) => {
                // Joined before the chat is read: a change made meanwhile is either in what
                // was read or among the events, which start after the version read.
                let subject = subjects::chat(&chat_id);
                let joined_now = !subscriptions.contains(&subject);
                if let Err(error) = subscriptions.join(subject.clone()).await {
                    tracing::error!(error = format!("{error:#}"), "cannot subscribe");
                    return Err(Closing::Close(1011, "event bus unavailable"));
                }
                let request = messaging::ChatRef {
                    chat_id: chat_id.clone(),
                };
                let chat = match self
                    .state
                    .services
                    .messaging
                    .clone()
                    .get_chat(identity.request(request))
                    .await
                {
                    Ok(chat) => chat.into_inner(),
                    Err(status) => {
                        if joined_now {
                            subscriptions.leave(&subject);
                        }
                        let error = ApiError::from(status);
                        return self.send_error(error.code, &error.message).await;
                    }
                };
                if joined_now {
                    self.order.track(&chat_id, chat.last_seq);
                }
                self.send(json!({ "op": "subscribed", "d": { "chat_id": chat_id, "version": chat.last_seq } }))
                    .await
            }
            ("unsubscribe", Some(chat_id)) => {
                subscriptions.leave(&subjects::chat(&chat_id));
                self.order.forget(&chat_id);
                self.send(json!({ "op": "unsubscribed", "d": { "chat_id": chat_id } }))
                    .await
            }
            ("typing", Some(chat_id)) => {
                // Membership and the 3-second limit are the messaging service's to check.
                let request = messaging::ChatRef { chat_id };
                match self
                    .state
                    .services
                    .messaging
                    .clone()
                    .typing(identity.request(request))
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(status) => {
                        let error = ApiError::from(status);
                        self.send_error(error.code, &error.message).await
                    }
                }
            }
            ("subscribe" | "unsubscribe" | "typing", None) => {
                self.send_error("invalid_argument", "this op needs d.chat_id")
                    .await
            }
            _ => self.send_error("invalid_frame", "unknown op").await,
        }
    }

    /// A second `identify`: a fresh access token of the same session (refreshed before the
    /// last one expired) replaces the one this connection passes on to the services.
    async fn renew(&mut self, identity: &mut Identity, frame: &Frame) -> Step<()> {
        let Some(token) = frame.d.get("token").and_then(Value::as_str) else {
            return self
                .send_error("invalid_argument", "identify needs d.token")
                .await;
        };
        match session::authenticate(&self.state.tokens, token).await {
            Ok(claims) if claims.sub == identity.user.id && claims.sid == identity.session_id => {
                identity.token = token.to_owned();
                Ok(())
            }
            Ok(_) => {
                self.send_error(
                    "invalid_argument",
                    "already identified: a new token must be of the same session",
                )
                .await
            }
            Err(error) => self.send_error(error.code, &error.message).await,
        }
    }

    async fn deliver_all(&mut self, identity: &Identity, events: Vec<Event>) -> Step<()> {
        for event in events {
            self.deliver(identity, event).await?;
        }
        Ok(())
    }

    /// Fetches the changes missing before the early events of each chat whose wait is over,
    /// and delivers them in order. A chat that cannot be fetched (after a few tries), or that
    /// lacks more than [`MAX_FILL_PAGES`] pages, gets what waited, and the client is told to
    /// catch up.
    async fn fill_gaps(&mut self, identity: &Identity) -> Step<()> {
        for (chat_id, mut after) in self.order.due(Instant::now()) {
            let mut pages = 0;
            loop {
                pages += 1;
                let request = messaging::ListMessagesRequest {
                    chat_id: chat_id.clone(),
                    before: None,
                    after: Some(after),
                    limit: FILL_PAGE,
                };
                let fetched = self
                    .state
                    .services
                    .messaging
                    .clone()
                    .list_messages(identity.request(request))
                    .await;
                metrics::counter!("astral_gaps_filled_total").increment(1);
                let (messages, complete) = match fetched {
                    Ok(page) => {
                        let messages = page.into_inner().messages;
                        let complete = messages.len() < FILL_PAGE as usize;
                        (messages, complete)
                    }
                    Err(status) => {
                        tracing::warn!(%status, %chat_id, "cannot fetch the missing changes of a chat");
                        if let Some(waited) = self.order.fetch_failed(&chat_id, Instant::now()) {
                            // Told first: what follows skips the changes it could not fetch.
                            self.send(json!({ "op": "catch_up" })).await?;
                            self.deliver_all(identity, waited).await?;
                        }
                        break;
                    }
                };
                if let Some(last) = messages.last() {
                    after = last.version;
                }
                let give_up = !complete && pages >= MAX_FILL_PAGES;
                let ready = self.order.filled(&chat_id, messages, complete || give_up);
                if give_up {
                    self.send(json!({ "op": "catch_up" })).await?;
                }
                self.deliver_all(identity, ready).await?;
                if complete || give_up {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Sends an event unless this connection has already had it; `session.ended` for this
    /// connection's own session closes it.
    async fn deliver(&mut self, identity: &Identity, event: Event) -> Step<()> {
        let Some(kind) = event.kind else {
            return Ok(());
        };
        if !self.seen.first_time(event.id) {
            return Ok(());
        }
        if let Kind::SessionEnded(ended) = &kind {
            // The same news as on `sessions.revoked`; whichever comes first takes effect.
            self.state
                .tokens
                .revoke(ended.session_id.clone(), ended.revoked_at_ms);
        }
        let (name, payload) = json::event(&kind);
        self.send(json!({ "op": "event", "t": name, "d": payload }))
            .await?;
        metrics::counter!("astral_events_sent_total").increment(1);
        match kind {
            Kind::SessionEnded(ended) if ended.session_id == identity.session_id => {
                Err(Closing::Close(CLOSE_UNAUTHENTICATED, "session ended"))
            }
            _ => Ok(()),
        }
    }
}
