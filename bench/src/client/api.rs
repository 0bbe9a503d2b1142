//! The HTTP API as a user calls it: register, befriend, open chats, send. Each client is
//! bound to one loopback source address, so that no address holds more connections than a
//! gateway allows one (256).

use anyhow::Context as _;
use serde_json::{Value, json};
use std::net::IpAddr;
use std::time::Duration;

/// Every benchmark user's password.
const PASSWORD: &str = "correct horse battery";
/// How often a setup call answered 503 or 429 is tried again.
const TRIES: usize = 20;

/// A user: id, name and access token.
#[derive(Clone, Debug)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub token: String,
}

/// An HTTP client of the gateway, from one source address.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
}

/// How a send ended: the HTTP status, or no answer at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    Status(u16),
    NoAnswer,
}

impl Api {
    pub fn new(base: &str, source: IpAddr) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .local_address(source)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(30))
            .timeout(Duration::from_secs(30))
            .build()
            .context("build an HTTP client")?;
        Ok(Self {
            http,
            base: base.to_owned(),
        })
    }

    pub async fn register(&self, name: &str) -> anyhow::Result<Account> {
        let body = json!({ "username": name, "password": PASSWORD });
        let answer = self
            .call(
                reqwest::Method::POST,
                "/api/auth/register",
                None,
                Some(body),
            )
            .await?;
        Ok(Account {
            id: text(&answer["user"]["id"])?,
            name: name.to_owned(),
            token: text(&answer["token"])?,
        })
    }

    /// `who` asks `whom` (by username) to be friends; returns the request's id.
    pub async fn request_friend(&self, who: &Account, whom: &Account) -> anyhow::Result<String> {
        let body = json!({ "username": whom.name });
        let answer = self
            .call(
                reqwest::Method::POST,
                "/api/friends/requests",
                Some(who),
                Some(body),
            )
            .await?;
        text(&answer["id"])
    }

    pub async fn accept(&self, who: &Account, request: &str) -> anyhow::Result<()> {
        let path = format!("/api/friends/requests/{request}/accept");
        self.call(reqwest::Method::POST, &path, Some(who), None)
            .await?;
        Ok(())
    }

    /// The direct chat of `who` with a friend; returns its id.
    pub async fn open_direct(&self, who: &Account, friend: &Account) -> anyhow::Result<String> {
        let body = json!({ "user_id": friend.id });
        let answer = self
            .call(
                reqwest::Method::POST,
                "/api/chats/direct",
                Some(who),
                Some(body),
            )
            .await?;
        text(&answer["id"])
    }

    /// A group owned by `owner` with these friends of theirs; returns its id.
    pub async fn create_group(
        &self,
        owner: &Account,
        name: &str,
        members: &[String],
    ) -> anyhow::Result<String> {
        let body = json!({ "name": name, "member_ids": members });
        let answer = self
            .call(reqwest::Method::POST, "/api/chats", Some(owner), Some(body))
            .await?;
        text(&answer["id"])
    }

    /// One message, as the web client sends it; the nonce identifies it when it arrives.
    pub async fn send(&self, token: &str, chat: &str, nonce: &str) -> Outcome {
        let body = format!(r#"{{"content":"m {nonce}","nonce":"{nonce}"}}"#);
        let request = self
            .http
            .post(format!("{}/api/chats/{chat}/messages", self.base))
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        match request.send().await {
            Ok(answer) => {
                let status = answer.status().as_u16();
                // Read the body, so the connection goes back to the pool.
                match answer.bytes().await {
                    Ok(_) => Outcome::Status(status),
                    Err(_) => Outcome::NoAnswer,
                }
            }
            Err(_) => Outcome::NoAnswer,
        }
    }

    /// A setup call, tried again while the system answers 503 or 429 (busy hashing, or a
    /// budget to wait for); any other failure is an error.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        who: Option<&Account>,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        for _ in 0..TRIES {
            let mut request = self
                .http
                .request(method.clone(), format!("{}{path}", self.base));
            if let Some(who) = who {
                request = request.bearer_auth(&who.token);
            }
            if let Some(body) = &body {
                request = request.json(body);
            }
            let answer = request
                .send()
                .await
                .with_context(|| format!("{method} {path}"))?;
            let status = answer.status();
            if status.as_u16() == 503 || status.as_u16() == 429 {
                tokio::time::sleep(retry_after(&answer)).await;
                continue;
            }
            let text = answer
                .text()
                .await
                .with_context(|| format!("{method} {path}"))?;
            anyhow::ensure!(status.is_success(), "{method} {path}: {status} {text}");
            return Ok(serde_json::from_str(&text).unwrap_or(Value::Null));
        }
        anyhow::bail!("{method} {path}: still busy after {TRIES} tries")
    }
}

fn retry_after(answer: &reqwest::Response) -> Duration {
    let seconds = answer
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok()?.parse::<f64>().ok())
        .unwrap_or(1.0);
    Duration::from_secs_f64(seconds.clamp(0.1, 10.0) * (0.5 + rand::random::<f64>()))
}

fn text(value: &Value) -> anyhow::Result<String> {
    value
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("expected a string, got {value}"))
}
