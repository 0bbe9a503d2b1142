//! Attachments: uploading a file (bounded while it streams, images measured and stripped of
//! their metadata), and reading one (its uploader, or a member of a chat holding it).

use super::MessagingService;
use crate::domain::{declared_type, file_name};
use crate::images::Scrubber;
use crate::model::Attachment;
use crate::storage::{Object, Writer};
use crate::store::{NO_THUMBNAIL, StoredAttachment};
use crate::thumbnails;
use astral_common::{Error, Result, ids, time};
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt as _, TryStreamExt as _};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tracing::instrument;

/// The largest file: 25 MiB.
pub const MAX_FILE_BYTES: i64 = 25 * 1024 * 1024;
/// Files one user may have uploaded and not attached yet.
const MAX_UNATTACHED: i64 = 50;
/// Uploads one process stores at once; each holds at most two 5 MiB parts in memory.
pub const UPLOADS_AT_ONCE: usize = 8;
/// Uploads one user may have in flight at once on one process (so that one user cannot
/// hold every turn with slow uploads).
pub const UPLOADS_PER_USER: usize = 3;
/// How long an upload waits for its turn before the caller is told to try again.
const UPLOAD_QUEUE_WAIT: Duration = Duration::from_secs(5);
/// How long an upload may go without sending anything.
const UPLOAD_IDLE: Duration = Duration::from_secs(30);
/// Thumbnails made at once (CPU-bound, one per core).
pub const THUMBNAILS_AT_ONCE: usize = 2;

/// What the uploader says of a file before its bytes.
pub struct UploadHeader {
    pub filename: String,
    pub content_type: String,
    /// Its size if announced (`Content-Length`).
    pub size: Option<i64>,
}

/// Which bytes of a file to read.
#[derive(Debug, Clone, Copy, Default)]
pub struct ByteRange {
    pub start: Option<i64>,
    /// Exclusive.
    pub end: Option<i64>,
    /// The last this many bytes (instead of `start`/`end`).
    pub suffix: Option<i64>,
}

/// A file (or its thumbnail) being read.
pub struct Served {
    pub attachment: Attachment,
    pub content_type: String,
    /// The size of what is served, and the bytes that follow (`start..end`).
    pub total: i64,
    pub start: i64,
    pub end: i64,
    /// The range asked for lies outside the file: nothing follows.
    pub unsatisfiable: bool,
    pub bytes: BoxStream<'static, Result<Bytes>>,
}

fn too_large() -> Error {
    Error::TooLarge(format!(
        "a file has at most {MAX_FILE_BYTES} bytes (25 MiB)"
    ))
}

fn no_thumbnail() -> Error {
    Error::not_found("this picture has no thumbnail")
}

fn attachment_not_found() -> Error {
    Error::not_found("no such attachment")
}

/// Storage failed: the caller may try again.
fn storage_unavailable(error: object_store::Error) -> Error {
    tracing::warn!(%error, "object storage failed");
    Error::Unavailable("file storage is unavailable, try again".into())
}

