//! The messaging use cases: one function each, holding the rules and the authorization.
//! Managing chats lives in `chats.rs`, messages in `messages.rs`, attachments in
//! `attachments.rs`, push subscriptions in `push.rs`; what they share is here.

mod attachments;
mod chats;
mod messages;
mod push;

pub use attachments::{ByteRange, MAX_FILE_BYTES, Served, UploadHeader};
pub use messages::{Draft, Found, SearchFilters, SearchPage};
pub use push::NewSubscription;

use crate::domain::read_only;
use crate::events::Typing;
use crate::friendships::Friendships;
use crate::janitor::Janitor;
use crate::member_lists::MemberLists;
use crate::model::{Chat, ChatKind, ChatView, Members, User};
use crate::push::PushConfig;
use crate::push::sender::Sender;
use crate::sends::Sends;
use crate::storage::Storage;
use crate::store::Store;
use crate::typing::TypingLimiter;
use anyhow::Context as _;
use astral_common::grpc::Channel;
use astral_common::{Error, EventBus, Result};
use astral_proto::auth::{GetUsersRequest, auth_service_client::AuthServiceClient};
use astral_proto::social::social_service_client::SocialServiceClient;
use std::sync::Arc;

/// The use cases, and what they use.
pub struct MessagingService {
    store: Store,
    auth: AuthServiceClient<Channel>,
    friendships: Friendships,
    sends: Sends,
    typing_events: Typing,
    typing: TypingLimiter,
    member_lists: MemberLists,
    storage: Storage,
    janitor: Janitor,
    /// Turns to store an upload ([`attachments::UPLOADS_AT_ONCE`]).
    uploads: tokio::sync::Semaphore,
    /// Uploads in flight per user.
    uploaders: attachments::Uploaders,
    /// Turns to make a thumbnail ([`attachments::THUMBNAILS_AT_ONCE`]).
    thumbnailing: tokio::sync::Semaphore,
    /// Web Push, when this deployment has a VAPID key.
    push: Option<Pushes>,
}

/// Web Push as configured, and its running sender.
struct Pushes {
    config: Arc<PushConfig>,
    _sender: Sender,
}

fn chat_not_found() -> Error {
    Error::not_found("no such chat")
}

impl MessagingService {
    pub fn new(
        store: Store,
        auth: AuthServiceClient<Channel>,
        social: SocialServiceClient<Channel>,
        bus: EventBus,
        storage: Storage,
        push: Option<PushConfig>,
    ) -> anyhow::Result<Arc<Self>> {
        let push = match push {
            Some(config) => {
                let config = Arc::new(config);
                let sender = Sender::start(
                    store.clone(),
                    auth.clone(),
                    social.clone(),
                    Arc::clone(&config),
                )?;
                Some(Pushes {
                    config,
                    _sender: sender,
                })
            }
            None => None,
        };
        let friendships = Friendships::new(social, bus.clone());
        Ok(Arc::new(Self {
            push,
            janitor: Janitor::start(store.clone(), storage.clone()),
            storage,
            uploads: tokio::sync::Semaphore::new(attachments::UPLOADS_AT_ONCE),
            uploaders: attachments::Uploaders::default(),
            thumbnailing: tokio::sync::Semaphore::new(attachments::THUMBNAILS_AT_ONCE),
            sends: Sends::new(store.clone(), friendships.clone()),
            store,
            auth,
            friendships,
            typing_events: Typing::new(bus),
            typing: TypingLimiter::default(),
            member_lists: MemberLists::default(),
        }))
    }

    /// The members of a chat the actor may write in: a member, and for a direct chat still
    /// friends (asked of social on every send: no message once an unfriend has committed).
    async fn writable(&self, actor: i64, chat_id: &str) -> Result<Members> {
        let members = self.membership(actor, chat_id).await?;
        if members.kind == ChatKind::Direct
            && !self.direct_members_are_friends(&members.users).await?
        {
            return Err(read_only());
        }
        Ok(members)
    }

    /// The chat's kind and members if the actor is one.
    async fn membership(&self, actor: i64, chat_id: &str) -> Result<Members> {
        self.store
            .membership(chat_id, actor)
            .await?
            .ok_or_else(chat_not_found)
    }

    /// The chat as the actor sees it, if they are a member.
    async fn chat_for(&self, actor: i64, chat_id: &str) -> Result<Chat> {
        self.store
            .chat_for(chat_id, actor)
            .await?
            .ok_or_else(chat_not_found)
    }

    /// A direct chat is read-only while its two members are not friends.
    async fn view(&self, chat: Chat) -> Result<ChatView> {
        let read_only = chat.kind == ChatKind::Direct
            && !self.direct_members_are_friends(&chat.members).await?;
        Ok(ChatView { chat, read_only })
    }

    async fn direct_members_are_friends(&self, members: &[User]) -> Result<bool> {
        match members {
            [a, b] => self.friendships.are_friends(a.id, b.id).await,
            _ => Ok(false),
        }
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
            .map_err(|status| Error::downstream(status, "look up users"))?;
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
