//! The social database: SQL only, written once for PostgreSQL and SQLite.

use astral_common::db::{Pool, is_unique_violation};
use astral_common::{Error, Result};

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

/// What sending a request did.
#[derive(Debug)]
pub enum Sent {
    /// A new pending request.
    Requested(FriendRequest),
    /// The other person had already asked: their request was accepted instead.
    AcceptedTheirs(FriendRequest),
}

#[derive(Clone)]
pub struct Store {
    pool: Pool,
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

fn pair(a: i64, b: i64) -> (i64, i64) {
    if a < b { (a, b) } else { (b, a) }
}

impl Store {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    /// Records users met through the auth service (usernames never change).
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

    /// Sends a request from `from` to `to`, or accepts theirs if they already asked, in one
    /// transaction. `AlreadyExists` if they are friends or `from` already asked.
    pub async fn send_request(&self, id: i64, from: i64, to: i64, now_ms: i64) -> Result<Sent> {
        let (low, high) = pair(from, to);
        let mut tx = self.pool.begin().await?;
        if are_friends(&mut tx, low, high).await? {
            return Err(Error::conflict("you are already friends"));
        }
        let pending: Option<RequestRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {REQUEST_COLUMNS} WHERE r.low_id = $1 AND r.high_id = $2"
        )))
        .bind(low)
        .bind(high)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(pending) = pending.map(request) {
            if pending.from.id == from {
                return Err(Error::conflict("a friend request is already pending"));
            }
            befriend(&mut tx, pending.id, low, high, now_ms).await?;
            tx.commit().await?;
            return Ok(Sent::AcceptedTheirs(pending));
        }
        let inserted = sqlx::query(
            "INSERT INTO friend_requests (id, from_id, to_id, low_id, high_id, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(from)
        .bind(to)
        .bind(low)
        .bind(high)
        .bind(now_ms)
        .execute(&mut *tx)
        .await;
        match inserted {
            // The other person's request committed between our read and our write.
            Err(error) if is_unique_violation(&error) => {
                return Err(Error::conflict("a friend request is already pending"));
            }
            other => other?,
        };
        let created: RequestRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {REQUEST_COLUMNS} WHERE r.id = $1"
        )))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Sent::Requested(request(created)))
    }

    /// Accepts a request addressed to `recipient`; `None` if there is no such request.
    pub async fn accept_request(
        &self,
        request_id: i64,
        recipient: i64,
        now_ms: i64,
    ) -> Result<Option<FriendRequest>> {
        let mut tx = self.pool.begin().await?;
        let Some(found) = self
            .pending_to_or_from(&mut tx, request_id, "r.to_id", recipient)
            .await?
        else {
            return Ok(None);
        };
        let (low, high) = pair(found.from.id, found.to.id);
        if !befriend(&mut tx, found.id, low, high, now_ms).await? {
            return Ok(None);
        }
        tx.commit().await?;
        Ok(Some(found))
    }

    /// Deletes a pending request that `actor` received (`by_recipient`) or sent; `None` if
    /// there is no such request.
    pub async fn delete_request(
        &self,
        request_id: i64,
        actor: i64,
        by_recipient: bool,
    ) -> Result<Option<FriendRequest>> {
        let mut tx = self.pool.begin().await?;
        let column = if by_recipient { "r.to_id" } else { "r.from_id" };
        let Some(found) = self
            .pending_to_or_from(&mut tx, request_id, column, actor)
            .await?
        else {
            return Ok(None);
        };
        let deleted = sqlx::query("DELETE FROM friend_requests WHERE id = $1")
            .bind(found.id)
            .execute(&mut *tx)
            .await?;
        if deleted.rows_affected() != 1 {
            return Ok(None);
        }
        tx.commit().await?;
        Ok(Some(found))
    }

    async fn pending_to_or_from(
        &self,
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
        Ok(row.map(request))
    }

    /// Ends a friendship; false if there was none.
    pub async fn remove_friendship(&self, a: i64, b: i64) -> Result<bool> {
        let (low, high) = pair(a, b);
        let deleted = sqlx::query("DELETE FROM friendships WHERE low_id = $1 AND high_id = $2")
            .bind(low)
            .bind(high)
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected() == 1)
    }

    pub async fn are_friends(&self, a: i64, b: i64) -> Result<bool> {
        let (low, high) = pair(a, b);
        let mut tx = self.pool.begin().await?;
        let friends = are_friends(&mut tx, low, high).await?;
        tx.commit().await?;
        Ok(friends)
    }

    /// `user`'s friends, by username.
    pub async fn friends(&self, user: i64) -> Result<Vec<User>> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT u.id, u.username FROM friendships f \
             JOIN users u ON u.id = CASE WHEN f.low_id = $1 THEN f.high_id ELSE f.low_id END \
             WHERE f.low_id = $1 OR f.high_id = $1 ORDER BY u.username",
        )
        .bind(user)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, username)| User { id, username })
            .collect())
    }

    /// Pending requests `user` received (`incoming`) or sent, oldest first.
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

async fn are_friends(tx: &mut Tx, low: i64, high: i64) -> Result<bool> {
    let found: Option<(i64,)> =
        sqlx::query_as("SELECT low_id FROM friendships WHERE low_id = $1 AND high_id = $2")
            .bind(low)
            .bind(high)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(found.is_some())
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
