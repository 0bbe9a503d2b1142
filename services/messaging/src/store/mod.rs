//! The messaging database: SQL only, written once for PostgreSQL and SQLite. Chats and
//! their members live in `chats.rs`, what members see of them (the chat list) in `views.rs`,
//! new messages in `inserts.rs` (PostgreSQL's one-statement batches in `batches.rs`),
//! reading and changing messages in `messages.rs`, searching them in `search.rs`, files
//! attached to them in `attachments.rs`; every change commits with its events
//! (`astral_common::outbox`).

mod attachments;
mod batches;
mod chats;
mod inserts;
mod messages;
mod push;
mod search;
mod settings;
mod system;
mod views;

pub use attachments::{NO_THUMBNAIL, StoredAttachment};
pub use push::{DuePush, MAX_SUBSCRIPTIONS_PER_USER, PushedMessage, Subscription};
pub use search::Search;

use crate::model::{ChatKind, Message, Preview, User};
use astral_common::Result;
use astral_common::db::Pool;
use astral_common::outbox::{Outbox, Outgoing};
use std::sync::Arc;
use tokio::sync::Notify;

/// A message about to be stored.
pub struct NewMessage<'a> {
    pub id: i64,
    pub chat_id: &'a str,
    pub author_id: i64,
    pub content: &'a str,
    pub nonce: Option<&'a str>,
    /// The message it answers, as it looked when the send was checked.
    pub reply_to: Option<&'a Preview>,
    pub mentions: &'a [i64],
    /// Files its author uploaded, to attach to it (all of them, or the message is not stored).
    pub attachment_ids: &'a [i64],
    pub now_ms: i64,
    /// The chat's members as the sender read them, and the chat's `members_version` then:
    /// who receives the message's event unless the members changed before it was stored.
    pub recipients: &'a [i64],
    pub recipients_version: i64,
}

/// Builds the event of a message just stored, for its recipients (inside the transaction).
pub type MessageEvent<'b> = &'b (dyn Fn(&Message, &[i64]) -> Outgoing + Sync);

/// A chat about to be created.
#[derive(Clone, Copy)]
pub struct NewChat<'a> {
    pub id: &'a str,
    pub kind: ChatKind,
    pub name: &'a str,
    pub owner_id: Option<i64>,
    /// Its members, in the order they join (the owner first).
    pub members: &'a [i64],
    pub now_ms: i64,
}

/// What became of a message to store.
#[derive(Debug)]
pub enum Inserted {
    /// Stored; `members_version` is the chat's when it was stored.
    Stored {
        message: Box<Message>,
        members_version: i64,
    },
    /// A message with the same nonce committed first (the caller returns that one).
    NonceTaken,
    /// The author is not a member of the chat (or there is no such chat): nothing stored.
    NotAMember,
    /// One of the files is not the author's to attach (someone else's, already attached,
    /// expired, or no such file): nothing stored.
    AttachmentsUnavailable,
}

/// A change to an existing message.
pub enum Change<'a> {
    /// New content (and the mentions found in it).
    Edit {
        content: &'a str,
        mentions: &'a [i64],
    },
    /// A tombstone: content, mentions and reactions erased.
    Delete,
    /// The user's reaction with this emoji, added or removed; added only while the user has
    /// fewer than `at_most` different reactions on the message.
    ToggleReaction {
        user_id: i64,
        emoji: &'a str,
        at_most: i64,
    },
}

/// What [`Store::change_message`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Changed {
    Message(Box<Message>),
    /// The message is gone or deleted: nothing changed, no number taken.
    Gone,
    /// The user already has `at_most` reactions on it: nothing changed.
    ReactionsFull,
}

/// What a member leaving (or being removed from) a group did.
#[derive(Debug, PartialEq, Eq)]
pub enum Left {
    /// They were not a member.
    NotMember,
    /// The chat goes on (with `new_owner` if the owner left).
    Remains { new_owner: Option<i64> },
    /// The last member left: the chat is deleted.
    Deleted,
}

/// What adding a member did.
#[derive(Debug, PartialEq, Eq)]
pub enum AddOutcome {
    Added,
    AlreadyMember,
    Full,
}

type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// Where a message just stored stands: its number, and the chat's `members_version` then.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
struct Numbers {
    seq: i64,
    members_version: i64,
}

/// The database, and the relay that publishes the events its transactions write to the
/// outbox (each change and its events commit together; `astral_common::outbox`).
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    /// PostgreSQL (else SQLite): several new messages are stored in one statement.
    postgres: bool,
    outbox: Outbox,
    /// Woken when a send queued pushes (the push sender waits on it).
    pushes: Arc<Notify>,
}

impl Store {
    pub fn new(pool: Pool, outbox: Outbox) -> Self {
        let postgres = pool
            .connect_options()
            .database_url
            .scheme()
            .starts_with("postgres");
        Self {
            pool,
            postgres,
            outbox,
            pushes: Arc::default(),
        }
    }

    /// Completes when a send has queued pushes since the last time.
    pub async fn pushes_waiting(&self) {
        self.pushes.notified().await;
    }

    fn pushes_queued(&self, queued: bool) {
        if queued {
            self.pushes.notify_one();
        }
    }

    /// Records users met through the auth service (usernames never change).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "remember_users"))]
    pub async fn remember_users(&self, users: &[User]) -> Result<()> {
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

fn mentions_text(mentions: &[i64]) -> String {
    mentions
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}
