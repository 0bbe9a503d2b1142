//! The admin CLI (`astral-admin`) against a running system, in both run modes.

#![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap does

mod support;

use astral_common::guard::Role;
use reqwest::StatusCode;
use serde_json::json;
use support::System;

in_both_modes!(the_admin_tool_lists_users_inspects_a_chat_and_ends_sessions);

/// Runs `astral-admin` against the system; its standard output. (Asynchronously: in the
/// all-in-one mode the services run on this test's own runtime.)
async fn admin(system: &System, args: &[&str]) -> String {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_astral-admin"))
        .env("ASTRAL_AUTH_URL", system.service_url("auth"))
        .env("ASTRAL_MESSAGING_URL", system.service_url("messaging"))
        .envs(system.role_env(Role::Admin))
        .args(args)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "astral-admin {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

async fn the_admin_tool_lists_users_inspects_a_chat_and_ends_sessions(system: &System) {
    let (alice, bob, chat_id) =
        support::user::friends_with_a_chat(&system.base, &system.base).await;
    alice
        .post(
            &format!("/api/chats/{chat_id}/messages"),
            json!({ "content": "for the record" }),
        )
        .await;

    let users = admin(system, &["users", "--limit", "1000"]).await;
    for user in [&alice, &bob] {
        assert!(
            users.contains(&format!("{}\t{}", user.id, user.name)),
            "{users}"
        );
    }
    let one = admin(system, &["users", "--after", &alice.name, "--limit", "1"]).await;
    assert_eq!(one.lines().count(), 1);

    let chat = admin(system, &["chat", &chat_id]).await;
    assert!(
        chat.contains("kind\tdirect") && chat.contains("last_seq\t1"),
        "{chat}"
    );
    assert!(
        chat.contains(&format!("member\t{}\t{}", bob.id, bob.name)),
        "{chat}"
    );
    assert!(chat.contains("for the record"), "{chat}");

    let ended = admin(system, &["end-sessions", &bob.id]).await;
    assert_eq!(ended.trim(), "ended 1 session(s)");
    // The gateway hears of it over the bus (`sessions.revoked`): wait for it, with a limit.
    let deadline = tokio::time::Instant::now() + support::WAIT;
    while bob.get("/api/users/me").await.0 != StatusCode::UNAUTHORIZED {
        assert!(
            tokio::time::Instant::now() < deadline,
            "bob's token still works"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(alice.get("/api/users/me").await.0, StatusCode::OK);
}
