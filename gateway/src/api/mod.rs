//! The HTTP API of CONTRACT.md: thin handlers that translate JSON to gRPC calls and back.

mod auth;
mod chats;
mod friends;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{delete, get, patch, post};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// The largest request body accepted (a 4,000-character message is at most 16 KiB).
const MAX_BODY: usize = 64 * 1024;

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/auth/register", post(auth::register))
        .route("/auth/login", post(auth::login))
        .route("/auth/refresh", post(auth::refresh))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/logout-all", post(auth::logout_everywhere))
        .route("/users/me", get(auth::me))
        .route("/users/me/password", post(auth::change_password))
        .route("/users/me/sessions", get(auth::sessions))
        .route("/users/me/sessions/{session_id}", delete(auth::end_session))
        .route("/friends", get(friends::list))
        .route("/friends/requests", post(friends::send_request))
        .route("/friends/requests/{id}/accept", post(friends::accept))
        .route("/friends/requests/{id}/decline", post(friends::decline))
        .route("/friends/requests/{id}", delete(friends::cancel))
        .route("/friends/{user_id}", delete(friends::unfriend))
        .route("/blocks", get(friends::blocks).post(friends::block))
        .route("/blocks/{user_id}", delete(friends::unblock))
        .route("/chats", get(chats::list).post(chats::create_group))
        .route("/chats/direct", post(chats::open_direct))
        .route("/chats/{chat_id}", get(chats::get).patch(chats::rename))
        .route("/chats/{chat_id}/members", post(chats::add_member))
        .route(
            "/chats/{chat_id}/members/{user_id}",
            delete(chats::remove_member),
        )
        .route(
            "/chats/{chat_id}/messages/{message_id}/reactions",
            post(chats::react),
        )
        .route("/chats/{chat_id}/read", post(chats::mark_read))
        .route(
            "/chats/{chat_id}/messages",
            get(chats::messages).post(chats::send),
        )
        .route(
            "/chats/{chat_id}/messages/{message_id}",
            patch(chats::edit).delete(chats::delete_message),
        )
        .fallback(|| async { ApiError::not_found("no such API route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

/// `GET /readyz`: 200 once the gateway can verify tokens.
pub async fn ready(State(state): State<Arc<AppState>>) -> ApiResult<&'static str> {
    if state.keys_loaded.load(Ordering::Acquire) && state.revocations_loaded.load(Ordering::Acquire)
    {
        Ok("ready")
    } else {
        Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "token keys or revoked sessions not loaded yet",
        ))
    }
}

/// A whole-number query parameter, if present; anything else is a 400.
fn query_number(
    query: &std::collections::HashMap<String, String>,
    name: &str,
) -> ApiResult<Option<i64>> {
    query
        .get(name)
        .map(|text| {
            text.parse::<i64>()
                .map_err(|_| ApiError::invalid(format!("{name} must be a whole number")))
        })
        .transpose()
}
