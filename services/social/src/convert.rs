//! The one translation of social's values into their protobuf messages, for the gRPC
//! answers (`grpc.rs`) and the events (`events.rs`) alike.

use crate::model::{FriendRequest, Presence, Settings, User};
use astral_proto::auth::User as PbUser;
use astral_proto::social as pb;

pub fn user(user: &User) -> PbUser {
    PbUser {
        id: user.id.to_string(),
        username: user.username.clone(),
    }
}

pub fn friend_request(request: &FriendRequest) -> pb::FriendRequest {
    pb::FriendRequest {
        id: request.id.to_string(),
        from: Some(user(&request.from)),
        to: Some(user(&request.to)),
        created_at_ms: request.created_at_ms,
    }
}

pub fn blocks(blocked: &[User]) -> pb::ListBlocksResponse {
    pb::ListBlocksResponse {
        blocked: blocked.iter().map(user).collect(),
    }
}

pub fn presence(presence: &Presence) -> pb::Presence {
    pb::Presence {
        status: presence.status.as_str().to_owned(),
        last_seen_at_ms: presence.last_seen_at_ms,
    }
}

pub fn settings(settings: Settings) -> pb::SocialSettings {
    pb::SocialSettings {
        share_presence: settings.share_presence,
    }
}
