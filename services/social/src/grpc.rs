//! The social gRPC API: translates protobuf to use-case calls and back.

use crate::convert;
use crate::service::SocialService;
use astral_common::error::parse_id;
use astral_common::guard::{Access, Policy, Role, actor};
use astral_common::ratelimit::Rate;
use astral_proto::social as pb;
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub type Server = pb::social_service_server::SocialServiceServer<Api>;

pub fn server(service: Arc<SocialService>) -> Server {
    pb::social_service_server::SocialServiceServer::new(Api(service))
}

pub struct Api(Arc<SocialService>);

/// Who may call each method: users through the gateway; friendship checks, the messaging
/// service (it asks for many users' sends at once, so no one user's token covers them).
pub const POLICY: Policy = &[
    (
        "/astral.social.v1.SocialService/SendFriendRequest",
        Access::user_at(Rate::per_minute(20)),
    ),
    (
        "/astral.social.v1.SocialService/AcceptFriendRequest",
        Access::user_at(Rate::per_minute(60)),
    ),
    (
        "/astral.social.v1.SocialService/DeclineFriendRequest",
        Access::user_at(Rate::per_minute(60)),
    ),
    (
        "/astral.social.v1.SocialService/CancelFriendRequest",
        Access::user_at(Rate::per_minute(60)),
    ),
    (
        "/astral.social.v1.SocialService/RemoveFriend",
        Access::user_at(Rate::per_minute(30)),
    ),
    ("/astral.social.v1.SocialService/ListFriends", Access::USER),
    (
        "/astral.social.v1.SocialService/BlockUser",
        Access::user_at(Rate::per_minute(30)),
    ),
    (
        "/astral.social.v1.SocialService/UnblockUser",
        Access::user_at(Rate::per_minute(30)),
    ),
    ("/astral.social.v1.SocialService/ListBlocks", Access::USER),
    (
        "/astral.social.v1.SocialService/CheckFriendships",
        Access::roles(&[Role::Messaging]),
    ),
];

#[tonic::async_trait]
impl pb::social_service_server::SocialService for Api {
    async fn send_friend_request(
        &self,
        request: Request<pb::SendFriendRequestRequest>,
    ) -> Result<Response<pb::SendFriendRequestResponse>, Status> {
        let actor = actor(&request)?.user_id;
        let r = request.into_inner();
        let (request, accepted) = self.0.send_friend_request(actor, &r.username).await?;
        Ok(Response::new(pb::SendFriendRequestResponse {
            request: Some(convert::friend_request(&request)),
            accepted,
        }))
    }

    async fn accept_friend_request(
        &self,
        request: Request<pb::FriendRequestAction>,
    ) -> Result<Response<pb::AcceptFriendRequestResponse>, Status> {
        let actor = actor(&request)?.user_id;
        let r = request.into_inner();
        let request = self
            .0
            .accept_friend_request(actor, request_id(&r.request_id)?)
            .await?;
        Ok(Response::new(pb::AcceptFriendRequestResponse {
            friend: Some(convert::user(&request.from)),
            request: Some(convert::friend_request(&request)),
        }))
    }

    async fn decline_friend_request(
        &self,
        request: Request<pb::FriendRequestAction>,
    ) -> Result<Response<pb::Empty>, Status> {
        let actor = actor(&request)?.user_id;
        let r = request.into_inner();
        self.0
            .decline_friend_request(actor, request_id(&r.request_id)?)
            .await?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn cancel_friend_request(
        &self,
        request: Request<pb::FriendRequestAction>,
    ) -> Result<Response<pb::Empty>, Status> {
        let actor = actor(&request)?.user_id;
        let r = request.into_inner();
        self.0
            .cancel_friend_request(actor, request_id(&r.request_id)?)
            .await?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn remove_friend(
        &self,
        request: Request<pb::RemoveFriendRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        let actor = actor(&request)?.user_id;
        let r = request.into_inner();
        self.0
            .remove_friend(actor, parse_id(&r.user_id, "user_id")?)
            .await?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn list_friends(
        &self,
        request: Request<pb::ListFriendsRequest>,
    ) -> Result<Response<pb::ListFriendsResponse>, Status> {
        let actor = actor(&request)?.user_id;
        let r = request.into_inner();
        let overview = self.0.friends_overview(actor, &r.after, r.limit).await?;
        Ok(Response::new(pb::ListFriendsResponse {
            next_after: overview.next_after.unwrap_or_default(),
            friends: overview.friends.iter().map(convert::user).collect(),
            incoming: overview
                .incoming
                .iter()
                .map(convert::friend_request)
                .collect(),
            outgoing: overview
                .outgoing
                .iter()
                .map(convert::friend_request)
                .collect(),
        }))
    }

    async fn block_user(
        &self,
        request: Request<pb::BlockRequest>,
    ) -> Result<Response<pb::ListBlocksResponse>, Status> {
        let actor = actor(&request)?.user_id;
        let r = request.into_inner();
        let blocked = self
            .0
            .block(actor, parse_id(&r.user_id, "user_id")?)
            .await?;
        Ok(Response::new(convert::blocks(&blocked)))
    }

    async fn unblock_user(
        &self,
        request: Request<pb::BlockRequest>,
    ) -> Result<Response<pb::ListBlocksResponse>, Status> {
        let actor = actor(&request)?.user_id;
        let r = request.into_inner();
        let blocked = self
            .0
            .unblock(actor, parse_id(&r.user_id, "user_id")?)
            .await?;
        Ok(Response::new(convert::blocks(&blocked)))
    }

    async fn list_blocks(
        &self,
        request: Request<pb::ListBlocksRequest>,
    ) -> Result<Response<pb::ListBlocksResponse>, Status> {
        let blocked = self.0.blocked_users(actor(&request)?.user_id).await?;
        Ok(Response::new(convert::blocks(&blocked)))
    }

    async fn check_friendships(
        &self,
        request: Request<pb::CheckFriendshipsRequest>,
    ) -> Result<Response<pb::CheckFriendshipsResponse>, Status> {
        let pairs = request
            .into_inner()
            .pairs
            .iter()
            .map(|pair| {
                Ok((
                    parse_id(&pair.user_a, "user_a")?,
                    parse_id(&pair.user_b, "user_b")?,
                ))
            })
            .collect::<Result<Vec<_>, Status>>()?;
        let friends = self.0.check_friendships(&pairs).await?;
        Ok(Response::new(pb::CheckFriendshipsResponse { friends }))
    }
}

/// A request id that does not parse names no request: NotFound, like any other unknown id.
fn request_id(text: &str) -> Result<i64, Status> {
    astral_common::ids::parse_id(text).ok_or_else(|| Status::not_found("no such friend request"))
}
