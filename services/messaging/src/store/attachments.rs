//! Attachments' rows: uploads recorded, attached to a message once, read by those allowed,
//! expired; and the queue of objects to remove from storage (`storage_deletions`), written
//! in the transaction that stops an object being needed.

use super::{Store, Tx};
use crate::model::{Attachment, Message};
use crate::storage::Object;
use astral_common::Result;

const ATTACHMENT_COLUMNS: &str = "a.id, a.filename, a.content_type, a.size, a.width, a.height";
/// The same, unqualified: SQLite's `RETURNING` takes no table names.
const RETURNED_COLUMNS: &str = "id, filename, content_type, size, width, height";

/// How long bytes of an upload (or a thumbnail) in progress are kept if it never finishes
/// (a crash).
pub const UPLOAD_LEASE_MS: i64 = 60 * 60 * 1000;

/// The `thumbnail_type` of a picture no thumbnail could be made of.
pub const NO_THUMBNAIL: &str = "";

/// An attachment as stored, with what decides who may read it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredAttachment {
    #[sqlx(flatten)]
    pub attachment: Attachment,
    pub thumbnail_type: Option<String>,
}

#[derive(sqlx::FromRow)]
struct AttachedRow {
    message_id: i64,
    #[sqlx(flatten)]
    attachment: Attachment,
}

/// The storage keys of an attachment's objects: its file, and its thumbnail.
fn objects_of(id: i64) -> [String; 2] {
    let id = id.to_string();
    [Object::File(&id).key(), Object::Thumbnail(&id).key()]
}

