//! `GET /ws`: the upgrade, within the limits, to one WebSocket session — hello, identify,
//! ready, heartbeats, chat subscriptions, and the user's events from the bus, each delivered
//! at most once (`session.rs`, `live.rs`; the frames in `frames.rs`).

mod backend;
mod frames;
mod live;
mod order;
mod seen;
mod session;
#[cfg(test)]
mod tests;
mod upgrade;

use crate::address::client_addr;
use crate::error::ApiError;
use crate::origin::origin_allowed;
use crate::state::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use session::{ReadError, Session, Settings};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use upgrade::Handshake;

/// The largest frame a client may send.
pub const MAX_FRAME: usize = 64 * 1024;
/// The read buffer of a connection; frames larger than this are read in several steps (and
/// grow it). Client frames are small: an `identify` with its token is about 350 bytes.
const READ_BUFFER: usize = 256;

pub async fn upgrade(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
) -> Response {
    let handshake = match Handshake::of(&mut request) {
        Ok(handshake) => handshake,
        Err(error) => return error.into_response(),
    };
    let headers = request.headers();
    if !origin_allowed(headers, &state.config, false) {
        return ApiError::forbidden("cross-site WebSocket refused").into_response();
    }
    // A connection that has not identified costs the gateway without proving anything: each
    // address may hold a few, and each only for the identify timeout.
    let limits = &state.config.limits;
    let address = client_addr(headers, peer, state.config.trusted_proxy_hops);
    let address = match address.parse() {
        Ok(ip) => crate::server::address_group(ip).to_string(),
        Err(_) => address,
    };
    let Some(unidentified) = state
        .connections
        .admit_unidentified(&address, limits.max_unidentified_per_address)
    else {
        let message = format!(
            "at most {} connections per address waiting to identify",
            limits.max_unidentified_per_address
        );
        return ApiError::rate_limited(message, limits.identify_timeout).into_response();
    };
    let cookie = crate::session::cookie(headers);
    let settings = Settings {
        heartbeat: Duration::from_millis(state.config.heartbeat_ms),
        identify_timeout: limits.identify_timeout,
    };
    // tungstenite's defaults (128 KiB each way) would cost every idle connection ~256 KiB.
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(Some(MAX_FRAME))
        .max_frame_size(Some(MAX_FRAME));
    handshake.accept(config, move |socket| async move {
        let (hub, connections) = (state.hub.clone(), state.connections.clone());
        let (write, read) = socket.split();
        let write = upgrade::fragmenting(write);
        let read = read.map(|message| message.map_err(ReadError::from));
        Session::new(write, read, state, hub, connections, settings)
            .run(cookie, unidentified)
            .await;
    })
}

impl From<tungstenite::Error> for ReadError {
    /// A frame over the limits is tungstenite's capacity error; anything else broke the
    /// connection.
    fn from(error: tungstenite::Error) -> Self {
        match error {
            tungstenite::Error::Capacity(_) => Self::TooLarge,
            _ => Self::Broken,
        }
    }
}
