//! The JSON shapes of `docs/api.md`, built from the services' protobuf messages, and the JSON
//! body extractor that answers malformed input with the contract's error body.

use crate::error::ApiError;
use astral_common::time::rfc3339;
use astral_proto::{auth, events, messaging, social};
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

pub fn user(user: &auth::User) -> Value {
    json!({ "id": user.id, "username": user.username })
}

fn user_or_null(u: Option<&auth::User>) -> Value {
    u.map_or(Value::Null, user)
}

pub fn friend_request(request: &social::FriendRequest) -> Value {
    json!({
        "id": request.id,
        "from": user_or_null(request.from.as_ref()),
        "to": user_or_null(request.to.as_ref()),
        "created_at": rfc3339(request.created_at_ms),
    })
}

pub fn chat(chat: &messaging::Chat) -> Value {
    let mut value = json!({
        "id": chat.id,
        "kind": chat.kind().json_name(),
        "name": chat.name,
        "owner_id": if chat.owner_id.is_empty() { Value::Null } else { Value::from(chat.owner_id.clone()) },
        "members": chat.members.iter().map(user).collect::<Vec<_>>(),
        "last_seq": chat.last_seq,
        "unread": chat.unread,
        "read_only": chat.read_only,
        "last_activity_at": rfc3339(chat.last_activity_ms),
        "last_message": chat.last_message.as_ref().map(preview),
    });
    // The viewer's own: in answers, never in events (which every member gets alike).
    if let Some(muted) = chat.muted {
        value["muted"] = Value::from(muted);
    }
    if let Some(read_states) = &chat.read_states {
        value["read_states"] = read_states
            .states
            .iter()
            .map(|state| json!({ "user_id": state.user_id, "seq": state.seq }))
            .collect();
    }
    value
}

/// What a friend sees of a user's presence.
pub fn presence(status: &str, last_seen_at_ms: Option<i64>) -> Value {
    json!({ "status": status, "last_seen_at": last_seen_at_ms.map(rfc3339) })
}

/// A user's settings, or (in `settings.updated`) those that changed.
pub fn settings(share_presence: Option<bool>, share_read_receipts: Option<bool>) -> Value {
    let mut value = json!({});
    if let Some(share) = share_presence {
        value["share_presence"] = Value::from(share);
    }
    if let Some(share) = share_read_receipts {
        value["share_read_receipts"] = Value::from(share);
    }
    value
}

/// A short view of a message: a chat's last message, or what a reply answers.
fn preview(preview: &messaging::MessagePreview) -> Value {
    json!({
        "id": preview.id,
        "author_id": preview.author_id,
        "content": preview.content,
        "created_at": rfc3339(preview.created_at_ms),
        "deleted": preview.deleted,
        "attachment_count": preview.attachment_count,
    })
}

/// A file, as uploaded and as messages carry it.
pub fn attachment(attachment: &messaging::Attachment) -> Value {
    json!({
        "id": attachment.id,
        "filename": attachment.filename,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "width": attachment.width,
        "height": attachment.height,
    })
}

pub fn message(message: &messaging::Message) -> Value {
    json!({
        "id": message.id,
        "chat_id": message.chat_id,
        "seq": message.seq,
        "version": message.version,
        "author_id": message.author_id,
        "content": message.content,
        "nonce": if message.nonce.is_empty() { Value::Null } else { Value::from(message.nonce.clone()) },
        "created_at": rfc3339(message.created_at_ms),
        "edited_at": message.edited_at_ms.map(rfc3339),
        "deleted": message.deleted,
        "reply_to": message.reply_to.as_ref().map(preview),
        "mentions": message.mentions,
        "reactions": message
            .reactions
            .iter()
            .map(|r| json!({ "emoji": r.emoji, "count": r.user_ids.len(), "user_ids": r.user_ids }))
            .collect::<Vec<_>>(),
        "kind": if message.system.is_some() { "system" } else { "user" },
        "system": message.system.as_ref().map(system_change),
        "attachments": message.attachments.iter().map(attachment).collect::<Vec<_>>(),
    })
}

/// What a system message records: `type`, and `user_id` or `name` when it has one.
fn system_change(change: &messaging::SystemChange) -> Value {
    let mut value = json!({ "type": change.r#type().json_name() });
    if let Some(user_id) = &change.user_id {
        value["user_id"] = json!(user_id);
    }
    if let Some(name) = &change.name {
        value["name"] = json!(name);
    }
    value
}

/// An event as the WebSocket sends it: its type name and its `d` payload.
pub fn event(kind: &events::event::Kind) -> (&'static str, Value) {
    use events::event::Kind;
    let request =
        |e: &events::FriendRequestEvent| e.request.as_ref().map_or(Value::Null, friend_request);
    let chat_of = |e: &events::ChatEvent| e.chat.as_ref().map_or(Value::Null, chat);
    let message_of = |e: &events::MessageEvent| e.message.as_ref().map_or(Value::Null, message);
    match kind {
        Kind::FriendRequestCreated(e) => ("friend_request.created", request(e)),
        Kind::FriendRequestAccepted(e) => ("friend_request.accepted", request(e)),
        Kind::FriendRequestDeclined(e) => ("friend_request.declined", request(e)),
        Kind::FriendRequestCancelled(e) => ("friend_request.cancelled", request(e)),
        Kind::FriendRemoved(e) => (
            "friend.removed",
            json!({ "user_id": e.user_id, "friend_id": e.friend_id }),
        ),
        Kind::ChatCreated(e) => ("chat.created", chat_of(e)),
        Kind::ChatUpdated(e) => ("chat.updated", chat_of(e)),
        Kind::ChatDeleted(e) => ("chat.deleted", json!({ "chat_id": e.chat_id })),
        Kind::MessageCreated(e) => ("message.created", message_of(e)),
        Kind::MessageUpdated(e) => ("message.updated", message_of(e)),
        Kind::MessageDeleted(e) => ("message.deleted", message_of(e)),
        Kind::TypingStarted(e) => (
            "typing.started",
            json!({ "chat_id": e.chat_id, "user": user_or_null(e.user.as_ref()) }),
        ),
        Kind::SessionEnded(e) => ("session.ended", json!({ "session_id": e.session_id })),
        Kind::ReadUpdated(e) => (
            "read.updated",
            json!({ "chat_id": e.chat_id, "user_id": e.user_id, "seq": e.seq }),
        ),
        Kind::SettingsUpdated(e) => (
            "settings.updated",
            settings(e.share_presence, e.share_read_receipts),
        ),
        Kind::PresenceUpdated(e) => {
            let mut value = presence(&e.status, e.last_seen_at_ms);
            value["user_id"] = Value::from(e.user_id.clone());
            ("presence.updated", value)
        }
    }
}

/// A JSON request body. Anything that is not the expected JSON answers 400 (413 when too
/// large) with the contract's error body.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        crate::error::ErrorCode::PayloadTooLarge,
                        "the request body is too large",
                    )
                } else {
                    ApiError::invalid("the request body could not be read")
                }
            })?;
        serde_json::from_slice(&bytes).map(Body).map_err(|error| {
            ApiError::new(
                crate::error::ErrorCode::InvalidJson,
                format!("the request body is not valid JSON for this call: {error}"),
            )
        })
    }
}
