//! The messaging service's events, published after the change commits.

use crate::service::ChatView;
use crate::store::{Chat, Message};
use astral_common::EventBus;
use astral_proto::events::{ChatEvent, MessageEvent, event::Kind};
use astral_proto::subjects;

pub struct Events {
    bus: EventBus,
}

impl Events {
    pub fn new(bus: EventBus) -> Self {
        Self { bus }
    }

    /// `chat.created` on each member's `user.<id>`.
    pub async fn chat_created(&self, chat: &Chat, members: &[i64]) {
        let view = ChatView {
            chat: chat.clone(),
            read_only: false,
        };
        let kind = Kind::ChatCreated(ChatEvent {
            chat: Some(crate::grpc::chat_to_pb(&view)),
        });
        let subjects = members
            .iter()
            .map(|member| subjects::user(&member.to_string()))
            .collect();
        astral_common::events::publish(&self.bus, subjects, kind).await;
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
