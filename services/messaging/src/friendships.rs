//! Asking social whether users are friends: for a batch of sends at once (`sends.rs`), or
//! one pair at a time, when the questions asked while others are on their way go together
//! in one `CheckFriendships` call (`astral_common::batch`). Either way the answer is as
//! fresh as a call of its own would be, at a fraction of the calls.

use astral_common::batch::Coalescer;
use astral_common::grpc::Channel;
use astral_common::{Error, Result};
use astral_proto::social::social_service_client::SocialServiceClient;
use astral_proto::social::{AreFriendsRequest, CheckFriendshipsRequest};

/// The most pairs one call asks about.
const MAX_BATCH: usize = 64;
/// Calls on their way at once. Few: while they are busy the next questions gather into one
/// call, and fewer, bigger calls cost less than many small ones (docs/benchmarks.md).
const WORKERS: usize = 2;
/// How long one call may take: the direct sends of this replica wait for it, so a replica
/// that hangs is given up on quickly (and the call tried once more, elsewhere).
const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Clone)]
pub struct Friendships {
    social: SocialServiceClient<Channel>,
    one_by_one: Coalescer<(i64, i64), std::result::Result<bool, tonic::Status>>,
}

impl Friendships {
    pub fn new(social: SocialServiceClient<Channel>) -> Self {
        let client = social.clone();
        Self {
            social,
            one_by_one: Coalescer::start("check_friendships", WORKERS, MAX_BATCH, move |pairs| {
                ask(client.clone(), pairs)
            }),
        }
    }

    /// Whether each pair are friends, in order, in one call (the sends batch their own).
    pub async fn check(
        &self,
        pairs: &[(i64, i64)],
    ) -> std::result::Result<Vec<bool>, tonic::Status> {
        ask(self.social.clone(), pairs.to_vec())
            .await
            .into_iter()
            .collect()
    }

    /// Whether two users are friends; asked together with the questions waiting.
    pub async fn are_friends(&self, a: i64, b: i64) -> Result<bool> {
        let answer = self
            .one_by_one
            .call((a, b))
            .await
            .unwrap_or_else(|| Err(tonic::Status::unavailable("friendship checks stopped")));
        answer
            .map_err(|status| Error::downstream(status, "ask social whether two users are friends"))
    }
}

/// One call for every pair; a read, so a call that found a replica gone (or too slow) is
/// tried once more (the balanced channel then picks another).
async fn ask(
    mut social: SocialServiceClient<Channel>,
    pairs: Vec<(i64, i64)>,
) -> Vec<std::result::Result<bool, tonic::Status>> {
    let pairs_asked = CheckFriendshipsRequest {
        pairs: pairs
            .iter()
            .map(|(a, b)| AreFriendsRequest {
                user_a: a.to_string(),
                user_b: b.to_string(),
            })
            .collect(),
    };
    let request = || {
        let mut request = tonic::Request::new(pairs_asked.clone());
        request.set_timeout(CALL_TIMEOUT);
        request
    };
    let mut answer = social.check_friendships(request()).await;
    if matches!(&answer, Err(status)
        if matches!(status.code(), tonic::Code::Unavailable | tonic::Code::DeadlineExceeded))
    {
        answer = social.check_friendships(request()).await;
    }
    match answer {
        Ok(response) => {
            let friends = response.into_inner().friends;
            if friends.len() == pairs.len() {
                friends.into_iter().map(Ok).collect()
            } else {
                let status = tonic::Status::internal("social answered for other pairs");
                vec![Err(status); pairs.len()]
            }
        }
        Err(status) => vec![Err(status); pairs.len()],
    }
}
