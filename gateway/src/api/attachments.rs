//! Files: uploading one (streamed to the messaging service as it arrives, never held whole
//! here), and reading one or its thumbnail (streamed back, with byte ranges).

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::json;
use crate::session::Caller;
use crate::state::Messaging;
use astral_proto::messaging as pb;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt as _;
use serde_json::Value;
use std::collections::HashMap;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// The largest file: 25 MiB (the messaging service holds to it too).
const MAX_FILE_BYTES: u64 = 25 * 1024 * 1024;
/// The most bytes one gRPC message carries.
const CHUNK: usize = 64 * 1024;
/// Downloads this gateway streams at once (each may hold a 1 MiB stream window of the
/// service connection's 32 MiB), and how long one waits for its turn.
static DOWNLOADS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(16);
const DOWNLOAD_QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// How much of a refused upload is still read (and dropped) before the refusal is sent, and
/// for how long: an HTTP/1 client reads the answer only once its body is sent, and a
/// connection closed under it reads as a network failure, not as 413.
const DRAINED_BYTES: u64 = MAX_FILE_BYTES;
const DRAINING: std::time::Duration = std::time::Duration::from_secs(10);

fn too_large() -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        "a file has at most 26214400 bytes (25 MiB)",
    )
}

/// Reads and drops the rest of a refused upload's body (up to a bound), so that the client
/// reads the refusal.
async fn drain<S, E>(mut rest: S)
where
    S: futures::Stream<Item = Result<Bytes, E>> + Unpin,
{
    let deadline = tokio::time::Instant::now() + DRAINING;
    let mut left = DRAINED_BYTES;
    while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, rest.next()).await {
        let Some(after) = left.checked_sub(frame.len() as u64) else {
            break;
        };
        left = after;
    }
}

/// `POST /api/attachments?filename=NAME`, the file as the raw body.
pub async fn upload(
    State(Messaging(mut messaging)): State<Messaging>,
    caller: Caller,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    let mut body = body.into_data_stream();
    if announced.is_some_and(|size| size > MAX_FILE_BYTES) {
        drain(body).await;
        return Err(too_large());
    }
    let header = pb::UploadHeader {
        filename: query.get("filename").cloned().unwrap_or_default(),
        content_type: headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        size: announced.and_then(|size| i64::try_from(size).ok()),
    };
    // The chunks go to the service through a short queue as they arrive; the last is
    // marked, and a stream that ends unmarked is dropped by the service. If the body fails or
    // grows too large, the call is dropped too (which cancels it).
    let (queue, queued) = mpsc::channel(4);
    let first = pb::UploadChunk {
        header: Some(header),
        ..Default::default()
    };
    queue
        .try_send(first)
        .map_err(|_| ApiError::unavailable("the upload could not start"))?;
    let mut request = caller.request(ReceiverStream::new(queued));
    // The whole upload is one call: it may take as long as the service allows any call.
    request.set_timeout(astral_common::grpc::LONGEST_CALL);
    let mut call = Box::pin(messaging.upload_attachment(request));
    let mut queue = Some(queue);
    // Bytes read from the body and not queued yet.
    let mut pending = Bytes::new();
    let mut received: u64 = 0;
    loop {
        // A handle of this round's own: the branches may close `queue` meanwhile.
        let sender = queue.clone();
        tokio::select! {
            answer = &mut call => {
                return match answer {
                    Ok(answer) => Ok((StatusCode::CREATED, Json(json::attachment(&answer.into_inner())))),
                    Err(refused) => {
                        // Refused before the end (too large, not a valid picture).
                        drop(call);
                        if queue.is_some() {
                            drain(body).await;
                        }
                        Err(refused.into())
                    }
                };
            }
            permit = reserve(sender.as_ref()), if !pending.is_empty() => match permit {
                Some(permit) => {
                    let data = pending.split_to(pending.len().min(CHUNK));
                    permit.send(pb::UploadChunk { data, ..Default::default() });
                }
                // The service stopped reading: its answer says why.
                None => (queue, pending) = (None, Bytes::new()),
            },
            frame = body.next(), if pending.is_empty() && queue.is_some() => match frame {
                Some(Ok(data)) => {
                    received += data.len() as u64;
                    if received > MAX_FILE_BYTES {
                        drop(call);
                        drain(body).await;
                        return Err(too_large());
                    }
                    pending = data;
                }
                Some(Err(_)) => return Err(ApiError::invalid("the upload was interrupted")),
                None => {
                    // The end: marked, and the queue closed; the service answers.
                    if let Some(permit) = reserve(queue.as_ref()).await {
                        permit.send(pb::UploadChunk { last: true, ..Default::default() });
                    }
                    queue = None;
                }
            },
        }
    }
}