impl MessagingService {
    /// Stores a file `actor` uploads, chunk by chunk: refused as soon as it passes 25 MiB;
    /// an image is measured from its header (refused past 40 megapixels) and stored without
    /// its metadata. The file is `actor`'s to attach to a message.
    #[instrument(skip_all, fields(%actor), err(level = "info"))]
    pub async fn upload_attachment<S>(
        self: &Arc<Self>,
        actor: i64,
        header: UploadHeader,
        chunks: S,
    ) -> Result<Attachment>
    where
        S: Stream<Item = Result<Bytes>> + Send + Unpin,
    {
        if header.size.is_some_and(|size| size > MAX_FILE_BYTES) {
            return Err(too_large());
        }
        if self.store.unattached_count(actor).await? >= MAX_UNATTACHED {
            return Err(Error::RateLimited {
                message: format!(
                    "{MAX_UNATTACHED} uploaded files are waiting to be sent: send or wait for them first"
                ),
                retry_after_s: 60,
            });
        }
        let _mine = self
            .uploaders
            .begin(actor)
            .ok_or_else(|| Error::RateLimited {
                message: format!("at most {UPLOADS_PER_USER} uploads at once"),
                retry_after_s: 5,
            })?;
        let busy = || Error::Unavailable("too many uploads at once, try again".into());
        // A waiting upload's first bytes wait in its connection's flow-control window: few
        // may wait, so that they never fill it (and stall the uploads being stored).
        let waiting = self.uploaders.wait().ok_or_else(busy)?;
        let _turn = tokio::time::timeout(UPLOAD_QUEUE_WAIT, self.uploads.acquire())
            .await
            .map_err(|_| busy())?
            .map_err(|_| Error::Unavailable("the service is stopping".into()))?;
        drop(waiting);
        let id = ids::new_id();
        self.store.upload_started(id, time::now_ms()).await?;
        let stored = match self.storage.writer(Object::File(&id.to_string())).await {
            Ok(writer) => store_bytes(writer, chunks).await,
            Err(error) => Err(storage_unavailable(error)),
        };
        let (image, size) = match stored {
            Ok(stored) => stored,
            Err(error) => {
                // Whatever was written goes with the next round of deletions.
                self.store.upload_failed(id, time::now_ms()).await?;
                self.janitor.wake();
                return Err(error);
            }
        };
        let attachment = Attachment {
            id,
            filename: file_name(&header.filename),
            content_type: match image {
                Some(image) => image.kind.content_type().to_owned(),
                None => declared_type(&header.content_type),
            },
            size,
            width: image.map(|image| i64::from(image.width)),
            height: image.map(|image| i64::from(image.height)),
        };
        self.store
            .upload_finished(&attachment, actor, time::now_ms())
            .await?;
        metrics::counter!("astral_attachments_uploaded_total").increment(1);
        if attachment.is_image() {
            let service = Arc::clone(self);
            tokio::spawn(async move {
                if let Err(error) = service.thumbnail(id).await {
                    tracing::warn!(error = format!("{error:#}"), %id, "no thumbnail was made");
                }
            });
        }
        Ok(attachment)
    }

    /// A file `actor` may read (its bytes, or the `range` of them), or its thumbnail.
    #[instrument(skip_all, fields(%actor, %id), err(level = "info"))]
    pub async fn read_attachment(
        &self,
        actor: i64,
        id: i64,
        thumbnail: bool,
        range: ByteRange,
    ) -> Result<Served> {
        let stored = self
            .store
            .attachment_for(id, actor)
            .await?
            .ok_or_else(attachment_not_found)?;
        if thumbnail {
            return self.serve_thumbnail(stored).await;
        }
        let attachment = stored.attachment;
        let total = attachment.size;
        let Some((start, end)) = resolve(range, total) else {
            return Ok(Served {
                content_type: attachment.content_type.clone(),
                attachment,
                total,
                start: 0,
                end: 0,
                unsatisfiable: true,
                bytes: futures::stream::empty().boxed(),
            });
        };
        let bytes = if start == end {
            futures::stream::empty().boxed()
        } else {
            let range = (start as u64)..(end as u64);
            self.storage
                .read(Object::File(&id.to_string()), Some(range))
                .await
                .map_err(storage_unavailable)?
                .map_err(storage_unavailable)
                .boxed()
        };
        Ok(Served {
            content_type: attachment.content_type.clone(),
            attachment,
            total,
            start,
            end,
            unsatisfiable: false,
            bytes,
        })
    }

