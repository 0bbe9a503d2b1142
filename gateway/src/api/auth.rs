//! Accounts and sessions: register, login, refresh, logout, me.

use crate::error::ApiResult;
use crate::json::{self, Body};
use crate::session::{Caller, cleared_cookie, session_cookie};
use crate::state::AppState;
use astral_proto::auth as pb;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Deserialize)]
pub struct Credentials {
    username: String,
    password: String,
}

#[derive(Deserialize)]
pub struct RefreshBody {
    refresh_token: String,
}

fn user_agent(headers: &HeaderMap) -> String {
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    agent.chars().take(200).collect()
}

/// The session answer: tokens and user in the body, the session cookie alongside.
fn signed_in(state: &AppState, status: StatusCode, auth: pb::AuthResponse) -> Response {
    let cookie = session_cookie(&auth.access_token, state.config.secure_cookies);
    let body = json!({
        "token": auth.access_token,
        "refresh_token": auth.refresh_token,
        "user": auth.user.as_ref().map_or(Value::Null, json::user),
    });
    (status, [(header::SET_COOKIE, cookie)], axum::Json(body)).into_response()
}

pub async fn register(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Body(body): Body<Credentials>,
) -> ApiResult<Response> {
    let request = pb::RegisterRequest {
        username: body.username,
        password: body.password,
        user_agent: user_agent(&headers),
    };
    let auth = state.auth.clone().register(request).await?.into_inner();
    Ok(signed_in(&state, StatusCode::CREATED, auth))
}

pub async fn login(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Body(body): Body<Credentials>,
) -> ApiResult<Response> {
    let request = pb::LoginRequest {
        username: body.username,
        password: body.password,
        user_agent: user_agent(&headers),
    };
    let auth = state.auth.clone().login(request).await?.into_inner();
    Ok(signed_in(&state, StatusCode::OK, auth))
}

pub async fn refresh(
    State(state): State<Arc<AppState>>,
    Body(body): Body<RefreshBody>,
) -> ApiResult<Response> {
    let auth = state
        .auth
        .clone()
        .refresh(pb::RefreshRequest {
            refresh_token: body.refresh_token,
        })
        .await?
        .into_inner();
    Ok(signed_in(&state, StatusCode::OK, auth))
}

pub async fn logout(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult<Response> {
    let request = pb::LogoutRequest {
        user_id: caller.user_id,
        session_id: caller.session_id,
    };
    state.auth.clone().logout(request).await?;
    Ok((
        StatusCode::NO_CONTENT,
        [(
            header::SET_COOKIE,
            cleared_cookie(state.config.secure_cookies),
        )],
    )
        .into_response())
}

pub async fn me(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> ApiResult<axum::Json<Value>> {
    let user = state
        .auth
        .clone()
        .get_user(pb::GetUserRequest { id: caller.user_id })
        .await?
        .into_inner();
    Ok(axum::Json(json::user(&user)))
}
