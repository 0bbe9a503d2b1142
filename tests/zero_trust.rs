//! Zero trust inside: the services believe no caller without proof. Each test is an attack
//! that worked against the first version (a client calling a service's gRPC port directly),
//! now refused.

#![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap does

mod support;

use astral_common::guard::{Role, for_user};
use astral_proto::auth::auth_service_client::AuthServiceClient;
use astral_proto::auth::{ListSessionsRequest, LogoutRequest};
use astral_proto::messaging::messaging_service_client::MessagingServiceClient;
use astral_proto::messaging::{ListMessagesRequest, SendMessageRequest};
use astral_proto::social::ListFriendsRequest;
use astral_proto::social::social_service_client::SocialServiceClient;
use reqwest::StatusCode;
use serde_json::json;
use support::{System, User};

in_both_modes!(
    a_call_for_a_user_without_their_token_is_unauthenticated,
    a_users_token_reaches_only_their_own_chats_and_sessions,
    a_forged_or_ended_token_is_refused_by_the_services_themselves,
);

/// The first version took the acting user from the request body: now a call that acts for a
/// user needs that user's token, whoever the caller is.
async fn a_call_for_a_user_without_their_token_is_unauthenticated(system: &System) {
    let (alice, _bob, chat_id) =
        support::user::friends_with_a_chat(&system.base, &system.base).await;
    let mut messaging = MessagingServiceClient::new(system.channel(Role::Gateway, "messaging"));
    let mut social = SocialServiceClient::new(system.channel(Role::Gateway, "social"));
    let mut auth = AuthServiceClient::new(system.channel(Role::Gateway, "auth"));
    let read = ListMessagesRequest {
        chat_id: chat_id.clone(),
        ..Default::default()
    };
    let send = SendMessageRequest {
        chat_id: chat_id.clone(),
        content: "not from alice".into(),
        ..Default::default()
    };
    let codes = [
        messaging
            .list_messages(read.clone())
            .await
            .unwrap_err()
            .code(),
        messaging.send_message(send).await.unwrap_err().code(),
        social
            .list_friends(ListFriendsRequest::default())
            .await
            .unwrap_err()
            .code(),
        auth.list_sessions(ListSessionsRequest {})
            .await
            .unwrap_err()
            .code(),
        // A token that is not one.
        messaging
            .list_messages(for_user(read, "not.a.token"))
            .await
            .unwrap_err()
            .code(),
    ];
    assert!(
        codes
            .iter()
            .all(|code| *code == tonic::Code::Unauthenticated),
        "{codes:?}"
    );
    let (_, history) = alice.get(&format!("/api/chats/{chat_id}/messages")).await;
    assert_eq!(history.as_array().unwrap().len(), 0, "nothing was sent");
}

/// With a token of their own, a user acts as themselves only: another chat answers
/// NOT_FOUND, another user's session cannot be ended.
async fn a_users_token_reaches_only_their_own_chats_and_sessions(system: &System) {
    let (alice, bob, chat_id) =
        support::user::friends_with_a_chat(&system.base, &system.base).await;
    let mallory = User::register(&system.base, "mallory").await;
    let mut messaging = MessagingServiceClient::new(system.channel(Role::Gateway, "messaging"));
    let read = ListMessagesRequest {
        chat_id: chat_id.clone(),
        ..Default::default()
    };
    let status = messaging
        .list_messages(for_user(read, &mallory.token))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    let send = SendMessageRequest {
        chat_id: chat_id.clone(),
        content: "from mallory".into(),
        nonce: "n1".into(),
        ..Default::default()
    };
    let status = messaging
        .send_message(for_user(send, &mallory.token))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);

    // Alice's token sends as alice, whatever else the call carries.
    let send = SendMessageRequest {
        chat_id: chat_id.clone(),
        content: "from alice".into(),
        nonce: "n2".into(),
        ..Default::default()
    };
    let sent = messaging
        .send_message(for_user(send, &alice.token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sent.author_id, alice.id);

    // Bob's session, named in the body of mallory's logout: not hers to end.
    let (_, sessions) = bob.get("/api/users/me/sessions").await;
    let bobs_session = sessions["sessions"][0]["id"].as_str().unwrap().to_owned();
    let mut auth = AuthServiceClient::new(system.channel(Role::Gateway, "auth"));
    let logout = LogoutRequest {
        session_id: bobs_session,
    };
    let status = auth
        .logout(for_user(logout, &mallory.token))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    assert_eq!(bob.get("/api/users/me").await.0, StatusCode::OK);
}

