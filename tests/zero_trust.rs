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
    a_websocket_renews_its_token_within_its_session_only,
    a_call_for_a_user_without_their_token_is_unauthenticated,
    a_users_token_reaches_only_their_own_chats_and_sessions,
    a_forged_or_ended_token_is_refused_by_the_services_themselves,
);

/// A connection passes its user's token on to the services (for `subscribe`, `typing`); the
/// client hands it each refreshed token with another `identify` — of the same session only.
async fn a_websocket_renews_its_token_within_its_session_only(system: &System) {
    let (mut alice, bob, chat_id) =
        support::user::friends_with_a_chat(&system.base, &system.base).await;
    alice.connect().await;
    let (status, refreshed) = alice
        .post(
            "/api/auth/refresh",
            json!({ "refresh_token": alice.refresh_token }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let fresh = refreshed["token"].as_str().unwrap().to_owned();
    for (token, refused_with) in [
        (bob.token.clone(), Some("invalid_argument")),
        (alice.login_again().await.token, Some("invalid_argument")),
        ("not.a.token".to_owned(), Some("unauthenticated")),
        (fresh, None),
    ] {
        alice
            .send(json!({ "op": "identify", "d": { "token": token } }))
            .await;
        if let Some(code) = refused_with {
            let error = alice.expect_op_allowing_errors("error").await;
            assert_eq!(error["d"]["code"], code, "{error}");
        }
    }
    // Still alice's connection, and it works with the fresh token.
    alice.subscribe(&chat_id).await;
}

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

/// gRPC between the processes is mutual TLS with the deployment's CA: a plaintext client,
/// and a client whose certificate comes from another CA, cannot complete a call.
#[tokio::test]
async fn a_client_without_a_certificate_of_the_deployment_cannot_call() {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let Some(system) = System::distributed().await else {
        return;
    };
    let check = async |channel: astral_common::grpc::Channel| {
        HealthClient::new(channel)
            .check(HealthCheckRequest::default())
            .await
    };
    for service in ["auth", "social", "messaging"] {
        let url = system.service_url(service);
        let plaintext = astral_common::grpc::channel(&url.replacen("https", "http", 1), None);
        assert!(
            check(plaintext.unwrap()).await.is_err(),
            "plaintext {service}"
        );

        let stranger = astral_common::testing::TempDir::new();
        let other = stranger.0.join("secrets");
        astral::secrets::init(&other, &astral::secrets::InitOptions::default()).unwrap();
        let mut args = astral_common::plane::PlaneArgs::default();
        args.tls.ca = Some(other.join("ca.pem"));
        args.tls.cert = Some(other.join("admin.pem"));
        args.tls.key = Some(other.join("admin.key"));
        let foreign = astral_common::plane::Plane::from_args(&args).unwrap();
        let channel = foreign.channel(&url, support::system::server_role(service));
        assert!(check(channel.unwrap()).await.is_err(), "other CA {service}");

        // The deployment's own admin certificate: health and both reflection versions work,
        // as they do for grpcurl.
        assert!(check(system.channel(Role::Admin, service)).await.is_ok());
        assert_reflection_answers(system.channel(Role::Admin, service)).await;
    }
    system.stop().await;
}

/// Both server reflection versions list the services (many clients only ask `v1alpha`).
async fn assert_reflection_answers(channel: astral_common::grpc::Channel) {
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
    let request = tonic_reflection::pb::v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = ServerReflectionClient::new(channel)
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(listed)) = answer.message_response else {
        panic!("no service list over v1alpha");
    };
    assert!(listed.service.iter().any(|s| s.name.starts_with("astral.")));
}

/// RPCs no user makes answer PERMISSION_DENIED to every role but admin.
#[tokio::test]
async fn only_the_admin_role_may_call_admin_methods() {
    use astral_proto::auth::{EndUserSessionsRequest, ListUsersRequest, RotateSigningKeyRequest};
    use astral_proto::messaging::InspectChatRequest;
    use astral_proto::social::CheckFriendshipsRequest;
    let Some(system) = System::distributed().await else {
        return;
    };
    let (alice, _bob, chat_id) =
        support::user::friends_with_a_chat(&system.base, &system.base).await;
    for role in [Role::Gateway, Role::Social, Role::Messaging] {
        let mut auth = AuthServiceClient::new(system.channel(role, "auth"));
        let mut messaging = MessagingServiceClient::new(system.channel(role, "messaging"));
        let codes = [
            auth.rotate_signing_key(RotateSigningKeyRequest {})
                .await
                .unwrap_err()
                .code(),
            auth.list_users(ListUsersRequest::default())
                .await
                .unwrap_err()
                .code(),
            auth.end_user_sessions(EndUserSessionsRequest {
                user_id: alice.id.clone(),
            })
            .await
            .unwrap_err()
            .code(),
            messaging
                .inspect_chat(InspectChatRequest {
                    chat_id: chat_id.clone(),
                })
                .await
                .unwrap_err()
                .code(),
        ];
        assert!(
            codes
                .iter()
                .all(|code| *code == tonic::Code::PermissionDenied),
            "{role}: {codes:?}"
        );
    }
    // Friendship checks are the messaging service's to ask, nobody else's.
    let mut social = SocialServiceClient::new(system.channel(Role::Gateway, "social"));
    let status = social
        .check_friendships(CheckFriendshipsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    // A user call with a user's token, but from a role that is not the gateway.
    let mut messaging = MessagingServiceClient::new(system.channel(Role::Admin, "messaging"));
    let read = ListMessagesRequest {
        chat_id: chat_id.clone(),
        ..Default::default()
    };
    let status = messaging
        .list_messages(for_user(read, &alice.token))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    // The admin may.
    let mut auth = AuthServiceClient::new(system.channel(Role::Admin, "auth"));
    assert!(auth.list_users(ListUsersRequest::default()).await.is_ok());
    assert_eq!(alice.get("/api/users/me").await.0, StatusCode::OK);
    system.stop().await;
}

/// NATS admits only the deployment's roles; events a validly connected publisher did not
/// sign with its own key — unsigned, signed by a stranger, or of a kind its role does not
/// publish — never reach a browser, and a forged `session.ended` ends nothing.
#[tokio::test]
async fn forged_events_on_the_bus_never_reach_a_client() {
    use astral_common::signing::{EventSigner, SIGNATURE_HEADER};
    use astral_proto::events::{Event, MessageEvent, SessionEnded, event::Kind};
    use astral_proto::messaging::Message;
    use prost::Message as _;
    let Some(system) = System::distributed().await else {
        return;
    };
    let nats_url = system.nats_url.clone().unwrap();
    assert!(
        async_nats::connect(&nats_url).await.is_err(),
        "an anonymous connection is refused"
    );
    let (mut alice, bob, chat_id) =
        support::user::friends_with_a_chat(&system.base, &system.base).await;
    alice.connect().await;
    let (_, sessions) = alice.get("/api/users/me/sessions").await;
    let session_id = sessions["sessions"][0]["id"].as_str().unwrap().to_owned();

    let event = |kind: Kind| {
        Event {
            id: astral_common::ids::new_id_string(),
            occurred_at_ms: astral_common::time::now_ms(),
            kind: Some(kind),
        }
        .encode_to_vec()
    };
    let from_bob = event(Kind::MessageCreated(MessageEvent {
        message: Some(Message {
            id: "1".into(),
            chat_id: chat_id.clone(),
            seq: 99,
            version: 99,
            author_id: bob.id.clone(),
            content: "send me your password".into(),
            ..Default::default()
        }),
    }));
    let ended = event(Kind::SessionEnded(SessionEnded {
        user_id: alice.id.clone(),
        session_id: session_id.clone(),
        revoked_at_ms: astral_common::time::now_ms(),
    }));
    let subject = format!("user.{}", alice.id);
    // Messaging may publish on user.*: its credentials, but no signature, or another key.
    let publisher = system.nats_client(Role::Messaging).await;
    publisher
        .publish(subject.clone(), from_bob.clone().into())
        .await
        .unwrap();
    let stranger = EventSigner::new(ed25519_dalek::SigningKey::from_bytes(&rand::random()));
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(
        SIGNATURE_HEADER,
        stranger.sign(&subject, &from_bob).as_str(),
    );
    publisher
        .publish_with_headers(subject.clone(), headers, from_bob.into())
        .await
        .unwrap();
    // Social's real key, on a subject social publishes on — but ending sessions is auth's.
    let social_key = EventSigner::load(&system_file(
        &system,
        Role::Social,
        "ASTRAL_EVENT_SIGNING_KEY",
    ))
    .unwrap();
    let social = system.nats_client(Role::Social).await;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(SIGNATURE_HEADER, social_key.sign(&subject, &ended).as_str());
    social
        .publish_with_headers(subject.clone(), headers, ended.into())
        .await
        .unwrap();
    publisher.flush().await.unwrap();
    social.flush().await.unwrap();

    // Then a real message: it is the first thing alice's socket gets.
    let (status, _) = bob
        .post(
            &format!("/api/chats/{chat_id}/messages"),
            json!({ "content": "the real one" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let created = alice.expect_event("message.created").await;
    assert_eq!(created["content"], "the real one");
    assert_eq!(
        alice.get("/api/users/me").await.0,
        StatusCode::OK,
        "still signed in"
    );
    let page = system.metrics_of("astral-gateway-0").await;
    let rejected: f64 = page
        .lines()
        .filter(|line| line.starts_with("astral_events_rejected_total"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(rejected >= 3.0, "{page}");
    system.stop().await;
}

/// A file named in a role's env file.
fn system_file(system: &System, role: Role, key: &str) -> std::path::PathBuf {
    system
        .role_env(role)
        .into_iter()
        .find(|(name, _)| name == key)
        .map(|(_, path)| path.into())
        .unwrap()
}

/// A distributed binary without its secrets, or with one it cannot read, refuses to start
/// and says which setting and file.
#[tokio::test]
async fn a_process_without_its_secrets_refuses_to_start_and_names_the_setting() {
    let binary =
        std::path::PathBuf::from(env!("CARGO_BIN_EXE_astral")).with_file_name("astral-social");
    let run = async |env: Vec<(&str, &str)>| {
        let output = tokio::process::Command::new(&binary)
            .env_clear()
            .env("ASTRAL_LISTEN", "127.0.0.1:0")
            .env("DATABASE_URL", "sqlite::memory:")
            .envs(env)
            .output()
            .await
            .unwrap();
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let stderr = run(vec![]).await;
    assert!(stderr.contains("ASTRAL_TLS_CA"), "{stderr}");
    let stderr = run(vec![
        ("ASTRAL_TLS_CA", "/nonexistent/ca.pem"),
        ("ASTRAL_TLS_CERT", "/nonexistent/social.pem"),
        ("ASTRAL_TLS_KEY", "/nonexistent/social.key"),
    ])
    .await;
    assert!(
        stderr.contains("ASTRAL_TLS_CA") && stderr.contains("/nonexistent/ca.pem"),
        "{stderr}"
    );
    let secrets = astral_common::testing::TempDir::new();
    let dir = secrets.0.join("secrets");
    astral::secrets::init(&dir, &astral::secrets::InitOptions::default()).unwrap();
    let mut env = astral::secrets::role_env(&dir, "social").unwrap();
    env.retain(|(key, _)| key != "ASTRAL_EVENT_SIGNING_KEY");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let stderr = run(env).await;
    assert!(stderr.contains("ASTRAL_EVENT_SIGNING_KEY"), "{stderr}");
}

/// `secrets renew-certs` keeps the CA: a process restarted with its renewed certificate and
/// one still running with the old one accept each other (a rolling renewal).
#[tokio::test]
async fn renewed_and_old_certificates_accept_each_other() {
    use astral_common::guard::{Guard, Refused, Transport, VerifyToken};
    use astral_common::plane::{Plane, PlaneArgs};
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    struct NoUsers;
    impl VerifyToken for NoUsers {
        fn verify<'a>(
            &'a self,
            _: &'a str,
        ) -> futures::future::BoxFuture<'a, Result<astral_common::tokens::Claims, Refused>>
        {
            Box::pin(async { Err(Refused::Unauthenticated("none".into())) })
        }
    }
    let temp = astral_common::testing::TempDir::new();
    let dir = temp.0.join("secrets");
    astral::secrets::init(&dir, &astral::secrets::InitOptions::default()).unwrap();
    let old = temp.0.join("old");
    std::fs::create_dir(&old).unwrap();
    for file in [
        "ca.pem",
        "gateway.pem",
        "gateway.key",
        "auth.pem",
        "auth.key",
    ] {
        std::fs::copy(dir.join(file), old.join(file)).unwrap();
    }
    astral::secrets::renew_certificates(&dir).unwrap();
    let plane = |dir: &std::path::Path, role: &str| {
        let mut args = PlaneArgs::default();
        args.tls.ca = Some(dir.join("ca.pem"));
        args.tls.cert = Some(dir.join(format!("{role}.pem")));
        args.tls.key = Some(dir.join(format!("{role}.key")));
        Plane::from_args(&args).unwrap()
    };
    for (server, client) in [(&dir, &old), (&old, &dir), (&dir, &dir)] {
        let server_plane = plane(server, "auth");
        let guard = Guard::new(
            &[],
            std::sync::Arc::new(NoUsers),
            Transport::MutualTls,
            std::sync::Arc::new(astral_common::ratelimit::InMemory::default()),
        );
        let router = astral_common::grpc::server_with_health::<
            tonic_health::pb::health_server::HealthServer<tonic_health::server::HealthService>,
        >(server_plane.tls(), guard, std::future::ready(()))
        .await
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(astral_common::grpc::serve(router, listener, async {
            let _ = stopped.await;
        }));
        let channel = plane(client, "gateway").channel(&url, Role::Auth).unwrap();
        let answer = HealthClient::new(channel)
            .check(HealthCheckRequest::default())
            .await;
        assert!(answer.is_ok(), "{answer:?}");
        stop.send(()).unwrap();
        serving.await.unwrap().unwrap();
    }
}
