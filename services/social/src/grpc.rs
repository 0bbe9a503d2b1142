//! The social gRPC API: translates protobuf to use-case calls and back.

use crate::convert;
use crate::model::Status as PresenceStatus;
use crate::presence::Report;
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

/// Who may call each method: users through the gateway; friendship and connectivity checks,
/// the messaging service (it asks for many users at once, so no one user's token covers
/// them); presence reports, the gateways (one report covers all their users).
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
    ("/astral.social.v1.SocialService/GetSettings", Access::USER),
    (
        "/astral.social.v1.SocialService/UpdateSettings",
        Access::user_at(Rate::per_minute(30)),
    ),
    (
        "/astral.social.v1.SocialService/ReportPresence",
        Access::roles(&[Role::Gateway]),
    ),
    (
        "/astral.social.v1.SocialService/CheckConnected",
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
            presence: overview.presence.iter().map(convert::presence).collect(),
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

    async fn get_settings(
        &self,
        request: Request<pb::GetSettingsRequest>,
    ) -> Result<Response<pb::SocialSettings>, Status> {
        let settings = self.0.settings(actor(&request)?.user_id).await?;
        Ok(Response::new(convert::settings(settings)))
    }

    async fn update_settings(
        &self,
        request: Request<pb::UpdateSocialSettings>,
    ) -> Result<Response<pb::SocialSettings>, Status> {
        let actor = actor(&request)?.user_id;
        let r = request.into_inner();
        let settings = self.0.update_settings(actor, r.share_presence).await?;
        Ok(Response::new(convert::settings(settings)))
    }

    async fn report_presence(
        &self,
        request: Request<pb::ReportPresenceRequest>,
    ) -> Result<Response<pb::ReportPresenceResponse>, Status> {
        let r = request.into_inner();
        let changes = r
            .changes
            .iter()
            .map(|change| {
                let status = PresenceStatus::parse(&change.status).ok_or_else(|| {
                    tonic::Status::invalid_argument("status must be online, idle or offline")
                })?;
                Ok((parse_id(&change.user_id, "user_id")?, status))
            })
            .collect::<Result<Vec<_>, tonic::Status>>()?;
        let report = Report {
            gateway: &r.gateway_id,
            changes,
            renew: r.renew,
            closing: r.closing,
        };
        let held = self.0.report_presence(report).await?;
        Ok(Response::new(pb::ReportPresenceResponse { held }))
    }

    async fn check_connected(
        &self,
        request: Request<pb::CheckConnectedRequest>,
    ) -> Result<Response<pb::CheckConnectedResponse>, Status> {
        let users = request
            .into_inner()
            .user_ids
            .iter()
            .map(|user| Ok(parse_id(user, "user_ids")?))
            .collect::<Result<Vec<_>, tonic::Status>>()?;
        let connected = self.0.check_connected(&users).await?;
        Ok(Response::new(pb::CheckConnectedResponse { connected }))
    }
}

/// A request id that does not parse names no request: NotFound, like any other unknown id.
fn request_id(text: &str) -> Result<i64, Status> {
    astral_common::ids::parse_id(text).ok_or_else(|| Status::not_found("no such friend request"))
}
