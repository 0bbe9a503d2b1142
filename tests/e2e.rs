//! The story of issue 2, end to end over real HTTP and WebSocket connections, in both run
//! modes: two people register, become friends, open their direct chat and talk live.

#![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap does

mod support;

use astral_common::guard::Role;
use support::assert_error;

use astral_proto::events::{Event, event::Kind};
use futures::StreamExt as _;
use prost::Message as _;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{System, User, WAIT};

#[tokio::test]
async fn two_friends_chat_live_in_the_all_in_one_binary() {
    let system = System::all_in_one().await;
    story(&system).await;
    system.stop().await;
}

#[tokio::test]
async fn two_friends_chat_live_across_separate_processes_on_postgres_and_nats() {
    let Some(system) = System::distributed().await else {
        return;
    };
    story(&system).await;
    system.stop().await;
}

#[tokio::test]
async fn bad_input_gets_the_contract_error_body_in_the_all_in_one_binary() {
    let system = System::all_in_one().await;
    bad_input(&system).await;
    system.stop().await;
}

#[tokio::test]
async fn logging_out_ends_the_session_and_closes_its_sockets() {
    let system = System::all_in_one().await;
    let mut alice = User::register(&system.base, "alice").await;
    alice.connect().await;
    let (status, _) = alice.post("/api/auth/logout", json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    alice.expect_event("session.ended").await;
    assert_eq!(alice.expect_close().await, 4001);
    let (status, body) = alice
        .post(
            "/api/auth/refresh",
            json!({ "refresh_token": alice.refresh_token }),
        )
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED);
    system.stop().await;
}

#[tokio::test]
async fn a_refresh_token_gives_a_new_pair_and_works_only_once() {
    let system = System::all_in_one().await;
    let alice = User::register(&system.base, "alice").await;
    let refresh = json!({ "refresh_token": alice.refresh_token });
    let (status, renewed) = alice.post("/api/auth/refresh", refresh.clone()).await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    assert_eq!(renewed["user"]["id"], alice.id.as_str());
    // A new refresh token: a string (a missing one, null, would differ from the old one too).
    assert!(renewed["refresh_token"].is_string(), "{renewed}");
    assert_ne!(renewed["refresh_token"], refresh["refresh_token"]);
    let (status, body) = alice.post("/api/auth/refresh", refresh).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED);
    system.stop().await;
}

