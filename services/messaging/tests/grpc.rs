//! The messaging service through its own gRPC server, started on a free port on SQLite and
//! on PostgreSQL (with stand-ins for the auth and social services): chats and messages as a
//! caller sees them, the events they publish, and how errors map to gRPC codes.

#![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap does

use astral_common::EventBus;
use astral_common::guard::for_user;
use astral_common::plane::Plane;
use astral_common::testing::{FakeAuth, FakeUser, TempDir, TestDatabase, TestServer};
use astral_proto::events::{Event, event::Kind};
use astral_proto::messaging::messaging_service_client::MessagingServiceClient;
use astral_proto::messaging::{
    CreateGroupChatRequest, EditMessageRequest, ListMessagesRequest, Message, MessageRef,
    OpenDirectChatRequest, ReactionRequest, SendMessageRequest, UploadChunk, UploadHeader,
};
use astral_proto::social as pb;
use futures::StreamExt as _;
use pb::social_service_server::{SocialService, SocialServiceServer};
use prost::Message as _;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::{Code, Request, Response, Status};

type Client = MessagingServiceClient<astral_common::grpc::Channel>;

/// A stand-in for the social service: the friendships a test declares, answered to
/// `CheckFriendships`; every other call UNIMPLEMENTED.
#[derive(Clone, Default)]
struct FakeSocial {
    friends: Arc<Mutex<HashSet<(String, String)>>>,
}

impl FakeSocial {
    fn befriend(&self, a: &FakeUser, b: &FakeUser) {
        let mut friends = self.friends.lock().unwrap();
        friends.insert((a.id.clone(), b.id.clone()));
        friends.insert((b.id.clone(), a.id.clone()));
    }

    async fn start(&self) -> TestServer {
        let social = SocialServiceServer::new(self.clone());
        TestServer::start(|listener, shutdown| async move {
            let (_, health) = tonic_health::server::health_reporter();
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            tonic::transport::Server::builder()
                .add_service(health)
                .add_service(social)
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await?;
            Ok(())
        })
        .await
    }
}

fn not_here<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented("not in the social stand-in"))
}

#[tonic::async_trait]
impl SocialService for FakeSocial {
    async fn check_friendships(
        &self,
        request: Request<pb::CheckFriendshipsRequest>,
    ) -> Result<Response<pb::CheckFriendshipsResponse>, Status> {
        let friends = self.friends.lock().unwrap();
        let answers = request
            .into_inner()
            .pairs
            .into_iter()
            .map(|pair| friends.contains(&(pair.user_a, pair.user_b)))
            .collect();
        Ok(Response::new(pb::CheckFriendshipsResponse {
            friends: answers,
        }))
    }

    async fn send_friend_request(
        &self,
        _: Request<pb::SendFriendRequestRequest>,
    ) -> Result<Response<pb::SendFriendRequestResponse>, Status> {
        not_here()
    }

    async fn accept_friend_request(
        &self,
        _: Request<pb::FriendRequestAction>,
    ) -> Result<Response<pb::AcceptFriendRequestResponse>, Status> {
        not_here()
    }

    async fn decline_friend_request(
        &self,
        _: Request<pb::FriendRequestAction>,
    ) -> Result<Response<pb::Empty>, Status> {
        not_here()
    }

    async fn cancel_friend_request(
        &self,
        _: Request<pb::FriendRequestAction>,
    ) -> Result<Response<pb::Empty>, Status> {
        not_here()
    }

    async fn remove_friend(
        &self,
        _: Request<pb::RemoveFriendRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        not_here()
    }

    async fn list_friends(
        &self,
        _: Request<pb::ListFriendsRequest>,
    ) -> Result<Response<pb::ListFriendsResponse>, Status> {
        not_here()
    }

    async fn get_settings(
        &self,
        _: Request<pb::GetSettingsRequest>,
    ) -> Result<Response<pb::SocialSettings>, Status> {
        not_here()
    }

    async fn update_settings(
        &self,
        _: Request<pb::UpdateSocialSettings>,
    ) -> Result<Response<pb::SocialSettings>, Status> {
        not_here()
    }

    async fn report_presence(
        &self,
        _: Request<pb::ReportPresenceRequest>,
    ) -> Result<Response<pb::ReportPresenceResponse>, Status> {
        not_here()
    }

