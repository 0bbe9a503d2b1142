//! The messaging database: SQL only, written once for PostgreSQL and SQLite.

mod batches;

use astral_common::Result;
use astral_common::db::{Pool, is_unique_violation};
use astral_common::outbox::{Outbox, Outgoing};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: String,
}

/// A chat as one member sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chat {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub owner_id: Option<i64>,
    pub members: Vec<User>,
    pub last_seq: i64,
    pub unread: i64,
    pub last_activity_ms: i64,
    pub last_message: Option<Preview>,
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
}

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
    pub kind: &'a str,
    pub name: &'a str,
    pub owner_id: Option<i64>,
    /// Its members, in the order they join (the owner first).
    pub members: &'a [i64],
    pub now_ms: i64,
}

/// A chat's members as a sender sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Members {
    pub kind: String,
    /// The chat's `members_version` when the list was read.
    pub version: i64,
    pub users: Vec<User>,
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

type Tx = sqlx::Transaction<'static, sqlx::Any>;

const MESSAGE_COLUMNS: &str = "m.id, m.chat_id, m.seq, m.version, m.author_id, m.content, m.nonce, \
    m.created_at_ms, m.edited_at_ms, m.deleted_at_ms, m.reply_to_id, m.mentions, \
    r.author_id, SUBSTR(r.content, 1, 100), r.created_at_ms, r.deleted_at_ms \
    FROM messages m LEFT JOIN messages r ON r.id = m.reply_to_id";

type MessageRow = (
    (i64, String, i64, i64, i64, String, Option<String>, i64),
    (
        Option<i64>,
        Option<i64>,
        Option<i64>,
        String,
        Option<i64>,
        Option<String>,
        Option<i64>,
        Option<i64>,
    ),
);

fn message(row: MessageRow) -> Message {
    let ((id, chat_id, seq, version, author_id, content, nonce, created_at_ms), rest) = row;
    let (
        edited_at_ms,
        deleted_at_ms,
        reply_to_id,
        mentions,
        reply_author,
        reply_content,
        reply_created,
        reply_deleted,
    ) = rest;
    let reply_to = match (reply_to_id, reply_author, reply_created) {
        (Some(id), Some(author_id), Some(created_at_ms)) => Some(Preview {
            id,
            author_id,
            content: reply_content.unwrap_or_default(),
            created_at_ms,
            deleted: reply_deleted.is_some(),
        }),
        _ => None,
    };
    Message {
        id,
        chat_id,
        seq,
        version,
        author_id,
        content,
        nonce,
        created_at_ms,
        edited_at_ms,
        deleted: deleted_at_ms.is_some(),
        reply_to,
        mentions: mentions
            .split(',')
            .filter_map(|id| id.parse().ok())
            .collect(),
        reactions: Vec::new(),
    }
}

/// Reads a message row: sqlx decodes tuples of up to 16 columns, so it comes in two halves.
fn split_row(row: &sqlx::any::AnyRow) -> std::result::Result<MessageRow, sqlx::Error> {
    use sqlx::Row as _;
    Ok((
        (
            row.try_get(0)?,
            row.try_get(1)?,
            row.try_get(2)?,
            row.try_get(3)?,
            row.try_get(4)?,
            row.try_get(5)?,
            row.try_get(6)?,
            row.try_get(7)?,
        ),
        (
            row.try_get(8)?,
            row.try_get(9)?,
            row.try_get(10)?,
            row.try_get(11)?,
            row.try_get(12)?,
            row.try_get(13)?,
            row.try_get(14)?,
            row.try_get(15)?,
        ),
    ))
}

fn mentions_text(mentions: &[i64]) -> String {
    mentions
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
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
        }
    }
}

