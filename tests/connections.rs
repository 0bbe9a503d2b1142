//! Connections bounded (issue 13, abuse resistance): slow headers, trickling bodies, idle
//! keep-alive connections and silent WebSockets are closed; connections are capped per
//! gateway and per client address; origins are compared whole; tokens naming unknown keys
//! are answered at once. The real defaults are checked in both run modes; the rest on an
//! all-in-one with short limits.

#![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap does

mod support;

use astral_gateway::{Config, ConnectionLimits, ProxyHops};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use futures::StreamExt as _;
use reqwest::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};
use support::{System, User};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

in_both_modes!(
    headers_sent_too_slowly_are_cut_off_after_ten_seconds,
    a_websocket_that_does_not_identify_is_closed_after_ten_seconds,
    an_origin_must_match_in_scheme_host_and_port,
    metrics_are_not_served_on_the_gateway_port,
);

/// The gateway's `host:port`.
fn authority(system: &System) -> String {
    system.base.trim_start_matches("http://").to_owned()
}

/// A raw TCP connection to the gateway.
async fn connect(system: &System) -> TcpStream {
    TcpStream::connect(authority(system)).await.unwrap()
}

/// Reads until the gateway closes the connection (end of stream or reset), at most `limit`;
/// what it sent meanwhile.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buffer = [0; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => panic!("still open after {limit:?}"),
            Ok(Ok(0) | Err(_)) => return received,
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
        }
    }
}

/// Slowloris: a client that sends its request line at once, then a header byte a second,
/// never finishing, is cut off when the 10 seconds from its connection are up.
async fn headers_sent_too_slowly_are_cut_off_after_ten_seconds(system: &System) {
    let started = Instant::now();
    let stream = connect(system).await;
    let (mut reader, mut writer) = stream.into_split();
    writer
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let trickle = tokio::spawn(async move {
        for byte in b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".iter().cycle() {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let mut buffer = [0; 1024];
    let read = tokio::time::timeout(Duration::from_secs(15), reader.read(&mut buffer))
        .await
        .expect("closed within 15 s");
    let took = started.elapsed();
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "closed, unanswered: {read:?}"
    );
    assert!(
        took >= Duration::from_secs(10) && took < Duration::from_secs(12),
        "closed after {took:?}"
    );
    trickle.abort();
}

/// A WebSocket that never identifies is closed with 4003 when its 10 seconds are up,
/// heartbeats or not.
async fn a_websocket_that_does_not_identify_is_closed_after_ten_seconds(system: &System) {
    let mut silent = User::register(&system.base, "silent")
        .await
        .on(&system.base);
    let url = format!("{}/ws", system.base.replacen("http", "ws", 1));
    let started = Instant::now();
    silent.socket = Some(tokio_tungstenite::connect_async(url).await.unwrap().0);
    assert_eq!(silent.next_frame().await["op"], "hello");
    let socket = silent.socket.as_mut().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut heartbeat = tokio::time::interval(Duration::from_secs(2));
    let code = loop {
        tokio::select! {
            _ = heartbeat.tick() => {
                let frame = Message::Text(json!({ "op": "heartbeat" }).to_string().into());
                let _ = futures::SinkExt::send(socket, frame).await;
            }
            message = tokio::time::timeout_at(deadline, socket.next()) => {
                match message.expect("closed within 15 s") {
                    Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
                    Some(Ok(_)) => {}
                    other => panic!("expected a close frame, got {other:?}"),
                }
            }
        }
    };
    let took = started.elapsed();
    assert_eq!(code, Some(4003));
    assert!(
        took >= Duration::from_secs(10) && took < Duration::from_secs(12),
        "closed after {took:?}"
    );
}

/// Origins differing only in port or scheme are other sites: refused on sign-in and on the
/// WebSocket upgrade.
async fn an_origin_must_match_in_scheme_host_and_port(system: &System) {
    let alice = User::register(&system.base, "alice").await;
    let credentials = json!({ "username": alice.name, "password": support::user::PASSWORD });
    let port: u16 = authority(system)
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let other_port = format!("http://127.0.0.1:{}", port.wrapping_add(1));
    let other_scheme = format!("https://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let login = |origin: String| {
        http.post(format!("{}/api/auth/login", system.base))
            .header("origin", origin)
            .json(&credentials)
            .send()
    };
    let upgrade = |origin: String| {
        let mut request = format!("{}/ws", system.base.replacen("http", "ws", 1))
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
        tokio_tungstenite::connect_async(request)
    };
    for origin in [other_port, other_scheme, "null".to_owned()] {
        let status = login(origin.clone()).await.unwrap().status();
        assert_eq!(status, StatusCode::FORBIDDEN, "login from {origin}");
        match upgrade(origin.clone()).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), StatusCode::FORBIDDEN, "{origin}");
            }
            other => panic!("upgrade from {origin}: {other:?}"),
        }
    }
    assert_eq!(
        login(system.base.clone()).await.unwrap().status(),
        StatusCode::OK
    );
    assert!(upgrade(system.base.clone()).await.is_ok());
}

