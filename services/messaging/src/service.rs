//! The messaging use cases: one function each, holding the rules and the authorization.

use crate::domain::{MessageContent, parse_nonce};
use crate::events::Events;
use crate::store::{Chat, Message, NewMessage, Page, Store, User};
use anyhow::Context as _;
use astral_common::{Error, EventBus, Result, ids, time};
use astral_proto::auth::{GetUsersRequest, auth_service_client::AuthServiceClient};
use astral_proto::social::{AreFriendsRequest, social_service_client::SocialServiceClient};
use astral_proto::subjects::direct_chat_id;
use std::sync::Arc;
use tonic::transport::Channel;
use tracing::instrument;

/// A chat as one member sees it, with whether they can still write in it.
#[derive(Debug, Clone)]
pub struct ChatView {
    pub chat: Chat,
    pub read_only: bool,
}

pub struct MessagingService {
    store: Store,
    auth: AuthServiceClient<Channel>,
    social: SocialServiceClient<Channel>,
    events: Events,
}

/// How many messages a history page holds when the caller does not say.
pub const DEFAULT_PAGE: i64 = 50;
/// The most a history page holds.
pub const MAX_PAGE: i64 = 100;

fn chat_not_found() -> Error {
    Error::not_found("no such chat")
}

impl MessagingService {
    pub fn new(
        store: Store,
        auth: AuthServiceClient<Channel>,
        social: SocialServiceClient<Channel>,
        bus: EventBus,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            auth,
            social,
            events: Events::new(bus),
        })
    }

    /// The direct chat between the actor and a friend, created on first use. Once created it
    /// stays, read-only while they are not friends.
    #[instrument(skip_all, fields(%actor, %other), err(level = "info"))]
    pub async fn open_direct_chat(&self, actor: i64, other: i64) -> Result<ChatView> {
        if actor == other {
            return Err(Error::invalid("a direct chat needs another user"));
        }
        let chat_id = direct_chat_id(&actor.to_string(), &other.to_string());
        if let Some(chat) = self.store.chat_for(&chat_id, actor).await? {
            return self.view(chat).await;
        }
        if !self.are_friends(actor, other).await? {
            return Err(Error::forbidden(
                "you can only open a direct chat with a friend",
            ));
        }
        let users = self.users(&[actor, other]).await?;
        if users.len() != 2 {
            return Err(Error::not_found("no such user"));
        }
        self.store.remember_users(&users).await?;
        let created = self
            .store
            .create_chat(
                &chat_id,
                "direct",
                "",
                None,
                &[actor, other],
                time::now_ms(),
            )
            .await?;
        let chat = self
            .store
            .chat_for(&chat_id, actor)
            .await?
            .ok_or_else(chat_not_found)?;
        if created {
            self.events.chat_created(&chat, &[actor, other]).await;
        }
        self.view(chat).await
    }

    /// The actor's chats, latest activity first.
    pub async fn list_chats(&self, actor: i64) -> Result<Vec<ChatView>> {
        let mut views = Vec::new();
        for chat in self.store.chats_of(actor).await? {
            views.push(self.view(chat).await?);
        }
        Ok(views)
    }

    /// One of the actor's chats; `NotFound` for a chat they are not in.
    pub async fn get_chat(&self, actor: i64, chat_id: &str) -> Result<ChatView> {
        let chat = self
            .store
            .chat_for(chat_id, actor)
            .await?
            .ok_or_else(chat_not_found)?;
        self.view(chat).await
    }

    /// Sends a message; a retry with the same nonce returns the first one.
    #[instrument(skip_all, fields(%actor, %chat_id), err(level = "info"))]
    pub async fn send_message(
        &self,
        actor: i64,
        chat_id: &str,
        content: &str,
        nonce: &str,
    ) -> Result<Message> {
        let content = MessageContent::parse(content)?;
        let nonce = parse_nonce(nonce)?;
        let chat = self.writable_chat(actor, chat_id).await?;
        if let Some(nonce) = &nonce
            && let Some(first) = self.store.message_by_nonce(chat_id, actor, nonce).await?
        {
            return Ok(first);
        }
        let new = NewMessage {
            id: ids::new_id(),
            chat_id,
            author_id: actor,
            content: content.as_str(),
            nonce: nonce.as_deref(),
            now_ms: time::now_ms(),
        };
        let Some(message) = self.store.insert_message(&new).await? else {
            // The same nonce committed concurrently: answer with that message.
            let nonce = nonce.as_deref().unwrap_or_default();
            return self
                .store
                .message_by_nonce(chat_id, actor, nonce)
                .await?
                .context("a nonce collided with no message")
                .map_err(Error::from);
        };
        let members: Vec<i64> = chat.members.iter().map(|m| m.id).collect();
        self.events.message_created(&message, &members).await;
        Ok(message)
    }

    /// The author edits their message.
    #[instrument(skip_all, fields(%actor, %chat_id, %message_id), err(level = "info"))]
    pub async fn edit_message(
        &self,
        actor: i64,
        chat_id: &str,
        message_id: i64,
        content: &str,
    ) -> Result<Message> {
        let content = MessageContent::parse(content)?;
        self.writable_chat(actor, chat_id).await?;
        self.own_live_message(actor, chat_id, message_id).await?;
        let edited = self
            .store
            .change_message(chat_id, message_id, Some(content.as_str()), time::now_ms())
            .await?;
        let edited = edited.ok_or_else(|| Error::not_found("no such message"))?;
        self.events.message_updated(&edited).await;
        Ok(edited)
    }

    /// The author deletes their message: a tombstone remains, the content is erased.
    #[instrument(skip_all, fields(%actor, %chat_id, %message_id), err(level = "info"))]
    pub async fn delete_message(
        &self,
        actor: i64,
        chat_id: &str,
        message_id: i64,
    ) -> Result<Message> {
        self.store
            .chat_for(chat_id, actor)
            .await?
            .ok_or_else(chat_not_found)?;
        self.own_live_message(actor, chat_id, message_id).await?;
        let deleted = self
            .store
            .change_message(chat_id, message_id, None, time::now_ms())
            .await?;
        let deleted = deleted.ok_or_else(|| Error::not_found("no such message"))?;
        self.events.message_deleted(&deleted).await;
        Ok(deleted)
    }

    /// A page of a chat's history.
    pub async fn list_messages(
        &self,
        actor: i64,
        chat_id: &str,
        before: Option<i64>,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Message>> {
        let page = match (before, after) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid("use either before or after, not both"));
            }
            (Some(seq), None) => Page::Before(seq),
            (None, Some(version)) => Page::After(version),
            (None, None) => Page::Latest,
        };
        let limit = match limit {
            0 => DEFAULT_PAGE,
            1..=MAX_PAGE => limit,
            _ => return Err(Error::invalid("limit is between 1 and 100")),
        };
        self.store
            .chat_for(chat_id, actor)
            .await?
            .ok_or_else(chat_not_found)?;
        self.store.messages(chat_id, page, limit).await
    }

    /// Moves the actor's read marker in a chat forward to `seq`.
    pub async fn mark_read(&self, actor: i64, chat_id: &str, seq: i64) -> Result<()> {
        if seq < 0 {
            return Err(Error::invalid("seq cannot be negative"));
        }
        self.store
            .chat_for(chat_id, actor)
            .await?
            .ok_or_else(chat_not_found)?;
        self.store.mark_read(chat_id, actor, seq).await
    }

    /// The chat if the actor may write in it: a member, and for a direct chat still friends.
    async fn writable_chat(&self, actor: i64, chat_id: &str) -> Result<Chat> {
        let chat = self
            .store
            .chat_for(chat_id, actor)
            .await?
            .ok_or_else(chat_not_found)?;
        if self.view(chat.clone()).await?.read_only {
            return Err(Error::forbidden(
                "this chat is read-only: you are no longer friends",
            ));
        }
        Ok(chat)
    }

    async fn own_live_message(
        &self,
        actor: i64,
        chat_id: &str,
        message_id: i64,
    ) -> Result<Message> {
        let message = self.store.message(chat_id, message_id).await?;
        let message = message
            .filter(|m| !m.deleted)
            .ok_or_else(|| Error::not_found("no such message"))?;
        if message.author_id != actor {
            return Err(Error::forbidden("only the author can change a message"));
        }
        Ok(message)
    }

    /// A direct chat is read-only while its two members are not friends.
    async fn view(&self, chat: Chat) -> Result<ChatView> {
        let read_only = match chat.kind.as_str() {
            "direct" => match chat.members.as_slice() {
                [a, b] => !self.are_friends(a.id, b.id).await?,
                _ => true,
            },
            _ => false,
        };
        Ok(ChatView { chat, read_only })
    }

    async fn are_friends(&self, a: i64, b: i64) -> Result<bool> {
        let request = AreFriendsRequest {
            user_a: a.to_string(),
            user_b: b.to_string(),
        };
        let answer = self
            .social
            .clone()
            .are_friends(request)
            .await
            .context("ask social whether two users are friends")?;
        Ok(answer.into_inner().friends)
    }

    async fn users(&self, ids: &[i64]) -> Result<Vec<User>> {
        let request = GetUsersRequest {
            ids: ids.iter().map(ToString::to_string).collect(),
        };
        let answer = self
            .auth
            .clone()
            .get_users(request)
            .await
            .context("look up users")?;
        answer
            .into_inner()
            .users
            .into_iter()
            .map(|user| {
                Ok(User {
                    id: user
                        .id
                        .parse()
                        .context("auth returned a malformed user id")?,
                    username: user.username,
                })
            })
            .collect()
    }
}
