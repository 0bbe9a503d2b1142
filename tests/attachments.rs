//! Attachments (issue 18) over the public API, in both run modes (a directory in the
//! all-in-one, a real S3-compatible server in the distributed mode): uploading, attaching,
//! who may read, ranges, limits, picture bombs, and files leaving storage.

#![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap does

mod support;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use serde_json::{Value, json};
use std::io::Cursor;
use std::time::Instant;
use support::{System, User, WAIT, assert_error};

in_both_modes!(
    a_picture_is_sent_without_its_metadata_and_read_by_members_only,
    other_files_are_downloads_and_answer_byte_ranges,
    files_over_the_limits_and_picture_bombs_are_refused,
    a_deleted_messages_files_leave_storage,
    uploads_past_the_services_turns_wait_for_one_and_all_arrive,
);

/// Uploads `bytes` as `filename` of type `content_type`: the status and the body.
async fn upload(
    user: &User,
    filename: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> (StatusCode, Value) {
    let url = reqwest::Url::parse_with_params(
        &format!("{}/api/attachments", user.base),
        [("filename", filename)],
    )
    .unwrap();
    let response = user
        .http
        .post(url)
        .bearer_auth(&user.token)
        .header(CONTENT_TYPE, content_type)
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// Reads `/api/attachments/{path}` as `user` (with a `Range` if given): status, headers, body.
async fn read(user: &User, path: &str, range: Option<&str>) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut request = user
        .http
        .get(format!("{}/api/attachments/{path}", user.base))
        .bearer_auth(&user.token);
    if let Some(range) = range {
        request = request.header(reqwest::header::RANGE, range);
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    (status, headers, response.bytes().await.unwrap().to_vec())
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> &'h str {
    headers
        .get(name)
        .map(|value| value.to_str().unwrap())
        .unwrap_or_default()
}

/// A PNG photo of `width` × `height` carrying a text chunk with a (pretend) location.
fn png_with_metadata(width: u32, height: u32) -> Vec<u8> {
    let picture = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    });
    let mut png = Cursor::new(Vec::new());
    picture.write_to(&mut png, image::ImageFormat::Png).unwrap();
    let png = png.into_inner();
    // After the signature (8 bytes) and IHDR (25): a tEXt chunk, as cameras and editors
    // write them.
    let mut with_text = png[..33].to_vec();
    with_text.extend(chunk(b"tEXt", b"GPS\x0048.8584 N, 2.2945 E"));
    with_text.extend_from_slice(&png[33..]);
    with_text
}

