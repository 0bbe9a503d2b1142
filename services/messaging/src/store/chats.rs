//! Chats and their members: creation, read markers, renaming and membership changes (each
//! with its system message, `system.rs`, and its events). What members see of their chats
//! is in `views.rs`.

use super::settings::shares_read_receipts;
use super::{AddOutcome, Left, NewChat, Store, Tx, system};
use crate::model::{Chat, ChatKind, Members, Message, Preview, SystemChange, User, Viewed};
use astral_common::Result;
use astral_common::outbox::Outgoing;

/// A chat's own row.
#[derive(sqlx::FromRow)]
pub(super) struct ChatRow {
    pub(super) id: String,
    #[sqlx(try_from = "String")]
    kind: ChatKind,
    name: String,
    owner_id: Option<i64>,
    last_seq: i64,
    last_activity_ms: i64,
}

impl ChatRow {
    pub(super) fn into_chat(
        self,
        members: Vec<User>,
        unread: i64,
        last_message: Option<Preview>,
        viewed: Option<Viewed>,
    ) -> Chat {
        Chat {
            id: self.id,
            kind: self.kind,
            name: self.name,
            owner_id: self.owner_id,
            members,
            last_seq: self.last_seq,
            unread,
            last_activity_ms: self.last_activity_ms,
            last_message,
            viewed,
        }
    }
}

/// A chat's newest message, as the chat list shows it.
#[derive(sqlx::FromRow)]
pub(super) struct PreviewRow {
    id: i64,
    author_id: i64,
    content: String,
    created_at_ms: i64,
    deleted_at_ms: Option<i64>,
    attachment_count: i64,
}

impl From<PreviewRow> for Preview {
    fn from(row: PreviewRow) -> Self {
        Self {
            id: row.id,
            author_id: row.author_id,
            content: row.content,
            created_at_ms: row.created_at_ms,
            deleted: row.deleted_at_ms.is_some(),
            attachment_count: row.attachment_count,
        }
    }
}

/// One member of a chat, with the chat's kind and `members_version`.
#[derive(sqlx::FromRow)]
struct MemberRow {
    #[sqlx(try_from = "String")]
    kind: ChatKind,
    members_version: i64,
    #[sqlx(flatten)]
    user: User,
}

pub(super) const CHAT_COLUMNS: &str =
    "c.id, c.kind, c.name, c.owner_id, c.last_seq, c.last_activity_ms";
const MEMBERS: &str = "SELECT u.id, u.username FROM chat_members m JOIN users u ON u.id = m.user_id \
     WHERE m.chat_id = $1 ORDER BY m.joined_at_ms, u.id";
const LAST_MESSAGE: &str = "SELECT id, author_id, SUBSTR(content, 1, 100) AS content, created_at_ms, \
     deleted_at_ms, (SELECT COUNT(*) FROM attachments a WHERE a.message_id = messages.id) AS attachment_count \
     FROM messages WHERE chat_id = $1 AND system_type IS NULL ORDER BY seq DESC LIMIT 1";

