//! The attachments' janitor on both databases: uploads never attached expire after 24 hours,
//! the remains of an upload that never finished go after an hour, and every object the
//! database queued for removal leaves storage.

#![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap does

mod support;

use astral_common::EventBus;
use astral_common::outbox::Outbox;
use astral_common::testing::{MigratedDatabase, S3Server, TempDir};
use astral_messaging::janitor::{UNATTACHED_LIFETIME_MS, round};
use astral_messaging::model::Attachment;
use astral_messaging::storage::{Object, Storage};
use astral_messaging::store::Store;
use bytes::Bytes;
use support::bucket;

const HOUR_MS: i64 = 60 * 60 * 1000;

fn file(id: i64) -> Attachment {
    Attachment {
        id,
        filename: format!("{id}.txt"),
        content_type: "text/plain".into(),
        size: 5,
        width: None,
        height: None,
    }
}

async fn stored(storage: &Storage, id: i64) -> bool {
    storage.exists(Object::File(&id.to_string())).await.unwrap()
}

#[tokio::test]
async fn unattached_uploads_expire_and_their_bytes_leave_storage() {
    for MigratedDatabase { backend, pool, .. } in
        MigratedDatabase::both(&astral_messaging::MIGRATOR).await
    {
        let store = Store::new(pool.clone(), Outbox::start(pool, EventBus::local()));
        let dir = TempDir::new();
        let storage = Storage::local(&dir.0).unwrap();
        // Two finished uploads of user 1 at 0 and 2 h; one upload that never finished
        // (its process died) at 0.
        for (id, at) in [(1, 0), (2, 2 * HOUR_MS), (3, 0)] {
            store.upload_started(id, at).await.unwrap();
            storage
                .put(Object::File(&id.to_string()), Bytes::from_static(b"bytes"))
                .await
                .unwrap();
            if id != 3 {
                store.upload_finished(&file(id), 1, at).await.unwrap();
            }
        }
        assert_eq!(store.unattached_count(1).await.unwrap(), 2, "{backend}");

        round(&store, &storage, HOUR_MS - 1).await.unwrap();
        assert!(
            stored(&storage, 3).await,
            "{backend}: still within its lease"
        );
        round(&store, &storage, HOUR_MS + 1).await.unwrap();
        assert!(
            !stored(&storage, 3).await,
            "{backend}: a dead upload's bytes go"
        );
        assert!(
            stored(&storage, 1).await && stored(&storage, 2).await,
            "{backend}"
        );

        round(&store, &storage, UNATTACHED_LIFETIME_MS + 1)
            .await
            .unwrap();
        assert!(!stored(&storage, 1).await, "{backend}: a day unattached");
        assert!(
            store.attachment_for(1, 1).await.unwrap().is_none(),
            "{backend}"
        );
        assert!(stored(&storage, 2).await, "{backend}: not a day old yet");
        assert_eq!(store.unattached_count(1).await.unwrap(), 1, "{backend}");
        assert!(
            store.due_deletions(i64::MAX, 10).await.unwrap().is_empty(),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn an_object_storage_cannot_remove_is_tried_again_later() {
    let server = S3Server::start().await.unwrap();
    let (storage, refusing) = (
        bucket(&server, &server.secret_access_key),
        bucket(&server, "wrong"),
    );
    for MigratedDatabase { backend, pool, .. } in
        MigratedDatabase::both(&astral_messaging::MIGRATOR).await
    {
        let store = Store::new(pool.clone(), Outbox::start(pool, EventBus::local()));
        store.upload_started(7, 0).await.unwrap();
        storage
            .put(Object::File("7"), Bytes::from_static(b"x"))
            .await
            .unwrap();
        store.upload_failed(7, 0).await.unwrap();
        // Storage refuses (its keys are wrong): the removal waits a minute, then is tried again.
        round(&store, &refusing, 10).await.unwrap();
        assert!(stored(&storage, 7).await, "{backend}");
        assert!(
            store.due_deletions(60_009, 10).await.unwrap().is_empty(),
            "{backend}: postponed"
        );
        assert_eq!(
            store.due_deletions(60_010, 10).await.unwrap(),
            ["files/7"],
            "{backend}"
        );
        round(&store, &storage, 60_010).await.unwrap();
        assert!(!stored(&storage, 7).await, "{backend}");
        assert!(
            store.due_deletions(i64::MAX, 10).await.unwrap().is_empty(),
            "{backend}"
        );
    }
}

async fn thumbnail_stored(storage: &Storage, id: i64) -> bool {
    storage
        .exists(Object::Thumbnail(&id.to_string()))
        .await
        .unwrap()
}

/// A thumbnail of `id` begun at `at` and written (not recorded yet).
async fn thumbnail_written(store: &Store, storage: &Storage, id: i64, at: i64) {
    store.thumbnail_started(id, at).await.unwrap();
    storage
        .put(Object::Thumbnail(&id.to_string()), Bytes::from_static(b"t"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_thumbnail_never_outlives_its_file() {
    for MigratedDatabase { backend, pool, .. } in
        MigratedDatabase::both(&astral_messaging::MIGRATOR).await
    {
        let store = Store::new(pool.clone(), Outbox::start(pool, EventBus::local()));
        let dir = TempDir::new();
        let storage = Storage::local(&dir.0).unwrap();
        for id in [1, 2, 3] {
            store.upload_finished(&file(id), 1, 0).await.unwrap();
            thumbnail_written(&store, &storage, id, 0).await;
        }
        // 1: recorded, kept. 2: its process died before recording it: gone after its lease.
        assert!(
            store.thumbnail_made(1, "image/jpeg", 0).await.unwrap(),
            "{backend}"
        );
        round(&store, &storage, 2 * HOUR_MS).await.unwrap();
        assert!(
            thumbnail_stored(&storage, 1).await,
            "{backend}: recorded, kept"
        );
        assert!(
            !thumbnail_stored(&storage, 2).await,
            "{backend}: unrecorded, gone"
        );
        // 3: its file expired (deleted) while its thumbnail was being made: recording it
        // finds no file, and the thumbnail goes too; 1 goes with its file.
        round(&store, &storage, UNATTACHED_LIFETIME_MS + 1)
            .await
            .unwrap();
        let now = UNATTACHED_LIFETIME_MS + 2;
        assert!(
            !store.thumbnail_made(3, "image/jpeg", now).await.unwrap(),
            "{backend}: its attachment is gone"
        );
        round(&store, &storage, now).await.unwrap();
        assert!(!thumbnail_stored(&storage, 3).await, "{backend}");
        assert!(!thumbnail_stored(&storage, 1).await, "{backend}");
        assert!(
            store.due_deletions(i64::MAX, 10).await.unwrap().is_empty(),
            "{backend}"
        );
    }
}