/// The database, and the relay that publishes the events its transactions write to the
/// outbox (each change and its events commit together; `astral_common::outbox`).
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    /// PostgreSQL (else SQLite): several new messages are stored in one statement.
    postgres: bool,
    outbox: Outbox,
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

    /// Creates a chat with its members unless it exists, with `events` if it does not; true
    /// if this call created it.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "create_chat"))]
    pub async fn create_chat(&self, chat: &NewChat<'_>, events: Vec<Outgoing>) -> Result<bool> {
        let NewChat {
            id,
            kind,
            name,
            owner_id,
            members,
            now_ms,
        } = *chat;
        let mut tx = self.pool.begin().await?;
        let created = sqlx::query(
            "INSERT INTO chats (id, kind, name, owner_id, last_seq, last_activity_ms, created_at_ms) \
             VALUES ($1, $2, $3, $4, 0, $5, $5) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(kind)
        .bind(name)
        .bind(owner_id)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if created {
            // Members join in the order given (the owner first): that order decides who
            // inherits the chat when its owner leaves.
            for (order, member) in (0_i64..).zip(members) {
                insert_member(&mut tx, id, *member, now_ms + order).await?;
            }
            self.outbox.commit(tx, events).await?;
        } else {
            tx.commit().await?;
        }
        Ok(created)
    }

    /// The chat as `viewer` sees it; `None` unless `viewer` is a member.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "chat_for"))]
    pub async fn chat_for(&self, chat_id: &str, viewer: i64) -> Result<Option<Chat>> {
        let row: Option<ChatRow> = sqlx::query_as(
            "SELECT c.id, c.kind, c.name, c.owner_id, c.last_seq, c.last_activity_ms, m.read_seq \
             FROM chats c JOIN chat_members m ON m.chat_id = c.id WHERE c.id = $1 AND m.user_id = $2",
        )
        .bind(chat_id)
        .bind(viewer)
        .fetch_optional(&self.pool)
        .await?;
        let Some((id, kind, name, owner_id, last_seq, last_activity_ms, read_seq)) = row else {
            return Ok(None);
        };
        let members = self.members(&id).await?;
        let unread = self.unread(&id, viewer, read_seq).await?;
        let last_message = self.last_message(&id).await?;
        Ok(Some(Chat {
            id,
            kind,
            name,
            owner_id,
            members,
            last_seq,
            unread,
            last_activity_ms,
            last_message,
        }))
    }

    /// Every chat of `viewer`, latest activity first.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "chats_of"))]
    pub async fn chats_of(&self, viewer: i64) -> Result<Vec<Chat>> {
        let ids: Vec<(String,)> = sqlx::query_as(
            "SELECT c.id FROM chats c JOIN chat_members m ON m.chat_id = c.id \
             WHERE m.user_id = $1 ORDER BY c.last_activity_ms DESC, c.id",
        )
        .bind(viewer)
        .fetch_all(&self.pool)
        .await?;
        let mut chats = Vec::with_capacity(ids.len());
        for (id,) in ids {
            chats.extend(self.chat_for(&id, viewer).await?);
        }
        Ok(chats)
    }

    /// The chat's kind and members, in one query; `None` unless `viewer` is a member. The send
    /// path uses this instead of the full view.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "membership"))]
    pub async fn membership(
        &self,
        chat_id: &str,
        viewer: i64,
    ) -> Result<Option<(String, Vec<User>)>> {
        let rows: Vec<(String, i64, String)> = sqlx::query_as(
            "SELECT c.kind, u.id, u.username FROM chats c \
             JOIN chat_members me ON me.chat_id = c.id AND me.user_id = $2 \
             JOIN chat_members m ON m.chat_id = c.id JOIN users u ON u.id = m.user_id \
             WHERE c.id = $1 ORDER BY m.joined_at_ms, u.id",
        )
        .bind(chat_id)
        .bind(viewer)
        .fetch_all(&self.pool)
        .await?;
        let Some(kind) = rows.first().map(|(kind, _, _)| kind.clone()) else {
            return Ok(None);
        };
        Ok(Some((
            kind,
            rows.into_iter()
                .map(|(_, id, username)| User { id, username })
                .collect(),
        )))
    }

    /// A chat's kind, members (longest-standing first) and `members_version`; `None` if there
    /// is no such chat.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "members_of"))]
    pub async fn members_of(&self, chat_id: &str) -> Result<Option<Members>> {
        let rows: Vec<(String, i64, i64, String)> = sqlx::query_as(
            "SELECT c.kind, c.members_version, u.id, u.username FROM chats c \
             JOIN chat_members m ON m.chat_id = c.id JOIN users u ON u.id = m.user_id \
             WHERE c.id = $1 ORDER BY m.joined_at_ms, u.id",
        )
        .bind(chat_id)
        .fetch_all(&self.pool)
        .await?;
        let Some((kind, version)) = rows
            .first()
            .map(|(kind, version, _, _)| (kind.clone(), *version))
        else {
            return Ok(None);
        };
        Ok(Some(Members {
            kind,
            version,
            users: rows
                .into_iter()
                .map(|(_, _, id, username)| User { id, username })
                .collect(),
        }))
    }

    /// The longest-standing member of a chat, if it exists.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "first_member"))]
    pub async fn first_member(&self, chat_id: &str) -> Result<Option<i64>> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT user_id FROM chat_members WHERE chat_id = $1 ORDER BY joined_at_ms, user_id LIMIT 1")
                .bind(chat_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(id,)| id))
    }

    async fn members(&self, chat_id: &str) -> Result<Vec<User>> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT u.id, u.username FROM chat_members m JOIN users u ON u.id = m.user_id \
             WHERE m.chat_id = $1 ORDER BY m.joined_at_ms, u.id",
        )
        .bind(chat_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, username)| User { id, username })
            .collect())
    }

    async fn unread(&self, chat_id: &str, viewer: i64, read_seq: i64) -> Result<i64> {
        let (count,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM messages WHERE chat_id = $1 AND seq > $2 AND author_id <> $3 AND deleted_at_ms IS NULL",
        )
        .bind(chat_id)
        .bind(read_seq)
        .bind(viewer)
        .fetch_one(&self.pool)
        .await?;
        Ok(count)
    }

    async fn last_message(&self, chat_id: &str) -> Result<Option<Preview>> {
        let row: Option<(i64, i64, String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT id, author_id, SUBSTR(content, 1, 100), created_at_ms, deleted_at_ms FROM messages \
             WHERE chat_id = $1 ORDER BY seq DESC LIMIT 1",
        )
        .bind(chat_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(
            |(id, author_id, content, created_at_ms, deleted_at_ms)| Preview {
                id,
                author_id,
                content,
                created_at_ms,
                deleted: deleted_at_ms.is_some(),
            },
        ))
    }

    /// Moves `viewer`'s read marker forward to `seq` (never back, never past the end).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "mark_read"))]
    pub async fn mark_read(&self, chat_id: &str, viewer: i64, seq: i64) -> Result<()> {
        sqlx::query(
            "UPDATE chat_members SET read_seq = (SELECT CASE WHEN $1 > c.last_seq THEN c.last_seq ELSE $1 END FROM chats c WHERE c.id = $2) \
             WHERE chat_id = $2 AND user_id = $3 AND read_seq < $1",
        )
        .bind(seq)
        .bind(chat_id)
        .bind(viewer)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Renames a chat, with the `events` of the chat as renamed.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "rename"))]
    pub async fn rename(
        &self,
        chat_id: &str,
        name: &str,
        events: impl FnOnce(&Chat) -> Vec<Outgoing>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE chats SET name = $1 WHERE id = $2")
            .bind(name)
            .bind(chat_id)
            .execute(&mut *tx)
            .await?;
        let events = chat_in(&mut tx, chat_id).await?.map(|chat| events(&chat));
        self.outbox.commit(tx, events.unwrap_or_default()).await
    }

    /// Adds a member unless they are one already or the chat has `max_members`, with the
    /// `events` of the chat as it becomes.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "add_member"))]
    pub async fn add_member(
        &self,
        chat_id: &str,
        user_id: i64,
        max_members: i64,
        now_ms: i64,
        events: impl FnOnce(&Chat) -> Vec<Outgoing>,
    ) -> Result<AddOutcome> {
        let mut tx = self.pool.begin().await?;
        lock_chat_members(&mut tx, chat_id).await?;
        let members: Vec<(i64,)> =
            sqlx::query_as("SELECT user_id FROM chat_members WHERE chat_id = $1")
                .bind(chat_id)
                .fetch_all(&mut *tx)
                .await?;
        if members.iter().any(|(id,)| *id == user_id) {
            return Ok(AddOutcome::AlreadyMember);
        }
        if i64::try_from(members.len()).unwrap_or(i64::MAX) >= max_members {
            return Ok(AddOutcome::Full);
        }
        insert_member(&mut tx, chat_id, user_id, now_ms).await?;
        let events = chat_in(&mut tx, chat_id).await?.map(|chat| events(&chat));
        self.outbox.commit(tx, events.unwrap_or_default()).await?;
        Ok(AddOutcome::Added)
    }

    /// Removes a member of a group: ownership passes to the longest-standing member when the
    /// owner goes, and the chat (with its messages) is deleted when the last one goes. The
    /// `events` are given the chat as it remains (`None` once deleted).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "remove_member"))]
    pub async fn remove_member(
        &self,
        chat_id: &str,
        user_id: i64,
        events: impl FnOnce(Option<&Chat>) -> Vec<Outgoing>,
    ) -> Result<Left> {
        let mut tx = self.pool.begin().await?;
        lock_chat_members(&mut tx, chat_id).await?;
        let removed = sqlx::query("DELETE FROM chat_members WHERE chat_id = $1 AND user_id = $2")
            .bind(chat_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        if removed.rows_affected() != 1 {
            return Ok(Left::NotMember);
        }
        let heir: Option<(i64,)> =
            sqlx::query_as("SELECT user_id FROM chat_members WHERE chat_id = $1 ORDER BY joined_at_ms, user_id LIMIT 1")
                .bind(chat_id)
                .fetch_optional(&mut *tx)
                .await?;
        let outcome = match heir {
            None => {
                for sql in [
                    "DELETE FROM reactions WHERE message_id IN (SELECT id FROM messages WHERE chat_id = $1)",
                    "DELETE FROM messages WHERE chat_id = $1",
                    "DELETE FROM chats WHERE id = $1",
                ] {
                    sqlx::query(sql).bind(chat_id).execute(&mut *tx).await?;
                }
                Left::Deleted
            }
            Some((heir,)) => {
                let transferred =
                    sqlx::query("UPDATE chats SET owner_id = $1 WHERE id = $2 AND owner_id = $3")
                        .bind(heir)
                        .bind(chat_id)
                        .bind(user_id)
                        .execute(&mut *tx)
                        .await?;
                Left::Remains {
                    new_owner: (transferred.rows_affected() == 1).then_some(heir),
                }
            }
        };
        let remaining = chat_in(&mut tx, chat_id).await?;
        let events = events(remaining.as_ref());
        self.outbox.commit(tx, events).await?;
        Ok(outcome)
    }

    /// The message a retried send already stored, if any.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "message_by_nonce"))]
    pub async fn message_by_nonce(
        &self,
        chat_id: &str,
        author_id: i64,
        nonce: &str,
    ) -> Result<Option<Message>> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} WHERE m.chat_id = $1 AND m.author_id = $2 AND m.nonce = $3"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(chat_id)
            .bind(author_id)
            .bind(nonce)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let mut found = message(split_row(&row)?);
        self.attach_reactions(std::slice::from_mut(&mut found))
            .await?;
        Ok(Some(found))
    }

    /// Stores one message under the chat's next number if its author is a member, with its
    /// event.
    pub async fn insert_message(
        &self,
        new: &NewMessage<'_>,
        event: MessageEvent<'_>,
    ) -> Result<Inserted> {
        self.insert_alone(new, event).await
    }

    /// Stores messages, each under its chat's next number if its author is a member, with
    /// its event: one outcome per message, in order. On PostgreSQL several go in one
    /// statement and one transaction (see `store/batches.rs`); if that fails as a whole (a
    /// retried nonce meeting its first copy, say), or on SQLite (one connection anyway), each
    /// is stored in its own, so one send's error is never another's.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "insert_messages", count = batch.len()))]
    pub async fn insert_messages(
        &self,
        batch: &[NewMessage<'_>],
        event: MessageEvent<'_>,
    ) -> Vec<Result<Inserted>> {
        if self.postgres && batch.len() > 1 {
            match self.insert_together(batch, event).await {
                Ok(outcomes) => return outcomes,
                Err(error) => {
                    tracing::debug!(%error, size = batch.len(), "a batch failed; storing its messages one by one");
                }
            }
        }
        let mut outcomes = Vec::with_capacity(batch.len());
        for new in batch {
            outcomes.push(self.insert_alone(new, event).await);
        }
        outcomes
    }

    async fn insert_together(
        &self,
        batch: &[NewMessage<'_>],
        event: MessageEvent<'_>,
    ) -> Result<Vec<Result<Inserted>>> {
        let mut tx = self.pool.begin().await?;
        let numbers = batches::insert_many(&mut tx, batch).await?;
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut events = Vec::with_capacity(batch.len());
        for (new, numbers) in batch.iter().zip(numbers) {
            outcomes.push(Ok(match numbers {
                None => Inserted::NotAMember,
                Some(numbers) => {
                    let (inserted, outgoing) = stored(&mut tx, new, numbers, event).await?;
                    events.push(outgoing);
                    inserted
                }
            }));
        }
        self.outbox.commit(tx, events).await?;
        Ok(outcomes)
    }

    async fn insert_alone(
        &self,
        new: &NewMessage<'_>,
        event: MessageEvent<'_>,
    ) -> Result<Inserted> {
        let mut tx = self.pool.begin().await?;
        let numbers = if self.postgres {
            batches::insert_one(&mut tx, new).await
        } else {
            insert_in(&mut tx, new).await
        };
        let numbers = match numbers {
            Err(error) if is_unique_violation(&error) && new.nonce.is_some() => {
                return Ok(Inserted::NonceTaken);
            }
            other => match other? {
                Some(numbers) => numbers,
                None => return Ok(Inserted::NotAMember),
            },
        };
        let (inserted, outgoing) = stored(&mut tx, new, numbers, event).await?;
        self.outbox.commit(tx, vec![outgoing]).await?;
        Ok(inserted)
    }

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "message"))]
    pub async fn message(&self, chat_id: &str, message_id: i64) -> Result<Option<Message>> {
        let mut tx = self.pool.begin().await?;
        let found = message_in(&mut tx, chat_id, message_id).await?;
        tx.commit().await?;
        Ok(found)
    }

    /// Applies a change to a live message under the chat's next number (whose row lock makes
    /// changes to one chat take turns), with the `event` of the message as changed.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "change_message"))]
    pub async fn change_message(
        &self,
        chat_id: &str,
        message_id: i64,
        change: Change<'_>,
        now_ms: i64,
        event: impl FnOnce(&Message) -> Outgoing,
    ) -> Result<Changed> {
        let mut tx = self.pool.begin().await?;
        let version = next_seq(&mut tx, chat_id, None).await?;
        let bumped = sqlx::query("UPDATE messages SET version = $1 WHERE chat_id = $2 AND id = $3 AND deleted_at_ms IS NULL")
            .bind(version)
            .bind(chat_id)
            .bind(message_id)
            .execute(&mut *tx)
            .await?;
        if bumped.rows_affected() != 1 {
            return Ok(Changed::Gone);
        }
        match change {
            Change::Edit { content, mentions } => {
                sqlx::query("UPDATE messages SET content = $1, mentions = $2, edited_at_ms = $3 WHERE id = $4")
                    .bind(content)
                    .bind(mentions_text(mentions))
                    .bind(now_ms)
                    .bind(message_id)
                    .execute(&mut *tx)
                    .await?;
            }
            Change::Delete => {
                sqlx::query("UPDATE messages SET content = '', mentions = '', deleted_at_ms = $1 WHERE id = $2")
                    .bind(now_ms)
                    .bind(message_id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM reactions WHERE message_id = $1")
                    .bind(message_id)
                    .execute(&mut *tx)
                    .await?;
            }
            Change::ToggleReaction {
                user_id,
                emoji,
                at_most,
            } => {
                let removed = sqlx::query(
                    "DELETE FROM reactions WHERE message_id = $1 AND user_id = $2 AND emoji = $3",
                )
                .bind(message_id)
                .bind(user_id)
                .bind(emoji)
                .execute(&mut *tx)
                .await?;
                if removed.rows_affected() == 0 {
                    let (reactions,): (i64,) = sqlx::query_as(
                        "SELECT COUNT(*) FROM reactions WHERE message_id = $1 AND user_id = $2",
                    )
                    .bind(message_id)
                    .bind(user_id)
                    .fetch_one(&mut *tx)
                    .await?;
                    if reactions >= at_most {
                        return Ok(Changed::ReactionsFull);
                    }
                    sqlx::query("INSERT INTO reactions (message_id, user_id, emoji, created_at_ms) VALUES ($1, $2, $3, $4)")
                        .bind(message_id)
                        .bind(user_id)
                        .bind(emoji)
                        .bind(now_ms)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        let Some(changed) = message_in(&mut tx, chat_id, message_id).await? else {
            return Ok(Changed::Gone);
        };
        let outgoing = event(&changed);
        self.outbox.commit(tx, vec![outgoing]).await?;
        Ok(Changed::Message(Box::new(changed)))
    }

    /// A page of history, always returned in ascending order (`seq`, or `version` for `After`).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "messages"))]
    pub async fn messages(&self, chat_id: &str, page: Page, limit: i64) -> Result<Vec<Message>> {
        let (condition, order, bound) = match page {
            Page::Latest => ("m.seq < $2", "m.seq DESC", i64::MAX),
            Page::Before(seq) => ("m.seq < $2", "m.seq DESC", seq),
            Page::After(version) => ("m.version > $2", "m.version ASC", version),
        };
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} WHERE m.chat_id = $1 AND {condition} ORDER BY {order} LIMIT $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(chat_id)
            .bind(bound)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        let mut messages = rows
            .iter()
            .map(|row| split_row(row).map(message))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        if !matches!(page, Page::After(_)) {
            messages.reverse();
        }
        self.attach_reactions(&mut messages).await?;
        Ok(messages)
    }

    /// Fills in the reactions of `messages`.
    async fn attach_reactions(&self, messages: &mut [Message]) -> Result<()> {
        for chunk in messages.chunks_mut(500) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT message_id, emoji, user_id FROM reactions WHERE message_id IN ({}) ORDER BY created_at_ms, user_id",
                placeholders.join(", ")
            );
            let mut query = sqlx::query_as::<_, (i64, String, i64)>(sqlx::AssertSqlSafe(sql));
            for message in chunk.iter() {
                query = query.bind(message.id);
            }
            for (message_id, emoji, user_id) in query.fetch_all(&self.pool).await? {
                if let Some(message) = chunk.iter_mut().find(|m| m.id == message_id) {
                    add_reaction(&mut message.reactions, emoji, user_id);
                }
            }
        }
        Ok(())
    }
}

