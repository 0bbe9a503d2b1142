//! New messages stored in one PostgreSQL statement each batch — the membership checks, the
//! counters' updates and the inserts in one round trip (the batches are gathered by the
//! service, `sends.rs`; the caller holds the transaction, which also writes the events).

use super::{NewMessage, Numbers, Tx, mentions_text};
use crate::search::index_words;
use std::fmt::Write as _;

/// One message of a batch as stored: its place in the batch, and where it stands.
#[derive(sqlx::FromRow)]
struct Numbered {
    ord: i32,
    #[sqlx(flatten)]
    numbers: Numbers,
}

/// Stores one message if its author is a member, in one statement; `None` when its author
/// is not a member.
pub async fn insert_one(tx: &mut Tx, new: &NewMessage<'_>) -> Result<Option<Numbers>, sqlx::Error> {
    sqlx::query_as(
        "WITH next AS (UPDATE chats SET last_seq = last_seq + 1, last_activity_ms = $7 \
         WHERE id = $2 AND EXISTS (SELECT 1 FROM chat_members WHERE chat_id = $2 AND user_id = $3) \
         RETURNING last_seq, members_version) \
         INSERT INTO messages (id, chat_id, seq, version, author_id, content, nonce, created_at_ms, reply_to_id, mentions, search_words) \
         SELECT $1, $2, last_seq, last_seq, $3, $4, $5, $7, $6, $8, $9 FROM next \
         RETURNING seq, (SELECT members_version FROM next) AS members_version",
    )
    .bind(new.id)
    .bind(new.chat_id)
    .bind(new.author_id)
    .bind(new.content)
    .bind(new.nonce)
    .bind(new.reply_to.map(|reply| reply.id))
    .bind(new.now_ms)
    .bind(mentions_text(new.mentions))
    .bind(index_words(new.chat_id, new.content))
    .fetch_optional(&mut **tx)
    .await
}

