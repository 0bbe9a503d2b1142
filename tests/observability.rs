//! What operators see: one trace per user action across processes, Prometheus metrics on
//! every process, JSON logs on request, and every process stopping cleanly on SIGTERM.

mod support;

use reqwest::StatusCode;
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;
use support::otlp::{ReceivedSpan, Receiver};
use support::system::Distributed;
use support::user::friends_with_a_chat;
use support::{System, WAIT};

/// Our own trace id, sent with the request so the test knows which trace to look for.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn in_trace(spans: &[ReceivedSpan]) -> Vec<&ReceivedSpan> {
    spans
        .iter()
        .filter(|s| hex(&s.trace_id) == TRACE_ID)
        .collect()
}

fn has(spans: &[&ReceivedSpan], service: &str, name: &str) -> bool {
    spans.iter().any(|s| s.service == service && s.name == name)
}

#[tokio::test]
async fn one_message_sent_is_one_trace_from_the_gateway_through_the_services_and_back() {
    let (receiver, endpoint) = Receiver::start().await;
    let Some(system) = System::distributed_with(Distributed {
        gateways: 2,
        env: vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
        ],
        ..Distributed::default()
    })
    .await
    else {
        return;
    };
    let (alice, mut bob, chat_id) = friends_with_a_chat(&system.bases[0], &system.bases[1]).await;
    bob.connect().await;
    bob.subscribe(&chat_id).await;

    let response = alice
        .http
        .post(format!("{}/api/chats/{chat_id}/messages", alice.base))
        .bearer_auth(&alice.token)
        .header("traceparent", format!("00-{TRACE_ID}-00f067aa0ba902b7-01"))
        .json(&json!({ "content": "traced" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    bob.expect_event("message.created").await;

    let send = "/astral.messaging.v1.MessagingService/SendMessage";
    let friends = "/astral.social.v1.SocialService/CheckFriendships";
    let spans = receiver
        .wait_for(WAIT * 2, |spans| {
            let trace = in_trace(spans);
            has(&trace, "astral-gateway", "POST /api/chats/{chat_id}/messages")
                && has(&trace, "astral-messaging", send)
                && has(&trace, "astral-messaging", "insert_messages")
                && has(&trace, "astral-social", friends)
                // The event, received from NATS by the gateways fanning it out.
                && trace
                    .iter()
                    .filter(|s| s.service == "astral-gateway" && s.name == "event.fan_out")
                    .count()
                    >= 2
        })
        .await;
    let trace = in_trace(&spans);
    let names: Vec<(&str, &str)> = trace
        .iter()
        .map(|s| (s.service.as_str(), s.name.as_str()))
        .collect();
    assert!(
        has(
            &trace,
            "astral-gateway",
            "POST /api/chats/{chat_id}/messages"
        ),
        "{names:?}"
    );
    assert!(has(&trace, "astral-messaging", send), "{names:?}");
    assert!(
        has(&trace, "astral-messaging", "insert_messages"),
        "{names:?}"
    );
    assert!(has(&trace, "astral-social", friends), "{names:?}");
    assert!(
        trace.iter().filter(|s| s.name == "event.fan_out").count() >= 2,
        "both gateways fan the event out in the same trace: {names:?}"
    );
    // One tree: every span's parent is a span of the trace, except the root, whose parent is
    // the caller's span we sent in `traceparent`.
    let ids: HashSet<String> = trace.iter().map(|s| hex(&s.span_id)).collect();
    for span in &trace {
        let parent = hex(&span.parent_span_id);
        assert!(
            ids.contains(&parent) || parent == "00f067aa0ba902b7",
            "{} of {} has a parent outside the trace: {names:?}",
            span.name,
            span.service
        );
    }
    let server = trace.iter().find(|s| s.name == send).unwrap();
    let gateway_ids: HashSet<String> = trace
        .iter()
        .filter(|s| s.service == "astral-gateway")
        .map(|s| hex(&s.span_id))
        .collect();
    assert!(
        gateway_ids.contains(&hex(&server.parent_span_id)),
        "the messaging call is a child of the gateway's request"
    );
    system.stop().await;
}

async fn send(author: &support::User, chat_id: &str, content: &str) {
    let (status, body) = author
        .post(
            &format!("/api/chats/{chat_id}/messages"),
            json!({ "content": content }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// Polls a process's metrics page until `done` holds (or the wait runs out); returns it.
async fn metrics_when(system: &System, process: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let page = system.metrics_of(process).await;
        if done(&page) || tokio::time::Instant::now() > deadline {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of the first sample line starting with `series`.
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find(|line| line.starts_with(series))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[tokio::test]
async fn every_process_serves_prometheus_metrics() {
    let Some(system) = System::distributed().await else {
        return;
    };
    let (alice, mut bob, chat_id) = friends_with_a_chat(&system.base, &system.base).await;
    bob.connect().await;
    bob.subscribe(&chat_id).await;
    send(&alice, &chat_id, "counted").await;
    bob.expect_event("message.created").await;

    for service in ["astral-auth", "astral-social", "astral-messaging"] {
        let page = metrics_when(&system, service, |page| {
            page.contains("astral_nats_connected 1")
        })
        .await;
        assert_eq!(sample(&page, "astral_nats_connected"), Some(1.0), "{page}");
        assert!(
            page.contains("astral_grpc_server_duration_seconds_bucket{method=\"/astral."),
            "{service}: {page}"
        );
        assert!(
            page.contains("astral_db_pool_connections{database=\""),
            "{service}: {page}"
        );
        // Auth has published nothing yet: only friend requests and a message were made.
        assert_eq!(
            service != "astral-auth",
            page.contains("astral_events_published_total{subject=\"user\"}"),
            "{service}: {page}"
        );
    }
    let page = system.metrics_of("astral-messaging").await;
    assert_eq!(
        sample(&page, "astral_messages_sent_total"),
        Some(1.0),
        "{page}"
    );
    assert!(
        sample(&page, "astral_events_published_total{subject=\"chat\"}").is_some_and(|n| n >= 1.0)
    );

    let page = metrics_when(&system, "astral-gateway-0", |page| {
        sample(page, "astral_events_sent_total").is_some_and(|n| n >= 1.0)
    })
    .await;
    assert_eq!(sample(&page, "astral_ws_connections"), Some(1.0), "{page}");
    assert!(
        sample(&page, "astral_events_received_total").is_some_and(|n| n >= 1.0),
        "{page}"
    );
    assert!(
        sample(&page, "astral_events_sent_total").is_some_and(|n| n >= 1.0),
        "{page}"
    );
    assert_eq!(sample(&page, "astral_nats_connected"), Some(1.0), "{page}");
    assert!(
        page.contains(
            "astral_http_request_duration_seconds_count{method=\"POST\",route=\"/api/chats/{chat_id}/messages\",status=\"201\"} 1"
        ),
        "{page}"
    );
    // With a metrics listener of its own, the gateway's public port does not serve them.
    let public = reqwest::get(format!("{}/metrics", system.base))
        .await
        .unwrap();
    assert_ne!(public.status(), StatusCode::OK);
    system.stop().await;
}

#[tokio::test]
async fn the_all_in_one_serves_metrics_on_its_metrics_listener_only() {
    let system = System::all_in_one_with_metrics(astral_gateway::Config::default()).await;
    let (alice, _bob, chat_id) = friends_with_a_chat(&system.base, &system.base).await;
    send(&alice, &chat_id, "counted").await;
    let public = reqwest::get(format!("{}/metrics", system.base))
        .await
        .unwrap();
    assert_ne!(public.status(), StatusCode::OK, "not on the gateway's port");
    let page = system.metrics_of("astral").await;
    assert!(
        sample(&page, "astral_messages_sent_total").is_some_and(|n| n >= 1.0),
        "{page}"
    );
    for database in ["auth", "social", "messaging"] {
        assert!(
            page.contains(&format!(
                "astral_db_pool_connections{{database=\"{database}\""
            )),
            "{page}"
        );
    }
    system.stop().await;
}

#[tokio::test]
async fn logs_are_json_lines_on_request() {
    let Some(system) = System::distributed_with(Distributed {
        env: vec![("ASTRAL_LOG_FORMAT", "json".to_owned())],
        ..Distributed::default()
    })
    .await
    else {
        return;
    };
    friends_with_a_chat(&system.base, &system.base).await;
    // NATS's own log (the test's server) is not Astral's.
    let logs: Vec<_> = system
        .logs()
        .into_iter()
        .filter(|(process, _)| !process.starts_with("nats"))
        .collect();
    assert!(logs.len() >= 4, "{logs:?}");
    for (process, text) in logs {
        assert!(!text.trim().is_empty(), "{process} logged nothing");
        for line in text.lines().filter(|line| !line.trim().is_empty()) {
            let entry: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("{process}: {error}: {line}"));
            assert!(entry["level"].is_string(), "{process}: {line}");
            assert!(entry["fields"].is_object(), "{process}: {line}");
        }
    }
    system.stop().await;
}

#[tokio::test]
async fn every_process_stops_cleanly_on_sigterm_while_messages_flow() {
    let Some(mut system) = System::distributed_with(Distributed {
        messaging_replicas: 2,
        ..Distributed::default()
    })
    .await
    else {
        return;
    };
    let (alice, _bob, chat_id) = friends_with_a_chat(&system.base, &system.base).await;
    let path = format!("/api/chats/{chat_id}/messages");
    // Alice keeps sending while one messaging replica is told to stop; a send that meets the
    // replica going away may be answered 503 and is retried with its nonce, like the client.
    let sender = {
        let alice = alice.on(&alice.base);
        let path = path.clone();
        tokio::spawn(async move {
            let mut retries = 0;
            for n in 0..60 {
                let body = json!({ "content": format!("m{n}"), "nonce": format!("nonce-{n}") });
                loop {
                    let (status, answer) = alice.post(&path, body.clone()).await;
                    match status {
                        StatusCode::CREATED | StatusCode::OK => break,
                        StatusCode::SERVICE_UNAVAILABLE => retries += 1,
                        other => panic!("send {n}: {other} {answer}"),
                    }
                    assert!(retries < 20, "too many retries");
                }
            }
            retries
        })
    };
    let took = system
        .signal("astral-messaging-2", "TERM", Duration::from_secs(10))
        .await
        .expect("the messaging replica exits within 10 s of SIGTERM");
    assert!(
        system.exit_status("astral-messaging-2").unwrap().success(),
        "exit status after {took:?}"
    );
    let retries = tokio::time::timeout(WAIT * 3, sender)
        .await
        .unwrap()
        .unwrap();
    let (status, page) = alice.get(&format!("{path}?limit=100")).await;
    assert_eq!(status, StatusCode::OK);
    let contents: Vec<&str> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        contents.len(),
        60,
        "each message once (after {retries} retries)"
    );

    for process in [
        "astral-gateway-0",
        "astral-messaging",
        "astral-social",
        "astral-auth",
    ] {
        let took = system
            .signal(process, "TERM", Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("{process} exits within 10 s of SIGTERM"));
        assert!(
            system.exit_status(process).unwrap().success(),
            "{process} exit status after {took:?}"
        );
    }
    system.stop().await;
}
