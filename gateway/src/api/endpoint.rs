//! One route of the API as data: how it is served and how it is documented. The router and
//! the OpenAPI document are both built from the one list of them (`super::endpoints`), so
//! they cannot disagree.

use crate::state::AppState;
use axum::routing::MethodRouter;
use std::sync::Arc;

/// One route of the API.
pub struct Endpoint {
    pub method: &'static str,
    /// Below `/api`, with `{parameters}`.
    pub path: &'static str,
    pub summary: &'static str,
    /// Query parameters: name and description.
    pub query: &'static [(&'static str, &'static str)],
    /// The request body's schema (a name in `components/schemas`).
    pub body: Option<&'static str>,
    /// The success status and the response body's schema.
    pub ok: (u16, Option<&'static str>),
    /// Whether it needs a token or the session cookie.
    pub authenticated: bool,
    pub handler: MethodRouter<Arc<AppState>>,
}

#[allow(clippy::too_many_arguments)]
pub fn endpoint(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    body: Option<&'static str>,
    ok: (u16, Option<&'static str>),
    handler: MethodRouter<Arc<AppState>>,
) -> Endpoint {
    let authenticated = !matches!(
        path,
        "/auth/register" | "/auth/login" | "/auth/refresh" | "/openapi.json"
    );
    Endpoint {
        method,
        path,
        summary,
        query: &[],
        body,
        ok,
        authenticated,
        handler,
    }
}
