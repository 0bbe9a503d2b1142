//! The web client's files (from `ASTRAL_WEB_DIR`, or the copy built into the binary) and the
//! security headers every response carries.

use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use sha2::Digest as _;
use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The files of `web/`. In a release build they are inside the binary; a debug build reads
/// them from the source tree.
#[derive(rust_embed::Embed)]
#[folder = "../web"]
#[exclude = "node_modules/*"]
struct Embedded;

/// Scripts, styles, images and connections from this origin only; no inline script. The
/// web client's WebSocket is same-origin, which `connect-src 'self'` covers (CSP Level 3:
/// `ws:`/`wss:` of the page's own host and port match `'self'`); `ws: wss:` would let an
/// injected script send data to any WebSocket server.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
    connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

/// How long a browser may keep a file asked for by its version (`?v=<version>`): it never
/// changes under that address.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Any other address: keep it, but ask (with its ETag) before using it again.
const REVALIDATE: &str = "no-cache";

/// The service worker, and the mark in it that the gateway replaces with the client's version.
const SERVICE_WORKER: &str = "sw.js";
const WEB_VERSION: &str = "__WEB_VERSION__";

/// Smaller than this, a file is sent as it is.
const COMPRESS_FROM: usize = 256;

/// One file of the web client as it is served: its bytes, its version (a hash of them) and
/// its brotli and gzip forms, made once per version.
struct Asset {
    version: String,
    mime: String,
    identity: Bytes,
    brotli: Option<Bytes>,
    gzip: Option<Bytes>,
}

/// The web client's files, compressed once per version and answered with strong validators.
/// The source is the binary's copy, or `ASTRAL_WEB_DIR` (read on each request, so an edited
/// file is served at once; it is compressed again only when its bytes change).
#[derive(Default)]
pub struct Assets {
    dir: Option<PathBuf>,
    known: Mutex<HashMap<String, Arc<Asset>>>,
}

impl Assets {
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self {
            dir,
            known: Mutex::default(),
        }
    }

    /// Compresses every file ahead of the first visit (off the request path).
    pub fn warm(self: &Arc<Self>) {
        let assets = self.clone();
        tokio::spawn(async move {
            for path in Embedded::iter() {
                let _ = assets.get(&path).await;
            }
        });
    }

    /// The file at `path` (already checked to stay inside the web directory), current.
    async fn get(&self, path: &str) -> Option<Arc<Asset>> {
        let (mut bytes, mut version) = self.read(path).await?;
        if path == SERVICE_WORKER {
            // The worker names the version of the whole client: any change to any file makes
            // it a new worker, which copies the new files (all of them, at once) for the app.
            let text = String::from_utf8_lossy(&bytes).replace(WEB_VERSION, &self.version().await);
            version = hex(&sha2::Sha256::digest(text.as_bytes())[..12]);
            bytes = Bytes::from(text);
        }
        if let Some(known) = self.lock().get(path).filter(|a| a.version == version) {
            return Some(known.clone());
        }
        let mime = mime_guess::from_path(path)
            .first_or_octet_stream()
            .as_ref()
            .to_owned();
        let asset = tokio::task::spawn_blocking(move || Asset::compress(bytes, version, mime))
            .await
            .ok()?;
        let asset = Arc::new(asset);
        self.lock().insert(path.to_owned(), asset.clone());
        Some(asset)
    }

    /// A file's bytes and version, from the folder or the binary.
    async fn read(&self, path: &str) -> Option<(Bytes, String)> {
        match &self.dir {
            Some(dir) => {
                let bytes = tokio::fs::read(dir.join(path)).await.ok()?;
                let version = hex(&sha2::Sha256::digest(&bytes)[..12]);
                Some((Bytes::from(bytes), version))
            }
            None => {
                let file = Embedded::get(path)?;
                let version = hex(&file.metadata.sha256_hash()[..12]);
                // A release build's files are static: shared, not copied, on every request.
                let bytes = match file.data {
                    std::borrow::Cow::Borrowed(bytes) => Bytes::from_static(bytes),
                    std::borrow::Cow::Owned(bytes) => Bytes::from(bytes),
                };
                Some((bytes, version))
            }
        }
    }

    /// The version of the whole client: a hash of every file's path and version.
    async fn version(&self) -> String {
        let mut all = sha2::Sha256::new();
        for path in Embedded::iter().filter(|path| path != SERVICE_WORKER) {
            if let Some((_, version)) = self.read(&path).await {
                all.update(path.as_bytes());
                all.update([0]);
                all.update(version.as_bytes());
                all.update([0]);
            }
        }
        hex(&all.finalize()[..12])
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Asset>>> {
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Asset {
    fn compress(identity: Bytes, version: String, mime: String) -> Self {
        let worth = identity.len() >= COMPRESS_FROM && compressible(&mime);
        let smaller =
            |packed: Vec<u8>| (packed.len() < identity.len()).then(|| Bytes::from(packed));
        let brotli = worth.then(|| brotli_of(&identity)).and_then(smaller);
        let gzip = worth.then(|| gzip_of(&identity)).and_then(smaller);
        Self {
            version,
            mime,
            identity,
            brotli,
            gzip,
        }
    }
}

fn compressible(mime: &str) -> bool {
    mime.starts_with("text/")
        || mime.contains("javascript")
        || mime.contains("json")
        || mime.contains("svg")
        || mime.contains("manifest")
}

fn brotli_of(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let params = brotli::enc::BrotliEncoderParams {
        quality: 11,
        lgwin: 22,
        ..Default::default()
    };
    // Writing into a Vec cannot fail.
    let _ = brotli::BrotliCompress(&mut &bytes[..], &mut out, &params);
    out
}

fn gzip_of(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Which encoding to send, from `Accept-Encoding` (brotli before gzip; `q=0` refuses one).
fn accepted(headers: &HeaderMap) -> (bool, bool) {
    let mut brotli = false;
    let mut gzip = false;
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        for item in value.to_str().unwrap_or_default().split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    == Some(0.0)
            });
            match coding.as_str() {
                "br" => brotli = !refused,
                "gzip" => gzip = !refused,
                _ => {}
            }
        }
    }
    (brotli, gzip)
}

