//! The same-origin rule: which web origins may use cookie sessions and open WebSockets.

use crate::config::Config;
use axum::http::{HeaderMap, header};

/// Whether the request's `Origin` is the gateway's own origin or a configured one: scheme,
/// host and port must all be the same (`http://localhost:9999` is not the gateway at
/// `http://localhost:8000`, nor `https://x` the one at `http://x`). A request without `Origin`
/// passes only if `required` is false (non-browser clients send none).
pub fn origin_allowed(headers: &HeaderMap, config: &Config, required: bool) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return !required;
    };
    let Some(origin) = Origin::parse(origin) else {
        return false;
    };
    let own = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .and_then(|host| Origin::of_host(own_scheme(headers, config), host));
    own.as_ref() == Some(&origin)
        || config
            .allowed_origins
            .iter()
            .any(|allowed| Origin::parse(allowed).as_ref() == Some(&origin))
}

/// The scheme the gateway is reached by: what the trusted proxy in front says
/// (`X-Forwarded-Proto`), else `https` when the operator says it is served over HTTPS
/// (secure cookies), else `http`.
fn own_scheme(headers: &HeaderMap, config: &Config) -> &'static str {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
