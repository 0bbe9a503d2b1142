//! The social use cases: one function each, holding the rules.

use crate::events;
use crate::model::{FriendRequest, Presence, User};
use crate::store::{NewRequest, Sent, Store};
use anyhow::Context as _;
use astral_common::grpc::Channel;
use astral_common::{Error, Result, ids, time};
use astral_proto::auth::{
    GetUserByUsernameRequest, GetUserRequest, auth_service_client::AuthServiceClient,
};
use std::sync::Arc;
use tracing::instrument;

/// Everything a user's friends screen shows.
pub struct FriendsOverview {
    pub friends: Vec<User>,
    /// What the actor sees of each friend's presence, in the order of `friends`.
    pub presence: Vec<Presence>,
    /// Set when there are more friends after this page.
    pub next_after: Option<String>,
    pub incoming: Vec<FriendRequest>,
    pub outgoing: Vec<FriendRequest>,
}

/// Friends per page when the caller does not say, and the most a page holds.
pub const DEFAULT_FRIENDS_PAGE: i64 = 200;
pub const MAX_FRIENDS_PAGE: i64 = 1000;
/// The most pairs one friendship check answers.
pub const MAX_PAIRS_CHECKED: usize = 256;

pub struct SocialService {
    pub(crate) store: Store,
    auth: AuthServiceClient<Channel>,
}

impl SocialService {
    pub fn new(store: Store, auth: AuthServiceClient<Channel>) -> Arc<Self> {
        Arc::new(Self { store, auth })
    }

    /// Sends a friend request by username, or accepts theirs if they already asked. Someone
    /// who blocked the actor looks, to the actor, like no one by that name.
    #[instrument(skip_all, fields(%actor, %username), err(level = "info"))]
    /// Returns the request, and whether it was theirs and is now accepted.
    pub async fn send_friend_request(
        &self,
        actor: i64,
        username: &str,
    ) -> Result<(FriendRequest, bool)> {
        let target = self.user_by_username(username).await?;
        if target.id == actor {
            return Err(Error::invalid(
                "you cannot send a friend request to yourself",
            ));
        }
        let me = self.user(actor).await?;
        self.store.remember_users(&[&me, &target]).await?;
        let sent = self
            .store
            .send_request(
                NewRequest {
                    id: ids::new_id(),
                    from: actor,
                    to: target.id,
                    now_ms: time::now_ms(),
                },
                events::sent,
            )
            .await?;
        match sent {
            Sent::Requested(request) => Ok((request, false)),
            Sent::AcceptedTheirs(request) => Ok((request, true)),
            Sent::AlreadyFriends => Err(Error::conflict("you are already friends")),
            Sent::AlreadyRequested => Err(Error::conflict("a friend request is already pending")),
            Sent::SenderBlocked => Err(Error::forbidden(
                "you blocked this user: unblock them first",
            )),
            Sent::RecipientBlocked => Err(no_such_username()),
        }
    }

    /// The recipient accepts a request; both become friends.
    #[instrument(skip_all, fields(%actor, %request_id), err(level = "info"))]
    pub async fn accept_friend_request(
        &self,
        actor: i64,
        request_id: i64,
    ) -> Result<FriendRequest> {
        let request = self
            .store
            .accept_request(request_id, actor, time::now_ms(), |request| {
                vec![events::accepted(request)]
            })
            .await?
            .ok_or_else(no_such_request)?;
        Ok(request)
    }

    /// The recipient declines a request.
    #[instrument(skip_all, fields(%actor, %request_id), err(level = "info"))]
    pub async fn decline_friend_request(&self, actor: i64, request_id: i64) -> Result<()> {
        self.store
            .delete_request(request_id, actor, true, |request| {
                vec![events::declined(request)]
            })
            .await?
            .ok_or_else(no_such_request)?;
        Ok(())
    }

    /// The sender takes a request back.
    #[instrument(skip_all, fields(%actor, %request_id), err(level = "info"))]
    pub async fn cancel_friend_request(&self, actor: i64, request_id: i64) -> Result<()> {
        self.store
            .delete_request(request_id, actor, false, |request| {
                vec![events::cancelled(request)]
            })
            .await?
            .ok_or_else(no_such_request)?;
        Ok(())
    }

