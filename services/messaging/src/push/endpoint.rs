//! Push endpoints are URLs a browser hands us and we then POST to. They must reach public
//! push services only, never this deployment's own network (server-side request forgery):
//! checked when a browser subscribes, and again at every connection, whose addresses come
//! from a resolver that refuses private ones (so a name that later resolves elsewhere — DNS
//! rebinding — is refused too).

use hyper_util::client::legacy::connect::dns::Name;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

/// The longest endpoint accepted (push services' are well under 1,000 characters).
pub const MAX_ENDPOINT_LEN: usize = 2048;

/// Which endpoints may be pushed to.
#[derive(Debug, Clone, Copy, Default)]
pub struct EndpointPolicy {
    /// Tests only (`ASTRAL_PUSH_INSECURE_ENDPOINTS=1`): `http://` to a loopback address too.
    pub insecure: bool,
}

impl EndpointPolicy {
    /// The endpoint as a URI, if its form is allowed: `https://` with a host (`http://` too
    /// when insecure), no credentials, and no address literal that is not public.
    pub fn check(self, endpoint: &str) -> Result<http::Uri, &'static str> {
        if endpoint.len() > MAX_ENDPOINT_LEN {
            return Err("a push endpoint has at most 2048 characters");
        }
        let uri: http::Uri = endpoint
            .parse()
            .map_err(|_| "the push endpoint is not a URL")?;
        let scheme = uri.scheme_str();
        let allowed = scheme == Some("https") || (self.insecure && scheme == Some("http"));
        if !allowed {
            return Err("a push endpoint must be https://");
        }
        let authority = uri.authority().ok_or("the push endpoint has no host")?;
        if authority.as_str().contains('@') {
            return Err("a push endpoint cannot carry credentials");
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if let Ok(ip) = host.parse::<IpAddr>()
            && !self.allows(ip)
        {
            return Err("a push endpoint must be on a public address");
        }
        Ok(uri)
    }

    /// Whether pushes may go to `ip`.
    pub fn allows(self, ip: IpAddr) -> bool {
        is_public(ip) || (self.insecure && ip.is_loopback())
    }

    /// The addresses of `host`, all of which must be allowed.
    pub async fn resolve(self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
        if addresses.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the push endpoint's host has no address",
            ));
        }
        if addresses.iter().any(|address| !self.allows(address.ip())) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "the push endpoint's host resolves to an address that is not public",
            ));
        }
        Ok(addresses)
    }
}

/// The push client's resolver: [`EndpointPolicy::resolve`] for every connection.
#[derive(Debug, Clone, Copy)]
pub struct PublicResolver(pub EndpointPolicy);

impl tower::Service<Name> for PublicResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let policy = self.0;
        // The connector puts the URL's port on each address.
        Box::pin(async move { Ok(policy.resolve(name.as_str(), 0).await?.into_iter()) })
    }
}

/// Whether `ip` is an address of the public internet: not loopback, private, link-local,
/// shared (CGNAT), documentation, benchmarking, multicast, reserved or unspecified, nor an
/// IPv6 form of one of those.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => is_public_v6(ip),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let segments = ip.segments();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00 // unique local
        || (segments[0] & 0xffc0) == 0xfe80 // link-local
        || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
        || (segments[0] == 0x0064 && segments[1] == 0xff9b) // NAT64: an IPv4 behind it
        || segments[..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible, deprecated
        || (segments[0] == 0x0100 && segments[1..4] == [0, 0, 0])) // discard
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "192.0.0.8",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "203.0.113.5",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "2001:db8::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
            "::10.0.0.1",
            "ff02::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "142.250.74.110",
            "1.1.1.1",
            "2a00:1450:4001:82b::200a",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn endpoints_are_https_to_a_host_without_credentials() {
        let strict = EndpointPolicy::default();
        assert!(
            strict
                .check("https://fcm.googleapis.com/fcm/send/abc")
                .is_ok()
        );
        assert!(strict.check("https://[2a00:1450:4001:82b::200a]/x").is_ok());
        for refused in [
            "http://fcm.googleapis.com/fcm/send/abc",
            "https://127.0.0.1/x",
            "https://10.0.0.1/x",
            "https://[::1]/x",
            "https://169.254.169.254/latest/meta-data",
            "https://user:pw@push.example/x",
            "ftp://push.example/x",
            "/relative",
            "not a url",
        ] {
            assert!(strict.check(refused).is_err(), "{refused}");
        }
        assert!(
            strict
                .check(&format!("https://push.example/{}", "a".repeat(2048)))
                .is_err()
        );
        let tests = EndpointPolicy { insecure: true };
        assert!(tests.check("http://127.0.0.1:9999/push/1").is_ok());
        assert!(
            tests.check("http://10.0.0.1/push/1").is_err(),
            "loopback only"
        );
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_a_private_address_is_refused() {
        let strict = EndpointPolicy::default();
        let error = strict.resolve("localhost", 443).await.unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::PermissionDenied);
        let tests = EndpointPolicy { insecure: true };
        assert!(tests.resolve("localhost", 443).await.is_ok());
    }
}
