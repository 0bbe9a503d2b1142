//! The messaging domain's values: chats, their members, messages and reactions, as the use
//! cases and the store exchange them.

use astral_common::Error;

/// A user as messaging knows them (usernames never change).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub username: String,
}

/// What kind of chat: two friends, or a named group with an owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatKind {
    Direct,
    Group,
}

impl ChatKind {
    /// How the database (and the JSON API) names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Group => "group",
        }
    }
}

impl TryFrom<String> for ChatKind {
    type Error = Error;

    fn try_from(stored: String) -> Result<Self, Error> {
        match stored.as_str() {
            "direct" => Ok(Self::Direct),
            "group" => Ok(Self::Group),
            other => Err(anyhow::anyhow!("a chat of unknown kind {other:?} is stored").into()),
        }
    }
}

/// A chat as one member sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chat {
    pub id: String,
    pub kind: ChatKind,
    pub name: String,
    pub owner_id: Option<i64>,
    pub members: Vec<User>,
    pub last_seq: i64,
    pub unread: i64,
    pub last_activity_ms: i64,
    pub last_message: Option<Preview>,
    /// What only its viewer sees; `None` where there is no one viewer (events).
    pub viewed: Option<Viewed>,
}

/// What one member sees of a chat that others do not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewed {
    /// Whether they muted it.
    pub muted: bool,
    /// How far the members who share read receipts have read (none if the viewer does not
    /// share).
    pub read_states: Vec<ReadState>,
}

/// A member has read a chat up to `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadState {
    pub user_id: i64,
    pub seq: i64,
}

/// A user's messaging settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub share_read_receipts: bool,
}

impl Chat {
    /// The two members of a direct chat.
    pub fn direct_pair(&self) -> Option<(i64, i64)> {
        match (self.kind, self.members.as_slice()) {
            (ChatKind::Direct, [a, b]) => Some((a.id, b.id)),
            _ => None,
        }
    }

    /// Its members' ids, longest-standing first.
    pub fn member_ids(&self) -> Vec<i64> {
        self.members.iter().map(|member| member.id).collect()
    }
}

/// A chat as one member sees it, with whether they can still write in it.
#[derive(Debug, Clone)]
pub struct ChatView {
    pub chat: Chat,
    pub read_only: bool,
}

/// A chat's kind and members as a sender sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Members {
    pub kind: ChatKind,
    /// The chat's `members_version` when the list was read.
    pub version: i64,
    pub users: Vec<User>,
}

/// A short view of a message: the chat list's last message, or what a reply answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    pub id: i64,
    pub author_id: i64,
    /// At most 100 characters; empty when deleted.
    pub content: String,
    pub created_at_ms: i64,
    pub deleted: bool,
    /// How many files it carries.
    pub attachment_count: i64,
}

impl Preview {
    /// How a reply or the chat list shows `message`.
    pub fn of(message: &Message) -> Self {
        Self {
            id: message.id,
            author_id: message.author_id,
            content: message.content.chars().take(100).collect(),
            created_at_ms: message.created_at_ms,
            deleted: message.deleted,
            attachment_count: message.attachments.len() as i64,
        }
    }
}

/// A file uploaded to be attached to a message; its bytes are in object storage.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Attachment {
    pub id: i64,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    /// An image's dimensions; `None` for anything else.
    pub width: Option<i64>,
    pub height: Option<i64>,
}

impl Attachment {
    /// Whether it is an image (shown inline, with a thumbnail).
    pub fn is_image(&self) -> bool {
        self.width.is_some()
    }
}

/// The users who reacted to a message with one emoji, first reaction first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaction {
    pub emoji: String,
    pub user_ids: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: i64,
    pub chat_id: String,
    pub seq: i64,
    pub version: i64,
    pub author_id: i64,
    pub content: String,
    pub nonce: Option<String>,
    pub created_at_ms: i64,
    pub edited_at_ms: Option<i64>,
    pub deleted: bool,
    pub reply_to: Option<Preview>,
    pub mentions: Vec<i64>,
    pub reactions: Vec<Reaction>,
    /// For a system message (empty content, written by the member who acted): the change
    /// to the group it records.
    pub system: Option<SystemChange>,
    /// Files attached to it, in the order given; none once deleted.
    pub attachments: Vec<Attachment>,
}

