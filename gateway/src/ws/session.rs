//! One WebSocket session as a state machine over any `Sink` and `Stream` of messages: hello,
//! identify, ready, then the identified loop (`live.rs`). Generic so that unit tests drive it
//! through channels (`tests.rs`); `super::upgrade` gives it the real socket.

use super::backend::Backend;
use super::frames::{ClientFrame, CloseCode, FrameError, Hello, Ready, ServerFrame};
use super::order::Ordering;
use super::seen::Seen;
use crate::connections::{ConnectionSlot, Connections, MAX_CONNECTIONS_PER_USER, UnidentifiedSlot};
use crate::error::{ApiError, ErrorCode};
use crate::hub::{Hub, Queue, Subscriptions};
use crate::identify_queue::RETRY_AFTER;
use crate::json;
use astral_common::tokens::Claims;
use astral_proto::{auth, subjects};
use futures::{Sink, SinkExt as _, Stream, StreamExt as _};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// How long a closing connection waits for the client's Close.
const CLOSE_HANDSHAKE: Duration = Duration::from_secs(2);

/// How long a connection opened with the session cookie waits for an explicit `identify`
/// before it uses the cookie.
pub const COOKIE_GRACE: Duration = Duration::from_millis(1500);

/// A session's timing.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// How often the client must send a heartbeat (it is closed after two periods).
    pub heartbeat: Duration,
    /// How long it may take to identify.
    pub identify_timeout: Duration,
}

/// Why reading from the socket failed.
#[derive(Debug)]
pub enum ReadError {
    /// The client sent a frame over [`super::MAX_FRAME`].
    TooLarge,
    /// The connection broke.
    Broken,
}

/// What ended a session early.
pub(super) enum Closing {
    /// Close with this code.
    Close(CloseCode),
    /// The socket is gone.
    Gone,
}

pub(super) type Step<T> = Result<T, Closing>;

/// A session: its socket's two halves, what it asks of the system, and what it delivered.
pub struct Session<W, R, B> {
    pub(super) write: W,
    pub(super) read: R,
    pub(super) backend: Arc<B>,
    pub(super) hub: Hub,
    pub(super) connections: Connections,
    pub(super) settings: Settings,
    pub(super) seen: Seen,
    /// The order of the subscribed chats' message events.
    pub(super) order: Ordering,
}

/// The identified user of a connection.
pub(super) struct Identity {
    pub(super) user_id: String,
    pub(super) session_id: String,
    /// The user's access token, passed on to the services; a client replaces it with a
    /// fresh one (another `identify`) before it expires.
    pub(super) token: String,
    /// Whether the client identified with a token of its own (not only the session cookie):
    /// until it does, its first `identify` decides who the connection is.
    pub(super) explicit: bool,
    /// Whether the user shares read receipts, and so is shown others' (`read.updated`);
    /// their `settings.updated` changes it.
    pub(super) sees_read_receipts: AtomicBool,
    /// Its place among the user's connections here, and whether it is idle.
    pub(super) slot: ConnectionSlot,
}

/// An identified connection, already subscribed to its user's events (queued since before
/// `ready`).
pub(super) struct Identified {
    pub(super) identity: Identity,
    pub(super) subscriptions: Subscriptions,
    pub(super) queue: Queue,
}

/// A cookie-identified connection's `identify` named another session: the connection starts
/// over as that one.
pub(super) struct Reidentify {
    pub(super) claims: Claims,
    pub(super) token: String,
}

