//! Chats and messages.

use crate::error::ApiResult;
use crate::json::{self, Body};
use crate::session::Caller;
use crate::state::Messaging;
use astral_proto::messaging as pb;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;

#[derive(Deserialize)]
pub struct DirectBody {
    user_id: String,
}

#[derive(Deserialize)]
pub struct ReadBody {
    seq: i64,
}

#[derive(Deserialize)]
pub struct SendBody {
    /// May be empty (or left out) when files are attached.
    #[serde(default)]
    content: String,
    #[serde(default)]
    nonce: Option<String>,
    /// The id of a message of the same chat this one replies to.
    #[serde(default)]
    reply_to: Option<String>,
    /// Files the sender uploaded (`POST /api/attachments`), at most 10.
    #[serde(default)]
    attachment_ids: Vec<String>,
}

#[derive(Deserialize)]
pub struct GroupBody {
    name: String,
    #[serde(default)]
    member_ids: Vec<String>,
}

#[derive(Deserialize)]
pub struct RenameBody {
    name: String,
}

#[derive(Deserialize)]
pub struct MemberBody {
    user_id: String,
}

#[derive(Deserialize)]
pub struct ReactionBody {
    emoji: String,
}

#[derive(Deserialize)]
pub struct EditBody {
    content: String,
}

pub async fn list(
    State(Messaging(mut messaging)): State<Messaging>,
    caller: Caller,
) -> ApiResult<Json<Value>> {
    let chats = messaging
        .list_chats(caller.request(pb::ListChatsRequest {}))
        .await?
        .into_inner();
    Ok(Json(Value::Array(
        chats.chats.iter().map(json::chat).collect(),
    )))
}

pub async fn open_direct(
    State(Messaging(mut messaging)): State<Messaging>,
    caller: Caller,
    Body(body): Body<DirectBody>,
) -> ApiResult<Json<Value>> {
    let request = pb::OpenDirectChatRequest {
        user_id: body.user_id,
    };
    let chat = messaging
        .open_direct_chat(caller.request(request))
        .await?
        .into_inner();
    Ok(Json(json::chat(&chat)))
}