/// Whether `If-None-Match` names this version (in any of its encodings).
fn unchanged(headers: &HeaderMap, version: &str) -> bool {
    crate::headers::list_items(headers, header::IF_NONE_MATCH)
        .map(|tag| tag.trim_start_matches("W/").trim_matches('"'))
        .any(|tag| tag == "*" || tag.split('-').next() == Some(version))
}

pub async fn static_file(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = match uri.path().trim_start_matches('/') {
        "" => "index.html",
        path => path,
    };
    if path
        .split('/')
        .any(|part| part == ".." || part.starts_with('.'))
    {
        return StatusCode::NOT_FOUND.into_response();
    }
    let Some(asset) = state.web.get(path).await else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let versioned = uri
        .query()
        .and_then(|query| query.split('&').find_map(|pair| pair.strip_prefix("v=")))
        == Some(asset.version.as_str());
    let (brotli, gzip) = accepted(&headers);
    let (body, encoding) = match (&asset.brotli, &asset.gzip) {
        (Some(body), _) if brotli => (body.clone(), Some("br")),
        (_, Some(body)) if gzip => (body.clone(), Some("gzip")),
        _ => (asset.identity.clone(), None),
    };
    let etag = match encoding {
        Some(encoding) => format!("\"{}-{encoding}\"", asset.version),
        None => format!("\"{}\"", asset.version),
    };
    let mut response = if unchanged(&headers, &asset.version) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = body.into_response();
        if let Some(encoding) = encoding {
            response
                .headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
        }
        response
    };
    let out = response.headers_mut();
    if let Ok(mime) = HeaderValue::from_str(&asset.mime) {
        out.insert(header::CONTENT_TYPE, mime);
    }
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        out.insert(header::ETAG, etag);
    }
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if versioned { IMMUTABLE } else { REVALIDATE }),
    );
    out.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    response
}

/// Adds the Content-Security-Policy and its companions to every response.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    // A response with its own policy keeps it (an attachment's: `sandbox`).
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(CSP));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}