    async fn check_connected(
        &self,
        _: Request<pb::CheckConnectedRequest>,
    ) -> Result<Response<pb::CheckConnectedResponse>, Status> {
        not_here()
    }

    async fn block_user(
        &self,
        _: Request<pb::BlockRequest>,
    ) -> Result<Response<pb::ListBlocksResponse>, Status> {
        not_here()
    }

    async fn unblock_user(
        &self,
        _: Request<pb::BlockRequest>,
    ) -> Result<Response<pb::ListBlocksResponse>, Status> {
        not_here()
    }

    async fn list_blocks(
        &self,
        _: Request<pb::ListBlocksRequest>,
    ) -> Result<Response<pb::ListBlocksResponse>, Status> {
        not_here()
    }
}

/// The auth and social stand-ins, each on its own port, and the users they know.
struct Others {
    auth: FakeAuth,
    social: FakeSocial,
    servers: [TestServer; 2],
}

impl Others {
    async fn start() -> Self {
        let (auth, social) = (FakeAuth::default(), FakeSocial::default());
        let servers = [auth.start().await, social.start().await];
        Self {
            auth,
            social,
            servers,
        }
    }

    async fn stop(self) {
        for server in self.servers {
            server.stop().await;
        }
    }
}

/// The messaging service on `database`, with `others`, publishing on `bus`, keeping
/// attachments' files in `files`.
async fn messaging_on(
    database: &TestDatabase,
    others: &Others,
    bus: &EventBus,
    files: &std::path::Path,
) -> (TestServer, Client) {
    let files = files.to_owned();
    let url = database.url.clone();
    let (auth_url, social_url) = (others.servers[0].url.clone(), others.servers[1].url.clone());
    let bus = bus.clone();
    let server = TestServer::start(|listener, shutdown| async move {
        let plane = Plane::trusted();
        let storage = astral_messaging::storage::Storage::local(&files)?;
        astral_messaging::serve(
            &url,
            storage,
            None,
            &auth_url,
            &social_url,
            &plane,
            bus,
            listener,
            shutdown,
        )
        .await
    })
    .await;
    let client = MessagingServiceClient::new(server.channel());
    (server, client)
}

fn sending(
    chat_id: &str,
    content: &str,
    nonce: &str,
    author: &FakeUser,
) -> Request<SendMessageRequest> {
    let request = SendMessageRequest {
        chat_id: chat_id.into(),
        content: content.into(),
        nonce: nonce.into(),
        ..Default::default()
    };
    for_user(request, &author.token)
}

fn listing(chat_id: &str, reader: &FakeUser) -> Request<ListMessagesRequest> {
    let request = ListMessagesRequest {
        chat_id: chat_id.into(),
        ..Default::default()
    };
    for_user(request, &reader.token)
}

fn direct_with(other: &FakeUser, opener: &FakeUser) -> Request<OpenDirectChatRequest> {
    let request = OpenDirectChatRequest {
        user_id: other.id.clone(),
    };
    for_user(request, &opener.token)
}

/// The code of a call that must fail.
fn code<T: std::fmt::Debug>(result: Result<T, Status>) -> Code {
    result.unwrap_err().code()
}

/// The next new or changed message on a subscription (other events skipped), within 10 s.
async fn next_message(events: &mut astral_common::bus::Subscription) -> Message {
    loop {
        let delivery = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("an event within 10 s")
            .expect("the subscription goes on");
        match Event::decode(delivery.payload).unwrap().kind.unwrap() {
            Kind::MessageCreated(event) | Kind::MessageUpdated(event) => {
                return event.message.unwrap();
            }
            _ => continue,
        }
    }
}