impl Store {
    /// An upload begins: its bytes are removed in an hour unless [`Store::upload_finished`]
    /// commits first.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "upload_started"))]
    pub async fn upload_started(&self, id: i64, now_ms: i64) -> Result<()> {
        let [file, _] = objects_of(id);
        sqlx::query("INSERT INTO storage_deletions (object, due_ms) VALUES ($1, $2)")
            .bind(file)
            .bind(now_ms + UPLOAD_LEASE_MS)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// An upload's bytes are stored whole: its row is written, and its bytes kept.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "upload_finished"))]
    pub async fn upload_finished(
        &self,
        attachment: &Attachment,
        uploader_id: i64,
        now_ms: i64,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO attachments (id, uploader_id, filename, content_type, size, width, height, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(attachment.id)
        .bind(uploader_id)
        .bind(&attachment.filename)
        .bind(&attachment.content_type)
        .bind(attachment.size)
        .bind(attachment.width)
        .bind(attachment.height)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        let [file, _] = objects_of(attachment.id);
        sqlx::query("DELETE FROM storage_deletions WHERE object = $1")
            .bind(file)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// An upload failed: whatever of its bytes were stored goes now.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "upload_failed"))]
    pub async fn upload_failed(&self, id: i64, now_ms: i64) -> Result<()> {
        let [file, _] = objects_of(id);
        sqlx::query("UPDATE storage_deletions SET due_ms = $1 WHERE object = $2")
            .bind(now_ms)
            .bind(file)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// How many of `uploader`'s files wait to be attached.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "unattached_count"))]
    pub async fn unattached_count(&self, uploader: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM attachments WHERE uploader_id = $1 AND message_id IS NULL",
        )
        .bind(uploader)
        .fetch_one(&self.pool)
        .await?)
    }

    /// The attachment if `viewer` may read it: its uploader, or a member of the chat whose
    /// message holds it.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "attachment_for"))]
    pub async fn attachment_for(&self, id: i64, viewer: i64) -> Result<Option<StoredAttachment>> {
        let sql = format!(
            "SELECT {ATTACHMENT_COLUMNS}, a.thumbnail_type FROM attachments a WHERE a.id = $1 \
             AND (a.uploader_id = $2 OR EXISTS (SELECT 1 FROM chat_members m \
               WHERE m.chat_id = a.chat_id AND m.user_id = $2))"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(viewer)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// A thumbnail is about to be made: its object is removed in an hour unless
    /// [`Store::thumbnail_made`] keeps it (a crash between writing it and recording it).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "thumbnail_started"))]
    pub async fn thumbnail_started(&self, id: i64, now_ms: i64) -> Result<()> {
        let [_, thumbnail] = objects_of(id);
        // A removal already queued (the file was deleted meanwhile) keeps its sooner time.
        sqlx::query(
            "INSERT INTO storage_deletions (object, due_ms) VALUES ($1, $2) \
             ON CONFLICT (object) DO NOTHING",
        )
        .bind(thumbnail)
        .bind(now_ms + UPLOAD_LEASE_MS)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records that an image's thumbnail is stored, as `content_type` ([`NO_THUMBNAIL`] if
    /// none could be made). False if the attachment was deleted meanwhile: then the
    /// thumbnail just written is queued for removal now, or it would outlive its file.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "thumbnail_made"))]
    pub async fn thumbnail_made(&self, id: i64, content_type: &str, now_ms: i64) -> Result<bool> {
        let [_, thumbnail] = objects_of(id);
        let mut tx = self.pool.begin().await?;
        let kept = sqlx::query("UPDATE attachments SET thumbnail_type = $1 WHERE id = $2")
            .bind(content_type)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        if kept {
            sqlx::query("DELETE FROM storage_deletions WHERE object = $1")
                .bind(thumbnail)
                .execute(&mut *tx)
                .await?;
        } else {
            sqlx::query(
                "INSERT INTO storage_deletions (object, due_ms) VALUES ($1, $2) \
                 ON CONFLICT (object) DO UPDATE SET due_ms = excluded.due_ms",
            )
            .bind(thumbnail)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(kept)
    }

    /// Fills in the attachments of `messages`.
    pub(super) async fn attach_files(&self, messages: &mut [Message]) -> Result<()> {
        self.per_message(
            messages,
            |ids| {
                format!(
                    "SELECT a.message_id, {ATTACHMENT_COLUMNS} FROM attachments a \
                     WHERE a.message_id IN ({ids}) ORDER BY a.message_id, a.position"
                )
            },
            |row: &AttachedRow| row.message_id,
            |message, row| message.attachments.push(row.attachment),
        )
        .await
    }

    /// Up to `limit` objects due to be removed from storage.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "due_deletions"))]
    pub async fn due_deletions(&self, now_ms: i64, limit: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT object FROM storage_deletions WHERE due_ms <= $1 ORDER BY due_ms LIMIT $2",
        )
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// An object is gone from storage (or was never there).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "object_deleted"))]
    pub async fn object_deleted(&self, object: &str) -> Result<()> {
        sqlx::query("DELETE FROM storage_deletions WHERE object = $1")
            .bind(object)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// An object storage could not remove now: tried again at `retry_ms`.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "deletion_postponed"))]
    pub async fn deletion_postponed(&self, object: &str, retry_ms: i64) -> Result<()> {
        sqlx::query("UPDATE storage_deletions SET due_ms = $1 WHERE object = $2")
            .bind(retry_ms)
            .bind(object)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes up to `limit` files uploaded before `cutoff_ms` and never attached (their
    /// objects queued for removal); how many.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "expire_unattached"))]
    pub async fn expire_unattached(
        &self,
        cutoff_ms: i64,
        now_ms: i64,
        limit: i64,
    ) -> Result<usize> {
        let mut tx = self.pool.begin().await?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM attachments WHERE message_id IS NULL AND created_at_ms < $1 \
             ORDER BY created_at_ms LIMIT $2",
        )
        .bind(cutoff_ms)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        for &id in &ids {
            // Attached meanwhile (another replica's send committed first): kept.
            let removed =
                sqlx::query("DELETE FROM attachments WHERE id = $1 AND message_id IS NULL")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            if removed.rows_affected() == 1 {
                queue_deletion(&mut tx, id, now_ms).await?;
            }
        }
        tx.commit().await?;
        Ok(ids.len())
    }
}

/// Attaches the uploader's unattached files `ids` to a message just stored, in that order;
/// `None` (nothing changed) unless every one of them was.
pub(super) async fn claim(
    tx: &mut Tx,
    message: &Message,
    ids: &[i64],
) -> Result<Option<Vec<Attachment>>> {
    let mut claimed = Vec::with_capacity(ids.len());
    for (position, &id) in ids.iter().enumerate() {
        let sql = format!(
            "UPDATE attachments SET message_id = $1, chat_id = $2, position = $3 \
             WHERE id = $4 AND uploader_id = $5 AND message_id IS NULL \
             RETURNING {RETURNED_COLUMNS}"
        );
        let row: Option<Attachment> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(message.id)
            .bind(&message.chat_id)
            .bind(position as i64)
            .bind(id)
            .bind(message.author_id)
            .fetch_optional(&mut **tx)
            .await?;
        match row {
            Some(attachment) => claimed.push(attachment),
            None => return Ok(None),
        }
    }
    Ok(Some(claimed))
}

/// Deletes a message's attachments, their objects queued for removal.
pub(super) async fn delete_of_message(tx: &mut Tx, message_id: i64, now_ms: i64) -> Result<()> {
    let ids: Vec<i64> =
        sqlx::query_scalar("DELETE FROM attachments WHERE message_id = $1 RETURNING id")
            .bind(message_id)
            .fetch_all(&mut **tx)
            .await?;
    for id in ids {
        queue_deletion(tx, id, now_ms).await?;
    }
    Ok(())
}

/// Queues an attachment's objects (its file, and its thumbnail if any) for removal now.
async fn queue_deletion(tx: &mut Tx, id: i64, now_ms: i64) -> Result<()> {
    for object in objects_of(id) {
        sqlx::query(
            "INSERT INTO storage_deletions (object, due_ms) VALUES ($1, $2) \
             ON CONFLICT (object) DO UPDATE SET due_ms = excluded.due_ms",
        )
        .bind(object)
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
