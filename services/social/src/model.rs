//! The social domain's values: users and the friend requests between them.

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
