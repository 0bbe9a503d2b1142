//! Chats and messages.

use crate::error::{ApiError, ApiResult};
use crate::json::{self, Body};
use crate::session::Caller;
use crate::state::AppState;
use astral_proto::messaging as pb;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

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
    content: String,
    #[serde(default)]
    nonce: Option<String>,
}

#[derive(Deserialize)]
pub struct EditBody {
    content: String,
}

pub async fn list(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult<Json<Value>> {
    let chats = state
        .messaging
        .clone()
        .list_chats(pb::ListChatsRequest {
            actor_id: caller.user_id,
        })
        .await?
        .into_inner();
    Ok(Json(Value::Array(
        chats.chats.iter().map(json::chat).collect(),
    )))
}

pub async fn open_direct(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<DirectBody>,
) -> ApiResult<Json<Value>> {
    let request = pb::OpenDirectChatRequest {
        actor_id: caller.user_id,
        user_id: body.user_id,
    };
    let chat = state
        .messaging
        .clone()
        .open_direct_chat(request)
        .await?
        .into_inner();
    Ok(Json(json::chat(&chat)))
}

pub async fn mark_read(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(chat_id): Path<String>,
    Body(body): Body<ReadBody>,
) -> ApiResult<StatusCode> {
    let request = pb::MarkReadRequest {
        actor_id: caller.user_id,
        chat_id,
        seq: body.seq,
    };
    state.messaging.clone().mark_read(request).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn messages(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(chat_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let limit = super::query_number(&query, "limit")?.unwrap_or(0);
    let limit =
        i32::try_from(limit).map_err(|_| ApiError::invalid("limit is between 1 and 100"))?;
    if query.contains_key("limit") && limit == 0 {
        return Err(ApiError::invalid("limit is between 1 and 100"));
    }
    let request = pb::ListMessagesRequest {
        actor_id: caller.user_id,
        chat_id,
        before: super::query_number(&query, "before")?,
        after: super::query_number(&query, "after")?,
        limit,
    };
    let page = state
        .messaging
        .clone()
        .list_messages(request)
        .await?
        .into_inner();
    Ok(Json(Value::Array(
        page.messages.iter().map(json::message).collect(),
    )))
}

pub async fn send(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(chat_id): Path<String>,
    Body(body): Body<SendBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let request = pb::SendMessageRequest {
        actor_id: caller.user_id,
        chat_id,
        content: body.content,
        nonce: body.nonce.unwrap_or_default(),
    };
    let message = state
        .messaging
        .clone()
        .send_message(request)
        .await?
        .into_inner();
    Ok((StatusCode::CREATED, Json(json::message(&message))))
}

pub async fn edit(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((chat_id, message_id)): Path<(String, String)>,
    Body(body): Body<EditBody>,
) -> ApiResult<Json<Value>> {
    let request = pb::EditMessageRequest {
        actor_id: caller.user_id,
        chat_id,
        message_id,
        content: body.content,
    };
    let message = state
        .messaging
        .clone()
        .edit_message(request)
        .await?
        .into_inner();
    Ok(Json(json::message(&message)))
}

pub async fn delete_message(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((chat_id, message_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state
        .messaging
        .clone()
        .delete_message(pb::MessageRef {
            actor_id: caller.user_id,
            chat_id,
            message_id,
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
