//! The social database: SQL only, written once for PostgreSQL and SQLite. Friend requests
//! live in `requests.rs`, friendships and blocks in `friendships.rs`, presence and settings in
//! `presence.rs`.
//!
//! Every change between two users first takes the pair's lock row (`pair_locks`), so that
//! concurrent changes to one pair — on any number of replicas — happen one after the other.

mod friendships;
mod presence;
mod requests;

pub use presence::LEASE_MS;

use crate::model::{FriendRequest, User};
use astral_common::Result;
use astral_common::db::Pool;
use astral_common::outbox::Outbox;

/// A friend request about to be sent.
#[derive(Debug, Clone, Copy)]
pub struct NewRequest {
    pub id: i64,
    pub from: i64,
    pub to: i64,
    pub now_ms: i64,
}

/// What sending a request found and did.
#[derive(Debug, PartialEq, Eq)]
pub enum Sent {
    /// A new pending request.
    Requested(FriendRequest),
    /// The other person had already asked: their request was accepted instead.
    AcceptedTheirs(FriendRequest),
    /// Nothing done: they are friends already.
    AlreadyFriends,
    /// Nothing done: the sender's request is already pending.
    AlreadyRequested,
    /// Nothing done: the sender has blocked the recipient.
    SenderBlocked,
    /// Nothing done: the recipient has blocked the sender.
    RecipientBlocked,
}

/// What blocking undid.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Blocked {
    /// They were friends and no longer are.
    pub unfriended: bool,
    /// Pending requests between them, now deleted.
    pub requests: Vec<FriendRequest>,
}

/// The database, and the relay that publishes the events its transactions write to the
/// outbox (each change and its events commit together; `astral_common::outbox`).
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    outbox: Outbox,
}

type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// The two users of a pair, lower id first (how every pair is stored).
fn pair(a: i64, b: i64) -> (i64, i64) {
    if a < b { (a, b) } else { (b, a) }
}

impl Store {
    pub fn new(pool: Pool, outbox: Outbox) -> Self {
        Self { pool, outbox }
    }

    /// Records users met through the auth service (usernames never change).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "remember_users"))]
    pub async fn remember_users(&self, users: &[&User]) -> Result<()> {
        for user in users {
            sqlx::query(
                "INSERT INTO users (id, username) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
            )
            .bind(user.id)
            .bind(&user.username)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }
}

/// Takes the pair's lock row until the transaction ends.
async fn lock_pair(tx: &mut Tx, low: i64, high: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO pair_locks (low_id, high_id, changes) VALUES ($1, $2, 1) \
         ON CONFLICT (low_id, high_id) DO UPDATE SET changes = pair_locks.changes + 1",
    )
    .bind(low)
    .bind(high)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Whether the pair are friends.
pub(super) async fn are_friends(tx: &mut Tx, low: i64, high: i64) -> Result<bool> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT low_id FROM friendships WHERE low_id = $1 AND high_id = $2")
            .bind(low)
            .bind(high)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(found.is_some())
}

/// Whether `blocker` has blocked `blocked`.
pub(super) async fn blocks(tx: &mut Tx, blocker: i64, blocked: i64) -> Result<bool> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT blocker_id FROM blocks WHERE blocker_id = $1 AND blocked_id = $2",
    )
    .bind(blocker)
    .bind(blocked)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(found.is_some())
}