/// What adding a member did.
#[derive(Debug, PartialEq, Eq)]
pub enum AddOutcome {
    Added,
    AlreadyMember,
    Full,
}

/// id, kind, name, owner_id, last_seq, last_activity_ms, the viewer's read_seq.
type ChatRow = (String, String, String, Option<i64>, i64, i64, i64);

fn add_reaction(reactions: &mut Vec<Reaction>, emoji: String, user_id: i64) {
    match reactions.iter_mut().find(|r| r.emoji == emoji) {
        Some(reaction) => reaction.user_ids.push(user_id),
        None => reactions.push(Reaction {
            emoji,
            user_ids: vec![user_id],
        }),
    }
}

async fn insert_member(tx: &mut Tx, chat_id: &str, user_id: i64, joined_at_ms: i64) -> Result<()> {
    sqlx::query("INSERT INTO chat_members (chat_id, user_id, joined_at_ms, read_seq) VALUES ($1, $2, $3, 0)")
        .bind(chat_id)
        .bind(user_id)
        .bind(joined_at_ms)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Takes the chat row's lock until the transaction ends (membership changes take turns) and
/// counts the change in `members_version`, so senders holding the old list notice.
async fn lock_chat_members(tx: &mut Tx, chat_id: &str) -> Result<()> {
    sqlx::query("UPDATE chats SET members_version = members_version + 1 WHERE id = $1")
        .bind(chat_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Takes the chat's next change number (locking the chat row until commit); a new message
/// (`activity_ms`) also moves the chat up the list.
async fn next_seq(tx: &mut Tx, chat_id: &str, activity_ms: Option<i64>) -> Result<i64> {
    let (seq,): (i64,) = sqlx::query_as(
        "UPDATE chats SET last_seq = last_seq + 1, last_activity_ms = COALESCE($1, last_activity_ms) \
         WHERE id = $2 RETURNING last_seq",
    )
    .bind(activity_ms)
    .bind(chat_id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(seq)
}

async fn message_in(tx: &mut Tx, chat_id: &str, message_id: i64) -> Result<Option<Message>> {
    let sql = format!("SELECT {MESSAGE_COLUMNS} WHERE m.chat_id = $1 AND m.id = $2");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(chat_id)
        .bind(message_id)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut found = message(split_row(&row)?);
    let reactions: Vec<(String, i64)> =
        sqlx::query_as("SELECT emoji, user_id FROM reactions WHERE message_id = $1 ORDER BY created_at_ms, user_id")
            .bind(message_id)
            .fetch_all(&mut **tx)
            .await?;
    for (emoji, user_id) in reactions {
        add_reaction(&mut found.reactions, emoji, user_id);
    }
    Ok(Some(found))
}

/// A message just stored under `(seq, members_version)`, and its event for the chat's
/// members then: the sender's list unless the members changed before the message was stored
/// (then read again, under the same lock).
async fn stored(
    tx: &mut Tx,
    new: &NewMessage<'_>,
    (seq, members_version): (i64, i64),
    event: MessageEvent<'_>,
) -> Result<(Inserted, Outgoing)> {
    let message = Message {
        id: new.id,
        chat_id: new.chat_id.to_owned(),
        seq,
        version: seq,
        author_id: new.author_id,
        content: new.content.to_owned(),
        nonce: new.nonce.map(str::to_owned),
        created_at_ms: new.now_ms,
        edited_at_ms: None,
        deleted: false,
        reply_to: new.reply_to.cloned(),
        mentions: new.mentions.to_vec(),
        reactions: Vec::new(),
    };
    let outgoing = if members_version == new.recipients_version {
        event(&message, new.recipients)
    } else {
        event(&message, &member_ids_in(tx, new.chat_id).await?)
    };
    let inserted = Inserted::Stored {
        message: Box::new(message),
        members_version,
    };
    Ok((inserted, outgoing))
}

/// Stores one message if its author is a member (SQLite): `(seq, members_version)`, or
/// `None` when the author is not a member.
async fn insert_in(
    tx: &mut Tx,
    new: &NewMessage<'_>,
) -> std::result::Result<Option<(i64, i64)>, sqlx::Error> {
    let next: Option<(i64, i64)> = sqlx::query_as(
        "UPDATE chats SET last_seq = last_seq + 1, last_activity_ms = $1 \
         WHERE id = $2 AND EXISTS (SELECT 1 FROM chat_members WHERE chat_id = $2 AND user_id = $3) \
         RETURNING last_seq, members_version",
    )
    .bind(new.now_ms)
    .bind(new.chat_id)
    .bind(new.author_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((seq, members_version)) = next else {
        return Ok(None);
    };
    sqlx::query(
        "INSERT INTO messages (id, chat_id, seq, version, author_id, content, nonce, created_at_ms, reply_to_id, mentions) \
         VALUES ($1, $2, $3, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(new.id)
    .bind(new.chat_id)
    .bind(seq)
    .bind(new.author_id)
    .bind(new.content)
    .bind(new.nonce)
    .bind(new.now_ms)
    .bind(new.reply_to.map(|reply| reply.id))
    .bind(mentions_text(new.mentions))
    .execute(&mut **tx)
    .await?;
    Ok(Some((seq, members_version)))
}

async fn member_ids_in(tx: &mut Tx, chat_id: &str) -> Result<Vec<i64>> {
    let rows: Vec<(i64,)> = sqlx::query_as(
        "SELECT user_id FROM chat_members WHERE chat_id = $1 ORDER BY joined_at_ms, user_id",
    )
    .bind(chat_id)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// A chat as its events show it (no viewer: `unread` 0), read inside a transaction.
async fn chat_in(tx: &mut Tx, chat_id: &str) -> Result<Option<Chat>> {
    let row: Option<(String, String, String, Option<i64>, i64, i64)> = sqlx::query_as(
        "SELECT id, kind, name, owner_id, last_seq, last_activity_ms FROM chats WHERE id = $1",
    )
    .bind(chat_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((id, kind, name, owner_id, last_seq, last_activity_ms)) = row else {
        return Ok(None);
    };
    let members: Vec<(i64, String)> = sqlx::query_as(
        "SELECT u.id, u.username FROM chat_members m JOIN users u ON u.id = m.user_id \
         WHERE m.chat_id = $1 ORDER BY m.joined_at_ms, u.id",
    )
    .bind(chat_id)
    .fetch_all(&mut **tx)
    .await?;
    let last: Option<(i64, i64, String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT id, author_id, SUBSTR(content, 1, 100), created_at_ms, deleted_at_ms FROM messages \
         WHERE chat_id = $1 ORDER BY seq DESC LIMIT 1",
    )
    .bind(chat_id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(Some(Chat {
        id,
        kind,
        name,
        owner_id,
        members: members
            .into_iter()
            .map(|(id, username)| User { id, username })
            .collect(),
        last_seq,
        unread: 0,
        last_activity_ms,
        last_message: last.map(
            |(id, author_id, content, created_at_ms, deleted_at_ms)| Preview {
                id,
                author_id,
                content,
                created_at_ms,
                deleted: deleted_at_ms.is_some(),
            },
        ),
    }))
}
