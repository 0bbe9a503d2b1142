//! The social service through its own gRPC server, started on a free port on SQLite and on
//! PostgreSQL (with a stand-in for the auth service): friend requests and friendships as a
//! caller sees them, the events they publish, and how errors map to gRPC codes.

#![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap does

use astral_common::EventBus;
use astral_common::guard::for_user;
use astral_common::plane::Plane;
use astral_common::testing::{FakeAuth, FakeUser, TestDatabase, TestServer};
use astral_proto::events::{Event, event::Kind};
use astral_proto::social::social_service_client::SocialServiceClient;
use astral_proto::social::{
    BlockRequest, CheckFriendshipsRequest, FriendRequestAction, ListFriendsRequest,
    RemoveFriendRequest, SendFriendRequestRequest, UserPair,
};
use futures::StreamExt as _;
use prost::Message as _;
use std::time::Duration;
use tonic::Code;

type Client = SocialServiceClient<astral_common::grpc::Channel>;

/// The social service on `database`, asking `auth` about users, publishing on `bus`.
async fn social_on(
    database: &TestDatabase,
    auth: &TestServer,
    bus: &EventBus,
) -> (TestServer, Client) {
    let (url, auth_url, bus) = (database.url.clone(), auth.url.clone(), bus.clone());
    let server = TestServer::start(|listener, shutdown| async move {
        let plane = Plane::trusted();
        astral_social::serve(&url, &auth_url, &plane, bus, listener, shutdown).await
    })
    .await;
    let client = SocialServiceClient::new(server.channel());
    (server, client)
}

fn asking(username: &str, from: &FakeUser) -> tonic::Request<SendFriendRequestRequest> {
    let request = SendFriendRequestRequest {
        username: username.into(),
    };
    for_user(request, &from.token)
}

fn acting_on(request_id: &str, actor: &FakeUser) -> tonic::Request<FriendRequestAction> {
    let action = FriendRequestAction {
        request_id: request_id.into(),
    };
    for_user(action, &actor.token)
}

/// The code of a call that must fail.
fn code<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> Code {
    result.unwrap_err().code()
}

/// The next event on a subscription, within 10 seconds.
async fn next_event(events: &mut astral_common::bus::Subscription) -> Kind {
    let delivery = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("an event within 10 s")
        .expect("the subscription goes on");
    Event::decode(delivery.payload).unwrap().kind.unwrap()
}

#[tokio::test]
async fn a_request_accepted_makes_friends_and_each_side_is_told() {
    let fake = FakeAuth::default();
    let auth = fake.start().await;
    for (backend, database) in TestDatabase::both().await {
        let bus = EventBus::local();
        let (server, mut social) = social_on(&database, &auth, &bus).await;
        let ann = fake.user(&format!("ann_{backend}"));
        let ben = fake.user(&format!("ben_{backend}"));
        let mut to_ben = bus
            .subscribe(astral_proto::subjects::user(&ben.id))
            .await
            .unwrap();

        let sent = social
            .send_friend_request(asking(&ben.username, &ann))
            .await
            .unwrap()
            .into_inner();
        assert!(!sent.accepted, "{backend}: a new request");
        let request = sent.request.unwrap();
        assert_eq!(
            (request.from.unwrap().id, request.to.unwrap().id),
            (ann.id.clone(), ben.id.clone()),
            "{backend}"
        );
        let Kind::FriendRequestCreated(created) = next_event(&mut to_ben).await else {
            panic!("{backend}: ben is told of the request first");
        };
        assert_eq!(created.request.unwrap().id, request.id, "{backend}");
        let incoming = social
            .list_friends(for_user(ListFriendsRequest::default(), &ben.token))
            .await
            .unwrap()
            .into_inner()
            .incoming;
        assert_eq!(incoming.len(), 1, "{backend}");

        let accepted = social
            .accept_friend_request(acting_on(&request.id, &ben))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(accepted.friend.unwrap().id, ann.id, "{backend}");
        assert!(
            matches!(
                next_event(&mut to_ben).await,
                Kind::FriendRequestAccepted(_)
            ),
            "{backend}"
        );
        let friends = social
            .list_friends(for_user(ListFriendsRequest::default(), &ann.token))
            .await
            .unwrap()
            .into_inner();
        let names: Vec<String> = friends.friends.into_iter().map(|f| f.username).collect();
        assert_eq!(names, vec![ben.username.clone()], "{backend}");
        assert!(friends.outgoing.is_empty(), "{backend}");

        // Messaging asks about many pairs at once.
        let pair = |a: &FakeUser, b: &FakeUser| UserPair {
            user_a: a.id.clone(),
            user_b: b.id.clone(),
        };
        let cat = fake.user(&format!("cat_{backend}"));
        let check = CheckFriendshipsRequest {
            pairs: vec![pair(&ben, &ann), pair(&ann, &cat)],
        };
        let answers = social.check_friendships(check).await.unwrap().into_inner();
        assert_eq!(answers.friends, vec![true, false], "{backend}");

        // Unfriending ends it, once.
        let unfriend = || {
            let request = RemoveFriendRequest {
                user_id: ann.id.clone(),
            };
            for_user(request, &ben.token)
        };
        social.remove_friend(unfriend()).await.unwrap();
        assert!(
            matches!(next_event(&mut to_ben).await, Kind::FriendRemoved(_)),
            "{backend}"
        );
        assert_eq!(
            code(social.remove_friend(unfriend()).await),
            Code::NotFound,
            "{backend}: no friendship left to end"
        );
        server.stop().await;
    }
    auth.stop().await;
}

