//! A user's two ways into the system: the HTTP API and the WebSocket.

pub mod api;
pub mod socket;
