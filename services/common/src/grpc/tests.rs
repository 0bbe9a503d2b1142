//! Tests of `grpc.rs`.

use super::*;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;

struct NoUsers;

impl crate::guard::VerifyToken for NoUsers {
    fn verify<'a>(
        &'a self,
        _token: &'a str,
    ) -> BoxFuture<'a, Result<crate::tokens::Claims, crate::guard::Refused>> {
        Box::pin(async { Err(crate::guard::Refused::Unauthenticated("no users".into())) })
    }
}

#[tokio::test]
async fn a_stopping_server_waits_for_running_calls_only_so_long() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let guard = crate::guard::Guard::new(
        &[],
        std::sync::Arc::new(NoUsers),
        crate::guard::Transport::Trusted,
        std::sync::Arc::new(crate::ratelimit::InMemory::default()),
    );
    let router = server_with_health::<
        tonic_health::pb::health_server::HealthServer<tonic_health::server::HealthService>,
    >(None, guard, std::future::ready(()))
    .await
    .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let limit = Duration::from_millis(300);
    let server = tokio::spawn(serve_draining_within(
        router,
        listener.into(),
        async {
            let _ = stopped.await;
        },
        limit,
    ));
    // A call that never ends by itself: a reflection stream the client keeps open.
    let (requests, pending) = tokio::sync::mpsc::channel(1);
    requests
        .send(ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        })
        .await
        .unwrap();
    let mut client = ServerReflectionClient::new(channel(&url, None).unwrap());
    let mut answers = client
        .server_reflection_info(tokio_stream::wrappers::ReceiverStream::new(pending))
        .await
        .unwrap()
        .into_inner();
    assert!(
        answers.message().await.unwrap().is_some(),
        "the stream is open"
    );

    let started = tokio::time::Instant::now();
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server stops despite the open stream")
        .unwrap()
        .unwrap();
    assert!(
        started.elapsed() >= limit,
        "it waited for the running call first"
    );
    drop(requests);
}

/// A listener that accepts connections and never answers, as a stopped (SIGSTOP) or
/// frozen process does: the kernel still completes the TCP handshake.
async fn silent_replica() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    url
}

async fn answering_replica() -> String {
    replica_ready_after(std::future::ready(())).await
}

/// A replica whose health reports serving once `ready` finishes.
async fn replica_ready_after(ready: impl Future<Output = ()> + Send + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let guard = crate::guard::Guard::new(
        &[],
        std::sync::Arc::new(NoUsers),
        crate::guard::Transport::Trusted,
        std::sync::Arc::new(crate::ratelimit::InMemory::default()),
    );
    let router = server_with_health::<
        tonic_health::pb::health_server::HealthServer<tonic_health::server::HealthService>,
    >(None, guard, ready)
    .await
    .unwrap();
    tokio::spawn(serve(router, listener, std::future::pending()));
    url
}

#[tokio::test]
async fn health_says_not_serving_until_the_server_is_ready() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
    let (became_ready, ready) = tokio::sync::oneshot::channel::<()>();
    let url = replica_ready_after(async {
        let _ = ready.await;
    })
    .await;
    let mut health = HealthClient::new(channel(&url, None).unwrap());
    let whole_server = || HealthCheckRequest {
        service: String::new(),
    };
    let status = |answer: HealthCheckResponse| answer.status();
    let before = health.check(whole_server()).await.unwrap().into_inner();
    assert_eq!(status(before), ServingStatus::NotServing);
    let mut watched = health.watch(whole_server()).await.unwrap().into_inner();
    became_ready.send(()).unwrap();
    let serving = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(answer) = watched.next().await {
            if status(answer.unwrap()) == ServingStatus::Serving {
                return;
            }
        }
        panic!("the health stream ended");
    });
    serving.await.expect("health never said serving");
}

#[tokio::test]
async fn a_silent_replica_is_passed_over_and_the_calls_keep_their_pace() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    let url = format!("{},{}", answering_replica().await, silent_replica().await);
    let channel = channel(&url, None).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while channel.replicas.read().len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "both replicas found"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // 100 calls, one every 20 ms, each allowed 1.5 s.
    let mut calls = Vec::new();
    for _ in 0..100 {
        let mut client = HealthClient::new(channel.clone());
        calls.push(tokio::spawn(async move {
            let mut request = tonic::Request::new(HealthCheckRequest::default());
            request.set_timeout(Duration::from_millis(1500));
            let started = Instant::now();
            let answer = client.check(request).await;
            (
                answer.map(|_| ()).map_err(|status| status.code()),
                started.elapsed(),
            )
        }));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut failed = Vec::new();
    let mut slowest_answer = Duration::ZERO;
    for call in calls {
        match call.await.unwrap() {
            (Ok(()), took) => slowest_answer = slowest_answer.max(took),
            (Err(code), took) => failed.push((code, took)),
        }
    }
    assert!(
        failed.len() <= 3,
        "only the calls sent before the silence showed may wait for it: {failed:?}"
    );
    assert!(
        failed
            .iter()
            .all(|(code, _)| *code == tonic::Code::DeadlineExceeded),
        "{failed:?}"
    );
    assert!(
        slowest_answer < Duration::from_millis(500),
        "every other call answered at once: {slowest_answer:?}"
    );
}
