//! Accounts and sessions: register, login, refresh, logout, me.

use crate::address::client_addr;
use crate::error::ApiResult;
use crate::json::{self, Body};
use crate::session::{Caller, SignIn, cleared_cookie, cookie_named, session_cookie};
use crate::state::AppState;
use astral_proto::auth as pb;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Deserialize)]
pub struct Credentials {
    username: String,
    password: String,
    /// Keep the refresh token in an HttpOnly cookie instead of the body (the web client).
    #[serde(default)]
    refresh_cookie: bool,
}

#[derive(Deserialize)]
pub struct PasswordChange {
    current_password: String,
    new_password: String,
}

#[derive(Deserialize)]
pub struct RefreshBody {
    /// Absent: the one in the refresh cookie, and the new one goes there too.
    #[serde(default)]
    refresh_token: Option<String>,
}

/// The cookie that holds a browser's refresh token: sent only to the session routes, never
/// to another site, never readable by scripts.
const REFRESH_COOKIE: &str = "astral_refresh";

/// Where the new refresh token goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keep {
    Body,
    Cookie,
}

fn refresh_cookie(token: &str, max_age_s: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{REFRESH_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/api/auth; Max-Age={max_age_s}{secure}"
    )
}

/// How long a browser keeps the refresh cookie: the longest a session lives unused.
const REFRESH_COOKIE_MAX_AGE_S: u64 = 30 * 24 * 60 * 60;

fn user_agent(headers: &HeaderMap) -> String {
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    agent.chars().take(200).collect()
}

/// The session answer: tokens and user in the body, the session cookie alongside; the refresh
/// token in the body or, for a browser that asked, in its own cookie only.
fn signed_in(state: &AppState, status: StatusCode, auth: pb::AuthResponse, keep: Keep) -> Response {
    let secure = state.config.secure_cookies;
    let mut cookies = vec![session_cookie(&auth.access_token, secure)];
    let refresh_token = match keep {
        Keep::Body => Value::String(auth.refresh_token),
        Keep::Cookie => {
            cookies.push(refresh_cookie(
                &auth.refresh_token,
                REFRESH_COOKIE_MAX_AGE_S,
                secure,
            ));
            Value::Null
        }
    };
    let body = json!({
        "token": auth.access_token,
        "refresh_token": refresh_token,
        "user": auth.user.as_ref().map_or(Value::Null, json::user),
    });
    (status, set_cookies(cookies), axum::Json(body)).into_response()
}

/// A `Set-Cookie` header for each cookie.
fn set_cookies(cookies: impl IntoIterator<Item = String>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for cookie in cookies {
        if let Ok(value) = cookie.parse() {
            headers.append(header::SET_COOKIE, value);
        }
    }
    headers
}

fn keep(refresh_cookie: bool) -> Keep {
    if refresh_cookie {
        Keep::Cookie
    } else {
        Keep::Body
    }
}

/// The `Set-Cookie` headers that end a browser session: both cookies cleared.
fn signed_out(secure: bool) -> HeaderMap {
    set_cookies([cleared_cookie(secure), refresh_cookie("", 0, secure)])
}

pub async fn register(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    SignIn(body): SignIn<Credentials>,
) -> ApiResult<Response> {
    let keep = keep(body.refresh_cookie);
    let request = pb::RegisterRequest {
        username: body.username,
        password: body.password,
        user_agent: user_agent(&headers),
        client_addr: client_addr(&headers, peer, state.config.trusted_proxy_hops),
    };
    let auth = state
        .services
        .auth
        .clone()
        .register(request)
        .await?
        .into_inner();
    Ok(signed_in(&state, StatusCode::CREATED, auth, keep))
}

pub async fn login(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    SignIn(body): SignIn<Credentials>,
) -> ApiResult<Response> {
    let keep = keep(body.refresh_cookie);
    let request = pb::LoginRequest {
        username: body.username,
        password: body.password,
        user_agent: user_agent(&headers),
        client_addr: client_addr(&headers, peer, state.config.trusted_proxy_hops),
    };
    let auth = state
        .services
        .auth
        .clone()
        .login(request)
        .await?
        .into_inner();
    Ok(signed_in(&state, StatusCode::OK, auth, keep))
}

