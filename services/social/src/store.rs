//! The social database: SQL only, written once for PostgreSQL and SQLite.
//!
//! Every change between two users first takes the pair's lock row (`pair_locks`), so that
//! concurrent changes to one pair — on any number of replicas — happen one after the other.

use astral_common::Result;
use astral_common::db::Pool;
use astral_common::outbox::{Outbox, Outgoing};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FriendRequest {
    pub id: i64,
    pub from: User,
    pub to: User,
    pub created_at_ms: i64,
}

/// What sending a request found and did.
#[derive(Debug, PartialEq, Eq)]
pub enum Sent {
    /// A new pending request.
    Requested(FriendRequest),
    /// The other person had already asked: their request was accepted instead.
    AcceptedTheirs(FriendRequest),
    /// Nothing done: they are friends already.
    AlreadyFriends,
    /// Nothing done: the sender's request is already pending.
    AlreadyRequested,
    /// Nothing done: the sender has blocked the recipient.
    SenderBlocked,
    /// Nothing done: the recipient has blocked the sender.
    RecipientBlocked,
}

/// What blocking undid.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Blocked {
    /// They were friends and no longer are.
    pub unfriended: bool,
    /// Pending requests between them, now deleted.
    pub requests: Vec<FriendRequest>,
}

/// The database, and the relay that publishes the events its transactions write to the
/// outbox (each change and its events commit together; `astral_common::outbox`).
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    outbox: Outbox,
}

type Tx = sqlx::Transaction<'static, sqlx::Any>;

const REQUEST_COLUMNS: &str = "r.id, r.created_at_ms, f.id, f.username, t.id, t.username \
     FROM friend_requests r JOIN users f ON f.id = r.from_id JOIN users t ON t.id = r.to_id";

type RequestRow = (i64, i64, i64, String, i64, String);

fn request(row: RequestRow) -> FriendRequest {
    let (id, created_at_ms, from_id, from_name, to_id, to_name) = row;
    FriendRequest {
        id,
        from: User {
            id: from_id,
            username: from_name,
        },
        to: User {
            id: to_id,
            username: to_name,
        },
        created_at_ms,
    }
}

fn users(rows: Vec<(i64, String)>) -> Vec<User> {
    rows.into_iter()
        .map(|(id, username)| User { id, username })
        .collect()
}

fn pair(a: i64, b: i64) -> (i64, i64) {
    if a < b { (a, b) } else { (b, a) }
}

impl Store {
    pub fn new(pool: Pool, outbox: Outbox) -> Self {
        Self { pool, outbox }
    }

