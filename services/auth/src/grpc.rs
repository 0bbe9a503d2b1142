//! The auth gRPC API: translates protobuf to use-case calls and back.

use crate::service::{AuthService, Authenticated};
use crate::store::User;
use astral_common::error::parse_id;
use astral_common::guard::{Access, Policy, Refused, Role, VerifyToken, actor};
use astral_common::ratelimit::Rate;
use astral_common::tokens::Claims;
use astral_proto::auth as pb;
use futures::future::BoxFuture;
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub type Server = pb::auth_service_server::AuthServiceServer<Api>;

pub fn server(service: Arc<AuthService>) -> Server {
    pb::auth_service_server::AuthServiceServer::new(Api(service))
}

const SERVICES: &[Role] = &[Role::Gateway, Role::Social, Role::Messaging];
const EVERYONE: &[Role] = &[Role::Gateway, Role::Social, Role::Messaging, Role::Admin];

/// Who may call each method (see `auth.proto`).
pub const POLICY: Policy = &[
    (
        "/astral.auth.v1.AuthService/Register",
        Access::roles(&[Role::Gateway]),
    ),
    (
        "/astral.auth.v1.AuthService/Login",
        Access::roles(&[Role::Gateway]),
    ),
    (
        "/astral.auth.v1.AuthService/Refresh",
        Access::roles(&[Role::Gateway]),
    ),
    (
        "/astral.auth.v1.AuthService/Logout",
        Access::user_at(Rate::per_minute(30)),
    ),
    (
        "/astral.auth.v1.AuthService/LogoutAll",
        Access::user_at(Rate::per_minute(10)),
    ),
    (
        "/astral.auth.v1.AuthService/ChangePassword",
        Access::user_at(Rate::per_seconds(5, 600)),
    ),
    ("/astral.auth.v1.AuthService/ListSessions", Access::USER),
    (
        "/astral.auth.v1.AuthService/ListRevokedSessions",
        Access::roles(SERVICES),
    ),
    (
        "/astral.auth.v1.AuthService/CheckSessions",
        Access::roles(&[Role::Messaging]),
    ),
    (
        "/astral.auth.v1.AuthService/RotateSigningKey",
        Access::roles(&[Role::Admin]),
    ),
    (
        "/astral.auth.v1.AuthService/ListUsers",
        Access::roles(&[Role::Admin]),
    ),
    (
        "/astral.auth.v1.AuthService/EndUserSessions",
        Access::roles(&[Role::Admin]),
    ),
    (
        "/astral.auth.v1.AuthService/GetUser",
        Access::roles(EVERYONE),
    ),
    (
        "/astral.auth.v1.AuthService/GetUserByUsername",
        Access::roles(&[Role::Gateway, Role::Social, Role::Admin]),
    ),
    (
        "/astral.auth.v1.AuthService/GetUsers",
        Access::roles(EVERYONE),
    ),
    (
        "/astral.auth.v1.AuthService/GetPublicKeys",
        Access::roles(EVERYONE),
    ),
];

/// The auth service judges tokens itself: its own keys, its own sessions table.
pub struct Tokens(pub Arc<AuthService>);

impl VerifyToken for Tokens {
    fn verify<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Claims, Refused>> {
        Box::pin(async move {
            self.0
                .authenticate(token)
                .await
                .map_err(|error| match error {
                    astral_common::Error::Unauthenticated(why) => Refused::Unauthenticated(why),
                    other => Refused::Unavailable(tonic::Status::from(other).message().to_owned()),
                })
        })
    }
}

pub struct Api(Arc<AuthService>);

impl From<User> for pb::User {
    fn from(user: User) -> Self {
        Self {
            id: user.id.to_string(),
            username: user.username,
        }
    }
}

impl From<Authenticated> for pb::AuthResponse {
    fn from(auth: Authenticated) -> Self {
        Self {
            access_token: auth.access_token,
            refresh_token: auth.refresh_token,
            user: Some(auth.user.into()),
            session_id: auth.session_id.to_string(),
            access_token_expires_at_ms: auth.access_token_expires_at_ms,
        }
    }
}