/// A place in the queue to the service, once there is one; `None` when it is closed.
async fn reserve<T>(queue: Option<&mpsc::Sender<T>>) -> Option<mpsc::Permit<'_, T>> {
    queue?.reserve().await.ok()
}

/// `GET /api/attachments/{id}`: the file, or the bytes a `Range` asks for.
pub async fn download(
    State(Messaging(messaging)): State<Messaging>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let range = headers
        .get(header::RANGE)
        .and_then(|value| value.to_str().ok())
        .and_then(Range::parse);
    let request = pb::ReadAttachmentRequest {
        attachment_id: id,
        thumbnail: false,
        start: range.and_then(|r| r.start),
        end: range.and_then(|r| r.end),
        suffix: range.and_then(|r| r.suffix),
    };
    serve(Messaging(messaging), caller, request, range.is_some()).await
}

/// `GET /api/attachments/{id}/thumbnail`: an image's thumbnail.
pub async fn thumbnail(
    State(Messaging(messaging)): State<Messaging>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let request = pb::ReadAttachmentRequest {
        attachment_id: id,
        thumbnail: true,
        ..Default::default()
    };
    serve(Messaging(messaging), caller, request, false).await
}

async fn serve(
    Messaging(mut messaging): Messaging,
    caller: Caller,
    request: pb::ReadAttachmentRequest,
    ranged: bool,
) -> ApiResult<Response> {
    let thumbnail = request.thumbnail;
    // A download's unread bytes wait in the gateway's connection to the service: a bounded
    // number at once, so that slow readers never fill its window (docs/architecture.md).
    let turn = tokio::time::timeout(DOWNLOAD_QUEUE_WAIT, DOWNLOADS.acquire())
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or_else(|| ApiError::unavailable("too many downloads at once, try again"))?;
    let mut chunks = messaging
        .read_attachment(caller.request(request))
        .await?
        .into_inner();
    let served = chunks
        .message()
        .await?
        .and_then(|chunk| chunk.served)
        .ok_or_else(|| ApiError::unavailable("the file could not be read, try again"))?;
    let attachment = served.attachment.unwrap_or_default();
    if served.unsatisfiable {
        let mut response = ApiError::new(
            ErrorCode::RangeNotSatisfiable,
            "the range asked for lies outside the file",
        )
        .into_response();
        insert(
            response.headers_mut(),
            header::CONTENT_RANGE,
            format!("bytes */{}", served.total),
        );
        return Ok(response);
    }
    let partial = ranged && !thumbnail;
    let status = if partial {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let bytes = chunks.map(move |chunk| {
        let _turn = &turn; // held until the last byte is sent
        chunk.map(|chunk| chunk.data)
    });
    let mut response = (status, Body::from_stream(bytes)).into_response();
    let headers = response.headers_mut();
    insert(headers, header::CONTENT_TYPE, served.content_type);
    insert(
        headers,
        header::CONTENT_LENGTH,
        (served.end - served.start).to_string(),
    );
    if partial {
        insert(
            headers,
            header::CONTENT_RANGE,
            format!("bytes {}-{}/{}", served.start, served.end - 1, served.total),
        );
    }
    if !thumbnail {
        insert(headers, header::ACCEPT_RANGES, "bytes".to_owned());
    }
    // Only a picture is shown in place; anything else is a download, whatever it says it is.
    let shown = thumbnail || attachment.width.is_some();
    insert(
        headers,
        header::CONTENT_DISPOSITION,
        disposition(shown, &attachment.filename),
    );
    insert(
        headers,
        header::X_CONTENT_TYPE_OPTIONS,
        "nosniff".to_owned(),
    );
    // Opened directly, a file is a document with no script, no plugin, no origin.
    insert(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'".to_owned(),
    );
    // A file never changes; only its readers may cache it.
    insert(
        headers,
        header::CACHE_CONTROL,
        "private, max-age=86400".to_owned(),
    );
    Ok(response)
}

fn insert(headers: &mut HeaderMap, name: header::HeaderName, value: String) {
    if let Ok(value) = HeaderValue::try_from(value) {
        headers.insert(name, value);
    }
}

/// `inline` or `attachment`, with the file's name: plain ASCII for old clients, and UTF-8
/// (RFC 6266 / RFC 8187) for the rest.
fn disposition(inline: bool, filename: &str) -> String {
    let kind = if inline { "inline" } else { "attachment" };
    let plain: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::with_capacity(filename.len() * 3);
    for byte in filename.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("{kind}; filename=\"{plain}\"; filename*=UTF-8''{encoded}")
}

/// One byte range of a `Range: bytes=…` header (end exclusive here). Anything else (several
/// ranges, another unit, nonsense) is ignored and the whole file served, as RFC 9110 allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    start: Option<i64>,
    end: Option<i64>,
    suffix: Option<i64>,
}