    /// Either side ends a friendship.
    #[instrument(skip_all, fields(%actor, %friend), err(level = "info"))]
    pub async fn remove_friend(&self, actor: i64, friend: i64) -> Result<()> {
        let events = events::friend_removed(actor, friend);
        if !self.store.remove_friendship(actor, friend, events).await? {
            return Err(Error::not_found("you are not friends"));
        }
        Ok(())
    }

    /// A page of the actor's friends (by username, after `after`) and every pending request.
    pub async fn friends_overview(
        &self,
        actor: i64,
        after: &str,
        limit: Option<i64>,
    ) -> Result<FriendsOverview> {
        let limit =
            astral_common::paging::page_size(limit, DEFAULT_FRIENDS_PAGE, MAX_FRIENDS_PAGE)?;
        let mut friends = self.store.friends(actor, after, limit + 1).await?;
        let next_after = if friends.len() > usize::try_from(limit).unwrap_or(usize::MAX) {
            friends.truncate(friends.len() - 1);
            friends.last().map(|last| last.username.clone())
        } else {
            None
        };
        let ids: Vec<i64> = friends.iter().map(|friend| friend.id).collect();
        Ok(FriendsOverview {
            presence: self.store.presence_of(&ids).await?,
            friends,
            next_after,
            incoming: self.store.pending_requests(actor, true).await?,
            outgoing: self.store.pending_requests(actor, false).await?,
        })
    }

    /// Blocks a user: the friendship and pending requests between them end, and the blocked
    /// user can no longer send the actor requests or messages. Idempotent.
    #[instrument(skip_all, fields(%actor, %blocked), err(level = "info"))]
    pub async fn block(&self, actor: i64, blocked: i64) -> Result<Vec<User>> {
        if actor == blocked {
            return Err(Error::invalid("you cannot block yourself"));
        }
        let (me, them) = (self.user(actor).await?, self.user(blocked).await?);
        self.store.remember_users(&[&me, &them]).await?;
        self.store
            .block(actor, blocked, time::now_ms(), |undone| {
                events::blocked(actor, blocked, undone)
            })
            .await?;
        self.store.blocked_users(actor).await
    }

    /// Lifts a block (idempotent). Friendship is not restored.
    #[instrument(skip_all, fields(%actor, %blocked), err(level = "info"))]
    pub async fn unblock(&self, actor: i64, blocked: i64) -> Result<Vec<User>> {
        self.store.unblock(actor, blocked).await?;
        self.store.blocked_users(actor).await
    }

    pub async fn blocked_users(&self, actor: i64) -> Result<Vec<User>> {
        self.store.blocked_users(actor).await
    }

    /// Whether each pair are friends now, in order (a user is nobody's friend of themselves).
    pub async fn check_friendships(&self, pairs: &[(i64, i64)]) -> Result<Vec<bool>> {
        if pairs.len() > MAX_PAIRS_CHECKED {
            return Err(Error::invalid(format!(
                "at most {MAX_PAIRS_CHECKED} pairs at once"
            )));
        }
        let found = self.store.friendships_among(pairs).await?;
        tracing::debug!(pairs = pairs.len(), "friendships checked");
        Ok(pairs
            .iter()
            .zip(found)
            .map(|(&(a, b), friends)| a != b && friends)
            .collect())
    }

    async fn user_by_username(&self, username: &str) -> Result<User> {
        let request = GetUserByUsernameRequest {
            username: username.to_owned(),
        };
        match self.auth.clone().get_user_by_username(request).await {
            Ok(found) => user_from_pb(found.into_inner()),
            Err(status) if status.code() == tonic::Code::NotFound => Err(no_such_username()),
            Err(status) => Err(Error::downstream(status, "look up a username")),
        }
    }

    async fn user(&self, id: i64) -> Result<User> {
        let found = self
            .auth
            .clone()
            .get_user(GetUserRequest { id: id.to_string() })
            .await;
        match found {
            Ok(found) => user_from_pb(found.into_inner()),
            Err(status) if status.code() == tonic::Code::NotFound => {
                Err(Error::not_found("no such user"))
            }
            Err(status) => Err(Error::downstream(status, "look up a user")),
        }
    }
}

fn user_from_pb(user: astral_proto::auth::User) -> Result<User> {
    let id = user
        .id
        .parse()
        .context("auth returned a malformed user id")?;
    Ok(User {
        id,
        username: user.username,
    })
}

fn no_such_username() -> Error {
    Error::not_found("no user has that username")
}

fn no_such_request() -> Error {
    Error::not_found("no such friend request")
}
