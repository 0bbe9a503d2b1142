//! The messaging gRPC API: translates protobuf to use-case calls and back.

use crate::convert;
use crate::service::{
    ByteRange, Draft, MessagingService, NewSubscription, SearchFilters, Served, UploadHeader,
};
use astral_common::error::parse_id;
use astral_common::guard::{Access, Policy, Role, actor};
use astral_common::ratelimit::Rate;
use astral_proto::messaging as pb;
use futures::stream::BoxStream;
use futures::{StreamExt as _, TryStreamExt as _};
use std::sync::Arc;
use tonic::{Request, Response, Status, Streaming};

pub type Server = pb::messaging_service_server::MessagingServiceServer<Api>;

pub fn server(service: Arc<MessagingService>) -> Server {
    pb::messaging_service_server::MessagingServiceServer::new(Api(service))
}

pub struct Api(Arc<MessagingService>);

/// Who may call each method: users through the gateway, and operators' inspection.
pub const POLICY: Policy = &[
    (
        "/astral.messaging.v1.MessagingService/OpenDirectChat",
        Access::user_at(Rate::per_minute(30)),
    ),
    (
        "/astral.messaging.v1.MessagingService/CreateGroupChat",
        Access::user_at(Rate::per_minute(10)),
    ),
    (
        "/astral.messaging.v1.MessagingService/RenameChat",
        Access::user_at(Rate::per_minute(20)),
    ),
    (
        "/astral.messaging.v1.MessagingService/AddMember",
        Access::user_at(Rate::per_minute(60)),
    ),
    (
        "/astral.messaging.v1.MessagingService/RemoveMember",
        Access::user_at(Rate::per_minute(60)),
    ),
    (
        "/astral.messaging.v1.MessagingService/ToggleReaction",
        Access::user_at(Rate::per_minute(60)),
    ),
    (
        "/astral.messaging.v1.MessagingService/Typing",
        Access::user_at(Rate::per_minute(30)),
    ),
    (
        "/astral.messaging.v1.MessagingService/ListChats",
        Access::USER,
    ),
    (
        "/astral.messaging.v1.MessagingService/GetChat",
        Access::USER,
    ),
    (
        "/astral.messaging.v1.MessagingService/UpdateChatSettings",
        Access::user_at(Rate::per_minute(60)),
    ),
    (
        "/astral.messaging.v1.MessagingService/SendMessage",
        Access::user_at(Rate::per_seconds(100, 5)),
    ),
    (
        "/astral.messaging.v1.MessagingService/EditMessage",
        Access::user_at(Rate::per_minute(60)),
    ),
    (
        "/astral.messaging.v1.MessagingService/DeleteMessage",
        Access::user_at(Rate::per_minute(60)),
    ),
    (
        "/astral.messaging.v1.MessagingService/ListMessages",
        Access::USER,
    ),
    (
        "/astral.messaging.v1.MessagingService/MarkRead",
        Access::user_at(Rate::per_minute(300)),
    ),
    (
        "/astral.messaging.v1.MessagingService/GetSettings",
        Access::USER,
    ),
    (
        "/astral.messaging.v1.MessagingService/UpdateSettings",
        Access::user_at(Rate::per_minute(30)),
    ),
    (
        "/astral.messaging.v1.MessagingService/GetPushKey",
        Access::USER,
    ),
    (
        "/astral.messaging.v1.MessagingService/AddPushSubscription",
        Access::user_at(Rate::per_minute(20)),
    ),
    (
        "/astral.messaging.v1.MessagingService/RemovePushSubscription",
        Access::user_at(Rate::per_minute(60)),
    ),
    (
        "/astral.messaging.v1.MessagingService/SearchMessages",
        Access::user_at(Rate::per_minute(120)),
    ),
    (
        "/astral.messaging.v1.MessagingService/UploadAttachment",
        Access::user_at(Rate::per_minute(60)),
    ),
    (
        "/astral.messaging.v1.MessagingService/ReadAttachment",
        Access::user_at(Rate::per_minute(600)),
    ),
    (
        "/astral.messaging.v1.MessagingService/InspectChat",
        Access::roles(&[Role::Admin]),
    ),
];

/// A message id that does not parse names no message: NotFound, like any other unknown id.
fn message_id(text: &str) -> Result<i64, Status> {
    astral_common::ids::parse_id(text).ok_or_else(|| Status::not_found("no such message"))
}

