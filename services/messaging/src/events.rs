//! The messaging service's events. Those of a change are built here and written to the
//! outbox in the change's transaction (`store/`), which publishes them after the commit;
//! `typing.started`, which nothing keeps, is published here at once.

use crate::convert;
use crate::model::{Chat, ChatView, Message, Settings, User};
use astral_common::EventBus;
use astral_common::outbox::Outgoing;
use astral_proto::events::{
    ChatDeleted, ChatEvent, MessageEvent, ReadUpdated, SettingsUpdated, TypingStarted, event::Kind,
};
use astral_proto::subjects;

/// `chat.created` on each new member's `user.<id>`. Chat events carry `unread` 0: each
/// member keeps their own count.
pub fn chat_created(chat: &Chat, members: &[i64]) -> Outgoing {
    chat_event(chat, members, Kind::ChatCreated)
}

/// `chat.updated` (renamed, members changed, new owner) on each member's `user.<id>`.
pub fn chat_updated(chat: &Chat, members: &[i64]) -> Outgoing {
    chat_event(chat, members, Kind::ChatUpdated)
}

/// `chat.deleted` on the `user.<id>` of each who lost the chat (left, removed, or the chat
/// is gone).
pub fn chat_deleted(chat_id: &str, users: &[i64]) -> Outgoing {
    let kind = Kind::ChatDeleted(ChatDeleted {
        chat_id: chat_id.to_owned(),
    });
    Outgoing::new(user_subjects(users), kind)
}

fn chat_event(chat: &Chat, members: &[i64], kind: fn(ChatEvent) -> Kind) -> Outgoing {
    let mut chat = chat.clone();
    chat.unread = 0;
    let view = ChatView {
        chat,
        read_only: false,
    };
    let event = kind(ChatEvent {
        chat: Some(convert::chat(&view)),
    });
    Outgoing::new(user_subjects(members), event)
}

/// `message.created` on `chat.<id>` and on every member's `user.<id>` (the "new message"
/// notification), as one event: a connection receiving both delivers it once.
pub fn message_created(message: &Message, members: &[i64]) -> Outgoing {
    let kind = Kind::MessageCreated(message_event(message));
    let subjects = std::iter::once(subjects::chat(&message.chat_id))
        .chain(
            members
                .iter()
                .map(|member| subjects::user(&member.to_string())),
        )
        .collect();
    Outgoing::new(subjects, kind)
}

/// `message.created` for a system message (a change to a group) on the `user.<id>` of each
/// member after the change only: not on `chat.<id>`, which someone just removed may still
/// be subscribed to.
pub fn group_change(message: &Message, members: &[i64]) -> Outgoing {
    let kind = Kind::MessageCreated(message_event(message));
    Outgoing::new(user_subjects(members), kind)
}

/// [`group_change`] for each system message a change `recorded`.
pub fn group_changes<'a>(
    recorded: &'a [Message],
    members: &'a [i64],
) -> impl Iterator<Item = Outgoing> + 'a {
    recorded
        .iter()
        .map(|message| group_change(message, members))
}

/// `message.updated` on `chat.<id>`.
pub fn message_updated(message: &Message) -> Outgoing {
    let kind = Kind::MessageUpdated(message_event(message));
    Outgoing::new(vec![subjects::chat(&message.chat_id)], kind)
}

/// `message.deleted` on `chat.<id>`.
pub fn message_deleted(message: &Message) -> Outgoing {
    let kind = Kind::MessageDeleted(message_event(message));
    Outgoing::new(vec![subjects::chat(&message.chat_id)], kind)
}

/// `read.updated` on `chat.<id>`: `user` (who shares read receipts) has read up to `seq`.
pub fn read_updated(chat_id: &str, user: i64, seq: i64) -> Outgoing {
    let kind = Kind::ReadUpdated(ReadUpdated {
        chat_id: chat_id.to_owned(),
        user_id: user.to_string(),
        seq,
    });
    Outgoing::new(vec![subjects::chat(chat_id)], kind)
}

/// `settings.updated` on the user's own `user.<id>` (their other devices), with the
/// settings this service keeps.
pub fn settings_updated(user: i64, settings: &Settings) -> Outgoing {
    let kind = Kind::SettingsUpdated(SettingsUpdated {
        user_id: user.to_string(),
        share_presence: None,
        share_read_receipts: Some(settings.share_read_receipts),
    });
    Outgoing::new(user_subjects(&[user]), kind)
}

/// Publishes the events that are not kept: someone typing is news for a few seconds only.
pub struct Typing {
    bus: EventBus,
}

impl Typing {
    pub fn new(bus: EventBus) -> Self {
        Self { bus }
    }

    /// `typing.started` on `chat.<id>`; given up after a moment if the bus does not take it.
    pub async fn started(&self, chat_id: &str, user: &User) {
        let user = astral_proto::auth::User {
            id: user.id.to_string(),
            username: user.username.clone(),
        };
        let kind = Kind::TypingStarted(TypingStarted {
            chat_id: chat_id.to_owned(),
            user: Some(user),
        });
        let publish =
            astral_common::events::publish(&self.bus, vec![subjects::chat(chat_id)], kind);
        if tokio::time::timeout(TYPING_PUBLISH_WAIT, publish)
            .await
            .is_err()
        {
            tracing::debug!("typing event dropped: the bus is not taking events");
        }
    }
}

/// How long a typing call waits for the bus.
const TYPING_PUBLISH_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

fn message_event(message: &Message) -> MessageEvent {
    MessageEvent {
        message: Some(convert::message(message)),
    }
}

fn user_subjects(users: &[i64]) -> Vec<String> {
    users
        .iter()
        .map(|user| subjects::user(&user.to_string()))
        .collect()
}
