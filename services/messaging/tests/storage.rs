//! The object store attachments live in, on both backends: a directory, and a real
//! S3-compatible server (`s3s-fs`).
#![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap does

mod support;

use astral_common::testing::{S3Server, TempDir};
use astral_messaging::storage::{Object, Storage, StorageConfig};
use futures::TryStreamExt as _;
use support::bucket;

/// Writes, reads (whole and in part), and deletes on `storage`.
async fn round_trip(storage: &Storage, backend: &str) {
    // Past one 5 MiB part, written in uneven pieces: the multipart upload's parts.
    let bytes: Vec<u8> = (0..(11 * 1024 * 1024 + 7))
        .map(|i| (i % 251) as u8)
        .collect();
    let mut writer = storage.writer(Object::File("1")).await.unwrap();
    for piece in bytes.chunks(64 * 1024 + 3) {
        writer.write(piece).await.unwrap();
    }
    assert!(
        !storage.exists(Object::File("1")).await.unwrap(),
        "{backend}: nothing visible before the end"
    );
    writer.finish().await.unwrap();
    assert!(
        storage.exists(Object::File("1")).await.unwrap(),
        "{backend}"
    );

    let whole = read(storage, Object::File("1"), None).await;
    assert!(whole == bytes, "{backend}: read back whole");
    let part = read(storage, Object::File("1"), Some(5_000_000..5_000_100)).await;
    assert_eq!(part, bytes[5_000_000..5_000_100], "{backend}: a range");
    assert_eq!(
        storage.read_all(Object::File("1")).await.unwrap().len(),
        bytes.len()
    );

    // An abandoned upload leaves nothing.
    let mut writer = storage.writer(Object::File("2")).await.unwrap();
    writer.write(&bytes[..6 * 1024 * 1024]).await.unwrap();
    writer.abort().await.unwrap();
    assert!(
        !storage.exists(Object::File("2")).await.unwrap(),
        "{backend}"
    );

    // A thumbnail is its own object.
    storage
        .put(Object::Thumbnail("1"), bytes::Bytes::from_static(b"thumb"))
        .await
        .unwrap();
    assert_eq!(read(storage, Object::Thumbnail("1"), None).await, b"thumb");

    storage.delete(&Object::File("1").key()).await.unwrap();
    storage.delete(&Object::Thumbnail("1").key()).await.unwrap();
    assert!(
        !storage.exists(Object::File("1")).await.unwrap(),
        "{backend}"
    );
    storage
        .delete(&Object::File("1").key())
        .await
        .expect("deleting what is gone is not an error (deletions are retried)");
    assert!(
        storage.read(Object::File("1"), None).await.is_err(),
        "{backend}"
    );
}

async fn read(
    storage: &Storage,
    object: Object<'_>,
    range: Option<std::ops::Range<u64>>,
) -> Vec<u8> {
    storage
        .read(object, range)
        .await
        .unwrap()
        .try_fold(Vec::new(), |mut all, chunk| async move {
            all.extend_from_slice(&chunk);
            Ok(all)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_directory_stores_reads_ranges_and_deletes() {
    let dir = TempDir::new();
    let root = dir.0.join("attachments");
    let storage = Storage::open(&StorageConfig {
        url: format!("file://{}", root.display()),
        ..StorageConfig::default()
    })
    .unwrap();
    round_trip(&storage, "directory").await;
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&root).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "only the service's user reads the files");
}

#[tokio::test]
async fn an_s3_server_stores_reads_ranges_and_deletes() {
    let server = S3Server::start().await.unwrap();
    let storage = bucket(&server, &server.secret_access_key);
    round_trip(&storage, "s3").await;
    // What it wrote is on the server's disk, under the bucket.
    storage
        .put(Object::File("9"), bytes::Bytes::from_static(b"on disk"))
        .await
        .unwrap();
    let stored = std::fs::read(server.root.0.join("astral/files/9")).unwrap();
    assert_eq!(stored, b"on disk");
}

#[tokio::test]
async fn wrong_s3_keys_are_refused() {
    let server = S3Server::start().await.unwrap();
    let storage = bucket(&server, "not-the-secret");
    let refused = storage
        .put(Object::File("1"), bytes::Bytes::from_static(b"x"))
        .await;
    assert!(refused.is_err());
}

#[test]
fn a_storage_url_is_a_directory_or_a_bucket() {
    for url in ["", "http://x", "s3://", "s3://a/b", "/tmp/x"] {
        assert!(
            Storage::open(&StorageConfig {
                url: url.into(),
                ..StorageConfig::default()
            })
            .is_err(),
            "{url:?}"
        );
    }
}
