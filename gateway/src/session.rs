//! Who is calling: the access token from `Authorization: Bearer` or the session cookie,
//! verified locally (cookie-authenticated changes only from an allowed origin), and the
//! session cookie itself.

use crate::error::ApiError;
use crate::origin::origin_allowed;
use crate::state::AppState;
use astral_common::authenticator::Authenticator;
use astral_common::guard::Refused;
use astral_common::tokens::Claims;
use axum::extract::FromRequestParts;
use axum::http::{HeaderMap, Method, header, request::Parts};
use std::sync::Arc;

/// The session cookie's name.
pub const COOKIE: &str = "astral_session";

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub session_id: String,
    /// Their access token, passed on to the services as the proof of who acts.
    token: String,
}

impl Caller {
    /// `message` as a call to a service made for this caller.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        astral_common::guard::for_user(message, &self.token)
    }
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let (token, from_cookie) = match bearer(&parts.headers) {
            Some(token) => (token, false),
            None => (
                cookie(&parts.headers).ok_or_else(|| ApiError::unauthenticated("sign in first"))?,
                true,
            ),
        };
        let changes_state = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if from_cookie && changes_state && !origin_allowed(&parts.headers, &state.config, true) {
            return Err(ApiError::forbidden("cross-site request refused"));
        }
        let claims = authenticate(&state.tokens, &token).await?;
        Ok(Caller {
            user_id: claims.sub,
            session_id: claims.sid,
            token,
        })
    }
}

/// Verifies a token and refuses it if its session has ended.
pub async fn authenticate(tokens: &Authenticator, token: &str) -> Result<Claims, ApiError> {
    tokens
        .authenticate(token)
        .await
        .map_err(|refused| match refused {
            Refused::Unauthenticated(why) => ApiError::unauthenticated(why),
            Refused::Unavailable(why) => ApiError::unavailable(why),
        })
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))?;
    Some(token.trim().to_owned())
}

/// The session cookie's value, if the request carries one.
pub fn cookie(headers: &HeaderMap) -> Option<String> {
    cookie_named(headers, COOKIE)
}

/// The value of the cookie `wanted`, if the request carries it.
pub fn cookie_named(headers: &HeaderMap, wanted: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == wanted)
        .map(|(_, value)| value.to_owned())
}

/// The body of register, login and refresh: JSON only, so that a form or a `text/plain`
/// post from another site (which a browser sends without asking) is refused before anything
/// is read, and from an allowed origin whenever the browser says where it comes from. This
/// closes login CSRF: another site cannot sign a visitor into its own account.
pub struct SignIn<T>(pub T);

impl<T: serde::de::DeserializeOwned> axum::extract::FromRequest<Arc<AppState>> for SignIn<T> {
    type Rejection = ApiError;

    async fn from_request(
        request: axum::extract::Request,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Err(ApiError::new(
                crate::error::ErrorCode::UnsupportedMediaType,
                "send the body as Content-Type: application/json",
            ));
        }
        if !origin_allowed(request.headers(), &state.config, false) {
            return Err(ApiError::forbidden("cross-site request refused"));
        }
        let crate::json::Body(body) = crate::json::Body::from_request(request, state).await?;
        Ok(Self(body))
    }
}

/// The `Set-Cookie` value that opens a browser session with `token`.
pub fn session_cookie(token: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{COOKIE}={token}; HttpOnly; SameSite=Lax; Path=/; Max-Age={}{secure}",
        15 * 60
    )
}

/// The `Set-Cookie` value that ends a browser session.
pub fn cleared_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; astral_session=tok; b=2"),
        );
        assert_eq!(cookie(&headers).as_deref(), Some("tok"));
    }

    #[test]
    fn the_session_cookie_is_http_only_and_same_site() {
        let value = session_cookie("t", true);
        assert!(
            value.contains("HttpOnly")
                && value.contains("SameSite=Lax")
                && value.contains("Path=/")
        );
        assert!(value.ends_with("Secure"));
    }
}