    /// An image's thumbnail, made now if it was not yet.
    async fn serve_thumbnail(&self, stored: StoredAttachment) -> Result<Served> {
        let attachment = stored.attachment;
        if !attachment.is_image() {
            return Err(Error::not_found("only an image has a thumbnail"));
        }
        let (bytes, content_type) = match stored.thumbnail_type {
            Some(none) if none == NO_THUMBNAIL => return Err(no_thumbnail()),
            Some(content_type) => {
                let bytes = self
                    .storage
                    .read_all(Object::Thumbnail(&attachment.id.to_string()))
                    .await
                    .map_err(storage_unavailable)?;
                (bytes, content_type)
            }
            None => {
                let made = self.thumbnail(attachment.id).await?;
                (Bytes::from(made.bytes), made.content_type.to_owned())
            }
        };
        let total = bytes.len() as i64;
        Ok(Served {
            attachment,
            content_type,
            total,
            start: 0,
            end: total,
            unsatisfiable: false,
            bytes: futures::stream::once(async move { Ok(bytes) }).boxed(),
        })
    }

    /// Makes and stores the thumbnail of image attachment `id`.
    async fn thumbnail(&self, id: i64) -> Result<thumbnails::Thumbnail> {
        let _turn = self
            .thumbnailing
            .acquire()
            .await
            .map_err(|_| Error::Unavailable("the service is stopping".into()))?;
        let key = id.to_string();
        self.store.thumbnail_started(id, time::now_ms()).await?;
        let image = match self.storage.read_all(Object::File(&key)).await {
            Ok(image) => image,
            // Deleted with its message meanwhile.
            Err(object_store::Error::NotFound { .. }) => return Err(attachment_not_found()),
            Err(error) => return Err(storage_unavailable(error)),
        };
        let made = tokio::task::spawn_blocking(move || thumbnails::make(&image))
            .await
            .map_err(|error| Error::Internal(error.into()))?;
        let made = match made {
            Ok(made) => made,
            Err(error) => {
                // A picture whose header was sound and whose pixels are not (or too large to
                // decode): recorded, so that it is not decoded again on every request.
                tracing::info!(error = format!("{error:#}"), %id, "a picture has no thumbnail");
                self.store
                    .thumbnail_made(id, NO_THUMBNAIL, time::now_ms())
                    .await?;
                return Err(no_thumbnail());
            }
        };
        self.storage
            .put(Object::Thumbnail(&key), Bytes::from(made.bytes.clone()))
            .await
            .map_err(storage_unavailable)?;
        if !self
            .store
            .thumbnail_made(id, made.content_type, time::now_ms())
            .await?
        {
            // The file was deleted while its thumbnail was made: that goes too.
            self.janitor.wake();
            return Err(attachment_not_found());
        }
        Ok(made)
    }
}

/// Streams an upload into `writer` through the image scrubber; the image it was (if any)
/// and the size stored. Past [`MAX_FILE_BYTES`], or silent for [`UPLOAD_IDLE`], the upload is
/// abandoned and nothing of it kept.
async fn store_bytes<S>(
    mut writer: Writer,
    mut chunks: S,
) -> Result<(Option<crate::images::Image>, i64)>
where
    S: Stream<Item = Result<Bytes>> + Send + Unpin,
{
    let mut scrubber = Scrubber::new();
    let (mut received, mut stored) = (0_i64, 0_i64);
    let outcome: Result<Option<crate::images::Image>> = async {
        loop {
            let chunk = match tokio::time::timeout(UPLOAD_IDLE, chunks.next()).await {
                Err(_) => return Err(Error::invalid("the upload stopped sending")),
                Ok(None) => break,
                Ok(Some(chunk)) => chunk?,
            };
            received += chunk.len() as i64;
            if received > MAX_FILE_BYTES {
                return Err(too_large());
            }
            let out = scrubber.push(&chunk).map_err(refused)?;
            stored += out.len() as i64;
            writer.write(&out).await.map_err(storage_unavailable)?;
        }
        let (image, rest) = scrubber.finish().map_err(refused)?;
        stored += rest.len() as i64;
        writer.write(&rest).await.map_err(storage_unavailable)?;
        Ok(image)
    }
    .await;
    match outcome {
        Ok(image) => {
            writer.finish().await.map_err(storage_unavailable)?;
            Ok((image, stored))
        }
        Err(error) => {
            if let Err(abort) = writer.abort().await {
                tracing::warn!(%abort, "an abandoned upload was not aborted");
            }
            Err(error)
        }
    }
}