/// A user id that does not parse names no user of the chat.
fn member_id(text: &str) -> Result<i64, Status> {
    astral_common::ids::parse_id(text).ok_or_else(|| Status::not_found("no such member"))
}

/// An upload's bytes, up to the chunk marked `last`; a stream that ends before it (or goes
/// on after it) ends in an error, so that a broken upload is never stored.
fn until_last(
    first: pb::UploadChunk,
    rest: Streaming<pb::UploadChunk>,
) -> impl futures::Stream<Item = astral_common::Result<bytes::Bytes>> + Send + Unpin {
    let interrupted = || astral_common::Error::invalid("the upload was interrupted");
    let chunks = futures::stream::iter([Ok(first)]).chain(rest.map_err(move |_| interrupted()));
    // `true` once the last chunk has passed.
    Box::pin(futures::stream::unfold(
        (chunks, false),
        move |(mut chunks, ended)| async move {
            match (chunks.next().await, ended) {
                (None, true) => None,
                (None, false) => Some((Err(interrupted()), (chunks, true))),
                (Some(_), true) => Some((
                    Err(astral_common::Error::invalid(
                        "an upload goes on after its last chunk",
                    )),
                    (chunks, true),
                )),
                (Some(Err(error)), false) => Some((Err(error), (chunks, true))),
                (Some(Ok(chunk)), false) => Some((Ok(chunk.data), (chunks, chunk.last))),
            }
        },
    ))
}

/// What is served of an attachment, in its first chunk.
fn served(served: &Served) -> pb::ServedAttachment {
    pb::ServedAttachment {
        attachment: Some(convert::attachment(&served.attachment)),
        total: served.total,
        start: served.start,
        end: served.end,
        content_type: served.content_type.clone(),
        unsatisfiable: served.unsatisfiable,
    }
}

#[tonic::async_trait]
impl pb::messaging_service_server::MessagingService for Api {
    type ReadAttachmentStream = BoxStream<'static, Result<pb::AttachmentChunk, Status>>;