#[tokio::test]
async fn errors_are_answered_with_their_grpc_codes() {
    let fake = FakeAuth::default();
    let auth = fake.start().await;
    for (backend, database) in TestDatabase::both().await {
        let bus = EventBus::local();
        let (server, mut social) = social_on(&database, &auth, &bus).await;
        let ann = fake.user(&format!("ann_{backend}"));
        let ben = fake.user(&format!("ben_{backend}"));
        let cat = fake.user(&format!("cat_{backend}"));
        let pending = social
            .send_friend_request(asking(&ben.username, &ann))
            .await
            .unwrap()
            .into_inner()
            .request
            .unwrap();
        let block = |user: &FakeUser, by: &FakeUser| {
            let request = BlockRequest {
                user_id: user.id.clone(),
            };
            for_user(request, &by.token)
        };
        social.block_user(block(&ann, &cat)).await.unwrap();

        let cases = [
            (
                "asking oneself",
                code(
                    social
                        .send_friend_request(asking(&ann.username, &ann))
                        .await,
                ),
                Code::InvalidArgument,
            ),
            (
                "an unknown username",
                code(
                    social
                        .send_friend_request(asking("nobody_here", &ann))
                        .await,
                ),
                Code::NotFound,
            ),
            (
                "asking twice",
                code(
                    social
                        .send_friend_request(asking(&ben.username, &ann))
                        .await,
                ),
                Code::AlreadyExists,
            ),
            (
                "asking someone who blocked you (as if they did not exist)",
                code(
                    social
                        .send_friend_request(asking(&cat.username, &ann))
                        .await,
                ),
                Code::NotFound,
            ),
            (
                "asking someone you blocked",
                code(
                    social
                        .send_friend_request(asking(&ann.username, &cat))
                        .await,
                ),
                Code::PermissionDenied,
            ),
            (
                "accepting one's own request",
                code(
                    social
                        .accept_friend_request(acting_on(&pending.id, &ann))
                        .await,
                ),
                Code::NotFound,
            ),
            (
                "cancelling someone else's request",
                code(
                    social
                        .cancel_friend_request(acting_on(&pending.id, &ben))
                        .await,
                ),
                Code::NotFound,
            ),
            (
                "declining a request that does not parse",
                code(social.decline_friend_request(acting_on("abc", &ben)).await),
                Code::NotFound,
            ),
            (
                "blocking oneself",
                code(social.block_user(block(&ann, &ann)).await),
                Code::InvalidArgument,
            ),
            (
                "a call for a user without their token",
                code(social.list_friends(ListFriendsRequest::default()).await),
                Code::Unauthenticated,
            ),
        ];
        for (case, answered, expected) in cases {
            assert_eq!(answered, expected, "{backend}: {case}");
        }
        server.stop().await;
    }
    auth.stop().await;
}
