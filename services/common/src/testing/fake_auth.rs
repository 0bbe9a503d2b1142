//! A stand-in for the auth service, so that a test can drive social or messaging through its
//! own gRPC server without the auth crate (services never depend on each other's crates).

use super::TestServer;
use crate::tokens::Claims;
use astral_proto::auth as pb;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use pb::auth_service_server::{AuthService, AuthServiceServer};
use std::sync::{Arc, Mutex};
use tonic::{Request, Response, Status};

/// The id of the one key that signs the stand-in's tokens.
const KID: &str = "fake-auth";

/// A user the stand-in knows, with an access token of a session of their own.
#[derive(Clone, Debug)]
pub struct FakeUser {
    pub id: String,
    pub username: String,
    pub token: String,
}

/// The auth service as the other services use it: the public key that verifies its tokens,
/// no revoked sessions, and the users a test made with [`FakeAuth::user`]. Every other call
/// answers UNIMPLEMENTED.
#[derive(Clone)]
pub struct FakeAuth {
    key: Arc<ed25519_dalek::SigningKey>,
    users: Arc<Mutex<Vec<pb::User>>>,
}

impl Default for FakeAuth {
    fn default() -> Self {
        Self {
            key: Arc::new(ed25519_dalek::SigningKey::from_bytes(&rand::random())),
            users: Arc::default(),
        }
    }
}

impl FakeAuth {
    /// Serves it on a free local port.
    pub async fn start(&self) -> TestServer {
        let auth = AuthServiceServer::new(self.clone());
        TestServer::start(|listener, shutdown| async move {
            let (_, health) = tonic_health::server::health_reporter();
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            tonic::transport::Server::builder()
                .add_service(health)
                .add_service(auth)
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await?;
            Ok(())
        })
        .await
    }

    /// A new user named `username`, with a token good for 15 minutes.
    pub fn user(&self, username: &str) -> FakeUser {
        let id = crate::ids::new_id().to_string();
        self.users
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(pb::User {
                id: id.clone(),
                username: username.to_owned(),
            });
        let now = crate::time::now_ms() / 1000;
        let claims = Claims {
            sub: id.clone(),
            sid: crate::ids::new_id().to_string(),
            iat: now,
            exp: now + 900,
            name: username.to_owned(),
        };
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(KID.to_owned());
        let der = self.key.to_pkcs8_der().expect("an Ed25519 key in DER");
        let key = jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes());
        let token = jsonwebtoken::encode(&header, &claims, &key).expect("a signed token");
        FakeUser {
            id,
            username: username.to_owned(),
            token,
        }
    }

    fn find(&self, found: impl Fn(&pb::User) -> bool) -> Vec<pb::User> {
        self.users
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|user| found(user))
            .cloned()
            .collect()
    }
}

fn not_here<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented("not in the auth stand-in"))
}

#[tonic::async_trait]
impl AuthService for FakeAuth {
    async fn get_public_keys(
        &self,
        _: Request<pb::GetPublicKeysRequest>,
    ) -> Result<Response<pb::GetPublicKeysResponse>, Status> {
        Ok(Response::new(pb::GetPublicKeysResponse {
            keys: vec![pb::PublicKey {
                kid: KID.to_owned(),
                algorithm: "EdDSA".to_owned(),
                public_key: self.key.verifying_key().to_bytes().to_vec(),
            }],
        }))
    }

    async fn list_revoked_sessions(
        &self,
        _: Request<pb::ListRevokedSessionsRequest>,
    ) -> Result<Response<pb::ListRevokedSessionsResponse>, Status> {
        Ok(Response::new(pb::ListRevokedSessionsResponse::default()))
    }

    /// No session of the stand-in ever ends.
    async fn check_sessions(
        &self,
        request: Request<pb::CheckSessionsRequest>,
    ) -> Result<Response<pb::CheckSessionsResponse>, Status> {
        let live = vec![true; request.into_inner().session_ids.len()];
        Ok(Response::new(pb::CheckSessionsResponse { live }))
    }

    async fn get_user(
        &self,
        request: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let id = request.into_inner().id;
        match self.find(|user| user.id == id).pop() {
            Some(user) => Ok(Response::new(user)),
            None => Err(Status::not_found("no such user")),
        }
    }

    async fn get_user_by_username(
        &self,
        request: Request<pb::GetUserByUsernameRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let username = request.into_inner().username.to_lowercase();
        match self.find(|user| user.username == username).pop() {
            Some(user) => Ok(Response::new(user)),
            None => Err(Status::not_found("no such user")),
        }
    }

    async fn get_users(
        &self,
        request: Request<pb::GetUsersRequest>,
    ) -> Result<Response<pb::GetUsersResponse>, Status> {
        let ids = request.into_inner().ids;
        Ok(Response::new(pb::GetUsersResponse {
            users: self.find(|user| ids.contains(&user.id)),
        }))
    }

    async fn register(
        &self,
        _: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::AuthResponse>, Status> {
        not_here()
    }

    async fn login(
        &self,
        _: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::AuthResponse>, Status> {
        not_here()
    }

    async fn refresh(
        &self,
        _: Request<pb::RefreshRequest>,
    ) -> Result<Response<pb::AuthResponse>, Status> {
        not_here()
    }

    async fn logout(
        &self,
        _: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        not_here()
    }

    async fn logout_all(
        &self,
        _: Request<pb::LogoutAllRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        not_here()
    }

    async fn change_password(
        &self,
        _: Request<pb::ChangePasswordRequest>,
    ) -> Result<Response<pb::ChangePasswordResponse>, Status> {
        not_here()
    }

    async fn list_sessions(
        &self,
        _: Request<pb::ListSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        not_here()
    }

    async fn rotate_signing_key(
        &self,
        _: Request<pb::RotateSigningKeyRequest>,
    ) -> Result<Response<pb::PublicKey>, Status> {
        not_here()
    }

    async fn list_users(
        &self,
        _: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        not_here()
    }

    async fn end_user_sessions(
        &self,
        _: Request<pb::EndUserSessionsRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        not_here()
    }
}