    /// Records users met through the auth service (usernames never change).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "remember_users"))]
    pub async fn remember_users(&self, users: &[&User]) -> Result<()> {
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

    /// Sends a request from `from` to `to` — or accepts theirs if they already asked — unless
    /// they are friends, it is already pending, or either blocked the other; with the `events`
    /// of what it did.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "send_request"))]
    pub async fn send_request(
        &self,
        (id, from, to): (i64, i64, i64),
        now_ms: i64,
        events: impl FnOnce(&Sent) -> Vec<Outgoing>,
    ) -> Result<Sent> {
        let (low, high) = pair(from, to);
        let mut tx = self.pool.begin().await?;
        lock_pair(&mut tx, low, high).await?;
        if blocks(&mut tx, from, to).await? {
            return Ok(Sent::SenderBlocked);
        }
        if blocks(&mut tx, to, from).await? {
            return Ok(Sent::RecipientBlocked);
        }
        if are_friends(&mut tx, low, high).await? {
            return Ok(Sent::AlreadyFriends);
        }
        if let Some(pending) = pending_between(&mut tx, low, high).await? {
            if pending.from.id == from {
                return Ok(Sent::AlreadyRequested);
            }
            befriend(&mut tx, pending.id, low, high, now_ms).await?;
            let sent = Sent::AcceptedTheirs(pending);
            self.outbox.commit(tx, events(&sent)).await?;
            return Ok(sent);
        }
        sqlx::query(
            "INSERT INTO friend_requests (id, from_id, to_id, low_id, high_id, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(from)
        .bind(to)
        .bind(low)
        .bind(high)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        let created = request_by_id(&mut tx, id).await?;
        let sent = created.map_or(Sent::AlreadyRequested, Sent::Requested);
        self.outbox.commit(tx, events(&sent)).await?;
        Ok(sent)
    }

    /// Accepts a request addressed to `recipient`, with its `events`; `None` if there is no
    /// such request.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "accept_request"))]
    pub async fn accept_request(
        &self,
        request_id: i64,
        recipient: i64,
        now_ms: i64,
        events: impl FnOnce(&FriendRequest) -> Vec<Outgoing>,
    ) -> Result<Option<FriendRequest>> {
        let mut tx = self.pool.begin().await?;
        let Some(found) = locked_request(&mut tx, request_id, "r.to_id", recipient).await? else {
            return Ok(None);
        };
        let (low, high) = pair(found.from.id, found.to.id);
        if !befriend(&mut tx, found.id, low, high, now_ms).await? {
            return Ok(None);
        }
        self.outbox.commit(tx, events(&found)).await?;
        Ok(Some(found))
    }

    /// Deletes a pending request that `actor` received (`by_recipient`) or sent, with its
    /// `events`; `None` if there is no such request.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "delete_request"))]
    pub async fn delete_request(
        &self,
        request_id: i64,
        actor: i64,
        by_recipient: bool,
        events: impl FnOnce(&FriendRequest) -> Vec<Outgoing>,
    ) -> Result<Option<FriendRequest>> {
        let mut tx = self.pool.begin().await?;
        let column = if by_recipient { "r.to_id" } else { "r.from_id" };
        let Some(found) = locked_request(&mut tx, request_id, column, actor).await? else {
            return Ok(None);
        };
        let deleted = sqlx::query("DELETE FROM friend_requests WHERE id = $1")
            .bind(found.id)
            .execute(&mut *tx)
            .await?;
        if deleted.rows_affected() != 1 {
            return Ok(None);
        }
        self.outbox.commit(tx, events(&found)).await?;
        Ok(Some(found))
    }

    /// Ends a friendship, with its `events`; false if there was none.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "remove_friendship"))]
    pub async fn remove_friendship(&self, a: i64, b: i64, events: Vec<Outgoing>) -> Result<bool> {
        let (low, high) = pair(a, b);
        let mut tx = self.pool.begin().await?;
        lock_pair(&mut tx, low, high).await?;
        let removed = unfriend(&mut tx, low, high).await?;
        if removed {
            self.outbox.commit(tx, events).await?;
        }
        Ok(removed)
    }

    /// `blocker` blocks `blocked`: the friendship and pending requests between them end, with
    /// the `events` of what it undid. Blocking twice changes nothing.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "block"))]
    pub async fn block(
        &self,
        blocker: i64,
        blocked: i64,
        now_ms: i64,
        events: impl FnOnce(&Blocked) -> Vec<Outgoing>,
    ) -> Result<Blocked> {
        let (low, high) = pair(blocker, blocked);
        let mut tx = self.pool.begin().await?;
        lock_pair(&mut tx, low, high).await?;
        sqlx::query(
            "INSERT INTO blocks (blocker_id, blocked_id, created_at_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (blocker_id, blocked_id) DO NOTHING",
        )
        .bind(blocker)
        .bind(blocked)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        let unfriended = unfriend(&mut tx, low, high).await?;
        let requests: Vec<FriendRequest> = pending_between(&mut tx, low, high)
            .await?
            .into_iter()
            .collect();
        sqlx::query("DELETE FROM friend_requests WHERE low_id = $1 AND high_id = $2")
            .bind(low)
            .bind(high)
            .execute(&mut *tx)
            .await?;
        let undone = Blocked {
            unfriended,
            requests,
        };
        self.outbox.commit(tx, events(&undone)).await?;
        Ok(undone)
    }

    /// Lifts a block; false if there was none.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "unblock"))]
    pub async fn unblock(&self, blocker: i64, blocked: i64) -> Result<bool> {
        let (low, high) = pair(blocker, blocked);
        let mut tx = self.pool.begin().await?;
        lock_pair(&mut tx, low, high).await?;
        let deleted = sqlx::query("DELETE FROM blocks WHERE blocker_id = $1 AND blocked_id = $2")
            .bind(blocker)
            .bind(blocked)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(deleted.rows_affected() == 1)
    }

    /// The users `blocker` has blocked, by username.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "blocked_users"))]
    pub async fn blocked_users(&self, blocker: i64) -> Result<Vec<User>> {
        let rows = sqlx::query_as(
            "SELECT u.id, u.username FROM blocks b JOIN users u ON u.id = b.blocked_id \
             WHERE b.blocker_id = $1 ORDER BY u.username",
        )
        .bind(blocker)
        .fetch_all(&self.pool)
        .await?;
        Ok(users(rows))
    }

    /// For each pair, whether its two users are friends, in one statement.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "friendships_among"))]
    pub async fn friendships_among(&self, pairs: &[(i64, i64)]) -> Result<Vec<bool>> {
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (0..pairs.len())
            .map(|n| format!("(${}, ${})", 2 * n + 1, 2 * n + 2))
            .collect();
        let sql = format!(
            "SELECT low_id, high_id FROM friendships WHERE (low_id, high_id) IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query_as::<_, (i64, i64)>(sqlx::AssertSqlSafe(sql));
        for &(a, b) in pairs {
            let (low, high) = pair(a, b);
            query = query.bind(low).bind(high);
        }
        let found: std::collections::HashSet<(i64, i64)> =
            query.fetch_all(&self.pool).await?.into_iter().collect();
        Ok(pairs
            .iter()
            .map(|&(a, b)| found.contains(&pair(a, b)))
            .collect())
    }

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "are_friends"))]
    pub async fn are_friends(&self, a: i64, b: i64) -> Result<bool> {
        let (low, high) = pair(a, b);
        // One statement, no transaction: this is on messaging's send path.
        let found: Option<(i64,)> =
            sqlx::query_as("SELECT low_id FROM friendships WHERE low_id = $1 AND high_id = $2")
                .bind(low)
                .bind(high)
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.is_some())
    }

    /// Up to `limit` of `user`'s friends whose username sorts after `after`, by username.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "friends"))]
    pub async fn friends(&self, user: i64, after: &str, limit: i64) -> Result<Vec<User>> {
        let rows = sqlx::query_as(
            "SELECT u.id, u.username FROM friendships f \
             JOIN users u ON u.id = CASE WHEN f.low_id = $1 THEN f.high_id ELSE f.low_id END \
             WHERE (f.low_id = $1 OR f.high_id = $1) AND u.username > $2 ORDER BY u.username LIMIT $3",
        )
        .bind(user)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(users(rows))
    }

    /// Pending requests `user` received (`incoming`) or sent, oldest first.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "pending_requests"))]
    pub async fn pending_requests(&self, user: i64, incoming: bool) -> Result<Vec<FriendRequest>> {
        let column = if incoming { "r.to_id" } else { "r.from_id" };
        let sql =
            format!("SELECT {REQUEST_COLUMNS} WHERE {column} = $1 ORDER BY r.created_at_ms, r.id");
        let rows: Vec<RequestRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(user)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(request).collect())
    }
}

