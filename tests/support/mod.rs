//! The testkit: the whole system started for real (in one process, or as separate processes
//! on PostgreSQL and NATS), and users that act on it over HTTP and WebSocket.

#![allow(dead_code, unused_imports, clippy::unwrap_used)] // each test file uses a part of the kit

pub mod otlp;
pub mod postgres;
pub mod system;
pub mod user;

pub use system::System;
pub use user::User;

use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

/// How long a test waits for something that should happen at once.
pub const WAIT: Duration = Duration::from_secs(10);

/// An error answer of the contract: this status, and `{"error": {"code", "message"}}` with
/// both filled in.
pub fn assert_error(status: StatusCode, body: &Value, expected: StatusCode) {
    assert_eq!(status, expected, "{body}");
    assert!(
        body["error"]["code"]
            .as_str()
            .is_some_and(|c| !c.is_empty()),
        "error body: {body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "error body: {body}"
    );
}

/// The `id` of a JSON object.
pub fn id(value: &Value) -> String {
    value["id"].as_str().unwrap().to_owned()
}

/// A friends list's users without their presence (which comes and goes as they connect).
pub fn named(friends: &Value) -> Value {
    friends
        .as_array()
        .unwrap()
        .iter()
        .map(|friend| serde_json::json!({ "id": friend["id"], "username": friend["username"] }))
        .collect()
}
