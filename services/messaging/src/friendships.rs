//! Asking social whether users are friends, with `CheckFriendships`: many pairs in one call
//! (a batch of sends, a chat list), each answer as fresh as a call of its own would be.

use astral_common::grpc::Channel;
use astral_common::{Error, Result};
use astral_proto::social::social_service_client::SocialServiceClient;
use astral_proto::social::{AreFriendsRequest, CheckFriendshipsRequest};

/// The most pairs social answers in one call.
const MAX_PAIRS: usize = 256;
/// How long one call may take: the direct sends of this replica wait for it, so a replica
/// that hangs is given up on quickly (and the call tried once more, elsewhere).
const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Clone)]
pub struct Friendships {
    social: SocialServiceClient<Channel>,
}

impl Friendships {
    pub fn new(social: SocialServiceClient<Channel>) -> Self {
        Self { social }
    }

    /// Whether each pair are friends, in order.
    pub async fn check(
        &self,
        pairs: &[(i64, i64)],
    ) -> std::result::Result<Vec<bool>, tonic::Status> {
        let mut friends = Vec::with_capacity(pairs.len());
        for chunk in pairs.chunks(MAX_PAIRS) {
            friends.extend(self.ask(chunk).await?);
        }
        Ok(friends)
    }

    /// Whether two users are friends.
    pub async fn are_friends(&self, a: i64, b: i64) -> Result<bool> {
        let friends = self.check(&[(a, b)]).await.map_err(downstream)?;
        Ok(friends.first() == Some(&true))
    }

    /// One call; a read, so a call that found a replica gone (or too slow) is tried once
    /// more (the balanced channel then picks another).
    async fn ask(&self, pairs: &[(i64, i64)]) -> std::result::Result<Vec<bool>, tonic::Status> {
        let asked = CheckFriendshipsRequest {
            pairs: pairs
                .iter()
                .map(|(a, b)| AreFriendsRequest {
                    user_a: a.to_string(),
                    user_b: b.to_string(),
                })
                .collect(),
        };
        let request = || {
            let mut request = tonic::Request::new(asked.clone());
            request.set_timeout(CALL_TIMEOUT);
            request
        };
        let mut social = self.social.clone();
        let mut answer = social.check_friendships(request()).await;
        if matches!(&answer, Err(status)
            if matches!(status.code(), tonic::Code::Unavailable | tonic::Code::DeadlineExceeded))
        {
            answer = social.check_friendships(request()).await;
        }
        let friends = answer?.into_inner().friends;
        if friends.len() != pairs.len() {
            return Err(tonic::Status::internal("social answered for other pairs"));
        }
        Ok(friends)
    }
}

/// A failed friendship check, as the caller's error.
pub fn downstream(status: tonic::Status) -> Error {
    Error::downstream(status, "ask social whether two users are friends")
}
