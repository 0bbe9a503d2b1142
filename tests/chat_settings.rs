//! A member's own settings of a chat (issue 19: mute), in both run modes.

#![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap does

mod support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{System, User, assert_error};

in_both_modes!(a_member_mutes_a_chat_for_themselves_only,);

/// The `muted` of `chat_id` in `user`'s chat list.
async fn muted_in_list(user: &User, chat_id: &str) -> Value {
    let (status, chats) = user.get("/api/chats").await;
    assert_eq!(status, StatusCode::OK);
    let chat = chats
        .as_array()
        .unwrap()
        .iter()
        .find(|chat| chat["id"] == chat_id)
        .unwrap()
        .clone();
    chat["muted"].clone()
}

async fn a_member_mutes_a_chat_for_themselves_only(system: &System) {
    let base = &system.base;
    let (alice, bob, direct) = support::user::friends_with_a_chat(base, base).await;
    let carol = User::register(base, "carol").await;
    assert_eq!(muted_in_list(&alice, &direct).await, false);

    let path = format!("/api/chats/{direct}/settings");
    let (status, chat) = alice.patch(&path, json!({ "muted": true })).await;
    assert_eq!(status, StatusCode::OK, "{chat}");
    assert_eq!(
        (&chat["id"], &chat["muted"]),
        (&json!(direct), &json!(true))
    );
    assert_eq!(muted_in_list(&alice, &direct).await, true);
    assert_eq!(
        alice.get(&format!("/api/chats/{direct}")).await.1["muted"],
        true
    );
    assert_eq!(
        muted_in_list(&bob, &direct).await,
        false,
        "bob's is his own"
    );

    // Nothing said, nothing changed; then unmuted.
    assert_eq!(alice.patch(&path, json!({})).await.1["muted"], true);
    assert_eq!(
        alice.patch(&path, json!({ "muted": false })).await.1["muted"],
        false
    );
    assert_eq!(muted_in_list(&alice, &direct).await, false);

    // Only members; only a boolean.
    let (status, body) = carol.patch(&path, json!({ "muted": true })).await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = alice.patch(&path, json!({ "muted": "yes" })).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = alice.patch(&path, json!({ "mute": true })).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
}
