//! What a WebSocket session asks of the rest of the system: token checks and the few service
//! calls it makes for its user. A trait, so that the session's state machine runs in unit
//! tests against a fake; the gateway's [`AppState`] is the real one.

use crate::error::ApiError;
use crate::session::authenticate;
use crate::state::AppState;
use astral_common::guard::for_user;
use astral_common::tokens::Claims;
use astral_proto::{auth, messaging};
use std::future::Future;
use tonic::Status;

pub trait Backend: Send + Sync + 'static {
    /// Verifies an access token (refused if its session has ended).
    fn authenticate(&self, token: &str) -> impl Future<Output = Result<Claims, ApiError>> + Send;

    /// Takes note that a session ended (from its `session.ended` event).
    fn revoke(&self, session_id: String, revoked_at_ms: i64);

    /// A user by id (for tokens too old to name their user).
    fn user(&self, user_id: String) -> impl Future<Output = Result<auth::User, Status>> + Send;

    /// The chats of the token's user, and whether they share read receipts.
    fn chats(
        &self,
        token: &str,
    ) -> impl Future<Output = Result<(Vec<messaging::Chat>, bool), Status>> + Send;

    /// One chat, if the token's user is a member.
    fn chat(
        &self,
        chat_id: String,
        token: &str,
    ) -> impl Future<Output = Result<messaging::Chat, Status>> + Send;

    /// Tells the chat's members the token's user is typing.
    fn typing(
        &self,
        chat_id: String,
        token: &str,
    ) -> impl Future<Output = Result<(), Status>> + Send;

    /// Up to `limit` changes of a chat after version `after`, in version order.
    fn changes(
        &self,
        chat_id: String,
        after: i64,
        limit: i64,
        token: &str,
    ) -> impl Future<Output = Result<Vec<messaging::Message>, Status>> + Send;
}

/// The services and the gateway's token checks.
impl Backend for AppState {
    async fn authenticate(&self, token: &str) -> Result<Claims, ApiError> {
        authenticate(&self.tokens, token).await
    }

    fn revoke(&self, session_id: String, revoked_at_ms: i64) {
        self.tokens.revoke(session_id, revoked_at_ms);
    }

    async fn user(&self, user_id: String) -> Result<auth::User, Status> {
        let request = auth::GetUserRequest { id: user_id };
        let user = self.services.auth.clone().get_user(request).await?;
        Ok(user.into_inner())
    }

    async fn chats(&self, token: &str) -> Result<(Vec<messaging::Chat>, bool), Status> {
        let request = for_user(messaging::ListChatsRequest {}, token);
        let chats = self.services.messaging.clone().list_chats(request).await?;
        let chats = chats.into_inner();
        Ok((chats.chats, chats.share_read_receipts))
    }

    async fn chat(&self, chat_id: String, token: &str) -> Result<messaging::Chat, Status> {
        let request = for_user(messaging::ChatRef { chat_id }, token);
        let chat = self.services.messaging.clone().get_chat(request).await?;
        Ok(chat.into_inner())
    }

    async fn typing(&self, chat_id: String, token: &str) -> Result<(), Status> {
        let request = for_user(messaging::ChatRef { chat_id }, token);
        self.services.messaging.clone().typing(request).await?;
        Ok(())
    }

    async fn changes(
        &self,
        chat_id: String,
        after: i64,
        limit: i64,
        token: &str,
    ) -> Result<Vec<messaging::Message>, Status> {
        let request = messaging::ListMessagesRequest {
            chat_id,
            before: None,
            after: Some(after),
            limit: Some(limit),
        };
        let page = self
            .services
            .messaging
            .clone()
            .list_messages(for_user(request, token))
            .await?;
        Ok(page.into_inner().messages)
    }
}