    async fn upload_attachment(
        &self,
        request: Request<Streaming<pb::UploadChunk>>,
    ) -> Result<Response<pb::Attachment>, Status> {
        let actor = actor(&request)?.user_id;
        let mut chunks = request.into_inner();
        let first = chunks
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("an upload begins with its header"))?;
        let mut first = first;
        let header = first
            .header
            .take()
            .ok_or_else(|| Status::invalid_argument("an upload begins with its header"))?;
        let header = UploadHeader {
            filename: header.filename,
            content_type: header.content_type,
            size: header.size,
        };
        let attachment = self
            .0
            .upload_attachment(actor, header, until_last(first, chunks))
            .await?;
        Ok(Response::new(convert::attachment(&attachment)))
    }

    async fn read_attachment(
        &self,
        request: Request<pb::ReadAttachmentRequest>,
    ) -> Result<Response<Self::ReadAttachmentStream>, Status> {
        let actor = actor(&request)?.user_id;
        let r = request.into_inner();
        let id = astral_common::ids::parse_id(&r.attachment_id)
            .ok_or_else(|| Status::not_found("no such attachment"))?;
        let range = ByteRange {
            start: r.start,
            end: r.end,
            suffix: r.suffix,
        };
        let mut served = self
            .0
            .read_attachment(actor, id, r.thumbnail, range)
            .await?;
        let head = pb::AttachmentChunk {
            served: Some(self::served(&served)),
            data: bytes::Bytes::new(),
        };
        let bytes = std::mem::replace(&mut served.bytes, futures::stream::empty().boxed());
        let chunks = bytes.map(|chunk| {
            chunk
                .map(|data| pb::AttachmentChunk { served: None, data })
                .map_err(Status::from)
        });
        Ok(Response::new(
            futures::stream::iter([Ok(head)]).chain(chunks).boxed(),
        ))
    }

    async fn open_direct_chat(
        &self,
        request: Request<pb::OpenDirectChatRequest>,
    ) -> Result<Response<pb::Chat>, Status> {
        let actor = actor(&request)?.user_id;
        let r = request.into_inner();
        let chat = self
            .0
            .open_direct_chat(actor, parse_id(&r.user_id, "user_id")?)
            .await?;
        Ok(Response::new(convert::chat(&chat)))
    }

    async fn create_group_chat(
        &self,
        request: Request<pb::CreateGroupChatRequest>,
    ) -> Result<Response<pb::Chat>, Status> {
        let actor = actor(&request)?.user_id;
        let r = request.into_inner();
        let members = r
            .member_ids
            .iter()
            .map(|id| parse_id(id, "member_ids"))
            .collect::<Result<Vec<_>, _>>()?;
        let chat = self.0.create_group_chat(actor, &r.name, &members).await?;
        Ok(Response::new(convert::chat(&chat)))
    }

    async fn rename_chat(
        &self,
        request: Request<pb::RenameChatRequest>,
    ) -> Result<Response<pb::Chat>, Status> {
        let actor = actor(&request)?.user_id;
        let r = request.into_inner();
        let chat = self.0.rename_chat(actor, &r.chat_id, &r.name).await?;
        Ok(Response::new(convert::chat(&chat)))
    }

    async fn add_member(
        &self,
        request: Request<pb::MemberRequest>,
    ) -> Result<Response<pb::Chat>, Status> {
        let actor = actor(&request)?.user_id;
        let r = request.into_inner();
        let chat = self
            .0
            .add_member(actor, &r.chat_id, parse_id(&r.user_id, "user_id")?)
            .await?;
        Ok(Response::new(convert::chat(&chat)))
    }

    async fn remove_member(
        &self,
        request: Request<pb::MemberRequest>,
    ) -> Result<Response<pb::RemoveMemberResponse>, Status> {
        let actor = actor(&request)?.user_id;
        let r = request.into_inner();
        let chat_remains = self
            .0
            .remove_member(actor, &r.chat_id, member_id(&r.user_id)?)
            .await?;
        Ok(Response::new(pb::RemoveMemberResponse { chat_remains }))
    }

    async fn toggle_reaction(
        &self,
        request: Request<pb::ReactionRequest>,
    ) -> Result<Response<pb::Message>, Status> {
        let actor = actor(&request)?.user_id;
        let r = request.into_inner();
        let message = self
            .0
            .toggle_reaction(actor, &r.chat_id, message_id(&r.message_id)?, &r.emoji)
            .await?;
        Ok(Response::new(convert::message(&message)))
    }

    async fn typing(
        &self,
        request: Request<pb::ChatRef>,
    ) -> Result<Response<pb::TypingResponse>, Status> {
        let actor = actor(&request)?.user_id;
        let r = request.into_inner();
        self.0.typing(actor, &r.chat_id).await?;
        Ok(Response::new(pb::TypingResponse {}))
    }

    async fn inspect_chat(
        &self,
        request: Request<pb::InspectChatRequest>,
    ) -> Result<Response<pb::Chat>, Status> {
        let chat = self.0.inspect_chat(&request.into_inner().chat_id).await?;
        Ok(Response::new(convert::chat(&chat)))
    }

    async fn list_chats(
        &self,
        request: Request<pb::ListChatsRequest>,
    ) -> Result<Response<pb::ListChatsResponse>, Status> {
        let actor = actor(&request)?.user_id;
        let (chats, settings) = tokio::try_join!(self.0.list_chats(actor), self.0.settings(actor))?;
        Ok(Response::new(pb::ListChatsResponse {
            chats: chats.iter().map(convert::chat).collect(),
            share_read_receipts: settings.share_read_receipts,
        }))
    }

    async fn get_chat(&self, request: Request<pb::ChatRef>) -> Result<Response<pb::Chat>, Status> {
        let actor = actor(&request)?.user_id;
        let r = request.into_inner();
        let chat = self.0.get_chat(actor, &r.chat_id).await?;
        Ok(Response::new(convert::chat(&chat)))
    }

    async fn send_message(
        &self,
        request: Request<pb::SendMessageRequest>,
    ) -> Result<Response<pb::Message>, Status> {
        let actor = actor(&request)?.user_id;
        let r = request.into_inner();
        let reply_to = match r.reply_to_id.as_str() {
            "" => None,
            id => Some(
                astral_common::ids::parse_id(id)
                    .ok_or_else(|| Status::invalid_argument("reply_to is not a message id"))?,
            ),
        };
        let draft = Draft {
            content: &r.content,
            nonce: &r.nonce,
            reply_to,
            attachment_ids: &r.attachment_ids,
        };
        let message = self.0.send_message(actor, &r.chat_id, draft).await?;
        Ok(Response::new(convert::message(&message)))
    }

    async fn edit_message(
        &self,
        request: Request<pb::EditMessageRequest>,
    ) -> Result<Response<pb::Message>, Status> {
        let actor = actor(&request)?.user_id;
        let r = request.into_inner();
        let message = self
            .0
            .edit_message(actor, &r.chat_id, message_id(&r.message_id)?, &r.content)
            .await?;
        Ok(Response::new(convert::message(&message)))
    }

    async fn delete_message(
        &self,
        request: Request<pb::MessageRef>,
    ) -> Result<Response<pb::Message>, Status> {
        let actor = actor(&request)?.user_id;
        let r = request.into_inner();
        let message = self
            .0
            .delete_message(actor, &r.chat_id, message_id(&r.message_id)?)
            .await?;
        Ok(Response::new(convert::message(&message)))
    }

    async fn list_messages(
        &self,
        request: Request<pb::ListMessagesRequest>,
    ) -> Result<Response<pb::ListMessagesResponse>, Status> {
        let actor = actor(&request)?.user_id;
        let r = request.into_inner();
        let messages = self
            .0
            .list_messages(actor, &r.chat_id, r.before, r.after, r.limit)
            .await?;
        Ok(Response::new(pb::ListMessagesResponse {
            messages: messages.iter().map(convert::message).collect(),
        }))
    }

    async fn update_chat_settings(
        &self,
        request: Request<pb::ChatSettingsRequest>,
    ) -> Result<Response<pb::Chat>, Status> {
        let actor = actor(&request)?.user_id;
        let r = request.into_inner();
        let chat = self
            .0
            .update_chat_settings(actor, &r.chat_id, r.muted)
            .await?;
        Ok(Response::new(convert::chat(&chat)))
    }

    async fn search_messages(
        &self,
        request: Request<pb::SearchMessagesRequest>,
    ) -> Result<Response<pb::SearchMessagesResponse>, Status> {
        let actor = actor(&request)?.user_id;
        let r = request.into_inner();
        let filters = SearchFilters {
            chat_id: r.chat_id.as_deref(),
            author_id: r.author_id.as_deref(),
            before: r.before.as_deref(),
            limit: r.limit,
        };
        let page = self.0.search_messages(actor, &r.q, filters).await?;
        Ok(Response::new(pb::SearchMessagesResponse {
            results: page.found.iter().map(convert::found).collect(),
            next_before: page.next_before.map(|id| id.to_string()),
        }))
    }

    async fn mark_read(
        &self,
        request: Request<pb::MarkReadRequest>,
    ) -> Result<Response<pb::MarkReadResponse>, Status> {
        let actor = actor(&request)?.user_id;
        let r = request.into_inner();
        self.0.mark_read(actor, &r.chat_id, r.seq).await?;
        Ok(Response::new(pb::MarkReadResponse {}))
    }

    async fn get_settings(
        &self,
        request: Request<pb::GetSettingsRequest>,
    ) -> Result<Response<pb::MessagingSettings>, Status> {
        let settings = self.0.settings(actor(&request)?.user_id).await?;
        Ok(Response::new(convert::settings(settings)))
    }

    async fn update_settings(
        &self,
        request: Request<pb::UpdateMessagingSettings>,
    ) -> Result<Response<pb::MessagingSettings>, Status> {
        let actor = actor(&request)?.user_id;
        let r = request.into_inner();
        let settings = self.0.update_settings(actor, r.share_read_receipts).await?;
        Ok(Response::new(convert::settings(settings)))
    }

    async fn get_push_key(
        &self,
        request: Request<pb::GetPushKeyRequest>,
    ) -> Result<Response<pb::PushKey>, Status> {
        actor(&request)?;
        Ok(Response::new(pb::PushKey {
            public_key: self.0.push_key()?,
        }))
    }

    async fn add_push_subscription(
        &self,
        request: Request<pb::PushSubscription>,
    ) -> Result<Response<pb::PushSubscriptionsChanged>, Status> {
        let actor = actor(&request)?;
        let r = request.into_inner();
        let new = NewSubscription {
            endpoint: r.endpoint,
            p256dh: r.p256dh,
            auth: r.auth,
        };
        self.0.add_push_subscription(&actor, new).await?;
        Ok(Response::new(pb::PushSubscriptionsChanged {}))
    }

    async fn remove_push_subscription(
        &self,
        request: Request<pb::PushEndpoint>,
    ) -> Result<Response<pb::PushSubscriptionsChanged>, Status> {
        let actor = actor(&request)?.user_id;
        let endpoint = request.into_inner().endpoint;
        self.0.remove_push_subscription(actor, &endpoint).await?;
        Ok(Response::new(pb::PushSubscriptionsChanged {}))
    }
}
