//! The attachments' janitor: expires files uploaded and never attached within 24 hours, and
//! removes from storage the objects the database has queued for removal (a deleted
//! message's files, expired uploads, the remains of failed ones). Each replica runs one;
//! removing an object twice is harmless, so they need no coordination.

use crate::storage::Storage;
use crate::store::Store;
use astral_common::time;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How long an upload may wait to be attached to a message.
pub const UNATTACHED_LIFETIME_MS: i64 = 24 * 60 * 60 * 1000;
/// How often the janitor looks, when nobody wakes it sooner.
const ROUND: Duration = Duration::from_secs(30);
/// Rows handled in one go.
const BATCH: i64 = 200;
/// When storage fails to remove an object, how long until it is tried again.
const RETRY_MS: i64 = 60_000;

/// The running janitor; it stops when this is dropped.
pub struct Janitor {
    wake: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Janitor {
    pub fn start(store: Store, storage: Storage) -> Self {
        let wake = Arc::new(Notify::new());
        let woken = Arc::clone(&wake);
        let task = tokio::spawn(async move {
            loop {
                if let Err(error) = round(&store, &storage, time::now_ms()).await {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "the attachments' janitor failed a round"
                    );
                }
                tokio::select! {
                    () = woken.notified() => {}
                    () = tokio::time::sleep(ROUND) => {}
                }
            }
        });
        Self { wake, task }
    }

    /// Wakes it: something was queued for removal.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

impl Drop for Janitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One round: uploads past their lifetime expired, then every object due removed.
pub async fn round(store: &Store, storage: &Storage, now_ms: i64) -> astral_common::Result<()> {
    while store
        .expire_unattached(now_ms - UNATTACHED_LIFETIME_MS, now_ms, BATCH)
        .await?
        == BATCH as usize
    {}
    loop {
        let due = store.due_deletions(now_ms, BATCH).await?;
        for object in &due {
            match storage.delete(object).await {
                Ok(()) => store.object_deleted(object).await?,
                Err(error) => {
                    tracing::warn!(%error, %object, "storage did not remove an object; trying again later");
                    store.deletion_postponed(object, now_ms + RETRY_MS).await?;
                }
            }
        }
        if due.len() < BATCH as usize {
            return Ok(());
        }
    }
}