/// `/metrics` is never served on the gateway's port (the distributed gateway serves it on
/// its metrics listener; the all-in-one started without one serves none).
async fn metrics_are_not_served_on_the_gateway_port(system: &System) {
    let public = reqwest::get(format!("{}/metrics", system.base))
        .await
        .unwrap();
    assert_ne!(public.status(), StatusCode::OK);
    assert!(!public.text().await.unwrap().contains("astral_"));
    // Every distributed process serves them on a listener of its own (so the loop below has
    // something to check there); the all-in-one is started here without one.
    assert_eq!(
        system.metrics.is_empty(),
        system.data_dir().is_some(),
        "{:?}",
        system.metrics
    );
    for (process, _) in &system.metrics {
        assert!(
            system.metrics_of(process).await.contains("# TYPE"),
            "{process}"
        );
    }
}

#[tokio::test]
async fn tokens_naming_a_forged_key_cost_at_most_one_key_fetch_in_one_process() {
    // With metrics: without them the all-in-one counts nothing, and "at most one" would
    // hold of nothing.
    let system = System::all_in_one_with_metrics(Config::default()).await;
    tokens_naming_a_forged_key_are_refused_at_once_with_at_most_one_key_fetch(&system).await;
    system.stop().await;
}

#[tokio::test]
async fn tokens_naming_a_forged_key_cost_at_most_one_key_fetch_across_processes() {
    let Some(system) = System::distributed().await else {
        return;
    };
    tokens_naming_a_forged_key_are_refused_at_once_with_at_most_one_key_fetch(&system).await;
    system.stop().await;
}

/// A flood of tokens naming a key nobody has is answered 401 at once: the requests share
/// one key fetch, and later ones within the next 5 seconds do not fetch at all.
async fn tokens_naming_a_forged_key_are_refused_at_once_with_at_most_one_key_fetch(
    system: &System,
) {
    let alice = User::register(&system.base, "alice").await;
    let header =
        B64URL.encode(json!({ "alg": "EdDSA", "typ": "JWT", "kid": "forged" }).to_string());
    let rest = alice.token.split_once('.').unwrap().1;
    let forged = format!("{header}.{rest}");
    // The first gateway's count (in one process, every part counts together; only the
    // gateway sees these tokens).
    let (gateway, _) = system
        .metrics
        .iter()
        .find(|(name, _)| name.starts_with("astral-gateway") || name == "astral")
        .expect("the gateway's process serves metrics");
    let fetches = async || {
        sample(
            &system.metrics_of(gateway).await,
            "astral_token_key_fetches_total",
        )
    };
    let before = fetches().await;
    assert!(
        before >= 1.0,
        "the gateway counts its key fetches (one at start)"
    );
    let http = reqwest::Client::new();
    for wave in 0..2 {
        let started = Instant::now();
        let answers = futures::future::join_all((0..50).map(|_| {
            http.get(format!("{}/api/users/me", system.base))
                .bearer_auth(&forged)
                .send()
        }))
        .await;
        for answer in answers {
            assert_eq!(answer.unwrap().status(), StatusCode::UNAUTHORIZED);
        }
        let took = started.elapsed();
        assert!(took < Duration::from_secs(3), "wave {wave}: {took:?}");
    }
    assert!(fetches().await - before <= 1.0, "at most one key fetch");
    assert_eq!(alice.get("/api/users/me").await.0, StatusCode::OK);
}

