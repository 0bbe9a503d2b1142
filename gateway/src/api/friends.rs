//! Friends and friend requests.

use crate::error::ApiResult;
use crate::json::{self, Body};
use crate::session::Caller;
use crate::state::AppState;
use astral_proto::social as pb;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Deserialize)]
pub struct SendBody {
    username: String,
}

pub async fn list(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult<Json<Value>> {
    let overview = state
        .social
        .clone()
        .list_friends(pb::ListFriendsRequest {
            actor_id: caller.user_id,
        })
        .await?
        .into_inner();
    Ok(Json(json!({
        "friends": overview.friends.iter().map(json::user).collect::<Vec<_>>(),
        "incoming": overview.incoming.iter().map(json::friend_request).collect::<Vec<_>>(),
        "outgoing": overview.outgoing.iter().map(json::friend_request).collect::<Vec<_>>(),
    })))
}

/// 201 with the new request; 200 with `"accepted": true` when the other person had already
/// asked and their request was accepted instead.
pub async fn send_request(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<SendBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let request = pb::SendFriendRequestRequest {
        actor_id: caller.user_id,
        username: body.username,
    };
    let sent = state
        .social
        .clone()
        .send_friend_request(request)
        .await?
        .into_inner();
    let mut answer = sent
        .request
        .as_ref()
        .map_or(Value::Null, json::friend_request);
    answer["accepted"] = Value::Bool(sent.accepted);
    let status = if sent.accepted {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(answer)))
}

fn action(caller: Caller, request_id: String) -> pb::FriendRequestAction {
    pb::FriendRequestAction {
        actor_id: caller.user_id,
        request_id,
    }
}

pub async fn accept(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let accepted = state
        .social
        .clone()
        .accept_friend_request(action(caller, id))
        .await?
        .into_inner();
    Ok(Json(
        json!({ "friend": accepted.friend.as_ref().map_or(Value::Null, json::user) }),
    ))
}

pub async fn decline(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .social
        .clone()
        .decline_friend_request(action(caller, id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn cancel(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .social
        .clone()
        .cancel_friend_request(action(caller, id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn unfriend(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .social
        .clone()
        .remove_friend(pb::RemoveFriendRequest {
            actor_id: caller.user_id,
            user_id,
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