/// Exchanges the refresh token in the body, or else the one in the refresh cookie (whose
/// successor then goes back into the cookie).
pub async fn refresh(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    SignIn(body): SignIn<RefreshBody>,
) -> ApiResult<Response> {
    let (refresh_token, keep) = match body.refresh_token {
        Some(token) => (token, Keep::Body),
        None => (
            cookie_named(&headers, REFRESH_COOKIE).unwrap_or_default(),
            Keep::Cookie,
        ),
    };
    let auth = state
        .services
        .auth
        .clone()
        .refresh(pb::RefreshRequest { refresh_token })
        .await?
        .into_inner();
    Ok(signed_in(&state, StatusCode::OK, auth, keep))
}

pub async fn logout(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult<Response> {
    let request = pb::LogoutRequest {
        session_id: caller.session_id.clone(),
    };
    let ended = state
        .services
        .auth
        .clone()
        .logout(caller.request(request))
        .await?
        .into_inner();
    state.tokens.revoke_now(ended.ended_session_ids);
    Ok((
        StatusCode::NO_CONTENT,
        signed_out(state.config.secure_cookies),
    )
        .into_response())
}

pub async fn me(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> ApiResult<axum::Json<Value>> {
    let user = state
        .services
        .auth
        .clone()
        .get_user(pb::GetUserRequest { id: caller.user_id })
        .await?
        .into_inner();
    Ok(axum::Json(json::user(&user)))
}

/// Ends every session of the caller, this one included.
pub async fn logout_everywhere(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> ApiResult<Response> {
    let request = pb::LogoutAllRequest {};
    let ended = state
        .services
        .auth
        .clone()
        .logout_all(caller.request(request))
        .await?
        .into_inner();
    state.tokens.revoke_now(ended.ended_session_ids);
    Ok((
        StatusCode::NO_CONTENT,
        signed_out(state.config.secure_cookies),
    )
        .into_response())
}

/// Changes the password; every other session of the caller ends.
pub async fn change_password(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<PasswordChange>,
) -> ApiResult<StatusCode> {
    let request = pb::ChangePasswordRequest {
        current_password: body.current_password,
        new_password: body.new_password,
    };
    let changed = state
        .services
        .auth
        .clone()
        .change_password(caller.request(request))
        .await?
        .into_inner();
    state.tokens.revoke_now(changed.ended_session_ids);
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's live sessions, the current one marked.
pub async fn sessions(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> ApiResult<axum::Json<Value>> {
    let request = pb::ListSessionsRequest {};
    let sessions = state
        .services
        .auth
        .clone()
        .list_sessions(caller.request(request))
        .await?
        .into_inner()
        .sessions;
    let sessions: Vec<Value> = sessions
        .iter()
        .map(|session| {
            json!({
                "id": session.id,
                "user_agent": session.user_agent,
                "created_at": astral_common::time::rfc3339(session.created_at_ms),
                "last_used_at": astral_common::time::rfc3339(session.last_used_at_ms),
                "current": session.id == caller.session_id,
            })
        })
        .collect();
    Ok(axum::Json(json!({ "sessions": sessions })))
}

/// Ends one of the caller's sessions (404 if it is not a live session of theirs).
pub async fn end_session(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(session_id): Path<String>,
) -> ApiResult<StatusCode> {
    if astral_common::ids::parse_id(&session_id).is_none() {
        return Err(crate::error::ApiError::not_found("no such session"));
    }
    let request = pb::LogoutRequest { session_id };
    let ended = state
        .services
        .auth
        .clone()
        .logout(caller.request(request))
        .await?
        .into_inner();
    state.tokens.revoke_now(ended.ended_session_ids);
    Ok(StatusCode::NO_CONTENT)
}
