//! Messages and reactions: reading them, and changing one (edit, delete, react) under the
//! chat's next number. New messages are stored by `inserts.rs`.

use super::attachments::delete_of_message;
use super::{Change, Changed, Store, Tx, mentions_text};
use crate::model::Attachment;
use crate::model::{Message, Page, Preview, SystemChange};
use crate::search::index_words;
use astral_common::Result;
use astral_common::outbox::Outgoing;

/// A message's row, and what its reply (if any) answers.
#[derive(sqlx::FromRow)]
pub(super) struct MessageRow {
    id: i64,
    chat_id: String,
    seq: i64,
    version: i64,
    author_id: i64,
    content: String,
    nonce: Option<String>,
    created_at_ms: i64,
    edited_at_ms: Option<i64>,
    deleted_at_ms: Option<i64>,
    reply_to_id: Option<i64>,
    mentions: String,
    reply_author_id: Option<i64>,
    reply_content: Option<String>,
    reply_created_at_ms: Option<i64>,
    reply_deleted_at_ms: Option<i64>,
    reply_attachment_count: i64,
    system_type: Option<String>,
    system_user_id: Option<i64>,
    system_name: Option<String>,
}

impl From<MessageRow> for Message {
    fn from(row: MessageRow) -> Self {
        let reply_to = match (
            row.reply_to_id,
            row.reply_author_id,
            row.reply_created_at_ms,
        ) {
            (Some(id), Some(author_id), Some(created_at_ms)) => Some(Preview {
                id,
                author_id,
                content: row.reply_content.unwrap_or_default(),
                created_at_ms,
                deleted: row.reply_deleted_at_ms.is_some(),
                attachment_count: row.reply_attachment_count,
            }),
            _ => None,
        };
        Self {
            id: row.id,
            chat_id: row.chat_id,
            seq: row.seq,
            version: row.version,
            author_id: row.author_id,
            content: row.content,
            nonce: row.nonce,
            created_at_ms: row.created_at_ms,
            edited_at_ms: row.edited_at_ms,
            deleted: row.deleted_at_ms.is_some(),
            reply_to,
            mentions: row
                .mentions
                .split(',')
                .filter_map(|id| id.parse().ok())
                .collect(),
            reactions: Vec::new(),
            system: row.system_type.and_then(|kind| {
                SystemChange::from_parts(&kind, row.system_user_id, row.system_name)
            }),
            attachments: Vec::new(),
        }
    }
}

/// One reaction of one user.
#[derive(sqlx::FromRow)]
struct ReactionRow {
    message_id: i64,
    emoji: String,
    user_id: i64,
}

pub(super) const MESSAGE_COLUMNS: &str = "m.id, m.chat_id, m.seq, m.version, m.author_id, m.content, m.nonce, \
    m.created_at_ms, m.edited_at_ms, m.deleted_at_ms, m.reply_to_id, m.mentions, \
    r.author_id AS reply_author_id, SUBSTR(r.content, 1, 100) AS reply_content, \
    r.created_at_ms AS reply_created_at_ms, r.deleted_at_ms AS reply_deleted_at_ms, \
    (SELECT COUNT(*) FROM attachments ra WHERE ra.message_id = m.reply_to_id) AS reply_attachment_count, \
    m.system_type, m.system_user_id, m.system_name \
    FROM messages m LEFT JOIN messages r ON r.id = m.reply_to_id";

impl Store {
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
        let row: Option<MessageRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(chat_id)
            .bind(author_id)
            .bind(nonce)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let mut found = [Message::from(row)];
        self.fill_in(&mut found).await?;
        let [found] = found;
        Ok(Some(found))
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
        let version = next_version(&mut tx, chat_id).await?;
        let bumped = sqlx::query("UPDATE messages SET version = $1 WHERE chat_id = $2 AND id = $3 AND deleted_at_ms IS NULL \
             AND system_type IS NULL")
            .bind(version)
            .bind(chat_id)
            .bind(message_id)
            .execute(&mut *tx)
            .await?;
        if bumped.rows_affected() != 1 {
            return Ok(Changed::Gone);
        }
        if !apply(&mut tx, chat_id, message_id, change, now_ms).await? {
            return Ok(Changed::ReactionsFull);
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
        let rows: Vec<MessageRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(chat_id)
            .bind(bound)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        let mut messages: Vec<Message> = rows.into_iter().map(Message::from).collect();
        if !matches!(page, Page::After(_)) {
            messages.reverse();
        }
        self.fill_in(&mut messages).await?;
        Ok(messages)
    }

    /// Fills in the reactions and the files of `messages`.
    pub(super) async fn fill_in(&self, messages: &mut [Message]) -> Result<()> {
        self.attach_reactions(messages).await?;
        self.attach_files(messages).await
    }

