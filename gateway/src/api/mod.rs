//! The HTTP API of `docs/api.md`: thin handlers that translate JSON to gRPC calls and back.

mod attachments;
mod auth;
mod chats;
mod endpoint;
mod friends;
mod openapi;
mod push;
mod query;
mod search;
mod settings;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use endpoint::{Endpoint, endpoint};
use serde_json::Value;
use std::sync::Arc;

/// The largest request body accepted (a 4,000-character message is at most 16 KiB).
const MAX_BODY: usize = 64 * 1024;

/// Every route of the HTTP API.
pub fn endpoints() -> Vec<Endpoint> {
    vec![
        endpoint(
            "POST",
            "/auth/register",
            "Create an account (also sets the session cookie)",
            Some("Credentials"),
            (201, Some("SignedIn")),
            post(auth::register),
        ),
        endpoint(
            "POST",
            "/auth/login",
            "Log in (also sets the session cookie)",
            Some("Credentials"),
            (200, Some("SignedIn")),
            post(auth::login),
        ),
        endpoint(
            "POST",
            "/auth/refresh",
            "Exchange a refresh token for a new pair",
            Some("RefreshToken"),
            (200, Some("SignedIn")),
            post(auth::refresh),
        ),
        endpoint(
            "POST",
            "/auth/logout",
            "End this session",
            None,
            (204, None),
            post(auth::logout),
        ),
        endpoint(
            "POST",
            "/auth/logout-all",
            "End every session of the user",
            None,
            (204, None),
            post(auth::logout_everywhere),
        ),
        endpoint(
            "GET",
            "/users/me",
            "The signed-in user",
            None,
            (200, Some("User")),
            get(auth::me),
        ),
        endpoint(
            "POST",
            "/users/me/password",
            "Change the password; every other session ends",
            Some("PasswordChange"),
            (204, None),
            post(auth::change_password),
        ),
        endpoint(
            "GET",
            "/users/me/sessions",
            "The user's live sessions",
            None,
            (200, Some("Sessions")),
            get(auth::sessions),
        ),
        endpoint(
            "GET",
            "/users/me/settings",
            "Your privacy settings: presence and read receipts",
            None,
            (200, Some("Settings")),
            get(settings::get),
        ),
        endpoint(
            "PATCH",
            "/users/me/settings",
            "Change your privacy settings (what is left out stays)",
            Some("SettingsChange"),
            (200, Some("Settings")),
            patch(settings::update),
        ),
        endpoint(
            "DELETE",
            "/users/me/sessions/{session_id}",
            "End one of the user's sessions",
            None,
            (204, None),
            delete(auth::end_session),
        ),
        Endpoint {
            query: &[
                ("limit", "friends per page, 1–1000 (default 200)"),
                ("after", "the `next_after` of the previous page"),
            ],
            ..endpoint(
                "GET",
                "/friends",
                "Friends (a page, by username) and pending requests",
                None,
                (200, Some("Friends")),
                get(friends::list),
            )
        },
        endpoint(
            "POST",
            "/friends/requests",
            "Send a friend request by username (accepts theirs if they already asked: 200)",
            Some("Username"),
            (201, Some("FriendRequest")),
            post(friends::send_request),
        ),
        endpoint(
            "POST",
            "/friends/requests/{id}/accept",
            "Accept a request addressed to you",
            None,
            (200, Some("Accepted")),
            post(friends::accept),
        ),
        endpoint(
            "POST",
            "/friends/requests/{id}/decline",
            "Decline a request addressed to you",
            None,
            (204, None),
            post(friends::decline),
        ),
        endpoint(
            "DELETE",
            "/friends/requests/{id}",
            "Cancel a request you sent",
            None,
            (204, None),
            delete(friends::cancel),
        ),
        endpoint(
            "DELETE",
            "/friends/{user_id}",
            "Unfriend (the direct chat stays, read-only)",
            None,
            (204, None),
            delete(friends::unfriend),
        ),
        endpoint(
            "GET",
            "/blocks",
            "The users you blocked",
            None,
            (200, Some("Blocks")),
            get(friends::blocks),
        ),
        endpoint(
            "POST",
            "/blocks",
            "Block a user (also unfriends and cancels requests both ways)",
            Some("UserId"),
            (200, Some("Blocks")),
            post(friends::block),
        ),
        endpoint(
            "DELETE",
            "/blocks/{user_id}",
            "Lift a block",
            None,
            (200, Some("Blocks")),
            delete(friends::unblock),
        ),
        endpoint(
            "GET",
            "/chats",
            "Your chats, latest activity first",
            None,
            (200, Some("Chats")),
            get(chats::list),
        ),
        endpoint(
            "POST",
            "/chats",
            "Create a group chat with friends",
            Some("NewGroup"),
            (201, Some("Chat")),
            post(chats::create_group),
        ),
        endpoint(
            "POST",
            "/chats/direct",
            "The direct chat with a friend (created on first call)",
            Some("UserId"),
            (200, Some("Chat")),
            post(chats::open_direct),
        ),
        endpoint(
            "GET",
            "/chats/{chat_id}",
            "One of your chats",
            None,
            (200, Some("Chat")),
            get(chats::get),
        ),
        endpoint(
            "PATCH",
            "/chats/{chat_id}",
            "Rename a group (owner)",
            Some("Rename"),
            (200, Some("Chat")),
            patch(chats::rename),
        ),
        endpoint(
            "PATCH",
            "/chats/{chat_id}/settings",
            "Your own settings of a chat: mute it",
            Some("ChatSettings"),
            (200, Some("Chat")),
            patch(chats::settings),
        ),
        endpoint(
            "POST",
            "/chats/{chat_id}/members",
            "Add a friend to a group (owner)",
            Some("UserId"),
            (200, Some("Chat")),
            post(chats::add_member),
        ),
        endpoint(
            "DELETE",
            "/chats/{chat_id}/members/{user_id}",
            "Remove a member (owner), or leave (yourself)",
            None,
            (204, None),
            delete(chats::remove_member),
        ),
        endpoint(
            "POST",
            "/chats/{chat_id}/read",
            "Move your read marker forward",
            Some("ReadMarker"),
            (204, None),
            post(chats::mark_read),
        ),
        Endpoint {
            query: &[
                ("before", "messages with a lower seq (paging back)"),
                ("after", "every change with a higher version (catching up)"),
                ("limit", "1–100 (default 50)"),
            ],
            ..endpoint(
                "GET",
                "/chats/{chat_id}/messages",
                "History, ordered by seq (by version with `after`)",
                None,
                (200, Some("Messages")),
                get(chats::messages),
            )
        },
        endpoint(
            "POST",
            "/chats/{chat_id}/messages",
            "Send a message (the same nonce again returns the first)",
            Some("NewMessage"),
            (201, Some("Message")),
            post(chats::send),
        ),
        endpoint(
            "PATCH",
            "/chats/{chat_id}/messages/{message_id}",
            "Edit your message",
            Some("Edit"),
            (200, Some("Message")),
            patch(chats::edit),
        ),
        endpoint(
            "DELETE",
            "/chats/{chat_id}/messages/{message_id}",
            "Delete your message (a tombstone remains)",
            None,
            (204, None),
            delete(chats::delete_message),
        ),
        endpoint(
            "POST",
            "/chats/{chat_id}/messages/{message_id}/reactions",
            "Add your reaction with an emoji, or remove it",
            Some("Reaction"),
            (200, Some("Message")),
            post(chats::react),
        ),
        Endpoint {
            query: &[
                (
                    "q",
                    "the words to find (required); the last also as the beginning of a word",
                ),
                ("chat_id", "only in this chat"),
                ("author_id", "only messages of this user"),
                (
                    "before",
                    "only messages older than this message id (the next page)",
                ),
                ("limit", "1–50 (default 20)"),
            ],
            ..endpoint(
                "GET",
                "/search",
                "Search your chats' messages, newest first",
                None,
                (200, Some("SearchResults")),
                get(search::search),
            )
        },
        Endpoint {
            query: &[(
                "filename",
                "the file's name (its last path component is kept)",
            )],
            ..endpoint(
                "POST",
                "/attachments",
                "Upload a file (the raw body, at most 25 MiB) to attach to a message",
                Some("File"),
                (201, Some("Attachment")),
                post(attachments::upload),
            )
        },
        endpoint(
            "GET",
            "/attachments/{attachment_id}",
            "A file's bytes (Range requests answer 206); anything but an image as a download",
            None,
            (200, Some("File")),
            get(attachments::download),
        ),
        endpoint(
            "GET",
            "/attachments/{attachment_id}/thumbnail",
            "An image's thumbnail, at most 320 px a side",
            None,
            (200, Some("File")),
            get(attachments::thumbnail),
        ),
        endpoint(
            "GET",
            "/push/key",
            "The key browsers subscribe to Web Push with (404 when push is off)",
            None,
            (200, Some("PushKey")),
            get(push::key),
        ),
        endpoint(
            "POST",
            "/push/subscriptions",
            "Send this browser's pushes to you (its PushSubscription)",
            Some("PushSubscription"),
            (201, Some("PushEndpoint")),
            post(push::subscribe),
        ),
        endpoint(
            "DELETE",
            "/push/subscriptions",
            "Stop pushing to this browser",
            Some("PushEndpoint"),
            (204, None),
            delete(push::unsubscribe),
        ),
        endpoint(
            "GET",
            "/openapi.json",
            "This document",
            None,
            (200, None),
            get(openapi_document),
        ),
    ]
}

pub fn router() -> Router<Arc<AppState>> {
    endpoints()
        .into_iter()
        .fold(Router::new(), |router, endpoint| {
            router.route(endpoint.path, endpoint.handler)
        })
        .fallback(|| async { ApiError::not_found("no such API route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                crate::error::ErrorCode::MethodNotAllowed,
                "this route does not take that method",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

/// `GET /readyz`: 200 once the gateway can verify tokens.
pub async fn ready(State(state): State<Arc<AppState>>) -> ApiResult<&'static str> {
    if state.tokens.ready() {
        Ok("ready")
    } else {
        Err(ApiError::unavailable(
            "token keys or revoked sessions not loaded yet",
        ))
    }
}

/// `GET /api/openapi.json`.
async fn openapi_document() -> Json<Value> {
    Json(openapi::document(&endpoints()))
}
