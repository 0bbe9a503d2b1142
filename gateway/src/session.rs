//! Who is calling: the access token from `Authorization: Bearer` or the session cookie,
//! verified locally, and the same-origin rule for cookie-authenticated changes.

use crate::error::ApiError;
use crate::state::AppState;
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
        if from_cookie && changes_state && !origin_allowed(&parts.headers, state, true) {
            return Err(ApiError::forbidden("cross-site request refused"));
        }
        let claims = authenticate(state, &token).await?;
        Ok(Caller {
            user_id: claims.sub,
            session_id: claims.sid,
            token,
        })
    }
}

/// Verifies a token and refuses it if its session has ended.
pub async fn authenticate(state: &AppState, token: &str) -> Result<Claims, ApiError> {
    state
        .tokens
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

/// How many proxies in front of the gateway add the address they saw to `X-Forwarded-For`
/// (`ASTRAL_TRUSTED_PROXY_HOPS`); none: clients connect directly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyHops(pub usize);

/// The client's network address. With `hops` trusted proxies in front, it is the `hops`-th
/// entry of `X-Forwarded-For` from the right: each trusted proxy appended the address it saw,
/// and whatever stands further left came from the client, who can write anything there.
/// Without proxies, or when the header has fewer entries, it is the connection's peer.
pub fn client_addr(headers: &HeaderMap, peer: std::net::SocketAddr, hops: ProxyHops) -> String {
    if hops.0 == 0 {
        return peer.ip().to_string();
    }
    // Several X-Forwarded-For lines are one list, in order.
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    match entries
        .len()
        .checked_sub(hops.0)
        .map(|index| entries[index])
    {
        Some(entry) if !entry.is_empty() => address_text(entry),
        _ => peer.ip().to_string(),
    }
}

/// An `X-Forwarded-For` entry as an address (`1.2.3.4:5678` and `[2001:db8::1]` as the
/// address alone); anything else as it is, at most 64 characters.
fn address_text(entry: &str) -> String {
    let bare = entry.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return ip.to_string();
    }
    if let Ok(socket) = entry.parse::<std::net::SocketAddr>() {
        return socket.ip().to_string();
    }
    entry.chars().take(64).collect()
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

/// Whether the request's `Origin` is the gateway's own origin or a configured one: scheme,
/// host and port must all be the same (`http://localhost:9999` is not the gateway at
/// `http://localhost:8000`, nor `https://x` the one at `http://x`). A request without `Origin`
/// passes only if `required` is false (non-browser clients send none).
pub fn origin_allowed(headers: &HeaderMap, state: &AppState, required: bool) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return !required;
    };
    let Some(origin) = Origin::parse(origin) else {
        return false;
    };
    let own = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .and_then(|host| Origin::of_host(own_scheme(headers, &state.config), host));
    own.as_ref() == Some(&origin)
        || state
            .config
            .allowed_origins
            .iter()
            .any(|allowed| Origin::parse(allowed).as_ref() == Some(&origin))
}

/// The scheme the gateway is reached by: what the trusted proxy in front says
/// (`X-Forwarded-Proto`), else `https` when the operator says it is served over HTTPS
/// (secure cookies), else `http`.
fn own_scheme(headers: &HeaderMap, config: &crate::Config) -> &'static str {
    let forwarded = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .map(|v| v.trim().to_ascii_lowercase());
    match forwarded.as_deref() {
        Some("https") if config.trusted_proxy_hops.0 > 0 => "https",
        Some("http") if config.trusted_proxy_hops.0 > 0 => "http",
        _ if config.secure_cookies => "https",
        _ => "http",
    }
}

/// A web origin: scheme, host and port (the scheme's default port when none is written).
#[derive(Debug, PartialEq, Eq)]
struct Origin {
    scheme: &'static str,
    host: String,
    port: u16,
}

