//! Who the client is on the network: the peer address, or the one trusted proxies name.

use axum::http::HeaderMap;

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
    let entries: Vec<&str> = crate::headers::list_items(headers, "x-forwarded-for").collect();
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

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
}
