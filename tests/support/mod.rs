//! The testkit: the whole system started for real (in one process, or as separate processes
//! on PostgreSQL and NATS), and users that act on it over HTTP and WebSocket.

#![allow(dead_code, unused_imports, clippy::unwrap_used)] // each test file uses a part of the kit

pub mod system;
pub mod user;

pub use system::System;
pub use user::User;

use std::time::Duration;

/// How long a test waits for something that should happen at once.
pub const WAIT: Duration = Duration::from_secs(10);
