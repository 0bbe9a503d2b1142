//! The social domain's values: users, the friend requests between them, presence and settings.

/// A user as social knows them (usernames never change).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub username: String,
}

/// A request from one user to another to become friends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FriendRequest {
    pub id: i64,
    pub from: User,
    pub to: User,
    pub created_at_ms: i64,
}

/// How present a user is, as their friends see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Online,
    Idle,
    Offline,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Idle => "idle",
            Self::Offline => "offline",
        }
    }

    pub fn parse(status: &str) -> Option<Self> {
        match status {
            "online" => Some(Self::Online),
            "idle" => Some(Self::Idle),
            "offline" => Some(Self::Offline),
            _ => None,
        }
    }
}

/// A user's presence as shown to their friends: `last_seen_at_ms` is when they were last
/// online, to the minute (none if never, or not shared).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presence {
    pub status: Status,
    pub last_seen_at_ms: Option<i64>,
}

impl Presence {
    /// What friends see of someone who does not share their presence.
    pub const HIDDEN: Self = Self {
        status: Status::Offline,
        last_seen_at_ms: None,
    };
}

/// A user's presence changed: what their friends are to be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub user: i64,
    pub presence: Presence,
    pub friends: Vec<i64>,
}

/// A user's social settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub share_presence: bool,
}