#[tokio::test]
async fn friends_talk_in_their_direct_chat_and_each_change_is_announced() {
    let others = Others::start().await;
    for (backend, database) in TestDatabase::both().await {
        let bus = EventBus::local();
        let files = TempDir::new();
        let (server, mut messaging) = messaging_on(&database, &others, &bus, &files.0).await;
        let ann = others.auth.user(&format!("ann_{backend}"));
        let ben = others.auth.user(&format!("ben_{backend}"));
        others.social.befriend(&ann, &ben);
        let mut to_ben = bus
            .subscribe(astral_proto::subjects::user(&ben.id))
            .await
            .unwrap();

        let chat = messaging
            .open_direct_chat(direct_with(&ben, &ann))
            .await
            .unwrap()
            .into_inner();
        let again = messaging
            .open_direct_chat(direct_with(&ann, &ben))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(again.id, chat.id, "{backend}: one direct chat per pair");
        let mut members: Vec<String> = chat.members.iter().map(|m| m.id.clone()).collect();
        members.sort_unstable();
        let mut pair = vec![ann.id.clone(), ben.id.clone()];
        pair.sort_unstable();
        assert_eq!(members, pair, "{backend}");
        let mut on_chat = bus
            .subscribe(astral_proto::subjects::chat(&chat.id))
            .await
            .unwrap();

        let sent = messaging
            .send_message(sending(&chat.id, "hello ben", "n-1", &ann))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (sent.seq, sent.author_id.as_str()),
            (1, ann.id.as_str()),
            "{backend}"
        );
        // On the chat's subject, and on each member's own (for a chat they have not open).
        assert_eq!(next_message(&mut on_chat).await.id, sent.id, "{backend}");
        assert_eq!(next_message(&mut to_ben).await.id, sent.id, "{backend}");
        let retried = messaging
            .send_message(sending(&chat.id, "hello ben", "n-1", &ann))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            retried.id, sent.id,
            "{backend}: the same nonce, the same message"
        );

        // Edited by its author, reacted to by the other: each change a new version.
        let edit = EditMessageRequest {
            chat_id: chat.id.clone(),
            message_id: sent.id.clone(),
            content: "hello, ben".into(),
        };
        let edited = messaging
            .edit_message(for_user(edit, &ann.token))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (edited.content.as_str(), edited.version),
            ("hello, ben", 2),
            "{backend}"
        );
        let react = ReactionRequest {
            chat_id: chat.id.clone(),
            message_id: sent.id.clone(),
            emoji: "👍".into(),
        };
        let reacted = messaging
            .toggle_reaction(for_user(react, &ben.token))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            reacted.reactions[0].user_ids,
            vec![ben.id.clone()],
            "{backend}"
        );
        // Changes are announced on the chat's subject only.
        let announced = next_message(&mut on_chat).await;
        assert_eq!(
            (announced.id.as_str(), announced.version),
            (sent.id.as_str(), 2),
            "{backend}: the edit is announced, and no second `created` came first"
        );
        assert_eq!(next_message(&mut on_chat).await.version, 3, "{backend}");

        let history = messaging
            .list_messages(listing(&chat.id, &ben))
            .await
            .unwrap()
            .into_inner()
            .messages;
        let contents: Vec<&str> = history.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(contents, ["hello, ben"], "{backend}");
        server.stop().await;
    }
    others.stop().await;
}