/// Stores every message whose author is a member of its chat, in one statement: chats are
/// locked in id order (so two batches never wait for each other in a circle), each chat's
/// counter moves once by its number of messages, and messages are numbered in the order
/// they came. One outcome per message, in order (`None` when its author is not a member).
pub async fn insert_many(
    tx: &mut Tx,
    messages: &[NewMessage<'_>],
) -> Result<Vec<Option<Numbers>>, sqlx::Error> {
    let mut sql = String::from(
        "WITH input (ord, id, chat_id, author_id, content, nonce, reply_to_id, created_at_ms, mentions, search_words) AS (VALUES ",
    );
    for ord in 0..messages.len() {
        let p = ord * 9;
        let _ = write!(
            sql,
            "{}({ord}, ${}::bigint, ${}::text, ${}::bigint, ${}::text, ${}::text, ${}::bigint, ${}::bigint, ${}::text, ${}::text)",
            if ord == 0 { "" } else { ", " },
            p + 1,
            p + 2,
            p + 3,
            p + 4,
            p + 5,
            p + 6,
            p + 7,
            p + 8,
            p + 9,
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
         stored AS (INSERT INTO messages (id, chat_id, seq, version, author_id, content, nonce, created_at_ms, reply_to_id, mentions, search_words) \
           SELECT id, chat_id, seq, seq, author_id, content, nonce, created_at_ms, reply_to_id, mentions, search_words FROM numbered) \
         SELECT ord, seq, members_version FROM numbered",
    );
    let mut query = sqlx::query_as::<_, Numbered>(sqlx::AssertSqlSafe(sql));
    for message in messages {
        query = query
            .bind(message.id)
            .bind(message.chat_id)
            .bind(message.author_id)
            .bind(message.content)
            .bind(message.nonce)
            .bind(message.reply_to.map(|reply| reply.id))
            .bind(message.now_ms)
            .bind(mentions_text(message.mentions))
            .bind(index_words(message.chat_id, message.content));
    }
    let rows = query.fetch_all(&mut **tx).await?;
    let mut outcomes = vec![None; messages.len()];
    for row in rows {
        if let Some(outcome) = usize::try_from(row.ord)
            .ok()
            .and_then(|ord| outcomes.get_mut(ord))
        {
            *outcome = Some(row.numbers);
        }
    }
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ChatKind, Page, User};
    use crate::store::{Inserted, NewChat, Store};
    use astral_common::EventBus;
    use astral_common::db::Pool;
    use astral_common::outbox::Outbox;
    use astral_common::testing::{MigratedDatabase, TestDatabase};

    /// A store on each backend with users 1–3, direct chat `1_2` and group `g` of all three
    /// (whose "created" system message is its number 1).
    async fn stores() -> Vec<(&'static str, Store, Pool, TestDatabase)> {
        let mut stores = Vec::new();
        for MigratedDatabase {
            backend,
            pool,
            database,
        } in MigratedDatabase::both(&crate::MIGRATOR).await
        {
            let store = Store::new(pool.clone(), Outbox::start(pool.clone(), EventBus::local()));
            fill(&store).await;
            stores.push((backend, store, pool, database));
        }
        stores
    }

    async fn fill(store: &Store) {
        let users: Vec<User> = (1..=3)
            .map(|id| User {
                id,
                username: format!("user{id}"),
            })
            .collect();
        store.remember_users(&users).await.unwrap();
        for (id, kind, members) in [
            ("1_2", ChatKind::Direct, &[1, 2][..]),
            ("g", ChatKind::Group, &[1, 2, 3]),
        ] {
            let chat = NewChat {
                id,
                kind,
                name: "",
                owner_id: Some(1),
                members,
                now_ms: 1,
            };
            store.create_chat(&chat, |_| Vec::new()).await.unwrap();
        }
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
            attachment_ids: &[],
            now_ms: 100 + id,
            recipients: &[],
            recipients_version: 0,
        }
    }

    #[tokio::test]
    async fn one_statement_numbers_each_chat_in_order_and_refuses_strangers() {
        for (backend, store, pool, _database) in stores().await {
            if backend == "postgres" {
                numbers_each_chat_in_order_and_refuses_strangers(&store, &pool).await;
            }
        }
    }

    async fn numbers_each_chat_in_order_and_refuses_strangers(store: &Store, pool: &Pool) {
        let batch = [
            message(1, "1_2", 1),
            message(2, "g", 3),
            message(3, "1_2", 3), // not a member of the direct chat
            message(4, "1_2", 2),
            message(5, "nope", 1), // no such chat
            message(6, "g", 1),
            message(7, "1_2", 1),
        ];
        let mut tx = pool.begin().await.unwrap();
        let outcomes = insert_many(&mut tx, &batch).await.unwrap();
        tx.commit().await.unwrap();
        let seqs: Vec<Option<i64>> = outcomes
            .iter()
            .map(|o| o.map(|numbers| numbers.seq))
            .collect();
        assert_eq!(
            seqs,
            vec![Some(1), Some(2), None, Some(2), None, Some(3), Some(3)]
        );
        assert_eq!(store.chat_for("1_2", 1).await.unwrap().unwrap().last_seq, 3);
        assert_eq!(store.chat_for("g", 1).await.unwrap().unwrap().last_seq, 3);
        let latest = store.messages("1_2", Page::Latest, 10).await.unwrap();
        let mut ids: Vec<(i64, i64)> = latest.iter().map(|m| (m.seq, m.id)).collect();
        ids.sort();
        assert_eq!(
            ids,
            vec![(1, 1), (2, 4), (3, 7)],
            "numbered in the order they came"
        );
    }

    #[tokio::test]
    async fn a_batch_is_stored_in_order_in_one_transaction() {
        for (backend, store, _pool, _database) in stores().await {
            let batch = [
                message(1, "1_2", 1),
                message(2, "g", 3),
                message(3, "1_2", 3), // not a member of the direct chat
                message(4, "1_2", 2),
            ];
            let outcomes = store
                .insert_messages(&batch, &crate::events::message_created)
                .await;
            let seqs: Vec<Option<i64>> = outcomes
                .into_iter()
                .map(|outcome| match outcome.unwrap() {
                    Inserted::Stored { message, .. } => Some(message.seq),
                    _ => None,
                })
                .collect();
            assert_eq!(seqs, vec![Some(1), Some(2), None, Some(2)], "{backend}");
        }
    }

    #[tokio::test]
    async fn a_batch_that_fails_is_stored_one_by_one() {
        for (backend, store, _pool, _database) in stores().await {
            a_failed_batch_is_stored_one_by_one(backend, &store).await;
        }
    }

    async fn a_failed_batch_is_stored_one_by_one(backend: &str, store: &Store) {
        let event = &crate::events::message_created;
        let first = NewMessage {
            nonce: Some("n"),
            ..message(1, "g", 1)
        };
        assert!(matches!(
            store
                .insert_messages(std::slice::from_ref(&first), event)
                .await[0],
            Ok(Inserted::Stored { .. })
        ));
        // A retry of the first among others: the statement fails on the nonce, and every
        // other message in it is still stored, each once.
        let mut batch = vec![NewMessage { id: 2, ..first }];
        batch.extend((3..40).map(|id| message(id, "g", 2)));
        let outcomes = store.insert_messages(&batch, event).await;
        assert!(matches!(outcomes[0], Ok(Inserted::NonceTaken)));
        assert!(
            outcomes[1..]
                .iter()
                .all(|o| matches!(o, Ok(Inserted::Stored { .. })))
        );
        let chat = store.chat_for("g", 1).await.unwrap().unwrap();
        assert_eq!(
            chat.last_seq, 39,
            "{backend}: created, 1 + 37 stored, gapless"
        );
    }
}