impl Origin {
    /// `scheme://host[:port]`, as browsers send it (a trailing `/` is allowed, as operators
    /// may write one); `null` and anything else but http(s) is no origin.
    fn parse(text: &str) -> Option<Self> {
        let (scheme, authority) = text.split_once("://")?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => "http",
            "https" => "https",
            _ => return None,
        };
        Self::of_host(scheme, authority.strip_suffix('/').unwrap_or(authority))
    }

    /// The origin of a `Host` header (`host[:port]`) reached by `scheme`.
    fn of_host(scheme: &'static str, host: &str) -> Option<Self> {
        let authority: axum::http::uri::Authority = host.parse().ok()?;
        if authority.as_str().contains('@') || authority.host().is_empty() {
            return None;
        }
        let default_port = if scheme == "https" { 443 } else { 80 };
        Some(Self {
            scheme,
            host: authority.host().to_ascii_lowercase(),
            port: authority.port_u16().unwrap_or(default_port),
        })
    }
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
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as Content-Type: application/json",
            ));
        }
        if !origin_allowed(request.headers(), state, false) {
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

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn peer() -> std::net::SocketAddr {
        "10.1.1.1:5555".parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_client_is_the_peer_whatever_it_forwards() {
        let forged = headers(&[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(client_addr(&forged, peer(), ProxyHops(0)), "10.1.1.1");
    }

    #[test]
    fn the_client_is_counted_from_the_right_of_x_forwarded_for() {
        // The client wrote "6.6.6.6" itself; the one proxy in front appended what it saw.
        let one = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.7")]);
        assert_eq!(client_addr(&one, peer(), ProxyHops(1)), "203.0.113.7");
        // A load balancer, then a proxy: the balancer saw the client.
        let two = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.0.0.2")]);
        assert_eq!(client_addr(&two, peer(), ProxyHops(2)), "203.0.113.7");
        // Several header lines are one list.
        let lines = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "203.0.113.7, 10.0.0.2"),
        ]);
        assert_eq!(client_addr(&lines, peer(), ProxyHops(2)), "203.0.113.7");
    }

    #[test]
    fn too_few_forwarded_entries_fall_back_to_the_peer() {
        let short = headers(&[("x-forwarded-for", "203.0.113.7")]);
        assert_eq!(client_addr(&short, peer(), ProxyHops(2)), "10.1.1.1");
        assert_eq!(
            client_addr(&HeaderMap::new(), peer(), ProxyHops(1)),
            "10.1.1.1"
        );
        let empty = headers(&[("x-forwarded-for", "203.0.113.7, ")]);
        assert_eq!(client_addr(&empty, peer(), ProxyHops(1)), "10.1.1.1");
    }

    #[test]
    fn forwarded_addresses_lose_their_ports_and_brackets() {
        let ported = headers(&[("x-forwarded-for", "203.0.113.7:4711")]);
        assert_eq!(client_addr(&ported, peer(), ProxyHops(1)), "203.0.113.7");
        let v6 = headers(&[("x-forwarded-for", "[2001:DB8::1]:4711")]);
        assert_eq!(client_addr(&v6, peer(), ProxyHops(1)), "2001:db8::1");
    }

    #[test]
    fn an_origin_is_its_scheme_host_and_port() {
        let at = |text| Origin::parse(text);
        assert_eq!(
            at("http://localhost:8000"),
            Origin::of_host("http", "localhost:8000")
        );
        assert_eq!(at("http://x"), at("http://x:80"));
        assert_eq!(
            at("HTTPS://Chat.Example.com/"),
            at("https://chat.example.com:443")
        );
        assert_ne!(at("http://localhost:9999"), at("http://localhost:8000"));
        assert_ne!(at("https://x"), at("http://x"));
        assert_ne!(at("http://x"), at("http://x.evil"));
        for nothing in ["null", "x", "ftp://x", "http://", "http://user@x"] {
            assert_eq!(at(nothing), None, "{nothing}");
        }
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
