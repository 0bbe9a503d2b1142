//! The social service's events, published after the change commits, on both users' subjects.

use crate::store::FriendRequest;
use astral_common::EventBus;
use astral_proto::events::{FriendRemoved, FriendRequestEvent, event::Kind};
use astral_proto::subjects;

pub struct Events {
    bus: EventBus,
}

impl Events {
    pub fn new(bus: EventBus) -> Self {
        Self { bus }
    }

    pub async fn request_created(&self, request: &FriendRequest) {
        self.to_both(request, Kind::FriendRequestCreated).await;
    }

    pub async fn request_accepted(&self, request: &FriendRequest) {
        self.to_both(request, Kind::FriendRequestAccepted).await;
    }

    pub async fn request_declined(&self, request: &FriendRequest) {
        self.to_both(request, Kind::FriendRequestDeclined).await;
    }

    pub async fn request_cancelled(&self, request: &FriendRequest) {
        self.to_both(request, Kind::FriendRequestCancelled).await;
    }

    /// `friend.removed` to each side, naming the friend they lost.
    pub async fn friend_removed(&self, a: i64, b: i64) {
        for (user, friend) in [(a, b), (b, a)] {
            let kind = Kind::FriendRemoved(FriendRemoved {
                user_id: user.to_string(),
                friend_id: friend.to_string(),
            });
            astral_common::events::publish(
                &self.bus,
                vec![subjects::user(&user.to_string())],
                kind,
            )
            .await;
        }
    }

    async fn to_both(&self, request: &FriendRequest, kind: fn(FriendRequestEvent) -> Kind) {
        let event = kind(FriendRequestEvent {
            request: Some(crate::grpc::request_to_pb(request)),
        });
        let subjects = vec![
            subjects::user(&request.from.id.to_string()),
            subjects::user(&request.to.id.to_string()),
        ];
        astral_common::events::publish(&self.bus, subjects, event).await;
    }
}
