//! Tests of `guard.rs`.

use super::*;

struct Tokens;

impl VerifyToken for Tokens {
    fn verify<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Claims, Refused>> {
        Box::pin(async move {
            match token {
                "good" => Ok(Claims {
                    sub: "7".into(),
                    sid: "9".into(),
                    iat: 0,
                    exp: 0,
                    name: String::new(),
                }),
                _ => Err(Refused::Unauthenticated("bad token".into())),
            }
        })
    }
}

const POLICY: Policy = &[
    ("/s.S/Send", Access::USER),
    ("/s.S/Rotate", Access::roles(&[Role::Admin])),
];

fn guard() -> Guard {
    Guard::new(
        POLICY,
        Arc::new(Tokens),
        Transport::Trusted,
        Arc::new(crate::ratelimit::InMemory::default()),
    )
}

#[tokio::test]
async fn a_user_method_takes_the_actor_from_the_token() {
    let actor = guard()
        .admit("/s.S/Send", None, Some("Bearer good"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((actor.user_id, actor.session_id), (7, 9));
}

#[tokio::test]
async fn a_user_method_without_a_good_token_is_unauthenticated() {
    for authorization in [None, Some("Bearer bad"), Some("good"), Some("Bearer ")] {
        let status = guard()
            .admit("/s.S/Send", None, authorization)
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            tonic::Code::Unauthenticated,
            "{authorization:?}"
        );
    }
}

#[tokio::test]
async fn an_unknown_method_is_refused_and_health_is_open() {
    let status = guard().admit("/s.S/Other", None, None).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    assert!(
        guard()
            .admit("/grpc.health.v1.Health/Check", None, None)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn under_mutual_tls_a_call_without_a_role_certificate_is_denied() {
    let guard = Guard::new(
        POLICY,
        Arc::new(Tokens),
        Transport::MutualTls,
        Arc::new(crate::ratelimit::InMemory::default()),
    );
    let status = guard.admit("/s.S/Rotate", None, None).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    let status = guard
        .admit("/s.S/Rotate", Some(b"not a certificate"), None)
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
}
