//! Listening sockets with room for a burst of connections.
//!
//! `tokio::net::TcpListener::bind` asks the kernel for the standard library's backlog of 128
//! connections waiting to be accepted. When 15,000 clients reconnect at once after a gateway
//! restart, the 129 connections that land in that queue before the process first accepts are
//! reset, and those past it wait for a SYN retransmission (a second or more). Every Astral
//! process listens with [`BACKLOG`] instead (the kernel caps it at `net.core.somaxconn`).

use std::io;
use tokio::net::{TcpListener, TcpSocket, lookup_host};

/// Connections the kernel may hold for a listener before it accepts them.
pub const BACKLOG: u32 = 4096;

/// Listens on `address` (`host:port`; the first address it resolves to).
pub async fn listen(address: &str) -> io::Result<TcpListener> {
    let resolved = lookup_host(address).await?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{address} names no address"),
        )
    })?;
    let socket = if resolved.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(resolved)?;
    socket.listen(BACKLOG)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_past_the_standard_backlog_is_held_until_accepted() {
        let listener = listen("127.0.0.1:0").await.expect("listen");
        let address = listener.local_addr().expect("address");
        // 300 connections complete their handshakes before the first accept: with a backlog
        // of 128 the kernel would hold only 129 of them.
        let mut clients = Vec::new();
        for _ in 0..300 {
            let connect = tokio::net::TcpStream::connect(address);
            let client = tokio::time::timeout(std::time::Duration::from_millis(500), connect)
                .await
                .expect("connected without waiting for a SYN retransmission")
                .expect("connect");
            clients.push(client);
        }
        for _ in 0..300 {
            listener.accept().await.expect("accepted");
        }
    }

    #[tokio::test]
    async fn an_address_that_resolves_to_nothing_is_an_error() {
        assert!(listen("not an address").await.is_err());
    }
}
