//! The users of a run: registered over HTTP, each from one of many loopback addresses
//! (127.0.0.2 and up), befriended, given chats, and connected.

use crate::client::api::{Account, Api};
use crate::client::socket::{self, Identified};
use anyhow::Context as _;
use futures::{StreamExt as _, TryStreamExt as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Registrations at once (the auth service hashes one password per core at a time).
const REGISTERING: usize = 16;
/// Other setup calls at once.
const SETTING_UP: usize = 32;
/// WebSockets connecting at once, and at once from one address (a gateway lets an address
/// have 16 waiting to identify).
const CONNECTING: usize = 64;
const IDENTIFYING_PER_ADDRESS: usize = 8;

/// The `k`-th client address: 127.0.0.2, 127.0.0.3, …
pub fn address(k: usize) -> anyhow::Result<IpAddr> {
    anyhow::ensure!(k < 250, "more than 250 client addresses asked for");
    Ok(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + k as u8)))
}

/// Users, each with the HTTP client of its address.
pub struct Population {
    pub accounts: Vec<Account>,
    apis: Vec<Api>,
    per_address: usize,
}

impl Population {
    /// Registers `count` users named `<prefix><n>`, `per_address` to a client address.
    pub async fn register(
        base: &str,
        prefix: &str,
        count: usize,
        per_address: usize,
    ) -> anyhow::Result<Self> {
        let apis = (0..count.div_ceil(per_address))
            .map(|k| Api::new(base, address(k)?))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let population = Self {
            accounts: Vec::new(),
            apis,
            per_address,
        };
        let accounts = futures::stream::iter(0..count)
            .map(|n| {
                let api = population.api(n).clone();
                async move { api.register(&format!("{prefix}{n}")).await }
            })
            .buffered(REGISTERING)
            .try_collect()
            .await
            .context("register the users")?;
        Ok(Self {
            accounts,
            ..population
        })
    }

    /// The HTTP client of user `n`'s address.
    pub fn api(&self, n: usize) -> &Api {
        &self.apis[n / self.per_address]
    }

    pub fn source(&self, n: usize) -> anyhow::Result<IpAddr> {
        address(n / self.per_address)
    }

    /// Makes each pair `(a, b)` friends: `a` asks, `b` accepts.
    pub async fn befriend(&self, pairs: &[(usize, usize)]) -> anyhow::Result<()> {
        futures::stream::iter(pairs)
            .map(|&(a, b)| async move {
                let request = self
                    .api(a)
                    .request_friend(&self.accounts[a], &self.accounts[b])
                    .await?;
                self.api(b).accept(&self.accounts[b], &request).await
            })
            .buffer_unordered(SETTING_UP)
            .try_collect::<Vec<()>>()
            .await
            .context("befriend the users")?;
        Ok(())
    }

    /// The direct chat of each pair, opened by its first user.
    pub async fn direct_chats(&self, pairs: &[(usize, usize)]) -> anyhow::Result<Vec<String>> {
        futures::stream::iter(pairs)
            .map(|&(a, b)| {
                self.api(a)
                    .open_direct(&self.accounts[a], &self.accounts[b])
            })
            .buffered(SETTING_UP)
            .try_collect()
            .await
            .context("open the direct chats")
    }

    /// A group of `owner` with `members` (friends of the owner already).
    pub async fn group(
        &self,
        owner: usize,
        members: &[usize],
        name: &str,
    ) -> anyhow::Result<String> {
        let ids: Vec<String> = members
            .iter()
            .map(|&m| self.accounts[m].id.clone())
            .collect();
        self.api(owner)
            .create_group(&self.accounts[owner], name, &ids)
            .await
    }

    /// An identified socket for each of `users`, in their order.
    pub async fn connect(
        &self,
        gateway: SocketAddr,
        users: &[usize],
    ) -> anyhow::Result<Vec<Identified>> {
        // Round-robin over the addresses, so that no address has many waiting to identify.
        let mut order: Vec<(usize, usize)> = users.iter().copied().enumerate().collect();
        order.sort_by_key(|&(_, user)| (user % self.per_address, user / self.per_address));
        let gates: Vec<tokio::sync::Semaphore> = (0..self.apis.len())
            .map(|_| tokio::sync::Semaphore::new(IDENTIFYING_PER_ADDRESS))
            .collect();
        let gates = &gates;
        let mut sockets: Vec<(usize, Identified)> = futures::stream::iter(order)
            .map(|(slot, user)| async move {
                let _permit = gates[user / self.per_address].acquire().await?;
                let socket =
                    socket::connect(gateway, self.source(user)?, &self.accounts[user].token).await;
                socket
                    .map(|socket| (slot, socket))
                    .with_context(|| format!("connect user {user}"))
            })
            .buffer_unordered(CONNECTING)
            .try_collect()
            .await?;
        sockets.sort_by_key(|(slot, _)| *slot);
        Ok(sockets.into_iter().map(|(_, socket)| socket).collect())
    }
}
