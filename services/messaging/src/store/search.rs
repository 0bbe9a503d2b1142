//! Search over messages with each database's own full-text index: an FTS5 table in SQLite,
//! a GIN index over a `tsvector` in PostgreSQL. Both index the words the service cut
//! (`search_words`, `crate::search`), so they find the same messages. The index is written
//! in the transaction of each send, edit and delete (`inserts.rs`, `messages.rs`): a search
//! never finds a message's old text, and a deleted message never.

use super::Store;
use super::messages::{MESSAGE_COLUMNS, MessageRow};
use crate::model::Message;
use crate::search::{Query, index_words};
use astral_common::Result;

/// What to search for, and where.
pub struct Search<'a> {
    pub user_id: i64,
    pub query: &'a Query,
    pub chat_id: Option<&'a str>,
    pub author_id: Option<i64>,
    /// Only messages with a lower id (older): the next page.
    pub before: Option<i64>,
    pub limit: i64,
}

/// The SQLite index: an FTS5 table holding no copy of the text (`content=''`), kept in step
/// with `messages.search_words` by triggers. The `ascii` tokenizer splits only on ASCII
/// punctuation and spaces and folds nothing beyond ASCII: the words arrive cut and folded.
const SQLITE_INDEX: &str = "\
    CREATE VIRTUAL TABLE IF NOT EXISTS message_search USING fts5(\
        words, content = '', contentless_delete = 1, tokenize = 'ascii', \
        detail = 'none'); \
    INSERT INTO message_search (message_search, rank) VALUES ('automerge', 16); \
    CREATE TRIGGER IF NOT EXISTS message_search_insert AFTER INSERT ON messages \
        WHEN new.search_words <> '' BEGIN \
        INSERT INTO message_search (rowid, words) VALUES (new.id, new.search_words); END; \
    CREATE TRIGGER IF NOT EXISTS message_search_update AFTER UPDATE OF search_words ON messages \
        BEGIN DELETE FROM message_search WHERE rowid = old.id; \
        INSERT INTO message_search (rowid, words) SELECT new.id, new.search_words \
        WHERE new.search_words <> ''; END; \
    CREATE TRIGGER IF NOT EXISTS message_search_delete AFTER DELETE ON messages \
        BEGIN DELETE FROM message_search WHERE rowid = old.id; END;";

/// The PostgreSQL index: the words as a `tsvector` of lexemes taken as they are (no parser,
/// no dictionary), in a GIN index of that expression.
const POSTGRES_DOCUMENT: &str = "array_to_tsvector(string_to_array(m.search_words, ' '))";
const POSTGRES_INDEX: &str = "CREATE INDEX IF NOT EXISTS messages_search ON messages \
    USING GIN (array_to_tsvector(string_to_array(search_words, ' ')))";

/// The advisory lock under which a PostgreSQL replica makes the index ("search" in ASCII).
const SEARCH_INDEX_LOCK: i64 = 0x7365_6172_6368;

/// Messages indexed per statement while filling in those written before search existed.
const BACKFILL_BATCH: i64 = 500;

#[derive(sqlx::FromRow)]
struct Unindexed {
    id: i64,
    chat_id: String,
    content: String,
}

impl Store {
    /// Makes the search index of this database if it is missing, then indexes the messages
    /// written before it existed.
    /// Replicas starting together take turns (`IF NOT EXISTS` alone races in PostgreSQL: two
    /// `CREATE INDEX` at once fail one of them on the catalog's unique index).
    pub async fn prepare_search(&self) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        if self.postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(SEARCH_INDEX_LOCK)
                .execute(&mut *tx)
                .await?;
        }
        let index = if self.postgres {
            POSTGRES_INDEX
        } else {
            SQLITE_INDEX
        };
        sqlx::raw_sql(sqlx::AssertSqlSafe(index))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        while self.index_some().await? > 0 {}
        Ok(())
    }

    /// Indexes up to [`BACKFILL_BATCH`] messages not indexed yet; how many.
    async fn index_some(&self) -> Result<usize> {
        let unindexed: Vec<Unindexed> = sqlx::query_as(
            "SELECT id, chat_id, content FROM messages WHERE search_words IS NULL ORDER BY id LIMIT $1",
        )
        .bind(BACKFILL_BATCH)
        .fetch_all(&self.pool)
        .await?;
        let mut tx = self.pool.begin().await?;
        for message in &unindexed {
            sqlx::query("UPDATE messages SET search_words = $1 WHERE id = $2")
                .bind(index_words(&message.chat_id, &message.content))
                .bind(message.id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(unindexed.len())
    }

    /// The messages that match, newest first, in the chats the user is a member of now
    /// (deleted messages have no words). The query names the chats searched, so that the
    /// index finds only their messages however common the words are elsewhere; the join
    /// with the memberships holds even if one changed meanwhile.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "search"))]
    pub async fn search(&self, search: &Search<'_>) -> Result<Vec<Message>> {
        let chats: Vec<String> = match search.chat_id {
            Some(chat_id) => vec![chat_id.to_owned()],
            None => {
                sqlx::query_scalar("SELECT chat_id FROM chat_members WHERE user_id = $1")
                    .bind(search.user_id)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        if chats.is_empty() {
            return Ok(Vec::new());
        }
        let chats = chats.iter().map(String::as_str);
        // The matches first, from the index alone, then the newest of them. PostgreSQL is
        // told so (a materialized CTE): otherwise, expecting many matches, it may walk all
        // messages newest first and test each (hundreds of milliseconds when they are few).
        let (hits, query) = if self.postgres {
            (
                format!(
                    "WITH hits AS MATERIALIZED \
                     (SELECT m.id FROM messages m WHERE {POSTGRES_DOCUMENT} @@ $2::tsquery) "
                ),
                search.query.tsquery(chats),
            )
        } else {
            (
                "WITH hits AS (SELECT rowid AS id FROM message_search WHERE message_search MATCH $2) "
                    .to_owned(),
                search.query.fts5(chats),
            )
        };
        let mut sql = format!(
            "{hits}SELECT {MESSAGE_COLUMNS} \
             JOIN chat_members cm ON cm.chat_id = m.chat_id AND cm.user_id = $1 \
             WHERE m.id IN (SELECT id FROM hits)"
        );
        let mut next = 3;
        let mut condition = |sql: &mut String, column: &str, operator: &str| {
            sql.push_str(&format!(" AND m.{column} {operator} ${next}"));
            next += 1;
        };
        if search.author_id.is_some() {
            condition(&mut sql, "author_id", "=");
        }
        if search.before.is_some() {
            condition(&mut sql, "id", "<");
        }
        sql.push_str(&format!(" ORDER BY m.id DESC LIMIT ${next}"));
        let mut rows = sqlx::query_as::<_, MessageRow>(sqlx::AssertSqlSafe(sql))
            .bind(search.user_id)
            .bind(query);
        if let Some(author_id) = search.author_id {
            rows = rows.bind(author_id);
        }
        if let Some(before) = search.before {
            rows = rows.bind(before);
        }
        let rows = rows.bind(search.limit).fetch_all(&self.pool).await?;
        let mut messages: Vec<Message> = rows.into_iter().map(Message::from).collect();
        self.fill_in(&mut messages).await?;
        Ok(messages)
    }
}