/// The value of an unlabelled sample on a Prometheus page (0 when absent).
fn sample(page: &str, name: &str) -> f64 {
    page.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

/// An all-in-one whose gateway has these limits (the others default), with its metrics.
async fn with_limits(limits: ConnectionLimits) -> System {
    System::all_in_one_with_metrics(Config {
        limits,
        ..Config::default()
    })
    .await
}

#[tokio::test]
async fn a_request_body_that_trickles_is_answered_408_and_the_connection_closed() {
    let system = with_limits(ConnectionLimits {
        body_timeout: Duration::from_secs(1),
        ..ConnectionLimits::default()
    })
    .await;
    let mut stream = connect(&system).await;
    let started = Instant::now();
    stream
        .write_all(
            b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"username\":",
        )
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    assert!(started.elapsed() >= Duration::from_secs(1));
    system.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_kept_past_the_header_timeout_then_closed() {
    let system = with_limits(ConnectionLimits {
        header_timeout: Duration::from_millis(500),
        idle_timeout: Duration::from_secs(2),
        ..ConnectionLimits::default()
    })
    .await;
    let mut stream = connect(&system).await;
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut buffer = [0; 4096];
    let mut answered = Instant::now();
    for _ in 0..2 {
        stream.write_all(request).await.unwrap();
        let n = stream.read(&mut buffer).await.unwrap();
        answered = Instant::now();
        assert!(buffer[..n].starts_with(b"HTTP/1.1 200"));
        // Idle for longer than the header timeout: the connection is still there.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(
        read_until_closed(&mut stream, Duration::from_secs(5))
            .await
            .is_empty()
    );
    // From the answer as the client saw it: the gateway's idle time began a moment earlier.
    let idle = answered.elapsed();
    assert!(
        idle >= Duration::from_millis(1900) && idle < Duration::from_secs(3),
        "closed after {idle:?} idle"
    );
    system.stop().await;
}

#[tokio::test]
async fn connections_over_the_caps_are_closed_at_once_and_counted() {
    let system = with_limits(ConnectionLimits {
        max_connections: 5,
        max_per_address: 3,
        ..ConnectionLimits::default()
    })
    .await;
    // Each client its own loopback address; 127.0.0.1 is the harness's (its readiness
    // checks may still be closing).
    let from = async |address: &str| {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind(format!("{address}:0").parse().unwrap())
            .unwrap();
        socket
            .connect(authority(&system).parse().unwrap())
            .await
            .unwrap()
    };
    // A connection that gets a request answered, then stays open.
    let served = async |address: &str| {
        let deadline = tokio::time::Instant::now() + support::WAIT;
        loop {
            let mut stream = from(address).await;
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            let mut buffer = [0; 1024];
            let n = stream.read(&mut buffer).await.unwrap_or(0);
            if buffer[..n].starts_with(b"HTTP/1.1 200") {
                return stream;
            }
            // Refused while a connection closing elsewhere still holds its place.
            assert!(
                tokio::time::Instant::now() < deadline,
                "{address} is served"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let refused = async |address: &str| {
        let mut stream = from(address).await;
        let started = Instant::now();
        assert!(
            read_until_closed(&mut stream, Duration::from_secs(2))
                .await
                .is_empty()
        );
        assert!(started.elapsed() < Duration::from_secs(1), "{address}");
    };
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(served("127.0.0.5").await);
    }
    refused("127.0.0.5").await;
    for _ in 0..2 {
        held.push(served("127.0.0.6").await);
    }
    refused("127.0.0.7").await;

    let page = system.metrics_of("astral").await;
    for limit in ["address", "gateway"] {
        let line = format!("astral_http_connections_refused_total{{limit=\"{limit}\"}}");
        assert!(page.contains(&line), "{line} in\n{page}");
    }
    // A closed connection frees its place.
    drop(held.remove(0));
    served("127.0.0.5").await;
    system.stop().await;
}

#[tokio::test]
async fn unidentified_websockets_are_capped_per_client_address_behind_a_trusted_proxy() {
    let system = System::all_in_one_with(Config {
        trusted_proxy_hops: ProxyHops(1),
        limits: ConnectionLimits {
            max_unidentified_per_address: 2,
            ..ConnectionLimits::default()
        },
        ..Config::default()
    })
    .await;
    let mut alice = User::register(&system.base, "alice").await;
    // The client wrote the first entry itself; the proxy appended the address it saw.
    let open = async |client: &str| {
        let mut request = format!("{}/ws", system.base.replacen("http", "ws", 1))
            .into_client_request()
            .unwrap();
        let forwarded = format!("10.9.9.9, {client}");
        request
            .headers_mut()
            .insert("x-forwarded-for", forwarded.parse().unwrap());
        tokio_tungstenite::connect_async(request).await
    };
    let mut waiting = vec![
        open("203.0.113.1").await.unwrap().0,
        open("203.0.113.1").await.unwrap().0,
    ];
    match open("203.0.113.1").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
            let retry_after = response.headers()["retry-after"].to_str().unwrap();
            assert!(retry_after.parse::<u64>().unwrap() >= 1);
        }
        other => panic!("a third one waiting to identify: {other:?}"),
    }
    assert!(
        open("203.0.113.2").await.is_ok(),
        "another client has its own"
    );

    // Once one identifies, its place is free.
    alice.socket = Some(waiting.remove(0));
    assert_eq!(alice.next_frame().await["op"], "hello");
    alice
        .send(json!({ "op": "identify", "d": { "token": alice.token } }))
        .await;
    alice.expect_op("ready").await;
    assert!(open("203.0.113.1").await.is_ok());
    system.stop().await;
}

#[tokio::test]
async fn an_allowed_origin_is_matched_whole_too() {
    let system = System::all_in_one_with(Config {
        allowed_origins: vec!["http://chat.example:9999/".to_owned()],
        ..Config::default()
    })
    .await;
    let alice = User::register(&system.base, "alice").await;
    let credentials = json!({ "username": alice.name, "password": support::user::PASSWORD });
    let login = async |origin: &str| {
        reqwest::Client::new()
            .post(format!("{}/api/auth/login", system.base))
            .header("origin", origin)
            .json(&credentials)
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(login("http://chat.example:9999").await, StatusCode::OK);
    assert_eq!(login("http://CHAT.example:9999").await, StatusCode::OK);
    for other in [
        "http://chat.example:9998",
        "https://chat.example:9999",
        "http://chat.example",
        "http://chat.example.evil:9999",
    ] {
        assert_eq!(login(other).await, StatusCode::FORBIDDEN, "{other}");
    }
    system.stop().await;
}