/// A token signed by a key the auth service never had, and the token of a session that
/// ended, are refused by the service as they are by the gateway.
async fn a_forged_or_ended_token_is_refused_by_the_services_themselves(system: &System) {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
    use ed25519_dalek::pkcs8::EncodePrivateKey as _;
    let (alice, _bob, chat_id) =
        support::user::friends_with_a_chat(&system.base, &system.base).await;
    let mut messaging = MessagingServiceClient::new(system.channel(Role::Gateway, "messaging"));
    let read = ListMessagesRequest {
        chat_id: chat_id.clone(),
        ..Default::default()
    };

    // Same key id as alice's token, other key: a forgery for a whole year.
    let header: serde_json::Value = serde_json::from_slice(
        &B64URL
            .decode(alice.token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    let der = key.to_pkcs8_der().unwrap();
    let mut forged_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    forged_header.kid = header["kid"].as_str().map(str::to_owned);
    let now = astral_common::time::now_ms() / 1000;
    let claims = json!({ "sub": alice.id, "sid": "1", "iat": now, "exp": now + 365 * 86_400 });
    let forged = jsonwebtoken::encode(
        &forged_header,
        &claims,
        &jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes()),
    )
    .unwrap();
    let status = messaging
        .list_messages(for_user(read.clone(), &forged))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);

    // Alice logs out: the services refuse her token as soon as they hear of it.
    assert!(
        messaging
            .list_messages(for_user(read.clone(), &alice.token))
            .await
            .is_ok()
    );
    let (status, _) = alice.post("/api/auth/logout", json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let deadline = tokio::time::Instant::now() + support::WAIT;
    loop {
        match messaging
            .list_messages(for_user(read.clone(), &alice.token))
            .await
        {
            Err(status) if status.code() == tonic::Code::Unauthenticated => break,
            other => assert!(
                tokio::time::Instant::now() < deadline,
                "the ended session's token still works: {other:?}"
            ),
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The all-in-one's internal services listen on Unix sockets in its data directory, which
/// (with every file in it) only its owner can open; its one TCP port is the gateway's.
#[tokio::test]
async fn the_all_in_one_keeps_its_data_private_and_opens_no_internal_port() {
    use std::os::unix::fs::PermissionsExt as _;
    let system = System::all_in_one().await;
    let alice = User::register(&system.base, "alice").await;
    assert_eq!(alice.get("/api/users/me").await.0, StatusCode::OK);
    let dir = system.data_dir().unwrap();
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    let mut files = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            files += 1;
            assert_eq!(mode(&entry.path()), 0o600, "{}", entry.path().display());
        }
    }
    assert!(files >= 3, "the three databases at least");
    for service in ["auth", "social", "messaging"] {
        assert!(
            system.service_url(service).starts_with("unix://"),
            "{service}"
        );
    }
    assert_eq!(
        listening_tcp_ports(),
        vec![
            system
                .base
                .rsplit(':')
                .next()
                .unwrap()
                .parse::<u16>()
                .unwrap()
        ],
        "only the gateway listens on TCP"
    );
    system.stop().await;
}

/// The TCP ports this process listens on (from `/proc/net/tcp*`, sockets it holds open).
fn listening_tcp_ports() -> Vec<u16> {
    let own: std::collections::HashSet<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            Some(
                target
                    .strip_prefix("socket:[")?
                    .trim_end_matches(']')
                    .to_owned(),
            )
        })
        .collect();
    let mut ports = Vec::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address, state (0A: LISTEN), inode
            if fields.len() > 9 && fields[3] == "0A" && own.contains(fields[9]) {
                let port = fields[1].rsplit(':').next().unwrap();
                ports.push(u16::from_str_radix(port, 16).unwrap());
            }
        }
    }
    ports.sort_unstable();
    ports.dedup();
    ports
}
