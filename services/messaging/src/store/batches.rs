//! Many new messages stored in one PostgreSQL statement — one round trip and one commit
//! instead of one each (the batches are gathered by the service, `sends.rs`).
//!
//! Each message keeps its own outcome: stored under its chat's next number, or refused
//! because its author is not a member. If a batch fails as a whole (a retried nonce meeting
//! its first copy, say), each of its sends is stored again on its own, so one send's error is
//! never another's.

use super::{NewMessage, insert_one, mentions_text};
use astral_common::db::Pool;
use std::fmt::Write as _;

/// `(seq, members_version)` of a stored message; `None` when its author is not a member.
pub type Outcome = Result<Option<(i64, i64)>, sqlx::Error>;

/// Stores the messages (one alone in the short statement, several in one statement), one
/// outcome each, in order.
pub async fn insert(pool: &Pool, messages: &[NewMessage<'_>]) -> Vec<Outcome> {
    if let [message] = messages {
        return vec![insert_one(pool, message).await];
    }
    match insert_many(pool, messages).await {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
        Err(error) => {
            tracing::debug!(%error, size = messages.len(), "a batch failed; storing its messages one by one");
            let mut outcomes = Vec::with_capacity(messages.len());
            for message in messages {
                outcomes.push(insert_one(pool, message).await);
            }
            outcomes
        }
    }
}

/// Stores every message whose author is a member of its chat, in one statement: chats are
/// locked in id order (so two batches never wait for each other in a circle), each chat's
/// counter moves once by its number of messages, and messages are numbered in the order
/// they came. One outcome per message, in order.
async fn insert_many(
    pool: &Pool,
    messages: &[NewMessage<'_>],
) -> Result<Vec<Option<(i64, i64)>>, sqlx::Error> {
    let mut sql = String::from(
        "WITH input (ord, id, chat_id, author_id, content, nonce, reply_to_id, created_at_ms, mentions) AS (VALUES ",
    );
    for ord in 0..messages.len() {
        let p = ord * 8;
        let _ = write!(
            sql,
            "{}({ord}, ${}::bigint, ${}::text, ${}::bigint, ${}::text, ${}::text, ${}::bigint, ${}::bigint, ${}::text)",
            if ord == 0 { "" } else { ", " },
            p + 1,
            p + 2,
            p + 3,
            p + 4,
            p + 5,
            p + 6,
            p + 7,
            p + 8,
        );
    }
    sql.push_str(
        "), allowed AS (SELECT i.* FROM input i WHERE EXISTS \
           (SELECT 1 FROM chat_members m WHERE m.chat_id = i.chat_id AND m.user_id = i.author_id)), \
         counts AS (SELECT chat_id, count(*) AS n, max(created_at_ms) AS activity_ms \
           FROM allowed GROUP BY chat_id), \
         locked AS (SELECT id FROM chats WHERE id IN (SELECT chat_id FROM counts) ORDER BY id FOR UPDATE), \
         bumped AS (UPDATE chats c SET last_seq = c.last_seq + counts.n, last_activity_ms = counts.activity_ms \
           FROM counts, locked WHERE c.id = counts.chat_id AND locked.id = c.id \
           RETURNING c.id, c.last_seq - counts.n AS first_seq, c.members_version), \
         numbered AS (SELECT a.*, b.members_version, \
           b.first_seq + row_number() OVER (PARTITION BY a.chat_id ORDER BY a.ord) AS seq \
           FROM allowed a JOIN bumped b ON b.id = a.chat_id), \
         stored AS (INSERT INTO messages (id, chat_id, seq, version, author_id, content, nonce, created_at_ms, reply_to_id, mentions) \
           SELECT id, chat_id, seq, seq, author_id, content, nonce, created_at_ms, reply_to_id, mentions FROM numbered) \
         SELECT ord, seq, members_version FROM numbered",
    );
    let mut query = sqlx::query_as::<_, (i32, i64, i64)>(sqlx::AssertSqlSafe(sql));
    for message in messages {
        query = query
            .bind(message.id)
            .bind(message.chat_id)
            .bind(message.author_id)
            .bind(message.content)
            .bind(message.nonce)
            .bind(message.reply_to)
            .bind(message.now_ms)
            .bind(mentions_text(message.mentions));
    }
    let rows = query.fetch_all(pool).await?;
    let mut outcomes = vec![None; messages.len()];
    for (ord, seq, members_version) in rows {
        if let Some(outcome) = usize::try_from(ord)
            .ok()
            .and_then(|ord| outcomes.get_mut(ord))
        {
            *outcome = Some((seq, members_version));
        }
    }
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, User};
    use astral_common::testing::{TestDatabase, unavailable};

    async fn store() -> Option<(Store, Pool, TestDatabase)> {
        let database = match TestDatabase::postgres().await {
            Ok(database) => database,
            Err(error) => {
                unavailable("PostgreSQL", &error);
                return None;
            }
        };
        let pool = astral_common::db::connect(&database.url).await.unwrap();
        crate::MIGRATOR.run(&pool).await.unwrap();
        let store = Store::new(pool.clone());
        let users: Vec<User> = (1..=3)
            .map(|id| User {
                id,
                username: format!("user{id}"),
            })
            .collect();
        store.remember_users(&users).await.unwrap();
        store
            .create_chat("1_2", "direct", "", None, &[1, 2], 1)
            .await
            .unwrap();
        store
            .create_chat("g", "group", "G", Some(1), &[1, 2, 3], 1)
            .await
            .unwrap();
        Some((store, pool, database))
    }

    fn message(id: i64, chat_id: &str, author_id: i64) -> NewMessage<'_> {
        NewMessage {
            id,
            chat_id,
            author_id,
            content: "hi",
            nonce: None,
            reply_to: None,
            mentions: &[],
            now_ms: 100 + id,
        }
    }

    #[tokio::test]
    async fn one_statement_numbers_each_chat_in_order_and_refuses_strangers() {
        let Some((store, pool, _database)) = store().await else {
            return;
        };
        let batch = [
            message(1, "1_2", 1),
            message(2, "g", 3),
            message(3, "1_2", 3), // not a member of the direct chat
            message(4, "1_2", 2),
            message(5, "nope", 1), // no such chat
            message(6, "g", 1),
            message(7, "1_2", 1),
        ];
        let outcomes = insert_many(&pool, &batch).await.unwrap();
        let seqs: Vec<Option<i64>> = outcomes.iter().map(|o| o.map(|(seq, _)| seq)).collect();
        assert_eq!(
            seqs,
            vec![Some(1), Some(1), None, Some(2), None, Some(2), Some(3)]
        );
        assert_eq!(store.chat_for("1_2", 1).await.unwrap().unwrap().last_seq, 3);
        assert_eq!(store.chat_for("g", 1).await.unwrap().unwrap().last_seq, 2);
        let latest = store
            .messages("1_2", crate::store::Page::Latest, 10)
            .await
            .unwrap();
        let mut ids: Vec<(i64, i64)> = latest.iter().map(|m| (m.seq, m.id)).collect();
        ids.sort();
        assert_eq!(
            ids,
            vec![(1, 1), (2, 4), (3, 7)],
            "numbered in the order they came"
        );
    }

    #[tokio::test]
    async fn a_batch_that_fails_is_stored_one_by_one() {
        let Some((store, pool, _database)) = store().await else {
            return;
        };
        let first = NewMessage {
            nonce: Some("n"),
            ..message(1, "g", 1)
        };
        assert_eq!(
            insert(&pool, std::slice::from_ref(&first)).await[0]
                .as_ref()
                .unwrap(),
            &Some((1, 0))
        );
        // A retry of the first among others: the statement fails on the nonce, and every
        // other message in it is still stored, each once.
        let mut batch = vec![NewMessage { id: 2, ..first }];
        batch.extend((3..40).map(|id| message(id, "g", 2)));
        let outcomes = insert(&pool, &batch).await;
        assert!(
            outcomes[0]
                .as_ref()
                .is_err_and(astral_common::db::is_unique_violation)
        );
        assert!(outcomes[1..].iter().all(|o| matches!(o, Ok(Some(_)))));
        let chat = store.chat_for("g", 1).await.unwrap().unwrap();
        assert_eq!(chat.last_seq, 38, "1 + 37 stored, gapless");
    }
}
