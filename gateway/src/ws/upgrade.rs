//! The WebSocket handshake (RFC 6455 §4.2) and the socket it leaves, done here rather than by
//! axum's extractor so that a session writes to tungstenite's stream itself: a large frame
//! goes out in fragments of at most [`FRAGMENT`] bytes. tungstenite copies each frame into
//! a write buffer that keeps the capacity of the largest frame the connection ever sent —
//! `ready`, for a user with many chats tens or hundreds of KiB — for as long as the
//! connection lives; in fragments it stays at [`FRAGMENT`]. A refused handshake gets the
//! contract's JSON error, like every other request.

use crate::error::ApiError;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{Sink, SinkExt as _, stream};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};

/// The largest frame a connection writes whole; longer messages go out in fragments.
pub const FRAGMENT: usize = 1024;

/// An upgrade request that passed the handshake's checks.
pub struct Handshake {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
}

/// The socket of an upgraded connection.
pub type Socket = WebSocketStream<TokioIo<Upgraded>>;

impl Handshake {
    /// Checks that `request` asks for a WebSocket (HTTP/1.1 `GET` with `Connection: upgrade`,
    /// `Upgrade: websocket`, version 13 and a key).
    pub fn of(request: &mut Request) -> Result<Self, ApiError> {
        let headers = request.headers();
        let asks = request.method() == Method::GET
            && has_token(headers, header::CONNECTION, "upgrade")
            && has_token(headers, header::UPGRADE, "websocket");
        if !asks {
            return Err(ApiError::invalid(
                "this address takes only WebSocket upgrades (GET with Upgrade: websocket)",
            ));
        }
        if !has_token(headers, header::SEC_WEBSOCKET_VERSION, "13") {
            return Err(ApiError::invalid("Sec-WebSocket-Version must be 13"));
        }
        let key = headers
            .get(header::SEC_WEBSOCKET_KEY)
            .cloned()
            .ok_or_else(|| ApiError::invalid("Sec-WebSocket-Key is missing"))?;
        let on_upgrade = request
            .extensions_mut()
            .remove::<OnUpgrade>()
            .ok_or_else(|| ApiError::invalid("this connection cannot be upgraded"))?;
        Ok(Self { key, on_upgrade })
    }

    /// Answers 101 and runs `session` on the socket once the connection has switched.
    pub fn accept<F, Fut>(self, config: WebSocketConfig, session: F) -> Response
    where
        F: FnOnce(Socket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let accept = derive_accept_key(self.key.as_bytes());
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            // The client left before the switch: nothing to serve.
            let Ok(upgraded) = on_upgrade.await else {
                return;
            };
            let io = TokioIo::new(upgraded);
            session(WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await).await;
        });
        let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(accept) = HeaderValue::from_str(&accept) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        response
    }
}

/// Whether the comma-separated `name` header holds `token` (case-insensitively).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    crate::headers::list_items(headers, name).any(|part| part.eq_ignore_ascii_case(token))
}

/// The write half of `socket` sending text longer than [`FRAGMENT`] as a fragmented message.
pub fn fragmenting<S>(sink: S) -> impl Sink<Message, Error = tungstenite::Error> + Unpin + Send
where
    S: Sink<Message, Error = tungstenite::Error> + Unpin + Send,
{
    sink.with_flat_map(|message| stream::iter(fragments(message).map(Ok)))
}

/// `message` as it goes on the wire: itself, or a long text as its fragments (RFC 6455
/// §5.4: a text frame without FIN, continuation frames, the last with FIN; the payload is
/// cut anywhere, UTF-8 being checked on the whole message).
fn fragments(message: Message) -> impl Iterator<Item = Message> + Send {
    let (whole, long) = match message {
        Message::Text(text) if text.len() > FRAGMENT => (None, Bytes::from(text)),
        other => (Some(other), Bytes::new()),
    };
    let count = long.len().div_ceil(FRAGMENT);
    let pieces = (0..count).map(move |i| {
        let piece = long.slice(i * FRAGMENT..((i + 1) * FRAGMENT).min(long.len()));
        let opcode = if i == 0 { Data::Text } else { Data::Continue };
        Message::Frame(Frame::message(piece, OpCode::Data(opcode), i + 1 == count))
    });
    whole.into_iter().chain(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reassembled(frames: Vec<Message>) -> String {
        let mut text = Vec::new();
        for (i, message) in frames.iter().enumerate() {
            let Message::Frame(frame) = message else {
                panic!("a fragment, got {message:?}");
            };
            let header = frame.header();
            let expected = if i == 0 { Data::Text } else { Data::Continue };
            assert_eq!(header.opcode, OpCode::Data(expected));
            assert_eq!(header.is_final, i + 1 == frames.len());
            assert!(frame.payload().len() <= FRAGMENT);
            text.extend_from_slice(frame.payload());
        }
        String::from_utf8(text).expect("UTF-8 once whole")
    }

    #[test]
    fn a_long_text_goes_out_in_fragments_that_make_it_whole_again() {
        // Multi-byte characters, so that fragments cut through them.
        let long = "é€".repeat(FRAGMENT);
        let frames: Vec<Message> = fragments(Message::Text(long.clone().into())).collect();
        assert_eq!(frames.len(), (5 * FRAGMENT).div_ceil(FRAGMENT));
        assert_eq!(reassembled(frames), long);
    }

    #[test]
    fn short_texts_and_other_messages_go_out_as_they_are() {
        let exact = "x".repeat(FRAGMENT);
        let frames: Vec<Message> = fragments(Message::Text(exact.clone().into())).collect();
        assert_eq!(frames, vec![Message::Text(exact.into())]);
        let close: Vec<Message> = fragments(Message::Close(None)).collect();
        assert_eq!(close, vec![Message::Close(None)]);
    }
}
