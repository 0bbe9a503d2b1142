//! The web client's files (from `ASTRAL_WEB_DIR`, or the copy built into the binary) and the
//! security headers every response carries.

use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

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
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

pub async fn static_file(State(state): State<Arc<AppState>>, uri: Uri) -> Response {
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
    let body = match &state.config.web_dir {
        Some(dir) => tokio::fs::read(dir.join(path)).await.ok(),
        None => Embedded::get(path).map(|file| file.data.into_owned()),
    };
    match body {
        Some(body) => {
            let mime = mime_guess::from_path(path).first_or_octet_stream();
            (
                [
                    (header::CONTENT_TYPE, mime.as_ref().to_owned()),
                    (header::CACHE_CONTROL, "no-cache".to_owned()),
                ],
                body,
            )
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

/// Adds the Content-Security-Policy and its companions to every response.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
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
