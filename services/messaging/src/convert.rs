//! The one translation of messaging's values into their protobuf messages, for the gRPC
//! answers (`grpc.rs`) and the events (`events.rs`) alike.

use crate::model::{Attachment, ChatKind, ChatView, Message, Preview, Settings, SystemChange};
use crate::service::Found;
use astral_proto::auth::User as PbUser;
use astral_proto::messaging as pb;

pub fn chat_kind(kind: ChatKind) -> pb::ChatKind {
    match kind {
        ChatKind::Direct => pb::ChatKind::Direct,
        ChatKind::Group => pb::ChatKind::Group,
    }
}

pub fn preview(preview: &Preview) -> pb::MessagePreview {
    pb::MessagePreview {
        id: preview.id.to_string(),
        author_id: preview.author_id.to_string(),
        content: preview.content.clone(),
        created_at_ms: preview.created_at_ms,
        deleted: preview.deleted,
        attachment_count: preview.attachment_count,
    }
}

pub fn attachment(attachment: &Attachment) -> pb::Attachment {
    pb::Attachment {
        id: attachment.id.to_string(),
        filename: attachment.filename.clone(),
        content_type: attachment.content_type.clone(),
        size: attachment.size,
        width: attachment.width,
        height: attachment.height,
    }
}

pub fn chat(view: &ChatView) -> pb::Chat {
    let chat = &view.chat;
    pb::Chat {
        id: chat.id.clone(),
        kind: chat_kind(chat.kind).into(),
        name: chat.name.clone(),
        owner_id: chat.owner_id.map(|id| id.to_string()).unwrap_or_default(),
        members: chat
            .members
            .iter()
            .map(|m| PbUser {
                id: m.id.to_string(),
                username: m.username.clone(),
            })
            .collect(),
        last_seq: chat.last_seq,
        unread: chat.unread,
        read_only: view.read_only,
        last_activity_ms: chat.last_activity_ms,
        last_message: chat.last_message.as_ref().map(preview),
        muted: chat.viewed.as_ref().map(|viewed| viewed.muted),
        read_states: chat.viewed.as_ref().map(|viewed| pb::ReadStates {
            states: viewed
                .read_states
                .iter()
                .map(|state| pb::ReadState {
                    user_id: state.user_id.to_string(),
                    seq: state.seq,
                })
                .collect(),
        }),
    }
}

/// A search result: the message, and where it matched.
pub fn found(found: &Found) -> pb::SearchResult {
    let offset = |at: usize| i64::try_from(at).unwrap_or(i64::MAX);
    pb::SearchResult {
        message: Some(message(&found.message)),
        highlights: found
            .highlights
            .iter()
            .map(|&(start, end)| pb::Highlight {
                start: offset(start),
                end: offset(end),
            })
            .collect(),
    }
}

pub fn message(message: &Message) -> pb::Message {
    pb::Message {
        id: message.id.to_string(),
        chat_id: message.chat_id.clone(),
        seq: message.seq,
        version: message.version,
        author_id: message.author_id.to_string(),
        content: message.content.clone(),
        nonce: message.nonce.clone().unwrap_or_default(),
        created_at_ms: message.created_at_ms,
        edited_at_ms: message.edited_at_ms,
        deleted: message.deleted,
        reply_to: message.reply_to.as_ref().map(preview),
        mentions: message.mentions.iter().map(ToString::to_string).collect(),
        reactions: message
            .reactions
            .iter()
            .map(|r| pb::Reaction {
                emoji: r.emoji.clone(),
                user_ids: r.user_ids.iter().map(ToString::to_string).collect(),
            })
            .collect(),
        system: message.system.as_ref().map(system_change),
        attachments: message.attachments.iter().map(attachment).collect(),
    }
}

pub fn system_change(change: &SystemChange) -> pb::SystemChange {
    let kind = match change {
        SystemChange::Created { .. } => pb::SystemChangeType::Created,
        SystemChange::Renamed { .. } => pb::SystemChangeType::Renamed,
        SystemChange::MemberAdded { .. } => pb::SystemChangeType::MemberAdded,
        SystemChange::MemberRemoved { .. } => pb::SystemChangeType::MemberRemoved,
        SystemChange::MemberLeft { .. } => pb::SystemChangeType::MemberLeft,
        SystemChange::OwnerChanged { .. } => pb::SystemChangeType::OwnerChanged,
    };
    pb::SystemChange {
        r#type: kind.into(),
        user_id: change.user_id().map(|id| id.to_string()),
        name: change.name().map(str::to_owned),
    }
}

pub fn settings(settings: Settings) -> pb::MessagingSettings {
    pb::MessagingSettings {
        share_read_receipts: settings.share_read_receipts,
    }
}