/// Takes the pair's lock row until the transaction ends.
async fn lock_pair(tx: &mut Tx, low: i64, high: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO pair_locks (low_id, high_id, changes) VALUES ($1, $2, 1) \
         ON CONFLICT (low_id, high_id) DO UPDATE SET changes = pair_locks.changes + 1",
    )
    .bind(low)
    .bind(high)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A pending request `user` is party to (as `column`), with its pair locked.
async fn locked_request(
    tx: &mut Tx,
    request_id: i64,
    column: &str,
    user: i64,
) -> Result<Option<FriendRequest>> {
    let sql = format!("SELECT {REQUEST_COLUMNS} WHERE r.id = $1 AND {column} = $2");
    let row: Option<RequestRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(request_id)
        .bind(user)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(found) = row.map(request) else {
        return Ok(None);
    };
    let (low, high) = pair(found.from.id, found.to.id);
    lock_pair(tx, low, high).await?;
    // Read again under the lock: a concurrent change may have removed it meanwhile.
    request_by_id(tx, found.id).await
}

async fn request_by_id(tx: &mut Tx, id: i64) -> Result<Option<FriendRequest>> {
    let sql = format!("SELECT {REQUEST_COLUMNS} WHERE r.id = $1");
    let row: Option<RequestRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.map(request))
}

async fn pending_between(tx: &mut Tx, low: i64, high: i64) -> Result<Option<FriendRequest>> {
    let sql = format!("SELECT {REQUEST_COLUMNS} WHERE r.low_id = $1 AND r.high_id = $2");
    let row: Option<RequestRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(low)
        .bind(high)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.map(request))
}

async fn are_friends(tx: &mut Tx, low: i64, high: i64) -> Result<bool> {
    let found: Option<(i64,)> =
        sqlx::query_as("SELECT low_id FROM friendships WHERE low_id = $1 AND high_id = $2")
            .bind(low)
            .bind(high)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(found.is_some())
}

/// Whether `blocker` has blocked `blocked`.
async fn blocks(tx: &mut Tx, blocker: i64, blocked: i64) -> Result<bool> {
    let found: Option<(i64,)> =
        sqlx::query_as("SELECT blocker_id FROM blocks WHERE blocker_id = $1 AND blocked_id = $2")
            .bind(blocker)
            .bind(blocked)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(found.is_some())
}

async fn unfriend(tx: &mut Tx, low: i64, high: i64) -> Result<bool> {
    let deleted = sqlx::query("DELETE FROM friendships WHERE low_id = $1 AND high_id = $2")
        .bind(low)
        .bind(high)
        .execute(&mut **tx)
        .await?;
    Ok(deleted.rows_affected() == 1)
}

/// Turns a pending request into a friendship; false if the request was already gone.
async fn befriend(tx: &mut Tx, request_id: i64, low: i64, high: i64, now_ms: i64) -> Result<bool> {
    let deleted = sqlx::query("DELETE FROM friend_requests WHERE id = $1")
        .bind(request_id)
        .execute(&mut **tx)
        .await?;
    if deleted.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query("INSERT INTO friendships (low_id, high_id, created_at_ms) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
        .bind(low)
        .bind(high)
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
    Ok(true)
}