impl<W, R, B> Session<W, R, B>
where
    W: Sink<Message> + Unpin + Send,
    R: Stream<Item = Result<Message, ReadError>> + Unpin + Send,
    B: Backend,
{
    pub fn new(
        write: W,
        read: R,
        backend: Arc<B>,
        hub: Hub,
        connections: Connections,
        settings: Settings,
    ) -> Self {
        Self {
            write,
            read,
            backend,
            hub,
            connections,
            settings,
            seen: Seen::default(),
            order: Ordering::default(),
        }
    }

    /// Runs the session to its end. `cookie`: the session cookie's token, if the upgrade
    /// carried one; `unidentified`: the connection's place among those not identified yet.
    pub async fn run(mut self, cookie: Option<String>, unidentified: UnidentifiedSlot) {
        if let Err(Closing::Close(code)) = self.session(cookie, unidentified).await {
            self.close(code).await;
        }
    }

    async fn session(
        &mut self,
        cookie: Option<String>,
        unidentified: UnidentifiedSlot,
    ) -> Step<std::convert::Infallible> {
        let hello = Hello {
            heartbeat_ms: u64::try_from(self.settings.heartbeat.as_millis()).unwrap_or(0),
        };
        self.send(ServerFrame::Hello { d: hello }).await?;
        // Boxed: the identify and ready steps hold big futures that an idle connection's task
        // should not carry for the rest of its life.
        let identified = Box::pin(self.identify(cookie)).await;
        drop(unidentified);
        let mut identified = identified?;
        loop {
            let Reidentify { claims, token } = self.serve(identified).await?;
            (self.seen, self.order) = (Seen::default(), Ordering::default());
            identified = Box::pin(self.ready(claims, token, true)).await?;
        }
    }

    /// Sends a Close and finishes the closing handshake: drops what the client still sends
    /// until its Close (closing with unread input would reset the connection, and the
    /// client could lose the close frame and its reason). Bounded in time: a client that
    /// does not read may never make room for it.
    async fn close(&mut self, code: CloseCode) {
        let frame = CloseFrame {
            code: code.code().into(),
            reason: code.reason().into(),
        };
        let close = self.write.send(Message::Close(Some(frame)));
        if tokio::time::timeout(CLOSE_HANDSHAKE, close).await.is_err() {
            return;
        }
        let drain = async {
            while let Some(Ok(message)) = self.read.next().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(CLOSE_HANDSHAKE, drain).await;
    }

    pub(super) async fn send(&mut self, frame: ServerFrame) -> Step<()> {
        self.send_text(frame.to_text().into()).await
    }

    /// Sends a frame already rendered (an event's, shared by every connection).
    pub(super) async fn send_text(&mut self, text: Utf8Bytes) -> Step<()> {
        self.write
            .send(Message::Text(text))
            .await
            .map_err(|_| Closing::Gone)
    }

    pub(super) async fn send_error(&mut self, code: ErrorCode, message: &str) -> Step<()> {
        self.send(ServerFrame::error(code, message)).await
    }

    /// Sends `error` as an `error` frame (a service's refusal, mapped as for HTTP).
    pub(super) async fn send_api_error(&mut self, error: ApiError) -> Step<()> {
        self.send(ServerFrame::error(error.code, error.message))
            .await
    }

    /// The next client frame, parsed (or why it could not be); `None` for pings and pongs.
    /// Past `deadline`, the connection closes with `timed_out`.
    pub(super) async fn next_frame(
        &mut self,
        deadline: Instant,
        timed_out: CloseCode,
    ) -> Step<Option<Result<ClientFrame, FrameError>>> {
        match tokio::time::timeout_at(deadline, self.next_message()).await {
            Err(_) => Err(Closing::Close(timed_out)),
            Ok(frame) => frame,
        }
    }

    /// The next client frame, however long it takes (the caller keeps the time).
    pub(super) async fn next_message(&mut self) -> Step<Option<Result<ClientFrame, FrameError>>> {
        let message = match self.read.next().await {
            None | Some(Err(ReadError::Broken)) => return Err(Closing::Gone),
            Some(Err(ReadError::TooLarge)) => return Err(Closing::Close(CloseCode::TooLarge)),
            Some(Ok(message)) => message,
        };
        Ok(match message {
            Message::Text(text) => Some(ClientFrame::parse(&text)),
            Message::Binary(_) => Some(Err(FrameError::Binary)),
            // Raw frames are never read: tungstenite gives whole messages.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => None,
            Message::Close(_) => return Err(Closing::Gone),
        })
    }

    /// Waits for a valid identify and answers `ready`. A connection opened with the session
    /// cookie uses the cookie's token unless an `identify` comes within [`COOKIE_GRACE`]: an
    /// explicit token wins over a cookie (which another site may have set by a login CSRF),
    /// and still does if it comes later (`live.rs`). Without either within the identify
    /// timeout (heartbeats do not extend it), the connection closes with 4003.
    async fn identify(&mut self, cookie: Option<String>) -> Step<Identified> {
        let deadline = Instant::now() + self.settings.identify_timeout;
        let mut cookie = cookie.map(|token| (token, Instant::now() + COOKIE_GRACE));
        loop {
            let next = self.next_frame(deadline, CloseCode::IdentifyTimeout);
            let frame = match &cookie {
                Some((_, grace)) => match tokio::time::timeout_at(*grace, next).await {
                    Ok(frame) => frame?,
                    Err(_) => match cookie.take() {
                        Some((token, _)) => return self.accept(token, false).await,
                        None => continue,
                    },
                },
                None => next.await?,
            };
            match frame {
                None => {}
                Some(Ok(ClientFrame::Identify { token })) => return self.accept(token, true).await,
                Some(Ok(ClientFrame::Heartbeat)) => self.send(ServerFrame::HeartbeatAck).await?,
                Some(Err(
                    error @ (FrameError::Malformed | FrameError::Binary | FrameError::NoToken),
                )) => self.send_error(error.code(), error.message()).await?,
                // Unknown ops too: only identified connections learn what the protocol has.
                Some(_) => {
                    let message = "identify first";
                    self.send_error(ErrorCode::Unauthenticated, message).await?;
                }
            }
        }
    }

    /// Identifies the connection with `token` (`explicit`: from an `identify`, not the
    /// cookie), or closes it with 4001.
    pub(super) async fn accept(&mut self, token: String, explicit: bool) -> Step<Identified> {
        match self.backend.authenticate(&token).await {
            Ok(claims) => self.ready(claims, token, explicit).await,
            // Just started, its token keys still loading: not the token's fault. Come back.
            Err(error) if error.code == ErrorCode::Unavailable => Err(self.come_back_later().await),
            Err(error) => Err(self.refuse(&error).await),
        }
    }

    /// The gateway cannot identify the connection now: an `error` with a retry hint, then
    /// close 1013 (the client comes back after the hint and its own jittered back-off).
    async fn come_back_later(&mut self) -> Closing {
        match self.send(ServerFrame::busy(RETRY_AFTER)).await {
            Ok(()) => Closing::Close(CloseCode::TryAgainLater),
            Err(gone) => gone,
        }
    }

    /// Refuses a token that was to identify the connection: an error frame, then 4001.
    pub(super) async fn refuse(&mut self, error: &ApiError) -> Closing {
        match self
            .send_error(ErrorCode::Unauthenticated, &error.message)
            .await
        {
            Ok(()) => Closing::Close(CloseCode::Unauthenticated("unauthenticated")),
            Err(gone) => gone,
        }
    }

    /// Subscribes to the user's events, then loads and sends `ready`: an event published
    /// while `ready` is being put together waits in the connection's queue and follows it
    /// (it may repeat what `ready` already shows; clients apply events idempotently).
    async fn ready(&mut self, claims: Claims, token: String, explicit: bool) -> Step<Identified> {
        // Its turn first: only so many connections load `ready` from the services at once.
        let Some(_turn) = self.connections.turn_to_identify().await else {
            return Err(self.come_back_later().await);
        };
        let (user_id, session_id, name) = (claims.sub, claims.sid, claims.name);
        let Some(slot) = self.connections.admit(&user_id) else {
            let message = format!("at most {MAX_CONNECTIONS_PER_USER} connections per user");
            self.send_error(ErrorCode::TooManyConnections, &message)
                .await?;
            return Err(Closing::Close(CloseCode::TooManyConnections));
        };
        let mut subscriptions = self.hub.listener();
        let queue = subscriptions.queue();
        if let Err(error) = subscriptions.join(subjects::user(&user_id)).await {
            tracing::error!(error = format!("{error:#}"), "cannot subscribe");
            return Err(Closing::Close(CloseCode::CannotServe(
                "event bus unavailable",
            )));
        }
        let loaded = async {
            // The token names the user: `ready` does not need the auth service (older
            // tokens without the name ask it).
            let user = async {
                if name.is_empty() {
                    self.backend.user(user_id.clone()).await
                } else {
                    Ok(auth::User {
                        id: user_id.clone(),
                        username: name,
                    })
                }
            };
            tokio::try_join!(user, self.backend.chats(&token))
        }
        .await;
        let (user, (chats, sees_read_receipts)) = match loaded {
            Ok(loaded) => loaded,
            Err(status) => {
                self.send_api_error(ApiError::from(status)).await?;
                return Err(Closing::Close(CloseCode::CannotServe(
                    "cannot load the session",
                )));
            }
        };
        let ready = Ready {
            user: json::user(&user),
            session_id: session_id.clone(),
            chats: chats.iter().map(json::chat).collect(),
        };
        self.send(ServerFrame::Ready { d: ready }).await?;
        let identity = Identity {
            user_id: user.id,
            session_id,
            token,
            explicit,
            sees_read_receipts: AtomicBool::new(sees_read_receipts),
            slot,
        };
        Ok(Identified {
            identity,
            subscriptions,
            queue,
        })
    }
}