#[tokio::test]
async fn services_publish_events_on_the_nats_subjects_of_the_contract() {
    let Some(system) = System::distributed().await else {
        return;
    };
    // A gateway's view of the bus (its role's credentials: it may subscribe to these).
    let nats = system.nats_client(Role::Gateway).await;
    let alice = User::register(&system.base, "alice").await;
    let bob = User::register(&system.base, "bob").await;
    let mut bob_events = nats.subscribe(format!("user.{}", bob.id)).await.unwrap();
    alice.befriend(&bob).await;
    let (_, chat) = alice
        .post("/api/chats/direct", json!({ "user_id": bob.id }))
        .await;
    let chat_id = chat["id"].as_str().unwrap().to_owned();
    assert_eq!(chat_id, direct_chat_id(&alice.id, &bob.id));
    let mut chat_events = nats.subscribe(format!("chat.{chat_id}")).await.unwrap();
    nats.flush().await.unwrap();
    let (status, sent) = alice
        .post(
            &format!("/api/chats/{chat_id}/messages"),
            json!({ "content": "over NATS" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let on_chat = next_event(&mut chat_events).await;
    let Some(Kind::MessageCreated(created)) = on_chat.kind else {
        panic!("on chat.{chat_id}: {on_chat:?}")
    };
    assert_eq!(created.message.unwrap().id, sent["id"].as_str().unwrap());
    // On bob's subject: the friend request, its acceptance, the new chat, then the message.
    let mut kinds = Vec::new();
    loop {
        let event = next_event(&mut bob_events).await;
        let kind = event.kind.unwrap();
        let done = matches!(kind, Kind::MessageCreated(_));
        kinds.push(kind);
        if done {
            assert_eq!(event.id, on_chat.id, "one event, one id, on both subjects");
            break;
        }
    }
    assert!(
        matches!(kinds[0], Kind::FriendRequestCreated(_)),
        "{kinds:?}"
    );
    assert!(
        matches!(kinds[1], Kind::FriendRequestAccepted(_)),
        "{kinds:?}"
    );
    assert!(matches!(kinds[2], Kind::ChatCreated(_)), "{kinds:?}");
    system.stop().await;
}

#[tokio::test]
async fn every_service_serves_grpc_health_checking() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let Some(system) = System::distributed().await else {
        return;
    };
    for (name, _) in &system.services {
        let mut health = HealthClient::new(system.channel(Role::Admin, name));
        let overall = health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap();
        assert_eq!(
            overall.into_inner().status(),
            ServingStatus::Serving,
            "{name}"
        );
        let service = format!("astral.{name}.v1.{}Service", capitalized(name));
        let own = health
            .check(HealthCheckRequest {
                service: service.clone(),
            })
            .await
            .unwrap();
        assert_eq!(
            own.into_inner().status(),
            ServingStatus::Serving,
            "{service}"
        );
    }
    system.stop().await;
}

/// What a generic client (grpcurl, Postman) does knowing nothing of Astral's protos: list
/// the services over server reflection, then fetch a service's descriptor and its methods.
#[tokio::test]
async fn every_service_describes_itself_over_reflection() {
    use prost::Message as _;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};
    let Some(system) = System::distributed().await else {
        return;
    };
    let expected_methods = [
        ("auth", "Login"),
        ("social", "SendFriendRequest"),
        ("messaging", "SendMessage"),
    ];
    for (name, _) in &system.services {
        let mut client = ServerReflectionClient::new(system.channel(Role::Admin, name));
        let service = format!("astral.{name}.v1.{}Service", capitalized(name));
        let requests = [
            MessageRequest::ListServices(String::new()),
            MessageRequest::FileContainingSymbol(service.clone()),
        ]
        .map(|request| ServerReflectionRequest {
            host: String::new(),
            message_request: Some(request),
        });
        let mut answers = client
            .server_reflection_info(futures::stream::iter(requests))
            .await
            .unwrap()
            .into_inner();
        let mut next = async || -> MessageResponse {
            let answer: ServerReflectionResponse = answers.message().await.unwrap().unwrap();
            answer.message_response.unwrap()
        };
        let MessageResponse::ListServicesResponse(listed) = next().await else {
            panic!("{name}: no service list");
        };
        let listed: Vec<String> = listed.service.into_iter().map(|s| s.name).collect();
        for wanted in [
            service.as_str(),
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
        ] {
            assert!(listed.iter().any(|s| s == wanted), "{name}: {listed:?}");
        }
        let MessageResponse::FileDescriptorResponse(files) = next().await else {
            panic!("{name}: no descriptor for {service}");
        };
        let methods: Vec<String> = files
            .file_descriptor_proto
            .iter()
            .map(|bytes| prost_types::FileDescriptorProto::decode(bytes.as_slice()).unwrap())
            .flat_map(|file| file.service)
            .filter(|s| service.ends_with(s.name()))
            .flat_map(|s| s.method)
            .map(|method| method.name().to_owned())
            .collect();
        let (_, method) = expected_methods.iter().find(|(n, _)| n == name).unwrap();
        assert!(methods.iter().any(|m| m == method), "{name}: {methods:?}");
    }
    system.stop().await;
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

async fn next_event(subscriber: &mut async_nats::Subscriber) -> Event {
    let message = tokio::time::timeout(WAIT, subscriber.next())
        .await
        .expect("an event in time")
        .expect("subscribed");
    Event::decode(message.payload).expect("an astral.events.v1.Event")
}

fn direct_chat_id(a: &str, b: &str) -> String {
    let (low, high) = if a < b { (a, b) } else { (b, a) };
    format!("{low}_{high}")
}

async fn story(system: &System) {
    let mut alice = User::register(&system.base, "alice").await;
    let mut bob = User::register(&system.base, "bob").await;
    let alice_ready = alice.connect().await;
    bob.connect().await;
    assert_eq!(alice_ready["chats"], json!([]));

    // Alice asks bob by username; both screens learn of it.
    let (status, request) = alice
        .post("/api/friends/requests", json!({ "username": bob.name }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{request}");
    assert_eq!(request["from"]["id"], alice.id.as_str());
    assert_eq!(request["to"]["username"], bob.name.as_str());
    let seen_by_bob = bob.expect_event("friend_request.created").await;
    assert_eq!(seen_by_bob["id"], request["id"]);
    alice.expect_event("friend_request.created").await;

    // Bob sees it among his incoming requests and accepts.
    let (_, friends) = bob.get("/api/friends").await;
    assert_eq!(friends["incoming"][0]["id"], request["id"]);
    let (status, accepted) = bob
        .post(
            &format!(
                "/api/friends/requests/{}/accept",
                request["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(accepted["friend"]["id"], alice.id.as_str());
    alice.expect_event("friend_request.accepted").await;
    bob.expect_event("friend_request.accepted").await;
    let (_, friends) = alice.get("/api/friends").await;
    assert_eq!(
        support::named(&friends["friends"]),
        json!([{ "id": bob.id, "username": bob.name }])
    );

    // Alice opens their direct chat: `<low id>_<high id>`, the same chat every time.
    let chat = alice.open_direct_chat(&bob).await;
    let chat_id = support::id(&chat);
    assert_eq!(chat_id, direct_chat_id(&alice.id, &bob.id));
    assert_eq!(
        (chat["kind"].as_str(), chat["read_only"].as_bool()),
        (Some("direct"), Some(false))
    );
    let created = bob.expect_event("chat.created").await;
    assert_eq!(created["id"], chat_id.as_str());
    alice.expect_event("chat.created").await;
    let again = bob.open_direct_chat(&alice).await;
    assert_eq!(again["id"], chat_id.as_str());

    // Bob has the chat open; alice writes; bob sees it live, once, as text.
    bob.subscribe(&chat_id).await;
    let messages = format!("/api/chats/{chat_id}/messages");
    let hello = json!({ "content": "hi <b>bob</b>", "nonce": "n-1" });
    let (status, first) = alice.try_send_message(&chat_id, hello.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(
        (first["seq"].as_i64(), first["author_id"].as_str()),
        (Some(1), Some(alice.id.as_str()))
    );
    let live = bob.expect_event("message.created").await;
    assert_eq!(live, first, "the event carries the whole message");
    alice.expect_event("message.created").await;

    // A retry with the same nonce returns the same message and notifies nobody again.
    let (_, retried) = alice.try_send_message(&chat_id, hello).await;
    assert_eq!(retried["id"], first["id"]);

    // Bob answers; alice (no chat subscribed) learns of it on her own subject.
    let (status, reply) = bob
        .try_send_message(
            &chat_id,
            json!({ "content": "hello alice", "nonce": "n-2" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let live = alice.expect_event("message.created").await;
    assert_eq!(live["id"], reply["id"]);
    // Bob receives his own message once, though it reaches him on user.<id> and chat.<id>.
    assert_eq!(bob.expect_event("message.created").await["id"], reply["id"]);
    let third = alice.send_message(&chat_id, "third").await;
    assert_eq!(
        bob.expect_event("message.created").await["id"],
        third["id"],
        "no duplicate came first"
    );

    // History, in order, the same for both.
    let history = bob.history(&chat_id).await;
    let seqs: Vec<i64> = history.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    assert_eq!(history[0]["content"], "hi <b>bob</b>");
    let (_, chats) = bob.get("/api/chats").await;
    assert_eq!(
        (chats[0]["last_seq"].as_i64(), chats[0]["unread"].as_i64()),
        (Some(3), Some(2))
    );

    // A stranger can neither read nor write the chat, and learns nothing of it.
    let carol = User::register(&system.base, "carol").await;
    assert_eq!(carol.get(&messages).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        carol
            .try_send_message(&chat_id, json!({ "content": "let me in" }))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        carol
            .post("/api/chats/direct", json!({ "user_id": alice.id }))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
}

async fn bad_input(system: &System) {
    let alice = User::register(&system.base, "alice").await;
    let http = reqwest::Client::new();
    let call = |path: &str, body: &str| {
        http.post(format!("{}{path}", system.base))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
    };
    let parts = |response: reqwest::Response| async move {
        let status = response.status();
        (status, response.json::<Value>().await.unwrap())
    };

    let taken = json!({ "username": alice.name, "password": "something else" }).to_string();
    let (status, body) = parts(call("/api/auth/register", &taken).await.unwrap()).await;
    assert_error(status, &body, StatusCode::CONFLICT);

    let wrong = json!({ "username": alice.name, "password": "wrong password" }).to_string();
    let (status, wrong_password) = parts(call("/api/auth/login", &wrong).await.unwrap()).await;
    assert_error(status, &wrong_password, StatusCode::UNAUTHORIZED);
    let unknown = json!({ "username": "nobody_here", "password": "wrong password" }).to_string();
    let (status, unknown_user) = parts(call("/api/auth/login", &unknown).await.unwrap()).await;
    assert_error(status, &unknown_user, StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong_password, unknown_user,
        "the answer does not say which part was wrong"
    );

    for malformed in ["{", "[]", "null", "{\"username\": 5}", ""] {
        let (status, body) = parts(call("/api/auth/login", malformed).await.unwrap()).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST);
    }

    let no_token = http
        .get(format!("{}/api/users/me", system.base))
        .send()
        .await
        .unwrap();
    let (status, body) = parts(no_token).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED);
    let forged = http
        .get(format!("{}/api/users/me", system.base))
        .bearer_auth("not.a.token")
        .send()
        .await
        .unwrap();
    let (status, body) = parts(forged).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED);

    let mut bob = User::register(&system.base, "bob").await;

    alice.befriend(&bob).await;
    let chat_id = support::id(&alice.open_direct_chat(&bob).await);
    let messages = format!("/api/chats/{chat_id}/messages");
    let (status, body) = alice
        .try_send_message(&chat_id, json!({ "content": "x".repeat(4001) }))
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = alice
        .try_send_message(&chat_id, json!({ "content": "   " }))
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = alice.get(&format!("{messages}?before=abc")).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = alice.get("/api/no/such/route").await;
    assert_error(status, &body, StatusCode::NOT_FOUND);

    // A malformed WebSocket frame answers an error and keeps the connection.
    bob.connect().await;
    bob.send(json!("not a frame")).await;
    assert_eq!(bob.next_frame().await["op"], "error");
    bob.send(json!({ "op": "subscribe", "d": { "chat_id": "1_2" } }))
        .await;
    assert_eq!(bob.next_frame().await["d"]["code"], "not_found");
    bob.send(json!({ "op": "heartbeat" })).await;
    assert_eq!(bob.next_frame().await["op"], "heartbeat_ack");
}
