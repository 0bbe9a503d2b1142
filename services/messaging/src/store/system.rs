//! Group changes recorded in the history as system messages, each under the chat's next
//! number inside the transaction of the change it records.

use super::Tx;
use crate::model::{Message, SystemChange};
use astral_common::{Result, ids};

/// Records `change`, made by `author_id` at `now_ms`, in the chat's history; the message,
/// for its event.
pub(super) async fn record(
    tx: &mut Tx,
    chat_id: &str,
    author_id: i64,
    change: SystemChange,
    now_ms: i64,
) -> Result<Message> {
    let seq: i64 = sqlx::query_scalar(
        "UPDATE chats SET last_seq = last_seq + 1, last_activity_ms = $1 WHERE id = $2 \
         RETURNING last_seq",
    )
    .bind(now_ms)
    .bind(chat_id)
    .fetch_one(&mut **tx)
    .await?;
    let id = ids::new_id();
    sqlx::query(
        "INSERT INTO messages (id, chat_id, seq, version, author_id, content, created_at_ms, \
         system_type, system_user_id, system_name, search_words) \
         VALUES ($1, $2, $3, $3, $4, '', $5, $6, $7, $8, '')",
    )
    .bind(id)
    .bind(chat_id)
    .bind(seq)
    .bind(author_id)
    .bind(now_ms)
    .bind(change.as_str())
    .bind(change.user_id())
    .bind(change.name())
    .execute(&mut **tx)
    .await?;
    Ok(Message {
        id,
        chat_id: chat_id.to_owned(),
        seq,
        version: seq,
        author_id,
        content: String::new(),
        nonce: None,
        created_at_ms: now_ms,
        edited_at_ms: None,
        deleted: false,
        reply_to: None,
        mentions: Vec::new(),
        reactions: Vec::new(),
        system: Some(change),
        attachments: Vec::new(),
    })
}
