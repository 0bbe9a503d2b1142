//! Search (issue 18) over the public API, in both run modes: who finds what, and how.

#![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap does

mod support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{System, User};

in_both_modes!(
    members_find_their_chats_messages_by_words_newest_first_with_highlights,
    search_follows_edits_deletes_and_membership_and_pages,
    a_search_without_words_or_with_bad_paging_is_refused_with_400,
);

/// What `user` finds with these query parameters: the status and the body.
async fn search(user: &User, params: &[(&str, &str)]) -> (StatusCode, Value) {
    let url =
        reqwest::Url::parse_with_params(&format!("{}/api/search", user.base), params).unwrap();
    let response = user
        .http
        .get(url)
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

/// The contents `user` finds with `q` (newest first).
async fn found(user: &User, q: &str) -> Vec<String> {
    let (status, body) = search(user, &[("q", q)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|result| result["message"]["content"].as_str().unwrap().to_owned())
        .collect()
}

async fn members_find_their_chats_messages_by_words_newest_first_with_highlights(system: &System) {
    let base = &system.base;
    let (alice, bob, direct) = support::user::friends_with_a_chat(base, base).await;
    let carol = User::register(base, "carol").await;
    alice.befriend(&carol).await;
    let group = support::id(&alice.create_group("Trip", &[&carol]).await);
    alice.send_message(&direct, "Lunch at noon?").await;
    bob.send_message(&direct, "😀 LUNCH sounds good, lunchtime it is")
        .await;
    carol.send_message(&group, "lunch tickets booked").await;
    alice.send_message(&group, "nothing to see here").await;

    let (status, body) = search(&bob, &[("q", "lunch")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "bob is not in the group: {body}");
    assert_eq!(
        results[0]["message"]["author_id"],
        bob.id.as_str(),
        "newest first"
    );
    assert_eq!(results[0]["message"]["chat_id"], direct.as_str());
    // Offsets in characters: 😀 is one (two in UTF-16, four in UTF-8); the last word of the
    // query is also a prefix ("lunchtime").
    assert_eq!(
        results[0]["highlights"],
        json!([{ "start": 2, "end": 7 }, { "start": 21, "end": 30 }])
    );
    assert_eq!(results[1]["highlights"], json!([{ "start": 0, "end": 5 }]));
    assert_eq!(body["next_before"], Value::Null, "one page");

    assert_eq!(
        found(&alice, "lunch").await,
        [
            "lunch tickets booked",
            "😀 LUNCH sounds good, lunchtime it is",
            "Lunch at noon?"
        ]
    );
    assert_eq!(found(&carol, "lunch").await, ["lunch tickets booked"]);
    assert_eq!(found(&alice, "lunch tick").await, ["lunch tickets booked"]);
    assert_eq!(found(&alice, "tick lunch").await, Vec::<String>::new());
    let (_, in_group) = search(&alice, &[("q", "lunch"), ("chat_id", &group)]).await;
    assert_eq!(in_group["results"].as_array().unwrap().len(), 1);
    let (_, by_bob) = search(&alice, &[("q", "lunch"), ("author_id", &bob.id)]).await;
    assert_eq!(by_bob["results"].as_array().unwrap().len(), 1);
    // Another's chat named outright: nothing, as for any chat one is not in.
    let (status, theirs) = search(&carol, &[("q", "lunch"), ("chat_id", &direct)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(theirs["results"], json!([]));
}

async fn search_follows_edits_deletes_and_membership_and_pages(system: &System) {
    let base = &system.base;
    let (alice, bob, direct) = support::user::friends_with_a_chat(base, base).await;
    let carol = User::register(base, "carol").await;
    alice.befriend(&carol).await;
    let group = support::id(&alice.create_group("Plans", &[&carol, &bob]).await);
    let first = alice.send_message(&direct, "the old plan").await;
    let second = alice.send_message(&direct, "a plan to delete").await;
    carol.send_message(&group, "group plan").await;

    let path = |message: &Value| format!("/api/chats/{direct}/messages/{}", support::id(message));
    let (status, _) = alice
        .patch(&path(&first), json!({ "content": "the new idea" }))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = alice.delete(&path(&second)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        found(&bob, "old").await,
        Vec::<String>::new(),
        "edited away"
    );
    assert_eq!(found(&bob, "new idea").await, ["the new idea"]);
    assert_eq!(
        found(&bob, "plan").await,
        ["group plan"],
        "deleted: never found"
    );

    // Read-only after unfriending: still bob's chat, still searchable.
    alice.unfriend(&bob).await;
    assert_eq!(found(&bob, "idea").await, ["the new idea"]);
    // Removed from the group: its messages are no longer bob's to find.
    let (status, _) = alice.remove_member(&group, &bob).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(found(&bob, "plan").await, Vec::<String>::new());

    // Paging: `next_before` until a short page.
    for i in 0..5 {
        carol.send_message(&group, &format!("page {i}")).await;
    }
    let mut seen = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let mut params = vec![("q", "page"), ("limit", "2")];
        if let Some(before) = &before {
            params.push(("before", before));
        }
        let (status, body) = search(&carol, &params).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        for result in body["results"].as_array().unwrap() {
            seen.push(result["message"]["content"].as_str().unwrap().to_owned());
        }
        match body["next_before"].as_str() {
            Some(next) => before = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["page 4", "page 3", "page 2", "page 1", "page 0"]);
}

async fn a_search_without_words_or_with_bad_paging_is_refused_with_400(system: &System) {
    let alice = User::register(&system.base, "alice").await;
    let long = "a".repeat(201);
    for params in [
        vec![],
        vec![("q", "")],
        vec![("q", "   ")],
        vec![("q", "?!")],
        vec![("q", long.as_str())],
        vec![("q", "x"), ("limit", "0")],
        vec![("q", "x"), ("limit", "51")],
        vec![("q", "x"), ("limit", "ten")],
        vec![("q", "x"), ("before", "not-an-id")],
        vec![("q", "x"), ("author_id", "-1")],
    ] {
        let (status, body) = search(&alice, &params).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{params:?}: {body}");
        assert_eq!(
            body["error"]["code"], "invalid_argument",
            "{params:?}: {body}"
        );
    }
    let anonymous = reqwest::get(format!("{}/api/search?q=x", system.base))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}
