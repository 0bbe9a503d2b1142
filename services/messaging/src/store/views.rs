//! What members see of their chats: the chat list (`ready`, `GET /api/chats`) and one chat,
//! each with its members and their read markers, the viewer's unread count, mute and the
//! newest message (system messages count as neither) — three queries however many chats the
//! viewer is in.

use super::Store;
use super::chats::{CHAT_COLUMNS, ChatRow, PreviewRow};
use super::settings::shares_read_receipts;
use crate::model::{Chat, Preview, ReadState, User, Viewed};
use astral_common::Result;
use sqlx::any::{AnyArguments, AnyRow};
use std::collections::HashMap;

/// A member of one of the viewer's chats.
#[derive(sqlx::FromRow)]
struct MemberOfRow {
    chat_id: String,
    #[sqlx(flatten)]
    user: User,
    read_seq: i64,
    /// 1 if they share read receipts (their marker is shown), else 0.
    shares: i64,
}

/// One of the viewer's chats, and how many of its messages they have not read.
#[derive(sqlx::FromRow)]
struct ViewRow {
    #[sqlx(flatten)]
    chat: ChatRow,
    unread: i64,
    muted: i64,
    /// 1 if the viewer shares read receipts (and so sees others'), else 0.
    shares: i64,
}

/// The newest message of one of the viewer's chats.
#[derive(sqlx::FromRow)]
struct NewestRow {
    chat_id: String,
    #[sqlx(flatten)]
    preview: PreviewRow,
}

impl Store {
    /// The chat as `viewer` sees it; `None` unless `viewer` is a member.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "chat_for"))]
    pub async fn chat_for(&self, chat_id: &str, viewer: i64) -> Result<Option<Chat>> {
        Ok(self.views(viewer, Some(chat_id)).await?.pop())
    }

    /// Every chat of `viewer`, latest activity first.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "chats_of"))]
    pub async fn chats_of(&self, viewer: i64) -> Result<Vec<Chat>> {
        self.views(viewer, None).await
    }

    /// The chats of `viewer` (only `only`, if given) as they see them, latest activity first.
    async fn views(&self, viewer: i64, only: Option<&str>) -> Result<Vec<Chat>> {
        // `me` is the viewer's membership: every query starts from the chats it names.
        let mine = if only.is_some() {
            "me.user_id = $1 AND me.chat_id = $2"
        } else {
            "me.user_id = $1"
        };
        // The unread count is counted per chat in the (chat_id, seq) index, from the read
        // marker on: never a scan of the messages table, however the planner guesses.
        let chats: Vec<ViewRow> = scoped(
            format!(
                "SELECT {CHAT_COLUMNS}, (SELECT COUNT(*) FROM messages msg \
                   WHERE msg.chat_id = me.chat_id AND msg.seq > me.read_seq \
                   AND msg.author_id <> $1 AND msg.deleted_at_ms IS NULL \
                   AND msg.system_type IS NULL) AS unread, me.muted, {} AS shares \
                 FROM chat_members me JOIN chats c ON c.id = me.chat_id WHERE {mine} \
                 ORDER BY c.last_activity_ms DESC, c.id",
                shares_read_receipts("$1")
            ),
            viewer,
            only,
        )
        .fetch_all(&self.pool)
        .await?;
        if chats.is_empty() {
            return Ok(Vec::new());
        }
        let members: Vec<MemberOfRow> = scoped(
            format!(
                "SELECT m.chat_id, u.id, u.username, m.read_seq, {} AS shares FROM chat_members me \
                 JOIN chat_members m ON m.chat_id = me.chat_id JOIN users u ON u.id = m.user_id \
                 WHERE {mine} ORDER BY m.chat_id, m.joined_at_ms, u.id",
                shares_read_receipts("m.user_id")
            ),
            viewer,
            only,
        )
        .fetch_all(&self.pool)
        .await?;
        // Each chat's newest message a member wrote, found in the (chat_id, seq) index,
        // chat by chat.
        let newest: Vec<NewestRow> = scoped(
            format!(
                "SELECT msg.chat_id, msg.id, msg.author_id, SUBSTR(msg.content, 1, 100) AS content, \
                 msg.created_at_ms, msg.deleted_at_ms, \
                 (SELECT COUNT(*) FROM attachments a WHERE a.message_id = msg.id) AS attachment_count \
                 FROM chat_members me \
                 JOIN messages msg ON msg.id = (SELECT x.id FROM messages x \
                   WHERE x.chat_id = me.chat_id AND x.system_type IS NULL \
                   ORDER BY x.seq DESC LIMIT 1) \
                 WHERE {mine}"
            ),
            viewer,
            only,
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(assemble(chats, members, newest))
    }
}

/// A query of the viewer's chats: `viewer` is `$1`, the one chat asked for (if any) `$2`.
fn scoped<'q, O>(
    sql: String,
    viewer: i64,
    only: Option<&'q str>,
) -> sqlx::query::QueryAs<'q, sqlx::Any, O, AnyArguments>
where
    O: for<'r> sqlx::FromRow<'r, AnyRow>,
{
    let query = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(viewer);
    match only {
        Some(chat_id) => query.bind(chat_id),
        None => query,
    }
}

/// One chat's members and the read markers of those who share them.
#[derive(Default)]
struct MembersOf {
    users: Vec<User>,
    read_states: Vec<ReadState>,
}

/// Each chat with its members (in the order the query gave them) and newest message.
fn assemble(chats: Vec<ViewRow>, members: Vec<MemberOfRow>, newest: Vec<NewestRow>) -> Vec<Chat> {
    let mut members_of: HashMap<String, MembersOf> = HashMap::with_capacity(chats.len());
    for row in members {
        let of = members_of.entry(row.chat_id).or_default();
        if row.shares != 0 {
            of.read_states.push(ReadState {
                user_id: row.user.id,
                seq: row.read_seq,
            });
        }
        of.users.push(row.user);
    }
    let mut newest: HashMap<String, Preview> = newest
        .into_iter()
        .map(|row| (row.chat_id, Preview::from(row.preview)))
        .collect();
    chats
        .into_iter()
        .map(
            |ViewRow {
                 chat,
                 unread,
                 muted,
                 shares,
             }| {
                let MembersOf { users, read_states } =
                    members_of.remove(&chat.id).unwrap_or_default();
                let viewed = Viewed {
                    muted: muted != 0,
                    // Receipts are a trade: only those who show theirs see others'.
                    read_states: if shares != 0 { read_states } else { Vec::new() },
                };
                let newest = newest.remove(&chat.id);
                chat.into_chat(users, unread, newest, Some(viewed))
            },
        )
        .collect()
}
