//! Friend requests: sending (or accepting theirs), accepting, declining or cancelling, and
//! the pending lists.

use super::{NewRequest, Sent, Store, Tx, are_friends, blocks, lock_pair, pair};
use crate::model::{FriendRequest, User};
use astral_common::Result;
use astral_common::outbox::Outgoing;

/// A request's row with both users.
#[derive(sqlx::FromRow)]
struct RequestRow {
    id: i64,
    created_at_ms: i64,
    from_id: i64,
    from_name: String,
    to_id: i64,
    to_name: String,
}

impl From<RequestRow> for FriendRequest {
    fn from(row: RequestRow) -> Self {
        Self {
            id: row.id,
            from: User {
                id: row.from_id,
                username: row.from_name,
            },
            to: User {
                id: row.to_id,
                username: row.to_name,
            },
            created_at_ms: row.created_at_ms,
        }
    }
}

const REQUEST_COLUMNS: &str = "r.id, r.created_at_ms, f.id AS from_id, f.username AS from_name, \
     t.id AS to_id, t.username AS to_name \
     FROM friend_requests r JOIN users f ON f.id = r.from_id JOIN users t ON t.id = r.to_id";

impl Store {
    /// Sends a request from `from` to `to` — or accepts theirs if they already asked — unless
    /// they are friends, it is already pending, or either blocked the other; with the `events`
    /// of what it did.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "send_request"))]
    pub async fn send_request(
        &self,
        new: NewRequest,
        events: impl FnOnce(&Sent) -> Vec<Outgoing>,
    ) -> Result<Sent> {
        let NewRequest {
            id,
            from,
            to,
            now_ms,
        } = new;
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
        Ok(rows.into_iter().map(FriendRequest::from).collect())
    }
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
    let Some(found) = row.map(FriendRequest::from) else {
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
    Ok(row.map(FriendRequest::from))
}

pub(super) async fn pending_between(
    tx: &mut Tx,
    low: i64,
    high: i64,
) -> Result<Option<FriendRequest>> {
    let sql = format!("SELECT {REQUEST_COLUMNS} WHERE r.low_id = $1 AND r.high_id = $2");
    let row: Option<RequestRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(low)
        .bind(high)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.map(FriendRequest::from))
}

/// Turns a pending request into a friendship; false if the request was already gone.
pub(super) async fn befriend(
    tx: &mut Tx,
    request_id: i64,
    low: i64,
    high: i64,
    now_ms: i64,
) -> Result<bool> {
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