    async fn attach_reactions(&self, messages: &mut [Message]) -> Result<()> {
        self.per_message(
            messages,
            |ids| {
                format!(
                    "SELECT message_id, emoji, user_id FROM reactions WHERE message_id IN ({ids}) \
                     ORDER BY created_at_ms, user_id"
                )
            },
            |row: &ReactionRow| row.message_id,
            |message, row| message.add_reaction(row.emoji, row.user_id),
        )
        .await
    }

    /// Gives each of `messages` its rows of a query: `sql` selects them for a list of message
    /// ids (`$1, $2, …`, 500 at a time), `message_of` says whose a row is, `add` takes it.
    pub(super) async fn per_message<R>(
        &self,
        messages: &mut [Message],
        sql: impl Fn(&str) -> String,
        message_of: fn(&R) -> i64,
        mut add: impl FnMut(&mut Message, R),
    ) -> Result<()>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
    {
        for chunk in messages.chunks_mut(500) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let mut query =
                sqlx::query_as::<_, R>(sqlx::AssertSqlSafe(sql(&placeholders.join(", "))));
            for message in chunk.iter() {
                query = query.bind(message.id);
            }
            for row in query.fetch_all(&self.pool).await? {
                let id = message_of(&row);
                if let Some(message) = chunk.iter_mut().find(|m| m.id == id) {
                    add(message, row);
                }
            }
        }
        Ok(())
    }
}

/// Applies `change` to a live message; false (nothing changed) when a reaction would pass
/// the user's limit.
async fn apply(
    tx: &mut Tx,
    chat_id: &str,
    message_id: i64,
    change: Change<'_>,
    now_ms: i64,
) -> Result<bool> {
    match change {
        Change::Edit { content, mentions } => {
            sqlx::query(
                "UPDATE messages SET content = $1, mentions = $2, edited_at_ms = $3, search_words = $5 \
                 WHERE id = $4",
            )
            .bind(content)
            .bind(mentions_text(mentions))
            .bind(now_ms)
            .bind(message_id)
            .bind(index_words(chat_id, content))
            .execute(&mut **tx)
            .await?;
        }
        Change::Delete => {
            sqlx::query(
                "UPDATE messages SET content = '', mentions = '', search_words = '', deleted_at_ms = $1 \
                 WHERE id = $2",
            )
            .bind(now_ms)
            .bind(message_id)
            .execute(&mut **tx)
            .await?;
            sqlx::query("DELETE FROM reactions WHERE message_id = $1")
                .bind(message_id)
                .execute(&mut **tx)
                .await?;
            delete_of_message(tx, message_id, now_ms).await?;
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
            .execute(&mut **tx)
            .await?;
            if removed.rows_affected() == 0 {
                let reactions: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM reactions WHERE message_id = $1 AND user_id = $2",
                )
                .bind(message_id)
                .bind(user_id)
                .fetch_one(&mut **tx)
                .await?;
                if reactions >= at_most {
                    return Ok(false);
                }
                sqlx::query(
                    "INSERT INTO reactions (message_id, user_id, emoji, created_at_ms) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(message_id)
                .bind(user_id)
                .bind(emoji)
                .bind(now_ms)
                .execute(&mut **tx)
                .await?;
            }
        }
    }
    Ok(true)
}

/// Takes the chat's next change number for a change to an existing message (locking the
/// chat row until commit).
async fn next_version(tx: &mut Tx, chat_id: &str) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "UPDATE chats SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq",
    )
    .bind(chat_id)
    .fetch_one(&mut **tx)
    .await?)
}

async fn message_in(tx: &mut Tx, chat_id: &str, message_id: i64) -> Result<Option<Message>> {
    let sql = format!("SELECT {MESSAGE_COLUMNS} WHERE m.chat_id = $1 AND m.id = $2");
    let row: Option<MessageRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(chat_id)
        .bind(message_id)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut found = Message::from(row);
    let reactions: Vec<ReactionRow> = sqlx::query_as(
        "SELECT message_id, emoji, user_id FROM reactions WHERE message_id = $1 \
         ORDER BY created_at_ms, user_id",
    )
    .bind(message_id)
    .fetch_all(&mut **tx)
    .await?;
    for reaction in reactions {
        found.add_reaction(reaction.emoji, reaction.user_id);
    }
    found.attachments = sqlx::query_as::<_, Attachment>(
        "SELECT id, filename, content_type, size, width, height FROM attachments \
         WHERE message_id = $1 ORDER BY position",
    )
    .bind(message_id)
    .fetch_all(&mut **tx)
    .await?;
    Ok(Some(found))
}
