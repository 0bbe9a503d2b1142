//! How many connections the gateway holds, in all and per client address: one over either
//! cap is refused at once, and counted.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The open connections of one gateway.
pub struct OpenConnections {
    counts: Arc<Mutex<Counts>>,
    max: usize,
    per_address: Option<usize>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

impl OpenConnections {
    /// At most `max` connections, and `per_address` from one address group if given.
    pub fn new(max: usize, per_address: Option<usize>) -> Self {
        Self {
            counts: Arc::default(),
            max,
            per_address,
        }
    }

    /// A place for one more connection from `ip`, unless a cap is reached.
    pub fn admit(&self, ip: IpAddr) -> Option<Permit> {
        let group = self.per_address.map(|_| address_group(ip));
        let mut counts = lock(&self.counts);
        if counts.total >= self.max {
            metrics::counter!("astral_http_connections_refused_total", "limit" => "gateway")
                .increment(1);
            return None;
        }
        if let (Some(group), Some(cap)) = (group, self.per_address) {
            let count = counts.by_address.entry(group).or_default();
            if *count >= cap {
                metrics::counter!("astral_http_connections_refused_total", "limit" => "address")
                    .increment(1);
                return None;
            }
            *count += 1;
        }
        counts.total += 1;
        metrics::gauge!("astral_http_connections").increment(1.0);
        Some(Permit {
            counts: self.counts.clone(),
            group,
        })
    }
}

/// One open connection, counted until dropped (with the socket: a WebSocket keeps it).
pub struct Permit {
    counts: Arc<Mutex<Counts>>,
    group: Option<IpAddr>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        metrics::gauge!("astral_http_connections").decrement(1.0);
        let mut counts = lock(&self.counts);
        counts.total -= 1;
        if let Some(group) = self.group
            && let Some(count) = counts.by_address.get_mut(&group)
        {
            *count -= 1;
            if *count == 0 {
                counts.by_address.remove(&group);
            }
        }
    }
}

fn lock(counts: &Mutex<Counts>) -> MutexGuard<'_, Counts> {
    counts.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a per-address cap counts as one client: an IPv4 address; an IPv6 client by its /64
/// (a host is usually given a whole /64, and could otherwise take a new address for every
/// connection); an IPv4-mapped IPv6 address as its IPv4 address.
pub fn address_group(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap does
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn one_address_has_its_cap_and_others_are_not_held_back() {
        let open = OpenConnections::new(10, Some(2));
        let first = open.admit(ip("10.0.0.1")).unwrap();
        let _second = open.admit(ip("10.0.0.1")).unwrap();
        assert!(open.admit(ip("10.0.0.1")).is_none());
        assert!(open.admit(ip("10.0.0.2")).is_some());
        drop(first);
        assert!(
            open.admit(ip("10.0.0.1")).is_some(),
            "a closed one frees its place"
        );
    }

    #[test]
    fn the_gateway_has_its_cap_whatever_the_addresses() {
        let open = OpenConnections::new(3, None);
        let held: Vec<Permit> = (1..=3)
            .map(|n| open.admit(ip(&format!("10.0.0.{n}"))).unwrap())
            .collect();
        assert!(open.admit(ip("10.0.0.9")).is_none());
        drop(held);
        assert!(open.admit(ip("10.0.0.9")).is_some());
    }

    #[test]
    fn an_ipv6_client_counts_as_its_slash_64() {
        assert_eq!(
            address_group(ip("2001:db8:1:2:aaaa::1")),
            address_group(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(
            address_group(ip("2001:db8:1:2::1")),
            address_group(ip("2001:db8:1:3::1"))
        );
        assert_eq!(address_group(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
        let open = OpenConnections::new(10, Some(1));
        let _held = open.admit(ip("2001:db8:1:2::1")).unwrap();
        assert!(open.admit(ip("2001:db8:1:2::99")).is_none());
    }
}