impl Store {
    /// Creates a chat with its members unless it exists (a group with its "created" system
    /// message), with the `events` given that message if it does not; true if this call
    /// created it.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "create_chat"))]
    pub async fn create_chat(
        &self,
        chat: &NewChat<'_>,
        events: impl FnOnce(&[Message]) -> Vec<Outgoing>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let created = sqlx::query(
            "INSERT INTO chats (id, kind, name, owner_id, last_seq, last_activity_ms, created_at_ms) \
             VALUES ($1, $2, $3, $4, 0, $5, $5) ON CONFLICT (id) DO NOTHING",
        )
        .bind(chat.id)
        .bind(chat.kind.as_str())
        .bind(chat.name)
        .bind(chat.owner_id)
        .bind(chat.now_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if created {
            // Members join in the order given (the owner first): that order decides who
            // inherits the chat when its owner leaves.
            for (order, member) in (0_i64..).zip(chat.members) {
                insert_member(&mut tx, chat.id, *member, chat.now_ms + order).await?;
            }
            let mut recorded = Vec::new();
            if let (ChatKind::Group, Some(owner)) = (chat.kind, chat.owner_id) {
                let created = SystemChange::Created {
                    name: chat.name.to_owned(),
                };
                recorded.push(system::record(&mut tx, chat.id, owner, created, chat.now_ms).await?);
            }
            self.outbox.commit(tx, events(&recorded)).await?;
        } else {
            tx.commit().await?;
        }
        Ok(created)
    }

    /// The chat's kind, members (longest-standing first) and `members_version`, in one
    /// query; `None` unless `viewer` is a member. The send path uses this instead of the
    /// full view.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "membership"))]
    pub async fn membership(&self, chat_id: &str, viewer: i64) -> Result<Option<Members>> {
        let rows = sqlx::query_as(
            "SELECT c.kind, c.members_version, u.id, u.username FROM chats c \
             JOIN chat_members me ON me.chat_id = c.id AND me.user_id = $2 \
             JOIN chat_members m ON m.chat_id = c.id JOIN users u ON u.id = m.user_id \
             WHERE c.id = $1 ORDER BY m.joined_at_ms, u.id",
        )
        .bind(chat_id)
        .bind(viewer)
        .fetch_all(&self.pool)
        .await?;
        Ok(members(rows))
    }

    /// A chat's kind, members (longest-standing first) and `members_version`; `None` if there
    /// is no such chat.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "members_of"))]
    pub async fn members_of(&self, chat_id: &str) -> Result<Option<Members>> {
        let rows = sqlx::query_as(
            "SELECT c.kind, c.members_version, u.id, u.username FROM chats c \
             JOIN chat_members m ON m.chat_id = c.id JOIN users u ON u.id = m.user_id \
             WHERE c.id = $1 ORDER BY m.joined_at_ms, u.id",
        )
        .bind(chat_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(members(rows))
    }

    /// The longest-standing member of a chat, if it exists.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "first_member"))]
    pub async fn first_member(&self, chat_id: &str) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT user_id FROM chat_members WHERE chat_id = $1 \
             ORDER BY joined_at_ms, user_id LIMIT 1",
        )
        .bind(chat_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Mutes or unmutes the chat for `viewer`; false if they are not a member.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "set_muted"))]
    pub async fn set_muted(&self, chat_id: &str, viewer: i64, muted: bool) -> Result<bool> {
        let changed =
            sqlx::query("UPDATE chat_members SET muted = $1 WHERE chat_id = $2 AND user_id = $3")
                .bind(i64::from(muted))
                .bind(chat_id)
                .bind(viewer)
                .execute(&self.pool)
                .await?;
        Ok(changed.rows_affected() == 1)
    }

    /// Moves `viewer`'s read marker forward to `seq` (never back, never past the end), with
    /// the `event` of where it now stands if it moved and they share read receipts.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "mark_read"))]
    pub async fn mark_read(
        &self,
        chat_id: &str,
        viewer: i64,
        seq: i64,
        event: impl FnOnce(i64) -> Outgoing,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let sql = format!(
            "UPDATE chat_members SET read_seq = (SELECT CASE WHEN $1 > c.last_seq THEN c.last_seq ELSE $1 END FROM chats c WHERE c.id = $2) \
             WHERE chat_id = $2 AND user_id = $3 AND read_seq < $1 \
             RETURNING read_seq, {} AS shares",
            shares_read_receipts("$3")
        );
        let moved: Option<(i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(seq)
            .bind(chat_id)
            .bind(viewer)
            .fetch_optional(&mut *tx)
            .await?;
        match moved {
            Some((read_seq, shares)) if shares != 0 => {
                self.outbox.commit(tx, vec![event(read_seq)]).await
            }
            _ => Ok(tx.commit().await?),
        }
    }

    /// `actor` renames a chat (recorded in its history), with the `events` of the chat as
    /// renamed and of that record.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "rename"))]
    pub async fn rename(
        &self,
        chat_id: &str,
        actor: i64,
        name: &str,
        now_ms: i64,
        events: impl FnOnce(&Chat, &[Message]) -> Vec<Outgoing>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE chats SET name = $1 WHERE id = $2")
            .bind(name)
            .bind(chat_id)
            .execute(&mut *tx)
            .await?;
        let renamed = SystemChange::Renamed {
            name: name.to_owned(),
        };
        let recorded = [system::record(&mut tx, chat_id, actor, renamed, now_ms).await?];
        let events = chat_in(&mut tx, chat_id)
            .await?
            .map(|chat| events(&chat, &recorded));
        self.outbox.commit(tx, events.unwrap_or_default()).await
    }

    /// `actor` adds a member unless they are one already or the chat has `max_members`
    /// (recorded in its history), with the `events` of the chat as it becomes and of that
    /// record.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "add_member"))]
    pub async fn add_member(
        &self,
        chat_id: &str,
        actor: i64,
        user_id: i64,
        max_members: i64,
        now_ms: i64,
        events: impl FnOnce(&Chat, &[Message]) -> Vec<Outgoing>,
    ) -> Result<AddOutcome> {
        let mut tx = self.pool.begin().await?;
        lock_chat_members(&mut tx, chat_id).await?;
        let members = member_ids_in(&mut tx, chat_id).await?;
        if members.contains(&user_id) {
            return Ok(AddOutcome::AlreadyMember);
        }
        if i64::try_from(members.len()).unwrap_or(i64::MAX) >= max_members {
            return Ok(AddOutcome::Full);
        }
        insert_member(&mut tx, chat_id, user_id, now_ms).await?;
        let added = SystemChange::MemberAdded { user_id };
        let recorded = [system::record(&mut tx, chat_id, actor, added, now_ms).await?];
        let events = chat_in(&mut tx, chat_id)
            .await?
            .map(|chat| events(&chat, &recorded));
        self.outbox.commit(tx, events.unwrap_or_default()).await?;
        Ok(AddOutcome::Added)
    }

    /// `actor` removes a member of a group (or leaves it: `actor` is `user_id`): ownership
    /// passes to the longest-standing member when the owner goes, and the chat (with its
    /// messages) is deleted when the last one goes; what happened is recorded in its
    /// history. The `events` are given the chat as it remains (`None` once deleted) and the
    /// records.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "remove_member"))]
    pub async fn remove_member(
        &self,
        chat_id: &str,
        actor: i64,
        user_id: i64,
        now_ms: i64,
        events: impl FnOnce(Option<&Chat>, &[Message]) -> Vec<Outgoing>,
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
        let outcome = match member_ids_in(&mut tx, chat_id).await?.first() {
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
            Some(&heir) => {
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
        let recorded = record_leaving(&mut tx, chat_id, actor, user_id, &outcome, now_ms).await?;
        let remaining = chat_in(&mut tx, chat_id).await?;
        let events = events(remaining.as_ref(), &recorded);
        self.outbox.commit(tx, events).await?;
        Ok(outcome)
    }
}

/// Records in a group's history that `user_id` left (or `actor` removed them) and who owns
/// it now, unless it was deleted.
async fn record_leaving(
    tx: &mut Tx,
    chat_id: &str,
    actor: i64,
    user_id: i64,
    outcome: &Left,
    now_ms: i64,
) -> Result<Vec<Message>> {
    let Left::Remains { new_owner } = outcome else {
        return Ok(Vec::new());
    };
    let left = if actor == user_id {
        SystemChange::MemberLeft { user_id }
    } else {
        SystemChange::MemberRemoved { user_id }
    };
    let mut recorded = vec![system::record(tx, chat_id, actor, left, now_ms).await?];
    if let Some(heir) = *new_owner {
        let changed = SystemChange::OwnerChanged { user_id: heir };
        recorded.push(system::record(tx, chat_id, actor, changed, now_ms).await?);
    }
    Ok(recorded)
}

/// The members listed by `rows` (one per member), or `None` for no rows.
fn members(rows: Vec<MemberRow>) -> Option<Members> {
    let first = rows.first()?;
    let (kind, version) = (first.kind, first.members_version);
    Some(Members {
        kind,
        version,
        users: rows.into_iter().map(|row| row.user).collect(),
    })
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

/// A chat's members' ids, longest-standing first, read inside a transaction.
pub(super) async fn member_ids_in(tx: &mut Tx, chat_id: &str) -> Result<Vec<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT user_id FROM chat_members WHERE chat_id = $1 ORDER BY joined_at_ms, user_id",
    )
    .bind(chat_id)
    .fetch_all(&mut **tx)
    .await?)
}

/// A chat as its events show it (no viewer: `unread` 0), read inside a transaction.
async fn chat_in(tx: &mut Tx, chat_id: &str) -> Result<Option<Chat>> {
    let sql = format!("SELECT {CHAT_COLUMNS} FROM chats c WHERE c.id = $1");
    let row: Option<ChatRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(chat_id)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let members = sqlx::query_as(MEMBERS)
        .bind(chat_id)
        .fetch_all(&mut **tx)
        .await?;
    let last_message: Option<PreviewRow> = sqlx::query_as(LAST_MESSAGE)
        .bind(chat_id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(Some(row.into_chat(
        members,
        0,
        last_message.map(Preview::from),
        None,
    )))
}