pub async fn mark_read(
    State(Messaging(mut messaging)): State<Messaging>,
    caller: Caller,
    Path(chat_id): Path<String>,
    Body(body): Body<ReadBody>,
) -> ApiResult<StatusCode> {
    let request = pb::MarkReadRequest {
        chat_id,
        seq: body.seq,
    };
    messaging.mark_read(caller.request(request)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn messages(
    State(Messaging(mut messaging)): State<Messaging>,
    caller: Caller,
    Path(chat_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let request = pb::ListMessagesRequest {
        chat_id,
        before: super::query::number(&query, "before")?,
        after: super::query::number(&query, "after")?,
        limit: super::query::number(&query, "limit")?,
    };
    let page = messaging
        .list_messages(caller.request(request))
        .await?
        .into_inner();
    Ok(Json(Value::Array(
        page.messages.iter().map(json::message).collect(),
    )))
}

pub async fn send(
    State(Messaging(mut messaging)): State<Messaging>,
    caller: Caller,
    Path(chat_id): Path<String>,
    Body(body): Body<SendBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let request = pb::SendMessageRequest {
        chat_id,
        content: body.content,
        nonce: body.nonce.unwrap_or_default(),
        reply_to_id: body.reply_to.unwrap_or_default(),
        attachment_ids: body.attachment_ids,
    };
    let message = messaging
        .send_message(caller.request(request))
        .await?
        .into_inner();
    Ok((StatusCode::CREATED, Json(json::message(&message))))
}

pub async fn edit(
    State(Messaging(mut messaging)): State<Messaging>,
    caller: Caller,
    Path((chat_id, message_id)): Path<(String, String)>,
    Body(body): Body<EditBody>,
) -> ApiResult<Json<Value>> {
    let request = pb::EditMessageRequest {
        chat_id,
        message_id,
        content: body.content,
    };
    let message = messaging
        .edit_message(caller.request(request))
        .await?
        .into_inner();
    Ok(Json(json::message(&message)))
}

pub async fn delete_message(
    State(Messaging(mut messaging)): State<Messaging>,
    caller: Caller,
    Path((chat_id, message_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    messaging
        .delete_message(caller.request(pb::MessageRef {
            chat_id,
            message_id,
        }))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/chats`: a group chat of the caller's with some of their friends.
pub async fn create_group(
    State(Messaging(mut messaging)): State<Messaging>,
    caller: Caller,
    Body(body): Body<GroupBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let request = pb::CreateGroupChatRequest {
        name: body.name,
        member_ids: body.member_ids,
    };
    let chat = messaging
        .create_group_chat(caller.request(request))
        .await?
        .into_inner();
    Ok((StatusCode::CREATED, Json(json::chat(&chat))))
}

/// `GET /api/chats/{chat_id}`: one of the caller's chats.
pub async fn get(
    State(Messaging(mut messaging)): State<Messaging>,
    caller: Caller,
    Path(chat_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let chat = messaging
        .get_chat(caller.request(pb::ChatRef { chat_id }))
        .await?
        .into_inner();
    Ok(Json(json::chat(&chat)))
}

/// `PATCH /api/chats/{chat_id}`: the owner renames a group.
pub async fn rename(
    State(Messaging(mut messaging)): State<Messaging>,
    caller: Caller,
    Path(chat_id): Path<String>,
    Body(body): Body<RenameBody>,
) -> ApiResult<Json<Value>> {
    let request = pb::RenameChatRequest {
        chat_id,
        name: body.name,
    };
    Ok(Json(json::chat(
        &messaging
            .rename_chat(caller.request(request))
            .await?
            .into_inner(),
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsBody {
    #[serde(default)]
    muted: Option<bool>,
}

/// `PATCH /api/chats/{chat_id}/settings`: the caller's own settings of the chat.
pub async fn settings(
    State(Messaging(mut messaging)): State<Messaging>,
    caller: Caller,
    Path(chat_id): Path<String>,
    Body(body): Body<SettingsBody>,
) -> ApiResult<Json<Value>> {
    let request = pb::ChatSettingsRequest {
        chat_id,
        muted: body.muted,
    };
    Ok(Json(json::chat(
        &messaging
            .update_chat_settings(caller.request(request))
            .await?
            .into_inner(),
    )))
}

/// `POST /api/chats/{chat_id}/members`: the owner adds a friend.
pub async fn add_member(
    State(Messaging(mut messaging)): State<Messaging>,
    caller: Caller,
    Path(chat_id): Path<String>,
    Body(body): Body<MemberBody>,
) -> ApiResult<Json<Value>> {
    let request = pb::MemberRequest {
        chat_id,
        user_id: body.user_id,
    };
    Ok(Json(json::chat(
        &messaging
            .add_member(caller.request(request))
            .await?
            .into_inner(),
    )))
}

/// `DELETE /api/chats/{chat_id}/members/{user_id}`: the owner removes a member, or a member
/// leaves.
pub async fn remove_member(
    State(Messaging(mut messaging)): State<Messaging>,
    caller: Caller,
    Path((chat_id, user_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let request = pb::MemberRequest { chat_id, user_id };
    messaging.remove_member(caller.request(request)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/chats/{chat_id}/messages/{message_id}/reactions`: toggles the caller's reaction.
pub async fn react(
    State(Messaging(mut messaging)): State<Messaging>,
    caller: Caller,
    Path((chat_id, message_id)): Path<(String, String)>,
    Body(body): Body<ReactionBody>,
) -> ApiResult<Json<Value>> {
    let request = pb::ReactionRequest {
        chat_id,
        message_id,
        emoji: body.emoji,
    };
    Ok(Json(json::message(
        &messaging
            .toggle_reaction(caller.request(request))
            .await?
            .into_inner(),
    )))
}