/// A PNG chunk: length, type, data, CRC.
fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = 0xFFFF_FFFF_u32;
    for &byte in kind.iter().chain(data) {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    out.extend_from_slice(&(!crc).to_be_bytes());
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

async fn a_picture_is_sent_without_its_metadata_and_read_by_members_only(system: &System) {
    let base = &system.base;
    let (alice, mut bob, direct) = support::user::friends_with_a_chat(base, base).await;
    let carol = User::register(base, "carol").await;
    bob.connect().await;
    bob.subscribe(&direct).await;

    let photo = png_with_metadata(800, 600);
    assert!(contains(&photo, b"48.8584 N"));
    let (status, uploaded) = upload(&alice, "../../holiday.png", "image/png", photo.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{uploaded}");
    let id = support::id(&uploaded);
    assert_eq!(
        uploaded["filename"], "holiday.png",
        "only the last path component"
    );
    assert_eq!(uploaded["content_type"], "image/png");
    assert_eq!(
        (uploaded["width"].as_i64(), uploaded["height"].as_i64()),
        (Some(800), Some(600))
    );
    let stored_size = uploaded["size"].as_i64().unwrap();
    assert!(
        stored_size < photo.len() as i64,
        "the text chunk is not stored"
    );

    // Before it is sent, only its uploader reads it.
    assert_eq!(read(&bob, &id, None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(read(&alice, &id, None).await.0, StatusCode::OK);

    let (status, sent) = alice
        .try_send_message(&direct, json!({ "attachment_ids": [id] }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "a file alone, no text: {sent}");
    assert_eq!(sent["content"], "");
    assert_eq!(sent["attachments"], json!([uploaded]));
    let event = bob.expect_event("message.created").await;
    assert_eq!(event["attachments"][0]["id"], id.as_str(), "{event}");
    let history = bob.history(&direct).await;
    assert_eq!(history.last().unwrap()["attachments"][0], uploaded);

    // A reply's preview says the answered message carries a file.
    let reply = bob
        .try_send_message(
            &direct,
            json!({ "content": "nice", "reply_to": support::id(&sent) }),
        )
        .await
        .1;
    assert_eq!(reply["reply_to"]["attachment_count"], 1, "{reply}");

    // Members read it: as it was uploaded, less its metadata; a valid picture, shown inline.
    let (status, headers, bytes) = read(&bob, &id, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bytes.len() as i64, stored_size);
    assert!(!contains(&bytes, b"48.8584 N"), "no location left");
    let decoded = image::load_from_memory(&bytes).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (800, 600));
    assert_eq!(header(&headers, "content-type"), "image/png");
    assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
    assert!(header(&headers, "content-disposition").starts_with("inline;"));
    assert!(header(&headers, "content-security-policy").starts_with("sandbox"));
    assert_eq!(header(&headers, "accept-ranges"), "bytes");

    // Its thumbnail: at most 320 px a side, the same shape.
    let (status, headers, bytes) = read(&bob, &format!("{id}/thumbnail"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(header(&headers, "content-type").starts_with("image/"));
    let thumbnail = image::load_from_memory(&bytes).unwrap();
    assert_eq!((thumbnail.width(), thumbnail.height()), (320, 240));

    // Anyone else: 404, as for what does not exist, and never a byte.
    for path in [
        id.clone(),
        format!("{id}/thumbnail"),
        "123".into(),
        "x".into(),
    ] {
        let (status, _, bytes) = read(&carol, &path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(!contains(&bytes, b"IHDR"));
    }
    // Nor can they attach it to a message of theirs.
    let (status, body) = carol
        .try_send_message(&direct, json!({ "attachment_ids": [id] }))
        .await;
    assert!(status.is_client_error(), "{body}");
}

async fn other_files_are_downloads_and_answer_byte_ranges(system: &System) {
    let base = &system.base;
    let (alice, bob, direct) = support::user::friends_with_a_chat(base, base).await;
    let page = b"<html><script>alert(document.cookie)</script></html>".repeat(100);
    let (status, uploaded) = upload(
        &alice,
        "page.html",
        "text/html; charset=utf-8",
        page.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{uploaded}");
    assert_eq!(uploaded["content_type"], "text/html");
    assert_eq!(uploaded["width"], Value::Null);
    let id = support::id(&uploaded);
    // A file that claims to be a picture and is not is just bytes.
    let (_, fake) = upload(&alice, "x.png", "image/png", b"not a picture".to_vec()).await;
    assert_eq!(fake["content_type"], "application/octet-stream", "{fake}");
    let (status, sent) = alice
        .try_send_message(
            &direct,
            json!({ "content": "two files", "attachment_ids": [id, support::id(&fake)] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    assert_eq!(
        sent["attachments"].as_array().unwrap().len(),
        2,
        "in the order given"
    );
    assert_eq!(sent["attachments"][0]["id"], id.as_str());

    let (status, headers, bytes) = read(&bob, &id, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bytes, page);
    assert_eq!(
        header(&headers, "content-disposition"),
        "attachment; filename=\"page.html\"; filename*=UTF-8''page.html",
        "never rendered by the browser"
    );
    assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
    // No thumbnail for what is not a picture.
    assert_eq!(
        read(&bob, &format!("{id}/thumbnail"), None).await.0,
        StatusCode::NOT_FOUND
    );

    let total = page.len();
    let (status, headers, bytes) = read(&bob, &id, Some("bytes=10-19")).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(bytes, page[10..20]);
    assert_eq!(
        header(&headers, "content-range"),
        format!("bytes 10-19/{total}")
    );
    let (status, _, bytes) = read(&bob, &id, Some("bytes=-7")).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(bytes, page[total - 7..]);
    let (status, _, bytes) = read(&bob, &id, Some(&format!("bytes={}-", total - 3))).await;
    assert_eq!(
        (status, bytes.as_slice()),
        (StatusCode::PARTIAL_CONTENT, &page[total - 3..])
    );
    let (status, headers, bytes) = read(&bob, &id, Some(&format!("bytes={total}-"))).await;
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        header(&headers, "content-range"),
        format!("bytes */{total}")
    );
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["error"]["code"], "range_not_satisfiable");
    // Several ranges, or nonsense: the whole file.
    let (status, _, bytes) = read(&bob, &id, Some("bytes=0-1,5-6")).await;
    assert_eq!((status, bytes.len()), (StatusCode::OK, total));
}

async fn files_over_the_limits_and_picture_bombs_are_refused(system: &System) {
    let base = &system.base;
    let (alice, bob, direct) = support::user::friends_with_a_chat(base, base).await;
    const LIMIT: usize = 25 * 1024 * 1024;

    // Exactly 25 MiB is accepted; one byte more is not, announced or not.
    let (status, body) = upload(
        &alice,
        "big.bin",
        "application/octet-stream",
        vec![7; LIMIT],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["size"], LIMIT);
    let (status, body) = upload(
        &alice,
        "big.bin",
        "application/octet-stream",
        vec![7; LIMIT + 1],
    )
    .await;
    assert_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE);
    // Streamed without a length: refused as the bytes pass the limit, not after.
    let pieces =
        (0..40).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![1u8; 1024 * 1024])));
    let response = alice
        .http
        .post(format!("{base}/api/attachments?filename=endless.bin"))
        .bearer_auth(&alice.token)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(pieces)))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE);

    // A picture bomb: a small PNG whose header claims 50,000 × 50,000 pixels.
    let mut bomb = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = 50_000u32.to_be_bytes().to_vec();
    header.extend_from_slice(&50_000u32.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]);
    bomb.extend(chunk(b"IHDR", &header));
    bomb.extend(chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    ));
    bomb.extend(chunk(b"IEND", &[]));
    let (status, body) = upload(&alice, "bomb.png", "image/png", bomb).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("pixels"),
        "{body}"
    );

    // A picture whose header is sound and whose pixels are not: stored, shown without a
    // thumbnail (404, and the same again without decoding it again).
    let mut broken = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = 10u32.to_be_bytes().to_vec();
    header.extend_from_slice(&10u32.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]);
    broken.extend(chunk(b"IHDR", &header));
    broken.extend(chunk(b"IDAT", b"not deflate at all"));
    broken.extend(chunk(b"IEND", &[]));
    let (status, body) = upload(&alice, "broken.png", "image/png", broken).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let broken = support::id(&body);
    for _ in 0..2 {
        let (status, _, _) = read(&alice, &format!("{broken}/thumbnail"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    // Attaching: at most 10, each once, only one's own.
    let mut ids = Vec::new();
    for n in 0..11 {
        let (status, body) =
            upload(&alice, &format!("{n}.txt"), "text/plain", vec![b'x'; 10]).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(support::id(&body));
    }
    let (status, body) = alice
        .try_send_message(&direct, json!({ "attachment_ids": ids }))
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = bob
        .try_send_message(&direct, json!({ "attachment_ids": [ids[0]] }))
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = alice
        .try_send_message(&direct, json!({ "attachment_ids": ids[..10] }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = alice
        .try_send_message(
            &direct,
            json!({ "content": "again", "attachment_ids": [ids[0]] }),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    // Nothing of a refused send was kept: the 11th is still alice's to attach.
    let (status, body) = alice
        .try_send_message(&direct, json!({ "attachment_ids": [ids[10]] }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Without files, a message still needs text.
    let (status, body) = alice
        .try_send_message(&direct, json!({ "content": " " }))
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
}

async fn a_deleted_messages_files_leave_storage(system: &System) {
    let base = &system.base;
    let (alice, bob, direct) = support::user::friends_with_a_chat(base, base).await;
    let (_, uploaded) = upload(
        &alice,
        "photo.png",
        "image/png",
        png_with_metadata(400, 400),
    )
    .await;
    let id = support::id(&uploaded);
    let sent = alice
        .try_send_message(
            &direct,
            json!({ "content": "look", "attachment_ids": [id] }),
        )
        .await
        .1;
    // The thumbnail is made after the upload answered; asking for it makes sure it exists.
    assert_eq!(
        read(&bob, &format!("{id}/thumbnail"), None).await.0,
        StatusCode::OK
    );
    let file = system.storage_dir.join("files").join(&id);
    let thumbnail = system.storage_dir.join("thumbnails").join(&id);
    assert!(file.is_file(), "{}", file.display());
    assert!(thumbnail.is_file(), "{}", thumbnail.display());

    let (status, body) = alice
        .delete(&format!(
            "/api/chats/{direct}/messages/{}",
            support::id(&sent)
        ))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let history = bob.history(&direct).await;
    let tombstone = history.last().unwrap();
    assert_eq!(
        (&tombstone["deleted"], &tombstone["attachments"]),
        (&json!(true), &json!([])),
        "{tombstone}"
    );
    assert_eq!(read(&bob, &id, None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(read(&alice, &id, None).await.0, StatusCode::NOT_FOUND);
    let deadline = Instant::now() + WAIT;
    while file.exists() || thumbnail.exists() {
        assert!(Instant::now() < deadline, "the files are still in storage");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn uploads_past_the_services_turns_wait_for_one_and_all_arrive(system: &System) {
    // 15 uploads at once (3 per user, the most each may have): more than the 8 a messaging
    // process stores at once, so 7 wait for a turn. Waiting, their first bytes sit in the
    // connection's flow-control window; with HTTP/2's default 64 KiB windows they stalled
    // the uploads being stored until every waiter gave up (503).
    let mut users = Vec::new();
    for n in 0..5 {
        users.push(User::register(&system.base, &format!("up{n}")).await);
    }
    let file = vec![42u8; 1024 * 1024];
    let uploads = users.iter().flat_map(|user| {
        (0..3).map(|_| upload(user, "part.bin", "application/octet-stream", file.clone()))
    });
    let answers = futures::future::join_all(uploads).await;
    for (status, body) in answers {
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["size"], 1024 * 1024);
    }
}
