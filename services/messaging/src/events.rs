//! The messaging service's events, published after the change commits.

use crate::service::ChatView;
use crate::store::{Chat, Message, User};
use astral_common::EventBus;
use astral_proto::events::{ChatDeleted, ChatEvent, MessageEvent, TypingStarted, event::Kind};
use astral_proto::subjects;

pub struct Events {
    bus: EventBus,
}

impl Events {
    pub fn new(bus: EventBus) -> Self {
        Self { bus }
    }

    /// `chat.created` on each new member's `user.<id>`. Chat events carry `unread` 0: each
    /// member keeps their own count.
    pub async fn chat_created(&self, chat: &Chat, members: &[i64]) {
        self.chat_event(chat, members, Kind::ChatCreated).await;
    }

    /// `chat.updated` (renamed, members changed, new owner) on each member's `user.<id>`.
    pub async fn chat_updated(&self, chat: &Chat, members: &[i64]) {
        self.chat_event(chat, members, Kind::ChatUpdated).await;
    }

    /// `chat.deleted` on the `user.<id>` of each who lost the chat (left, removed, or the
    /// chat is gone).
    pub async fn chat_deleted(&self, chat_id: &str, users: &[i64]) {
        let kind = Kind::ChatDeleted(ChatDeleted {
            chat_id: chat_id.to_owned(),
        });
        astral_common::events::publish(&self.bus, user_subjects(users), kind).await;
    }

    /// `typing.started` on `chat.<id>`.
    pub async fn typing_started(&self, chat_id: &str, user: &User) {
        let user = astral_proto::auth::User {
            id: user.id.to_string(),
            username: user.username.clone(),
        };
        let kind = Kind::TypingStarted(TypingStarted {
            chat_id: chat_id.to_owned(),
            user: Some(user),
        });
        astral_common::events::publish(&self.bus, vec![subjects::chat(chat_id)], kind).await;
    }

    async fn chat_event(&self, chat: &Chat, members: &[i64], kind: fn(ChatEvent) -> Kind) {
        let mut chat = chat.clone();
        chat.unread = 0;
        let view = ChatView {
            chat,
            read_only: false,
        };
        let event = kind(ChatEvent {
            chat: Some(crate::grpc::chat_to_pb(&view)),
        });
        astral_common::events::publish(&self.bus, user_subjects(members), event).await;
    }

    /// `message.created` on `chat.<id>` and on every member's `user.<id>` (the "new message"
    /// notification), as one event: a connection receiving both delivers it once.
    pub async fn message_created(&self, message: &Message, members: &[i64]) {
        let kind = Kind::MessageCreated(message_event(message));
        let subjects = std::iter::once(subjects::chat(&message.chat_id))
            .chain(
                members
                    .iter()
                    .map(|member| subjects::user(&member.to_string())),
            )
            .collect();
        astral_common::events::publish(&self.bus, subjects, kind).await;
    }

    /// `message.updated` on `chat.<id>`.
    pub async fn message_updated(&self, message: &Message) {
        let kind = Kind::MessageUpdated(message_event(message));
        astral_common::events::publish(&self.bus, vec![subjects::chat(&message.chat_id)], kind)
            .await;
    }

    /// `message.deleted` on `chat.<id>`.
    pub async fn message_deleted(&self, message: &Message) {
        let kind = Kind::MessageDeleted(message_event(message));
        astral_common::events::publish(&self.bus, vec![subjects::chat(&message.chat_id)], kind)
            .await;
    }
}

fn message_event(message: &Message) -> MessageEvent {
    MessageEvent {
        message: Some(crate::grpc::message_to_pb(message)),
    }
}

fn user_subjects(users: &[i64]) -> Vec<String> {
    users
        .iter()
        .map(|user| subjects::user(&user.to_string()))
        .collect()
}
