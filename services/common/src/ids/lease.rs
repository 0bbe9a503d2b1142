//! The node part of every id, leased from the service's database: two processes that write to
//! the same database never hold the same node at once, so their ids never collide (a random
//! node did, for one pair of replicas in 1,024, and then on most ids made in the same
//! millisecond).
//!
//! Each database has a table `id_nodes` (a migration of each service). A process claims a
//! free node (one never claimed, or whose lease ran out) for [`LEASE`] and renews it every
//! [`RENEW_EVERY`]; a node whose process stopped is free again a minute later. A renewal that finds the node taken
//! (the process was cut off from its database longer than the lease) claims another and
//! makes ids with that from then on.

use super::{NODES, set_node};
use crate::db::Pool;
use crate::time::now_ms;
use anyhow::Context as _;
use std::time::Duration;

/// How long a claim holds without renewal.
pub const LEASE: Duration = Duration::from_secs(60);
/// How often a claim is renewed.
const RENEW_EVERY: Duration = Duration::from_secs(15);

/// A node held in one database; renewed while this lives.
pub struct NodeLease {
    task: tokio::task::JoinHandle<()>,
}

impl NodeLease {
    /// Claims a free node in `pool`'s `id_nodes` and makes this process's ids with it.
    pub async fn start(pool: Pool) -> anyhow::Result<Self> {
        let holder = rand::random::<i64>();
        let node = claim(&pool, holder, now_ms()).await?;
        set_node(node);
        tracing::info!(node, "ids are made with this node");
        let task = tokio::spawn(async move {
            let mut node = node;
            loop {
                tokio::time::sleep(RENEW_EVERY).await;
                match renew(&pool, node, holder, now_ms()).await {
                    Ok(true) => {}
                    Ok(false) => match claim(&pool, holder, now_ms()).await {
                        Ok(other) => {
                            tracing::warn!(
                                lost = node,
                                node = other,
                                "the id node's lease was lost; another was claimed"
                            );
                            node = other;
                            set_node(node);
                        }
                        Err(error) => tracing::warn!(
                            error = format!("{error:#}"),
                            "no id node could be claimed"
                        ),
                    },
                    Err(error) => {
                        tracing::warn!(%error, "the id node's lease could not be renewed")
                    }
                }
            }
        });
        Ok(Self { task })
    }
}

impl Drop for NodeLease {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Claims a node for `holder`: the first free one from a random start (so that processes
/// starting together rarely try the same one). Two claimants of one node: the database's
/// conditional update lets one through.
pub async fn claim(pool: &Pool, holder: i64, now_ms: i64) -> anyhow::Result<i64> {
    let until = now_ms + LEASE.as_millis() as i64;
    let start = rand::random::<i64>().rem_euclid(NODES);
    for step in 0..NODES {
        let node = (start + step) % NODES;
        let claimed: Option<i64> = sqlx::query_scalar(
            "INSERT INTO id_nodes (node, holder, until_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (node) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms \
             WHERE id_nodes.until_ms < $4 RETURNING node",
        )
        .bind(node)
        .bind(holder)
        .bind(until)
        .bind(now_ms)
        .fetch_optional(pool)
        .await
        .context("claim an id node")?;
        if let Some(node) = claimed {
            return Ok(node);
        }
    }
    anyhow::bail!("all {NODES} id nodes are leased: too many processes share this database")
}

/// Renews `holder`'s lease of `node`; false if it is not theirs any more.
pub async fn renew(pool: &Pool, node: i64, holder: i64, now_ms: i64) -> Result<bool, sqlx::Error> {
    let renewed = sqlx::query("UPDATE id_nodes SET until_ms = $1 WHERE node = $2 AND holder = $3")
        .bind(now_ms + LEASE.as_millis() as i64)
        .bind(node)
        .bind(holder)
        .execute(pool)
        .await?;
    Ok(renewed.rows_affected() == 1)
}
