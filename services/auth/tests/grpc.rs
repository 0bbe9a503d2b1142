//! The auth service through its own gRPC server, started on a free port on SQLite and on
//! PostgreSQL: its use cases as a caller sees them, and how their errors map to gRPC codes.

#![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap does

use astral_auth::Settings;
use astral_common::EventBus;
use astral_common::guard::for_user;
use astral_common::plane::Plane;
use astral_common::testing::{TestDatabase, TestServer};
use astral_proto::auth::auth_service_client::AuthServiceClient;
use astral_proto::auth::{
    AuthResponse, ChangePasswordRequest, GetUserByUsernameRequest, GetUserRequest, GetUsersRequest,
    ListSessionsRequest, LoginRequest, LogoutRequest, RefreshRequest, RegisterRequest,
};
use tonic::Code;

type Client = AuthServiceClient<astral_common::grpc::Channel>;

/// The auth service on `database`, keys in clear (no key-encryption key).
async fn auth_on(database: &TestDatabase) -> (TestServer, Client) {
    let url = database.url.clone();
    let server = TestServer::start(|listener, shutdown| async move {
        let plane = Plane::trusted();
        let bus = EventBus::local();
        astral_auth::serve(
            &url,
            None,
            Settings::default(),
            &plane,
            bus,
            listener,
            shutdown,
        )
        .await
    })
    .await;
    let client = AuthServiceClient::new(server.channel());
    (server, client)
}

fn register(username: &str, password: &str) -> RegisterRequest {
    RegisterRequest {
        username: username.into(),
        password: password.into(),
        user_agent: "grpc test".into(),
        client_addr: "192.0.2.1".into(),
    }
}

fn login(username: &str, password: &str) -> LoginRequest {
    LoginRequest {
        username: username.into(),
        password: password.into(),
        user_agent: "grpc test".into(),
        client_addr: "192.0.2.1".into(),
    }
}

/// The code of a call that must fail.
fn code<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> Code {
    result.unwrap_err().code()
}

async fn registered(auth: &mut Client, username: &str) -> AuthResponse {
    auth.register(register(username, "correct horse"))
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn an_account_is_registered_logged_into_refreshed_and_logged_out() {
    for (backend, database) in TestDatabase::both().await {
        let (server, mut auth) = auth_on(&database).await;
        let alice = registered(&mut auth, "Alice").await;
        let user = alice.user.clone().unwrap();
        assert_eq!(user.username, "alice", "{backend}: kept in lower case");
        assert!(!alice.access_token.is_empty(), "{backend}");

        // A second session, seen in the list with the first.
        let laptop = auth
            .login(login("ALICE", "correct horse"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(laptop.user, alice.user, "{backend}");
        assert_ne!(laptop.session_id, alice.session_id, "{backend}");
        let sessions = auth
            .list_sessions(for_user(ListSessionsRequest {}, &alice.access_token))
            .await
            .unwrap()
            .into_inner()
            .sessions;
        let mut ids: Vec<&str> = sessions.iter().map(|s| s.id.as_str()).collect();
        ids.sort_unstable();
        let mut expected = [alice.session_id.as_str(), laptop.session_id.as_str()];
        expected.sort_unstable();
        assert_eq!(ids, expected, "{backend}");

        // Refreshing gives a new pair; the old refresh token is spent.
        let refreshed = auth
            .refresh(RefreshRequest {
                refresh_token: laptop.refresh_token.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(refreshed.session_id, laptop.session_id, "{backend}");
        assert!(!refreshed.refresh_token.is_empty(), "{backend}");
        assert_ne!(refreshed.refresh_token, laptop.refresh_token, "{backend}");

        // Logging out ends that session only.
        let ended = auth
            .logout(for_user(
                LogoutRequest {
                    session_id: laptop.session_id.clone(),
                },
                &refreshed.access_token,
            ))
            .await
            .unwrap()
            .into_inner()
            .ended_session_ids;
        assert_eq!(ended, vec![laptop.session_id.clone()], "{backend}");
        let refused = auth
            .refresh(RefreshRequest {
                refresh_token: refreshed.refresh_token,
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated, "{backend}");
        let sessions = auth
            .list_sessions(for_user(ListSessionsRequest {}, &alice.access_token))
            .await
            .unwrap()
            .into_inner()
            .sessions;
        assert_eq!(sessions.len(), 1, "{backend}");

        // Other services look users up by id, by name and in bulk.
        let by_id = auth
            .get_user(GetUserRequest {
                id: user.id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        let by_name = auth
            .get_user_by_username(GetUserByUsernameRequest {
                username: "ALICE".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!((&by_id, &by_name), (&user, &user), "{backend}");
        let found = auth
            .get_users(GetUsersRequest {
                ids: vec![user.id.clone(), "1234567890123456789".into()],
            })
            .await
            .unwrap()
            .into_inner()
            .users;
        assert_eq!(found, vec![user], "{backend}: unknown ids are left out");
        server.stop().await;
    }
}

#[tokio::test]
async fn errors_are_answered_with_their_grpc_codes() {
    for (backend, database) in TestDatabase::both().await {
        let (server, mut auth) = auth_on(&database).await;
        let alice = registered(&mut auth, "alice").await;

        let cases = [
            (
                "a taken username",
                code(auth.register(register("alice", "another password")).await),
                Code::AlreadyExists,
            ),
            (
                "a username too short",
                code(auth.register(register("ab", "correct horse")).await),
                Code::InvalidArgument,
            ),
            (
                "a password too short",
                code(auth.register(register("bobby", "short")).await),
                Code::InvalidArgument,
            ),
            (
                "a wrong password",
                code(auth.login(login("alice", "wrong password")).await),
                Code::Unauthenticated,
            ),
            (
                "an unknown username",
                code(auth.login(login("nobody_here", "wrong password")).await),
                Code::Unauthenticated,
            ),
            (
                "a call for a user without their token",
                code(auth.list_sessions(ListSessionsRequest {}).await),
                Code::Unauthenticated,
            ),
            (
                "a token that is not one",
                code(
                    auth.list_sessions(for_user(ListSessionsRequest {}, "not.a.token"))
                        .await,
                ),
                Code::Unauthenticated,
            ),
            (
                "a wrong current password",
                code(
                    auth.change_password(for_user(
                        ChangePasswordRequest {
                            current_password: "not my password".into(),
                            new_password: "a new secret".into(),
                        },
                        &alice.access_token,
                    ))
                    .await,
                ),
                Code::PermissionDenied,
            ),
            (
                "a session that is not there",
                code(
                    auth.logout(for_user(
                        LogoutRequest {
                            session_id: "1234567890123456789".into(),
                        },
                        &alice.access_token,
                    ))
                    .await,
                ),
                Code::NotFound,
            ),
            (
                "an unknown user id",
                code(
                    auth.get_user(GetUserRequest {
                        id: "1234567890123456789".into(),
                    })
                    .await,
                ),
                Code::NotFound,
            ),
        ];
        for (case, answered, expected) in cases {
            assert_eq!(answered, expected, "{backend}: {case}");
        }
        server.stop().await;
    }
}
