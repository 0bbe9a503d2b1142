//! The messaging database: SQL only, written once for PostgreSQL and SQLite.

use astral_common::Result;
use astral_common::db::{Pool, is_unique_violation};

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
    pub now_ms: i64,
}

type Tx = sqlx::Transaction<'static, sqlx::Any>;

const MESSAGE_COLUMNS: &str = "id, chat_id, seq, version, author_id, content, nonce, created_at_ms, edited_at_ms, deleted_at_ms FROM messages";

/// id, kind, name, owner_id, last_seq, last_activity_ms, the viewer's read_seq.
type ChatRow = (String, String, String, Option<i64>, i64, i64, i64);

type MessageRow = (
    i64,
    String,
    i64,
    i64,
    i64,
    String,
    Option<String>,
    i64,
    Option<i64>,
    Option<i64>,
);

fn message(row: MessageRow) -> Message {
    let (
        id,
        chat_id,
        seq,
        version,
        author_id,
        content,
        nonce,
        created_at_ms,
        edited_at_ms,
        deleted_at_ms,
    ) = row;
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
    }
}

#[derive(Clone)]
pub struct Store {
    pool: Pool,
}

impl Store {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    /// Records users met through the auth service (usernames never change).
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

    /// Creates a chat with its members unless it exists; true if this call created it.
    pub async fn create_chat(
        &self,
        id: &str,
        kind: &str,
        name: &str,
        owner_id: Option<i64>,
        members: &[i64],
        now_ms: i64,
    ) -> Result<bool> {
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
            for member in members {
                sqlx::query("INSERT INTO chat_members (chat_id, user_id, joined_at_ms, read_seq) VALUES ($1, $2, $3, 0)")
                    .bind(id)
                    .bind(member)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(created)
    }

    /// The chat as `viewer` sees it; `None` unless `viewer` is a member.
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
        Ok(Some(Chat {
            id,
            kind,
            name,
            owner_id,
            members,
            last_seq,
            unread,
            last_activity_ms,
        }))
    }

    /// Every chat of `viewer`, latest activity first.
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

    /// Member ids of a chat.
    pub async fn member_ids(&self, chat_id: &str) -> Result<Vec<i64>> {
        let rows: Vec<(i64,)> =
            sqlx::query_as("SELECT user_id FROM chat_members WHERE chat_id = $1")
                .bind(chat_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
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

    /// Moves `viewer`'s read marker forward to `seq` (never back, never past the end).
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

    /// The message a retried send already stored, if any.
    pub async fn message_by_nonce(
        &self,
        chat_id: &str,
        author_id: i64,
        nonce: &str,
    ) -> Result<Option<Message>> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} WHERE chat_id = $1 AND author_id = $2 AND nonce = $3"
        );
        let row: Option<MessageRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(chat_id)
            .bind(author_id)
            .bind(nonce)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(message))
    }

    /// Stores a message under the chat's next number. `Ok(None)` if a message with the same
    /// nonce committed first (the caller then returns that one).
    pub async fn insert_message(&self, new: &NewMessage<'_>) -> Result<Option<Message>> {
        let mut tx = self.pool.begin().await?;
        let seq = next_seq(&mut tx, new.chat_id, Some(new.now_ms)).await?;
        let inserted = sqlx::query(
            "INSERT INTO messages (id, chat_id, seq, version, author_id, content, nonce, created_at_ms) \
             VALUES ($1, $2, $3, $3, $4, $5, $6, $7)",
        )
        .bind(new.id)
        .bind(new.chat_id)
        .bind(seq)
        .bind(new.author_id)
        .bind(new.content)
        .bind(new.nonce)
        .bind(new.now_ms)
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(error) if is_unique_violation(&error) && new.nonce.is_some() => return Ok(None),
            other => other?,
        };
        let stored = message_in(&mut tx, new.chat_id, new.id).await?;
        tx.commit().await?;
        Ok(stored)
    }

    pub async fn message(&self, chat_id: &str, message_id: i64) -> Result<Option<Message>> {
        let mut tx = self.pool.begin().await?;
        let found = message_in(&mut tx, chat_id, message_id).await?;
        tx.commit().await?;
        Ok(found)
    }

    /// Replaces a live message's content (`Some`) or turns it into a tombstone with its content
    /// erased (`None`), under the chat's next number; `None` if the message is gone or deleted.
    pub async fn change_message(
        &self,
        chat_id: &str,
        message_id: i64,
        content: Option<&str>,
        now_ms: i64,
    ) -> Result<Option<Message>> {
        let mut tx = self.pool.begin().await?;
        let version = next_seq(&mut tx, chat_id, None).await?;
        let query = match content {
            Some(content) => sqlx::query(
                "UPDATE messages SET content = $1, version = $2, edited_at_ms = $3 \
                 WHERE chat_id = $4 AND id = $5 AND deleted_at_ms IS NULL",
            )
            .bind(content),
            None => sqlx::query(
                "UPDATE messages SET content = $1, version = $2, deleted_at_ms = $3 \
                 WHERE chat_id = $4 AND id = $5 AND deleted_at_ms IS NULL",
            )
            .bind(""),
        };
        let changed = query
            .bind(version)
            .bind(now_ms)
            .bind(chat_id)
            .bind(message_id)
            .execute(&mut *tx)
            .await?;
        if changed.rows_affected() != 1 {
            return Ok(None);
        }
        let changed = message_in(&mut tx, chat_id, message_id).await?;
        tx.commit().await?;
        Ok(changed)
    }

    /// A page of history, always returned in ascending order (`seq`, or `version` for `After`).
    pub async fn messages(&self, chat_id: &str, page: Page, limit: i64) -> Result<Vec<Message>> {
        let (condition, order) = match page {
            Page::Latest | Page::Before(_) => ("seq < $2", "seq DESC"),
            Page::After(_) => ("version > $2", "version ASC"),
        };
        let bound = match page {
            Page::Latest => i64::MAX,
            Page::Before(seq) => seq,
            Page::After(version) => version,
        };
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} WHERE chat_id = $1 AND {condition} ORDER BY {order} LIMIT $3"
        );
        let rows: Vec<MessageRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(chat_id)
            .bind(bound)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        let mut messages: Vec<Message> = rows.into_iter().map(message).collect();
        if !matches!(page, Page::After(_)) {
            messages.reverse();
        }
        Ok(messages)
    }
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
    let sql = format!("SELECT {MESSAGE_COLUMNS} WHERE chat_id = $1 AND id = $2");
    let row: Option<MessageRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(chat_id)
        .bind(message_id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.map(message))
}