/// A change to a group, recorded in its history as a system message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SystemChange {
    Created { name: String },
    Renamed { name: String },
    MemberAdded { user_id: i64 },
    MemberRemoved { user_id: i64 },
    MemberLeft { user_id: i64 },
    OwnerChanged { user_id: i64 },
}

impl SystemChange {
    /// Its name in the database and the JSON.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Created { .. } => "created",
            Self::Renamed { .. } => "renamed",
            Self::MemberAdded { .. } => "member_added",
            Self::MemberRemoved { .. } => "member_removed",
            Self::MemberLeft { .. } => "member_left",
            Self::OwnerChanged { .. } => "owner_changed",
        }
    }

    /// The member it concerns, if any.
    pub fn user_id(&self) -> Option<i64> {
        match self {
            Self::Created { .. } | Self::Renamed { .. } => None,
            Self::MemberAdded { user_id }
            | Self::MemberRemoved { user_id }
            | Self::MemberLeft { user_id }
            | Self::OwnerChanged { user_id } => Some(*user_id),
        }
    }

    /// The group's name it gives, if any.
    pub fn name(&self) -> Option<&str> {
        match self {
            Self::Created { name } | Self::Renamed { name } => Some(name),
            _ => None,
        }
    }

    /// The change stored as `kind` with `user_id` and `name`; `None` for anything else.
    pub fn from_parts(kind: &str, user_id: Option<i64>, name: Option<String>) -> Option<Self> {
        Some(match (kind, user_id, name) {
            ("created", _, Some(name)) => Self::Created { name },
            ("renamed", _, Some(name)) => Self::Renamed { name },
            ("member_added", Some(user_id), _) => Self::MemberAdded { user_id },
            ("member_removed", Some(user_id), _) => Self::MemberRemoved { user_id },
            ("member_left", Some(user_id), _) => Self::MemberLeft { user_id },
            ("owner_changed", Some(user_id), _) => Self::OwnerChanged { user_id },
            _ => return None,
        })
    }
}

impl Message {
    /// Counts `user_id`'s reaction with `emoji` (reactions come oldest first).
    pub fn add_reaction(&mut self, emoji: String, user_id: i64) {
        match self.reactions.iter_mut().find(|r| r.emoji == emoji) {
            Some(reaction) => reaction.user_ids.push(user_id),
            None => self.reactions.push(Reaction {
                emoji,
                user_ids: vec![user_id],
            }),
        }
    }
}

/// Which page of a chat's history.
#[derive(Debug, Clone, Copy)]
pub enum Page {
    /// The newest messages.
    Latest,
    /// Messages with `seq` below this, newest of them.
    Before(i64),
    /// Every change with `version` above this, oldest first.
    After(i64),
}

/// The id of the direct chat between two users: both ids, ordered as text, joined by `_`
/// (the same pair always names the same chat).
pub fn direct_chat_id(a: i64, b: i64) -> String {
    let (a, b) = (a.to_string(), b.to_string());
    if a <= b {
        format!("{a}_{b}")
    } else {
        format!("{b}_{a}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_direct_chat_id_names_the_pair_in_either_order() {
        assert_eq!(direct_chat_id(7, 3), "3_7");
        assert_eq!(direct_chat_id(3, 7), "3_7");
        // Ordered as text, as every stored id was made.
        assert_eq!(direct_chat_id(9, 10), "10_9");
    }

    #[test]
    fn a_chat_kind_reads_back_as_it_is_stored() {
        for kind in [ChatKind::Direct, ChatKind::Group] {
            assert_eq!(
                ChatKind::try_from(kind.as_str().to_owned()).ok(),
                Some(kind)
            );
        }
        assert!(ChatKind::try_from("channel".to_owned()).is_err());
    }
}
