//! The WebSocket as a client holds it: connect from a chosen loopback address, `hello`,
//! `identify`, `ready`; then heartbeats, and the `message.created` events picked out by the
//! nonce that names each benchmark message.

use anyhow::Context as _;
use futures::{SinkExt as _, StreamExt as _};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

pub type Socket = WebSocketStream<TcpStream>;

/// How long `hello` and `ready` may take.
const ANSWER_WITHIN: Duration = Duration::from_secs(30);

/// An identified connection and the heartbeat period its gateway asked for.
pub struct Identified {
    pub socket: Socket,
    pub heartbeat: Duration,
}

/// Connects to `gateway` from `source`, identifies with `token` and waits for `ready`.
pub async fn connect(
    gateway: SocketAddr,
    source: IpAddr,
    token: &str,
) -> anyhow::Result<Identified> {
    let tcp = tokio::net::TcpSocket::new_v4()?;
    tcp.bind(SocketAddr::new(source, 0))
        .with_context(|| format!("bind {source}"))?;
    let stream = tcp.connect(gateway).await.context("connect")?;
    stream.set_nodelay(true)?;
    let url = format!("ws://{gateway}/ws");
    let (mut socket, _) = match tokio_tungstenite::client_async(url, stream).await {
        Ok(upgraded) => upgraded,
        Err(tokio_tungstenite::tungstenite::Error::Http(answer)) => {
            let body = answer.body().as_deref().map(String::from_utf8_lossy);
            anyhow::bail!(
                "upgrade: HTTP {} {}",
                answer.status().as_u16(),
                body.unwrap_or_default()
            );
        }
        Err(error) => return Err(error).context("upgrade"),
    };
    let hello = next_text(&mut socket).await?;
    let heartbeat = heartbeat_ms(&hello).map_or(Duration::from_secs(30), Duration::from_millis);
    let identify = format!(r#"{{"op":"identify","d":{{"token":"{token}"}}}}"#);
    socket
        .send(Message::Text(identify.into()))
        .await
        .context("identify")?;
    loop {
        let frame = next_text(&mut socket).await?;
        if frame.starts_with(r#"{"op":"ready""#) {
            return Ok(Identified { socket, heartbeat });
        }
        anyhow::ensure!(!frame.starts_with(r#"{"op":"error""#), "identify: {frame}");
    }
}

/// The next text frame, within [`ANSWER_WITHIN`].
async fn next_text(socket: &mut Socket) -> anyhow::Result<String> {
    loop {
        let frame = tokio::time::timeout(ANSWER_WITHIN, socket.next())
            .await
            .context("no answer")?
            .context("closed")??;
        match frame {
            Message::Text(text) => return Ok(text.as_str().to_owned()),
            Message::Close(close) => anyhow::bail!("closed: {close:?}"),
            _ => {}
        }
    }
}

fn heartbeat_ms(hello: &str) -> Option<u64> {
    let value: serde_json::Value = serde_json::from_str(hello).ok()?;
    value["d"]["heartbeat_ms"].as_u64()
}

/// What ended a connection's reading.
#[derive(Debug)]
pub enum Ended {
    /// The caller asked it to stop.
    Stopped,
    /// The server closed it (with this close code, if any) or the connection broke.
    Closed(Option<u16>),
}

/// Reads `socket` until it closes or `stop` resolves, sending heartbeats, and hands the
/// nonce of every `message.created` event to `on_message`.
pub async fn listen(
    identified: Identified,
    mut stop: impl std::future::Future<Output = ()> + Unpin,
    mut on_message: impl FnMut(&str),
) -> Ended {
    let Identified {
        mut socket,
        heartbeat,
    } = identified;
    let mut beat = tokio::time::interval(heartbeat / 2);
    beat.tick().await;
    loop {
        tokio::select! {
            _ = &mut stop => {
                let _ = socket.close(None).await;
                return Ended::Stopped;
            }
            _ = beat.tick() => {
                let frame = Message::Text(r#"{"op":"heartbeat"}"#.into());
                if socket.send(frame).await.is_err() {
                    return Ended::Closed(None);
                }
            }
            frame = socket.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    if let Some(nonce) = created_nonce(text.as_str()) {
                        on_message(nonce);
                    }
                }
                Some(Ok(Message::Close(close))) => {
                    return Ended::Closed(close.map(|frame| u16::from(frame.code)));
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Ended::Closed(None),
            },
        }
    }
}

/// The nonce of a `message.created` event frame (benchmark nonces hold no quotes).
pub fn created_nonce(frame: &str) -> Option<&str> {
    if !frame.contains(r#""t":"message.created""#) {
        return None;
    }
    let start = frame.find(r#""nonce":""#)? + r#""nonce":""#.len();
    let length = frame[start..].find('"')?;
    Some(&frame[start..start + length])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nonce_of_a_message_created_event_is_found_and_nothing_else_is() {
        let event = r#"{"op":"event","t":"message.created","d":{"id":"1","nonce":"b.3.7.99","content":"m"}}"#;
        assert_eq!(created_nonce(event), Some("b.3.7.99"));
        let updated = r#"{"op":"event","t":"message.updated","d":{"nonce":"b.3.7.99"}}"#;
        assert_eq!(created_nonce(updated), None);
        assert_eq!(
            heartbeat_ms(r#"{"op":"hello","d":{"heartbeat_ms":30000}}"#),
            Some(30_000)
        );
    }
}