/// Who is uploading now, and how many uploads each has in flight; how many wait for a turn.
#[derive(Default)]
pub struct Uploaders(Mutex<HashMap<i64, usize>>, AtomicUsize);

/// Uploads that may wait for a turn at once (see [`UPLOADS_AT_ONCE`]).
pub const UPLOADS_WAITING: usize = 8;

impl Uploaders {
    /// A place among the uploads waiting for a turn, unless [`UPLOADS_WAITING`] already do.
    fn wait(&self) -> Option<Waiting<'_>> {
        let waiting = &self.1;
        waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < UPLOADS_WAITING).then_some(n + 1)
            })
            .ok()
            .map(|_| Waiting(waiting))
    }

    /// One more upload of `user`'s, unless they have [`UPLOADS_PER_USER`] in flight; it
    /// counts until the guard is dropped.
    fn begin(&self, user: i64) -> Option<Uploading<'_>> {
        let mut uploading = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let count = uploading.entry(user).or_default();
        if *count >= UPLOADS_PER_USER {
            return None;
        }
        *count += 1;
        Some(Uploading { of: self, user })
    }
}

struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

struct Uploading<'a> {
    of: &'a Uploaders,
    user: i64,
}

impl Drop for Uploading<'_> {
    fn drop(&mut self) {
        let mut uploading = self.of.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = uploading.get_mut(&self.user) {
            *count -= 1;
            if *count == 0 {
                uploading.remove(&self.user);
            }
        }
    }
}

fn refused(refusal: crate::images::Refused) -> Error {
    Error::invalid(refusal.to_string())
}

/// The bytes `start..end` a range asks of a file of `total` bytes; `None` if it asks for
/// none of them. An empty file is served whole (nothing) whatever is asked.
fn resolve(range: ByteRange, total: i64) -> Option<(i64, i64)> {
    if total == 0 {
        return Some((0, 0));
    }
    let (start, end) = match range.suffix {
        Some(suffix) if suffix <= 0 => return None,
        Some(suffix) => (total - suffix.min(total), total),
        None => (
            range.start.unwrap_or(0),
            range.end.map_or(total, |end| end.min(total)),
        ),
    };
    (0 <= start && start < end).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(start: Option<i64>, end: Option<i64>, suffix: Option<i64>) -> ByteRange {
        ByteRange { start, end, suffix }
    }

    #[test]
    fn a_user_has_a_few_uploads_in_flight_at_most() {
        let uploaders = Uploaders::default();
        let first: Vec<_> = (0..UPLOADS_PER_USER).map(|_| uploaders.begin(1)).collect();
        assert!(first.iter().all(Option::is_some));
        assert!(uploaders.begin(1).is_none(), "one too many");
        assert!(uploaders.begin(2).is_some(), "others are not held back");
        drop(first);
        assert!(uploaders.begin(1).is_some(), "counted down when done");
        assert!(
            uploaders.0.lock().unwrap().len() <= 1,
            "nobody left counted at zero"
        );
    }

    #[test]
    fn a_range_is_resolved_against_the_file() {
        assert_eq!(resolve(ByteRange::default(), 10), Some((0, 10)));
        assert_eq!(resolve(range(Some(2), Some(5), None), 10), Some((2, 5)));
        assert_eq!(resolve(range(Some(2), None, None), 10), Some((2, 10)));
        assert_eq!(resolve(range(Some(2), Some(50), None), 10), Some((2, 10)));
        assert_eq!(resolve(range(None, None, Some(3)), 10), Some((7, 10)));
        assert_eq!(resolve(range(None, None, Some(30)), 10), Some((0, 10)));
        assert_eq!(resolve(range(Some(10), None, None), 10), None);
        assert_eq!(resolve(range(None, None, Some(0)), 10), None);
        assert_eq!(resolve(range(Some(5), Some(5), None), 10), None);
        assert_eq!(resolve(range(Some(-1), None, None), 10), None);
        assert_eq!(resolve(range(Some(3), None, None), 0), Some((0, 0)));
    }
}