#[tonic::async_trait]
impl pb::auth_service_server::AuthService for Api {
    async fn register(
        &self,
        request: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::AuthResponse>, Status> {
        let r = request.into_inner();
        Ok(Response::new(
            self.0
                .register(&r.username, r.password, &r.user_agent, &r.client_addr)
                .await?
                .into(),
        ))
    }

    async fn login(
        &self,
        request: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::AuthResponse>, Status> {
        let r = request.into_inner();
        Ok(Response::new(
            self.0
                .login(&r.username, r.password, &r.user_agent, &r.client_addr)
                .await?
                .into(),
        ))
    }

    async fn refresh(
        &self,
        request: Request<pb::RefreshRequest>,
    ) -> Result<Response<pb::AuthResponse>, Status> {
        Ok(Response::new(
            self.0
                .refresh(&request.into_inner().refresh_token)
                .await?
                .into(),
        ))
    }

    async fn logout(
        &self,
        request: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        let actor = actor(&request)?;
        let session_id = parse_id(&request.into_inner().session_id, "session_id")?;
        self.0.logout(actor.user_id, session_id).await?;
        Ok(Response::new(pb::LogoutResponse {
            ended_session_ids: ended(&[session_id]),
        }))
    }

    async fn logout_all(
        &self,
        request: Request<pb::LogoutAllRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        let user_id = actor(&request)?.user_id;
        let ended_session_ids = ended(&self.0.logout_everywhere(user_id).await?);
        Ok(Response::new(pb::LogoutResponse { ended_session_ids }))
    }

    async fn end_user_sessions(
        &self,
        request: Request<pb::EndUserSessionsRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        let user_id = parse_id(&request.into_inner().user_id, "user_id")?;
        let ended_session_ids = ended(&self.0.logout_everywhere(user_id).await?);
        Ok(Response::new(pb::LogoutResponse { ended_session_ids }))
    }

    async fn change_password(
        &self,
        request: Request<pb::ChangePasswordRequest>,
    ) -> Result<Response<pb::ChangePasswordResponse>, Status> {
        let actor = actor(&request)?;
        let r = request.into_inner();
        let ended_ids = self
            .0
            .change_password(
                actor.user_id,
                actor.session_id,
                r.current_password,
                r.new_password,
            )
            .await?;
        Ok(Response::new(pb::ChangePasswordResponse {
            ended_session_ids: ended(&ended_ids),
        }))
    }

    async fn list_sessions(
        &self,
        request: Request<pb::ListSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        let sessions = self.0.sessions(actor(&request)?.user_id).await?;
        let sessions = sessions
            .into_iter()
            .map(|s| pb::Session {
                id: s.id.to_string(),
                user_agent: s.user_agent,
                created_at_ms: s.created_at_ms,
                last_used_at_ms: s.last_used_at_ms,
            })
            .collect();
        Ok(Response::new(pb::ListSessionsResponse { sessions }))
    }

    async fn list_revoked_sessions(
        &self,
        request: Request<pb::ListRevokedSessionsRequest>,
    ) -> Result<Response<pb::ListRevokedSessionsResponse>, Status> {
        let revoked = self.0.revoked_since(request.into_inner().since_ms).await?;
        let sessions = revoked
            .into_iter()
            .map(|revoked| pb::RevokedSession {
                session_id: revoked.session_id.to_string(),
                user_id: revoked.user_id.to_string(),
                revoked_at_ms: revoked.revoked_at_ms,
            })
            .collect();
        Ok(Response::new(pb::ListRevokedSessionsResponse { sessions }))
    }

    async fn check_sessions(
        &self,
        request: Request<pb::CheckSessionsRequest>,
    ) -> Result<Response<pb::CheckSessionsResponse>, Status> {
        let sessions = request
            .into_inner()
            .session_ids
            .iter()
            .map(|id| Ok(parse_id(id, "session_ids")?))
            .collect::<Result<Vec<i64>, Status>>()?;
        let live = self.0.live(&sessions).await?;
        Ok(Response::new(pb::CheckSessionsResponse { live }))
    }

    async fn rotate_signing_key(
        &self,
        _request: Request<pb::RotateSigningKeyRequest>,
    ) -> Result<Response<pb::PublicKey>, Status> {
        let (kid, public_key) = self.0.rotate_signing_key().await?;
        Ok(Response::new(pb::PublicKey {
            kid,
            algorithm: "EdDSA".into(),
            public_key,
        }))
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        let r = request.into_inner();
        let users = self.0.list_users(&r.after, r.limit).await?;
        Ok(Response::new(pb::ListUsersResponse {
            users: users.into_iter().map(Into::into).collect(),
        }))
    }

    async fn get_user(
        &self,
        request: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let id = parse_id(&request.into_inner().id, "id")?;
        Ok(Response::new(self.0.user(id).await?.into()))
    }

    async fn get_user_by_username(
        &self,
        request: Request<pb::GetUserByUsernameRequest>,
    ) -> Result<Response<pb::User>, Status> {
        Ok(Response::new(
            self.0
                .user_by_username(&request.into_inner().username)
                .await?
                .into(),
        ))
    }

    async fn get_users(
        &self,
        request: Request<pb::GetUsersRequest>,
    ) -> Result<Response<pb::GetUsersResponse>, Status> {
        let ids = request
            .into_inner()
            .ids
            .iter()
            .map(|id| parse_id(id, "id"))
            .collect::<Result<Vec<_>, _>>()?;
        let users = self
            .0
            .users(&ids)
            .await?
            .into_iter()
            .map(Into::into)
            .collect();
        Ok(Response::new(pb::GetUsersResponse { users }))
    }

    async fn get_public_keys(
        &self,
        _request: Request<pb::GetPublicKeysRequest>,
    ) -> Result<Response<pb::GetPublicKeysResponse>, Status> {
        let keys = self
            .0
            .public_keys()
            .await?
            .into_iter()
            .map(|(kid, public_key)| pb::PublicKey {
                kid,
                algorithm: "EdDSA".into(),
                public_key,
            })
            .collect();
        Ok(Response::new(pb::GetPublicKeysResponse { keys }))
    }
}

fn ended(session_ids: &[i64]) -> Vec<String> {
    session_ids.iter().map(ToString::to_string).collect()
}