#[tokio::test]
async fn errors_are_answered_with_their_grpc_codes() {
    let others = Others::start().await;
    for (backend, database) in TestDatabase::both().await {
        let bus = EventBus::local();
        let files = TempDir::new();
        let (server, mut messaging) = messaging_on(&database, &others, &bus, &files.0).await;
        let ann = others.auth.user(&format!("ann_{backend}"));
        let ben = others.auth.user(&format!("ben_{backend}"));
        let cat = others.auth.user(&format!("cat_{backend}"));
        others.social.befriend(&ann, &ben);
        let chat = messaging
            .open_direct_chat(direct_with(&ben, &ann))
            .await
            .unwrap()
            .into_inner();
        let message = messaging
            .send_message(sending(&chat.id, "mine", "", &ann))
            .await
            .unwrap()
            .into_inner();
        let edit = |by: &FakeUser| {
            let request = EditMessageRequest {
                chat_id: chat.id.clone(),
                message_id: message.id.clone(),
                content: "changed".into(),
            };
            for_user(request, &by.token)
        };
        let delete = |by: &FakeUser| {
            let request = MessageRef {
                chat_id: chat.id.clone(),
                message_id: message.id.clone(),
            };
            for_user(request, &by.token)
        };
        let group = |name: &str, members: &[&FakeUser]| {
            let request = CreateGroupChatRequest {
                name: name.into(),
                member_ids: members.iter().map(|m| m.id.clone()).collect(),
            };
            for_user(request, &ann.token)
        };

        let cases = [
            (
                "a direct chat with someone who is not a friend",
                code(messaging.open_direct_chat(direct_with(&cat, &ann)).await),
                Code::PermissionDenied,
            ),
            (
                "reading a chat one is not in",
                code(messaging.list_messages(listing(&chat.id, &cat)).await),
                Code::NotFound,
            ),
            (
                "writing to a chat one is not in",
                code(
                    messaging
                        .send_message(sending(&chat.id, "hi", "", &cat))
                        .await,
                ),
                Code::NotFound,
            ),
            (
                "a chat that does not exist",
                code(messaging.list_messages(listing("no_such_chat", &ann)).await),
                Code::NotFound,
            ),
            (
                "a blank message",
                code(
                    messaging
                        .send_message(sending(&chat.id, "   ", "", &ann))
                        .await,
                ),
                Code::InvalidArgument,
            ),
            (
                "editing someone else's message",
                code(messaging.edit_message(edit(&ben)).await),
                Code::PermissionDenied,
            ),
            (
                "deleting someone else's message",
                code(messaging.delete_message(delete(&ben)).await),
                Code::PermissionDenied,
            ),
            (
                "a group with someone who is not a friend",
                code(
                    messaging
                        .create_group_chat(group("Trip", &[&ben, &cat]))
                        .await,
                ),
                Code::InvalidArgument,
            ),
            (
                "a call for a user without their token",
                code(
                    messaging
                        .list_messages(ListMessagesRequest {
                            chat_id: chat.id.clone(),
                            ..Default::default()
                        })
                        .await,
                ),
                Code::Unauthenticated,
            ),
        ];
        for (case, answered, expected) in cases {
            assert_eq!(answered, expected, "{backend}: {case}");
        }
        server.stop().await;
    }
    others.stop().await;
}

/// An upload as `chunks` after its header, as `user`.
fn uploading(
    user: &FakeUser,
    chunks: Vec<UploadChunk>,
) -> Request<impl tokio_stream::Stream<Item = UploadChunk> + use<>> {
    let header = UploadChunk {
        header: Some(UploadHeader {
            filename: "notes.txt".into(),
            content_type: "text/plain".into(),
            size: None,
        }),
        ..Default::default()
    };
    for_user(
        futures::stream::iter(std::iter::once(header).chain(chunks)),
        &user.token,
    )
}

#[tokio::test]
async fn an_upload_that_ends_before_its_last_chunk_keeps_nothing() {
    let others = Others::start().await;
    for (backend, database) in TestDatabase::both().await {
        let files = TempDir::new();
        let bus = EventBus::local();
        let (server, mut messaging) = messaging_on(&database, &others, &bus, &files.0).await;
        let ann = others.auth.user(&format!("ann_{backend}"));
        let part = |data: &'static [u8], last| UploadChunk {
            data: bytes::Bytes::from_static(data),
            last,
            ..Default::default()
        };
        // The uploader's connection broke after some bytes: the stream just ends.
        let broken = messaging
            .upload_attachment(uploading(&ann, vec![part(b"half of it", false)]))
            .await
            .unwrap_err();
        assert_eq!(
            broken.code(),
            Code::InvalidArgument,
            "{backend}: {broken:?}"
        );
        let after_the_end = messaging
            .upload_attachment(uploading(
                &ann,
                vec![part(b"all", true), part(b"more", false)],
            ))
            .await
            .unwrap_err();
        assert_eq!(after_the_end.code(), Code::InvalidArgument, "{backend}");
        // Whatever was written leaves storage.
        let stored = files.0.join("files");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::read_dir(&stored).is_ok_and(|mut entries| entries.next().is_some()) {
            assert!(
                std::time::Instant::now() < deadline,
                "{backend}: bytes left in storage"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // A whole one is kept, as uploaded.
        let whole = messaging
            .upload_attachment(uploading(
                &ann,
                vec![part(b"all of ", false), part(b"it", true)],
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(whole.size, 9, "{backend}");
        assert_eq!(
            std::fs::read(stored.join(&whole.id)).unwrap(),
            b"all of it",
            "{backend}"
        );
        server.stop().await;
    }
    others.stop().await;
}
