//! The auth database: SQL only, written once for PostgreSQL and SQLite. Accounts live in
//! `users.rs`, sessions and refresh tokens in `sessions.rs`, throttled attempts in
//! `attempts.rs`, the token signing keys in `signing_keys.rs`.

mod attempts;
mod sessions;
mod signing_keys;
mod users;

pub use attempts::Reservation;
pub use sessions::{Fresh, NewSession, Pruning, Refreshed, RevokedSession, SessionInfo};
pub use signing_keys::StoredKey;

use astral_common::db::Pool;
use astral_common::outbox::Outbox;

/// A user as other services see them.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub username: String,
}

/// A user with what login needs.
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
}

/// The database, and the relay that publishes the events its transactions write to the
/// outbox (each change and its events commit together; `astral_common::outbox`).
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    outbox: Outbox,
}

impl Store {
    pub fn new(pool: Pool, outbox: Outbox) -> Self {
        Self { pool, outbox }
    }
}
