//! The WebSocket protocol's frames as types: what a client may send (parsed once, at the
//! edge, into [`ClientFrame`] or a [`FrameError`]), what the gateway sends ([`ServerFrame`]),
//! and the close codes ([`CloseCode`]). docs/protocol.md describes them for people.

use crate::error::ErrorCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A frame from the client: `{"op": …, "d": {…}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame {
    /// Identify the connection, or give it a fresh token of its session.
    Identify {
        token: String,
    },
    Heartbeat,
    Subscribe {
        chat_id: String,
    },
    Unsubscribe {
        chat_id: String,
    },
    Typing {
        chat_id: String,
    },
    /// The client is idle (no input for a while, or hidden), or back (`idle` false).
    Presence {
        idle: bool,
    },
}

/// Why a client frame was refused; each answers an `error` frame and keeps the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// Not text, not JSON, or not `{"op": "…", "d": …}`.
    Malformed,
    /// Binary frames are not part of the protocol.
    Binary,
    /// An `op` the protocol does not have.
    UnknownOp,
    /// `identify` without `d.token`.
    NoToken,
    /// `subscribe`, `unsubscribe` or `typing` without `d.chat_id`.
    NoChatId,
    /// `presence` without `d.status` "online" or "idle".
    NoStatus,
}

impl FrameError {
    /// The error frame's code, once the connection is identified.
    pub fn code(self) -> ErrorCode {
        match self {
            Self::Malformed | Self::Binary | Self::UnknownOp => ErrorCode::InvalidFrame,
            Self::NoToken | Self::NoChatId | Self::NoStatus => ErrorCode::InvalidArgument,
        }
    }

    /// The error frame's message.
    pub fn message(self) -> &'static str {
        match self {
            Self::Malformed => "a frame is {\"op\": …, \"d\": {…}}",
            Self::Binary => "frames are JSON text",
            Self::UnknownOp => "unknown op",
            Self::NoToken => "identify needs d.token",
            Self::NoChatId => "this op needs d.chat_id",
            Self::NoStatus => "presence needs d.status: \"online\" or \"idle\"",
        }
    }
}

/// The ops a client may send; the payload of each is read by its own type.
#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum Op {
    Identify,
    Heartbeat,
    Subscribe,
    Unsubscribe,
    Typing,
    Presence,
    #[serde(other)]
    Unknown,
}

#[derive(Deserialize)]
struct Envelope {
    op: Op,
    #[serde(default)]
    d: Value,
}

#[derive(Deserialize)]
struct Token {
    token: String,
}

#[derive(Deserialize)]
struct ChatRef {
    chat_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Status {
    Online,
    Idle,
}

#[derive(Deserialize)]
struct PresenceOp {
    status: Status,
}

impl ClientFrame {
    /// Parses a text frame. The op is read first, so that a known op with a bad payload is
    /// told what it lacks rather than that it is unknown.
    pub fn parse(text: &str) -> Result<Self, FrameError> {
        let Envelope { op, d } = serde_json::from_str(text).map_err(|_| FrameError::Malformed)?;
        let chat_id = |d: Value| {
            serde_json::from_value::<ChatRef>(d)
                .map(|chat| chat.chat_id)
                .map_err(|_| FrameError::NoChatId)
        };
        match op {
            Op::Identify => serde_json::from_value::<Token>(d)
                .map(|d| Self::Identify { token: d.token })
                .map_err(|_| FrameError::NoToken),
            Op::Heartbeat => Ok(Self::Heartbeat),
            Op::Subscribe => chat_id(d).map(|chat_id| Self::Subscribe { chat_id }),
            Op::Unsubscribe => chat_id(d).map(|chat_id| Self::Unsubscribe { chat_id }),
            Op::Typing => chat_id(d).map(|chat_id| Self::Typing { chat_id }),
            Op::Presence => serde_json::from_value::<PresenceOp>(d)
                .map(|d| Self::Presence {
                    idle: matches!(d.status, Status::Idle),
                })
                .map_err(|_| FrameError::NoStatus),
            Op::Unknown => Err(FrameError::UnknownOp),
        }
    }
}

/// A frame from the gateway.
#[derive(Debug, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ServerFrame {
    Hello {
        d: Hello,
    },
    Ready {
        d: Ready,
    },
    HeartbeatAck,
    Subscribed {
        d: Subscribed,
    },
    Unsubscribed {
        d: Unsubscribed,
    },
    Error {
        d: ErrorBody,
    },
    /// Events may have been missed: fetch what changed.
    CatchUp,
    /// The gateway is going away: reconnect to any gateway.
    Reconnect,
    // Events (`{"op":"event","t","d"}`) are rendered once for every connection that gets
    // them, in `crate::delivery`.
}

#[derive(Debug, Serialize)]
pub struct Hello {
    pub heartbeat_ms: u64,
}

/// The identified user and their chats. Friends and requests are the client's to load
/// (`GET /api/friends`, paged), after `ready`: the connection already hears their events.
#[derive(Debug, Serialize)]
pub struct Ready {
    pub user: Value,
    pub session_id: String,
    pub chats: Vec<Value>,
}

#[derive(Debug, Serialize)]
pub struct Subscribed {
    pub chat_id: String,
    /// The chat's newest change when the subscription began.
    pub version: i64,
}

#[derive(Debug, Serialize)]
pub struct Unsubscribed {
    pub chat_id: String,
}

#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    /// How long to wait before trying again, when that is the answer (`unavailable`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl ServerFrame {
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Error {
            d: ErrorBody {
                code,
                message: message.into(),
                retry_after_ms: None,
            },
        }
    }

    /// The gateway is busy: come back after `retry_after` (and a jitter of the client's own).
    pub fn busy(retry_after: std::time::Duration) -> Self {
        Self::Error {
            d: ErrorBody {
                code: ErrorCode::Unavailable,
                message: "the gateway is busy: reconnect a little later".into(),
                retry_after_ms: Some(u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX)),
            },
        }
    }

    /// The frame as JSON text.
    pub fn to_text(&self) -> String {
        // Serializing these types cannot fail: every map key is a string.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Why the gateway closes a connection: the close code and its reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCode {
    /// 1009: a frame over [`super::MAX_FRAME`].
    TooLarge,
    /// 1011: a service or the bus cannot serve the session.
    CannotServe(&'static str),
    /// 1012: the gateway is restarting.
    GoingAway,
    /// 1013: the gateway is busy identifying others: reconnect after the `error` frame's
    /// `retry_after_ms`.
    TryAgainLater,
    /// 4000: no heartbeat for two periods.
    HeartbeatTimeout,
    /// 4001: not authenticated, or the session ended.
    Unauthenticated(&'static str),
    /// 4003: not identified in time.
    IdentifyTimeout,
    /// 4008: the client did not read its events.
    TooSlow,
    /// 4029: too many frames.
    TooFast,
    /// 4030: too many connections of the user.
    TooManyConnections,
}

impl CloseCode {
    pub fn code(self) -> u16 {
        match self {
            Self::TooLarge => 1009,
            Self::CannotServe(_) => 1011,
            Self::GoingAway => 1012,
            Self::TryAgainLater => 1013,
            Self::HeartbeatTimeout => 4000,
            Self::Unauthenticated(_) => 4001,
            Self::IdentifyTimeout => 4003,
            Self::TooSlow => 4008,
            Self::TooFast => 4029,
            Self::TooManyConnections => 4030,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            Self::TooLarge => "frame too large",
            Self::CannotServe(reason) | Self::Unauthenticated(reason) => reason,
            Self::GoingAway => "the gateway is restarting",
            Self::TryAgainLater => "busy: try again later",
            Self::HeartbeatTimeout => "heartbeat timeout",
            Self::IdentifyTimeout => "identify timeout",
            Self::TooSlow => "too slow: reconnect and catch up",
            Self::TooFast => "too many frames",
            Self::TooManyConnections => "too many connections",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn client_frames_are_read_by_their_op() {
        let parse = ClientFrame::parse;
        assert_eq!(
            parse(r#"{"op":"identify","d":{"token":"t"}}"#),
            Ok(ClientFrame::Identify { token: "t".into() })
        );
        assert_eq!(parse(r#"{"op":"heartbeat"}"#), Ok(ClientFrame::Heartbeat));
        assert_eq!(
            parse(r#"{"op":"heartbeat","d":{"anything":1}}"#),
            Ok(ClientFrame::Heartbeat)
        );
        assert_eq!(
            parse(r#"{"op":"typing","d":{"chat_id":"1_2","extra":true}}"#),
            Ok(ClientFrame::Typing {
                chat_id: "1_2".into()
            })
        );
    }

    #[test]
    fn a_bad_client_frame_says_what_is_wrong() {
        let parse = ClientFrame::parse;
        for malformed in ["", "not json", "[]", r#"{"d":{}}"#, r#"{"op":5}"#] {
            assert_eq!(parse(malformed), Err(FrameError::Malformed), "{malformed}");
        }
        assert_eq!(parse(r#"{"op":"dance"}"#), Err(FrameError::UnknownOp));
        assert_eq!(parse(r#"{"op":"identify"}"#), Err(FrameError::NoToken));
        assert_eq!(
            parse(r#"{"op":"identify","d":{"token":5}}"#),
            Err(FrameError::NoToken)
        );
        assert_eq!(
            parse(r#"{"op":"subscribe","d":{}}"#),
            Err(FrameError::NoChatId)
        );
        assert_eq!(
            parse(r#"{"op":"unsubscribe","d":"x"}"#),
            Err(FrameError::NoChatId)
        );
    }

    #[test]
    fn server_frames_are_op_and_d() {
        let frame = |frame: ServerFrame| serde_json::to_value(frame).unwrap();
        assert_eq!(
            frame(ServerFrame::HeartbeatAck),
            json!({ "op": "heartbeat_ack" })
        );
        assert_eq!(frame(ServerFrame::CatchUp), json!({ "op": "catch_up" }));
        assert_eq!(
            frame(ServerFrame::Hello {
                d: Hello { heartbeat_ms: 5 }
            }),
            json!({ "op": "hello", "d": { "heartbeat_ms": 5 } })
        );
        assert_eq!(
            frame(ServerFrame::error(ErrorCode::NotFound, "no such chat")),
            json!({ "op": "error", "d": { "code": "not_found", "message": "no such chat" } })
        );
        assert_eq!(
            frame(ServerFrame::busy(std::time::Duration::from_secs(1)))["d"]["retry_after_ms"],
            json!(1000)
        );
    }
}
