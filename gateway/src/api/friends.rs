//! Friends and friend requests.

use crate::error::ApiResult;
use crate::json::{self, Body};
use crate::session::Caller;
use crate::state::Social;
use astral_proto::social as pb;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;

#[derive(Deserialize)]
pub struct SendBody {
    username: String,
}

/// `?limit=N&after=USERNAME` pages through friends by username (`next_after` names the next
/// page); pending requests always come whole.
pub async fn list(
    State(Social(mut social)): State<Social>,
    caller: Caller,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let request = pb::ListFriendsRequest {
        limit: super::query::number(&query, "limit")?,
        after: query.get("after").cloned().unwrap_or_default(),
    };
    let overview = social
        .list_friends(caller.request(request))
        .await?
        .into_inner();
    // Each friend with what they show of their presence (offline if social says nothing).
    let offline = pb::Presence {
        status: "offline".to_owned(),
        last_seen_at_ms: None,
    };
    let friends: Vec<Value> = overview
        .friends
        .iter()
        .enumerate()
        .map(|(n, friend)| {
            let presence = overview.presence.get(n).unwrap_or(&offline);
            let mut value = json::user(friend);
            value["presence"] = json::presence(&presence.status, presence.last_seen_at_ms);
            value
        })
        .collect();
    Ok(Json(json!({
        "friends": friends,
        "incoming": overview.incoming.iter().map(json::friend_request).collect::<Vec<_>>(),
        "outgoing": overview.outgoing.iter().map(json::friend_request).collect::<Vec<_>>(),
        "next_after": (!overview.next_after.is_empty()).then_some(overview.next_after),
    })))
}

/// 201 with the new request; 200 with `"accepted": true` when the other person had already
/// asked and their request was accepted instead.
pub async fn send_request(
    State(Social(mut social)): State<Social>,
    caller: Caller,
    Body(body): Body<SendBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let request = pb::SendFriendRequestRequest {
        username: body.username,
    };
    let sent = social
        .send_friend_request(caller.request(request))
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

fn action(request_id: String) -> pb::FriendRequestAction {
    pb::FriendRequestAction { request_id }
}

pub async fn accept(
    State(Social(mut social)): State<Social>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let accepted = social
        .accept_friend_request(caller.request(action(id)))
        .await?
        .into_inner();
    Ok(Json(
        json!({ "friend": accepted.friend.as_ref().map_or(Value::Null, json::user) }),
    ))
}

pub async fn decline(
    State(Social(mut social)): State<Social>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    social
        .decline_friend_request(caller.request(action(id)))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn cancel(
    State(Social(mut social)): State<Social>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    social
        .cancel_friend_request(caller.request(action(id)))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn unfriend(
    State(Social(mut social)): State<Social>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> ApiResult<StatusCode> {
    social
        .remove_friend(caller.request(pb::RemoveFriendRequest { user_id }))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct BlockBody {
    user_id: String,
}

fn block_list(blocked: &pb::ListBlocksResponse) -> Json<Value> {
    Json(json!({ "blocked": blocked.blocked.iter().map(json::user).collect::<Vec<_>>() }))
}

/// `GET /api/blocks`: the users the caller has blocked.
pub async fn blocks(
    State(Social(mut social)): State<Social>,
    caller: Caller,
) -> ApiResult<Json<Value>> {
    let request = pb::ListBlocksRequest {};
    Ok(block_list(
        &social
            .list_blocks(caller.request(request))
            .await?
            .into_inner(),
    ))
}

/// `POST /api/blocks`: blocks a user (also unfriends, cancels requests both ways); answers the
/// block list.
pub async fn block(
    State(Social(mut social)): State<Social>,
    caller: Caller,
    Body(body): Body<BlockBody>,
) -> ApiResult<Json<Value>> {
    let request = pb::BlockRequest {
        user_id: body.user_id,
    };
    Ok(block_list(
        &social
            .block_user(caller.request(request))
            .await?
            .into_inner(),
    ))
}

/// `DELETE /api/blocks/{user_id}`: lifts a block; answers the block list.
pub async fn unblock(
    State(Social(mut social)): State<Social>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let request = pb::BlockRequest { user_id };
    Ok(block_list(
        &social
            .unblock_user(caller.request(request))
            .await?
            .into_inner(),
    ))
}
