//! A user of the system under test: an HTTP client with their token, and their WebSocket.

use super::WAIT;
use futures::{SinkExt as _, StreamExt as _};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct User {
    pub base: String,
    pub http: reqwest::Client,
    pub name: String,
    pub id: String,
    pub token: String,
    pub refresh_token: String,
    pub password: String,
    pub socket: Option<Socket>,
}

/// Every test user's password.
pub const PASSWORD: &str = "correct horse";

/// A username no other test uses.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}", rand::random::<u32>())
}

/// Alice (on `alice_base`) and bob (on `bob_base`), friends, and their direct chat's id.
pub async fn friends_with_a_chat(alice_base: &str, bob_base: &str) -> (User, User, String) {
    let alice = User::register(alice_base, "alice").await;
    let bob = User::register(bob_base, "bob").await;
    alice.befriend(&bob).await;
    let chat = alice.open_direct_chat(&bob).await;
    (alice, bob, super::id(&chat))
}

impl User {
    /// Registers a new account named `<prefix>_<random>`.
    pub async fn register(base: &str, prefix: &str) -> Self {
        let http = reqwest::Client::new();
        let name = unique_name(prefix);
        let response = http
            .post(format!("{base}/api/auth/register"))
            .json(&json!({ "username": name, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED, "register {name}");
        let body: Value = response.json().await.unwrap();
        Self {
            base: base.to_owned(),
            http,
            id: body["user"]["id"].as_str().unwrap().to_owned(),
            token: body["token"].as_str().unwrap().to_owned(),
            refresh_token: body["refresh_token"].as_str().unwrap().to_owned(),
            password: PASSWORD.to_owned(),
            name,
            socket: None,
        }
    }

    /// The same user (same token) talking to another gateway, not connected.
    pub fn on(&self, base: &str) -> Self {
        Self {
            base: base.to_owned(),
            http: reqwest::Client::new(),
            name: self.name.clone(),
            id: self.id.clone(),
            token: self.token.clone(),
            refresh_token: self.refresh_token.clone(),
            password: self.password.clone(),
            socket: None,
        }
    }

    /// Logs in again: a second session of the same user, not connected.
    pub async fn login_again(&self) -> Self {
        let body = json!({ "username": self.name, "password": self.password });
        let response = self
            .http
            .post(format!("{}/api/auth/login", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "login {}", self.name);
        let body: Value = response.json().await.unwrap();
        Self {
            token: body["token"].as_str().unwrap().to_owned(),
            refresh_token: body["refresh_token"].as_str().unwrap().to_owned(),
            ..self.on(&self.base)
        }
    }

    /// Calls the API as this user; returns the status and the JSON body (Null when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        (status, body)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, None).await
    }

    /// Sends `other` a friend request, which they accept.
    pub async fn befriend(&self, other: &User) {
        let (status, request) = self
            .post("/api/friends/requests", json!({ "username": other.name }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{request}");
        let accept = format!(
            "/api/friends/requests/{}/accept",
            request["id"].as_str().unwrap()
        );
        let (status, body) = other.post(&accept, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// Ends the friendship with `other`.
    pub async fn unfriend(&self, other: &User) {
        let (status, body) = self.delete(&format!("/api/friends/{}", other.id)).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }

    /// Opens the direct chat with `other` (the same one every time): the chat.
    pub async fn open_direct_chat(&self, other: &User) -> Value {
        let (status, chat) = self
            .post("/api/chats/direct", json!({ "user_id": other.id }))
            .await;
        assert_eq!(status, StatusCode::OK, "{chat}");
        chat
    }

    /// Creates a group chat named `name` with `members` besides its owner: the chat.
    pub async fn create_group(&self, name: &str, members: &[&User]) -> Value {
        let (status, chat) = self.try_create_group(name, members).await;
        assert_eq!(status, StatusCode::CREATED, "{chat}");
        chat
    }

    /// Asks to create a group chat: the status and the body.
    pub async fn try_create_group(&self, name: &str, members: &[&User]) -> (StatusCode, Value) {
        let member_ids: Vec<&str> = members.iter().map(|user| user.id.as_str()).collect();
        self.post(
            "/api/chats",
            json!({ "name": name, "member_ids": member_ids }),
        )
        .await
    }

    /// Adds `user` to a group chat: the status and the body (the chat, or an error).
    pub async fn add_member(&self, chat_id: &str, user: &User) -> (StatusCode, Value) {
        self.post(
            &format!("/api/chats/{chat_id}/members"),
            json!({ "user_id": user.id }),
        )
        .await
    }

    /// Removes `user` (this user to leave) from a group chat: the status and the body.
    pub async fn remove_member(&self, chat_id: &str, user: &User) -> (StatusCode, Value) {
        self.delete(&format!("/api/chats/{chat_id}/members/{}", user.id))
            .await
    }

    /// Sends `content` to a chat: the message stored.
    pub async fn send_message(&self, chat_id: &str, content: &str) -> Value {
        let (status, message) = self
            .try_send_message(chat_id, json!({ "content": content }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{message}");
        message
    }

    /// Sends a message of this body (`content`, and a `nonce` or `reply_to` if the test
    /// wants): the status and the body (the message, or an error).
    pub async fn try_send_message(&self, chat_id: &str, body: Value) -> (StatusCode, Value) {
        self.post(&format!("/api/chats/{chat_id}/messages"), body)
            .await
    }

    /// Toggles this user's `emoji` on a message: the status and the body (the message).
    pub async fn react(&self, chat_id: &str, message_id: &str, emoji: &str) -> (StatusCode, Value) {
        self.post(
            &format!("/api/chats/{chat_id}/messages/{message_id}/reactions"),
            json!({ "emoji": emoji }),
        )
        .await
    }

    /// A chat's latest messages, oldest first.
    pub async fn history(&self, chat_id: &str) -> Vec<Value> {
        let (status, page) = self.get(&format!("/api/chats/{chat_id}/messages")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        page.as_array().unwrap().clone()
    }

    /// Tells a chat's subscribers this user is typing (over the WebSocket).
    pub async fn start_typing(&mut self, chat_id: &str) {
        self.send(json!({ "op": "typing", "d": { "chat_id": chat_id } }))
            .await;
    }

    /// Opens the WebSocket, identifies, and returns the `ready` payload.
    pub async fn connect(&mut self) -> Value {
        let url = format!("{}/ws", self.base.replacen("http", "ws", 1));
        let (socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        self.socket = Some(socket);
        let hello = self.next_frame().await;
        assert_eq!(hello["op"], "hello");
        assert!(hello["d"]["heartbeat_ms"].as_u64().unwrap() > 0);
        self.send(json!({ "op": "identify", "d": { "token": self.token } }))
            .await;
        let ready = self.expect_op("ready").await;
        assert_eq!(ready["d"]["user"]["id"], self.id.as_str());
        ready["d"].clone()
    }

    pub async fn send(&mut self, frame: Value) {
        let socket = self.socket.as_mut().expect("connected");
        socket
            .send(Message::Text(frame.to_string().into()))
            .await
            .unwrap();
    }

    /// The next JSON frame from the server, within the wait limit.
    pub async fn next_frame(&mut self) -> Value {
        let socket = self.socket.as_mut().expect("connected");
        loop {
            let message = tokio::time::timeout(WAIT, socket.next())
                .await
                .unwrap_or_else(|_| panic!("no frame within {WAIT:?}"))
                .expect("socket open")
                .unwrap();
            match message {
                Message::Text(text) => return serde_json::from_str(&text).unwrap(),
                Message::Close(frame) => panic!("closed: {frame:?}"),
                _ => continue,
            }
        }
    }

    /// Waits for the server to close the socket and returns the close code.
    pub async fn expect_close(&mut self) -> u16 {
        let socket = self.socket.as_mut().expect("connected");
        loop {
            let message = tokio::time::timeout(WAIT, socket.next())
                .await
                .expect("closed in time");
            match message {
                Some(Ok(Message::Close(frame))) => return frame.map_or(1005, |f| f.code.into()),
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }

    /// Waits for a frame with this op, answering nothing and skipping other frames.
    pub async fn expect_op(&mut self, op: &str) -> Value {
        loop {
            let frame = self.next_frame().await;
            if frame["op"] == op {
                return frame;
            }
            assert_ne!(frame["op"], "error", "while waiting for {op}: {frame}");
        }
    }

    /// Waits for a frame with this op, skipping every other frame, errors included.
    pub async fn expect_op_allowing_errors(&mut self, op: &str) -> Value {
        loop {
            let frame = self.next_frame().await;
            if frame["op"] == op {
                return frame;
            }
        }
    }

    /// Waits for the next event and checks its type: events arrive in order, so an
    /// unexpected one fails the test. Friends' presence and read markers, which come when
    /// they will, are skipped unless they are what is awaited.
    pub async fn expect_event(&mut self, event: &str) -> Value {
        loop {
            let frame = self.expect_op("event").await;
            let skip = ["presence.updated", "read.updated"];
            if frame["t"] != event && skip.iter().any(|kind| frame["t"] == *kind) {
                continue;
            }
            assert_eq!(frame["t"], event, "unexpected event: {frame}");
            return frame["d"].clone();
        }
    }

    /// [`Self::expect_event`], skipping nothing.
    pub async fn expect_exactly(&mut self, event: &str) -> Value {
        let frame = self.expect_op("event").await;
        assert_eq!(frame["t"], event, "unexpected event: {frame}");
        frame["d"].clone()
    }

    /// Waits for the next event, which must be the system message recording a change of
    /// this `kind` to a group (`created`, `renamed`, `member_added`, ...); returns it.
    pub async fn expect_group_change(&mut self, kind: &str) -> Value {
        let message = self.expect_event("message.created").await;
        assert_eq!(
            (message["kind"].as_str(), message["system"]["type"].as_str()),
            (Some("system"), Some(kind)),
            "{message}"
        );
        message
    }

    /// Subscribes to a chat and waits for the confirmation.
    pub async fn subscribe(&mut self, chat_id: &str) {
        self.send(json!({ "op": "subscribe", "d": { "chat_id": chat_id } }))
            .await;
        let frame = self.expect_op("subscribed").await;
        assert_eq!(frame["d"]["chat_id"], chat_id);
    }
}