impl Range {
    fn parse(header: &str) -> Option<Self> {
        let spec = header.trim().strip_prefix("bytes=")?.trim();
        if spec.contains(',') {
            return None;
        }
        let (first, last) = spec.split_once('-')?;
        let number = |text: &str| -> Option<i64> {
            let text = text.trim();
            (!text.is_empty() && text.len() <= 18 && text.bytes().all(|b| b.is_ascii_digit()))
                .then(|| text.parse().ok())
                .flatten()
        };
        match (first.trim().is_empty(), last.trim().is_empty()) {
            (true, false) => Some(Self {
                start: None,
                end: None,
                suffix: Some(number(last)?),
            }),
            (false, true) => Some(Self {
                start: Some(number(first)?),
                end: None,
                suffix: None,
            }),
            (false, false) => {
                let (start, last) = (number(first)?, number(last)?);
                (last >= start).then_some(Self {
                    start: Some(start),
                    end: Some(last + 1),
                    suffix: None,
                })
            }
            (true, true) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(start: Option<i64>, end: Option<i64>, suffix: Option<i64>) -> Option<Range> {
        Some(Range { start, end, suffix })
    }

    #[test]
    fn a_single_byte_range_is_read_and_anything_else_ignored() {
        assert_eq!(Range::parse("bytes=0-99"), range(Some(0), Some(100), None));
        assert_eq!(Range::parse("bytes=100-"), range(Some(100), None, None));
        assert_eq!(Range::parse("bytes=-500"), range(None, None, Some(500)));
        assert_eq!(
            Range::parse(" bytes= 5 - 5 "),
            range(Some(5), Some(6), None)
        );
        for ignored in [
            "bytes=0-1,4-5",
            "items=0-1",
            "bytes=5-1",
            "bytes=-",
            "bytes=a-b",
            "bytes=99999999999999999999-",
            "",
        ] {
            assert_eq!(Range::parse(ignored), None, "{ignored}");
        }
    }

    #[test]
    fn a_file_name_is_offered_safely_in_both_forms() {
        assert_eq!(
            disposition(false, "report 2026.pdf"),
            "attachment; filename=\"report 2026.pdf\"; filename*=UTF-8''report%202026.pdf"
        );
        assert_eq!(
            disposition(true, "é\"\\x.png"),
            "inline; filename=\"___x.png\"; filename*=UTF-8''%C3%A9%22%5Cx.png"
        );
    }
}
