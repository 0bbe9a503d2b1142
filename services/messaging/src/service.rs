//! The messaging use cases: one function each, holding the rules and the authorization.

use crate::domain::{ChatName, Emoji, MessageContent, mentioned_usernames, parse_nonce};
use crate::events::{self, Typing};
use crate::friendships::Friendships;
use crate::member_lists::MemberLists;
use crate::sends::{Send, Sends};
use crate::store::{
    AddOutcome, Change, Changed, Chat, Inserted, Left, Members, Message, NewChat, Page, Preview,
    Store, User,
};
use crate::typing::TypingLimiter;
use anyhow::Context as _;
use astral_common::grpc::Channel;
use astral_common::{Error, EventBus, Result, ids, time};
use astral_proto::auth::{GetUsersRequest, auth_service_client::AuthServiceClient};
use astral_proto::social::social_service_client::SocialServiceClient;
use astral_proto::subjects::direct_chat_id;
use std::sync::Arc;
use tracing::instrument;

/// A chat as one member sees it, with whether they can still write in it.
#[derive(Debug, Clone)]
pub struct ChatView {
    pub chat: Chat,
    pub read_only: bool,
}

pub struct MessagingService {
    store: Store,
    auth: AuthServiceClient<Channel>,
    friendships: Friendships,
    sends: Sends,
    typing_events: Typing,
    typing: TypingLimiter,
    member_lists: MemberLists,
}

/// How many messages a history page holds when the caller does not say.
pub const DEFAULT_PAGE: i64 = 50;
/// The most a history page holds.
pub const MAX_PAGE: i64 = 100;
/// The most members a group chat has, its owner included.
pub const MAX_GROUP_MEMBERS: i64 = 100;

fn chat_not_found() -> Error {
    Error::not_found("no such chat")
}

/// Different reactions one user may leave on one message.
const MAX_REACTIONS_PER_USER: i64 = 20;

/// The message a change left, or why there is none.
fn changed(outcome: Changed) -> Result<Message> {
    match outcome {
        Changed::Message(message) => Ok(*message),
        Changed::Gone => Err(message_not_found()),
        Changed::ReactionsFull => Err(Error::conflict(format!(
            "you already have {MAX_REACTIONS_PER_USER} different reactions on this message"
        ))),
    }
}

pub(crate) fn read_only() -> Error {
    Error::forbidden("this chat is read-only: you are no longer friends")
}

fn message_not_found() -> Error {
    Error::not_found("no such message")
}

impl MessagingService {
    pub fn new(
        store: Store,
        auth: AuthServiceClient<Channel>,
        social: SocialServiceClient<Channel>,
        bus: EventBus,
    ) -> Arc<Self> {
        let friendships = Friendships::new(social, bus.clone());
        Arc::new(Self {
            sends: Sends::new(store.clone(), friendships.clone()),
            store,
            auth,
            friendships,
            typing_events: Typing::new(bus),
            typing: TypingLimiter::default(),
            member_lists: MemberLists::default(),
        })
    }

    /// The direct chat between the actor and a friend, created on first use. Once created it
    /// stays, read-only while they are not friends.
    #[instrument(skip_all, fields(%actor, %other), err(level = "info"))]
    pub async fn open_direct_chat(&self, actor: i64, other: i64) -> Result<ChatView> {
        if actor == other {
            return Err(Error::invalid("a direct chat needs another user"));
        }
        let chat_id = direct_chat_id(&actor.to_string(), &other.to_string());
        if let Some(chat) = self.store.chat_for(&chat_id, actor).await? {
            return self.view(chat).await;
        }
        if !self.friendships.are_friends(actor, other).await? {
            return Err(Error::forbidden(
                "you can only open a direct chat with a friend",
            ));
        }
        let users = self.users(&[actor, other]).await?;
        if users.len() != 2 {
            return Err(Error::not_found("no such user"));
        }
        self.store.remember_users(&users).await?;
        let new = NewChat {
            id: &chat_id,
            kind: "direct",
            name: "",
            owner_id: None,
            members: &[actor, other],
            now_ms: time::now_ms(),
        };
        let event = events::chat_created(&new_chat(&new, &users), new.members);
        self.store.create_chat(&new, vec![event]).await?;
        let chat = self
            .store
            .chat_for(&chat_id, actor)
            .await?
            .ok_or_else(chat_not_found)?;
        self.view(chat).await
    }

    /// Creates a group chat owned by the actor with some of their friends.
    #[instrument(skip_all, fields(%actor), err(level = "info"))]
    pub async fn create_group_chat(
        &self,
        actor: i64,
        name: &str,
        member_ids: &[i64],
    ) -> Result<ChatView> {
        let name = ChatName::parse(name)?;
        let mut members = vec![actor];
        for id in member_ids {
            if !members.contains(id) {
                members.push(*id);
            }
        }
        if i64::try_from(members.len()).unwrap_or(i64::MAX) > MAX_GROUP_MEMBERS {
            return Err(Error::invalid("a group chat has at most 100 members"));
        }
        // Every friendship in one call.
        let pairs: Vec<(i64, i64)> = members[1..].iter().map(|member| (actor, *member)).collect();
        let friends = self
            .friendships
            .check(&pairs)
            .await
            .map_err(crate::friendships::downstream)?;
        if friends.iter().any(|friend| !friend) {
            return Err(Error::invalid("every member must be a friend of yours"));
        }
        let users = self.users(&members).await?;
        if users.len() != members.len() {
            return Err(Error::invalid("every member must be a friend of yours"));
        }
        self.store.remember_users(&users).await?;
        let chat_id = ids::new_id_string();
        let new = NewChat {
            id: &chat_id,
            kind: "group",
            name: name.as_str(),
            owner_id: Some(actor),
            members: &members,
            now_ms: time::now_ms(),
        };
        let event = events::chat_created(&new_chat(&new, &users), &members);
        self.store.create_chat(&new, vec![event]).await?;
        let chat = self
            .store
            .chat_for(&chat_id, actor)
            .await?
            .ok_or_else(chat_not_found)?;
        self.view(chat).await
    }

    /// The owner renames a group chat.
    #[instrument(skip_all, fields(%actor, %chat_id), err(level = "info"))]
    pub async fn rename_chat(&self, actor: i64, chat_id: &str, name: &str) -> Result<ChatView> {
        let name = ChatName::parse(name)?;
        self.owned_group(actor, chat_id).await?;
        self.store
            .rename(chat_id, name.as_str(), |chat| {
                vec![events::chat_updated(chat, &member_ids(chat))]
            })
            .await?;
        let chat = self
            .store
            .chat_for(chat_id, actor)
            .await?
            .ok_or_else(chat_not_found)?;
        self.view(chat).await
    }

    /// The owner adds one of their friends to a group chat.
    #[instrument(skip_all, fields(%actor, %chat_id, %user_id), err(level = "info"))]
    pub async fn add_member(&self, actor: i64, chat_id: &str, user_id: i64) -> Result<ChatView> {
        self.owned_group(actor, chat_id).await?;
        if !self.friendships.are_friends(actor, user_id).await? {
            return Err(Error::invalid("you can only add a friend"));
        }
        let users = self.users(&[user_id]).await?;
        self.store.remember_users(&users).await?;
        let events = |chat: &Chat| {
            let others: Vec<i64> = member_ids(chat)
                .into_iter()
                .filter(|id| *id != user_id)
                .collect();
            vec![
                events::chat_created(chat, &[user_id]),
                events::chat_updated(chat, &others),
            ]
        };
        match self
            .store
            .add_member(chat_id, user_id, MAX_GROUP_MEMBERS, time::now_ms(), events)
            .await?
        {
            AddOutcome::Added => {}
            AddOutcome::AlreadyMember => return Err(Error::conflict("already a member")),
            AddOutcome::Full => return Err(Error::invalid("a group chat has at most 100 members")),
        }
        let chat = self
            .store
            .chat_for(chat_id, actor)
            .await?
            .ok_or_else(chat_not_found)?;
        self.view(chat).await
    }

    /// The owner removes a member, or a member leaves (`user_id` is the actor). Returns
    /// whether the chat remains.
    #[instrument(skip_all, fields(%actor, %chat_id, %user_id), err(level = "info"))]
    pub async fn remove_member(&self, actor: i64, chat_id: &str, user_id: i64) -> Result<bool> {
        let chat = self
            .store
            .chat_for(chat_id, actor)
            .await?
            .ok_or_else(chat_not_found)?;
        if chat.kind != "group" {
            return Err(Error::invalid("a direct chat has no members to remove"));
        }
        if user_id != actor && chat.owner_id != Some(actor) {
            return Err(Error::forbidden("only the owner removes other members"));
        }
        let events = |remaining: Option<&Chat>| {
            let mut events = vec![events::chat_deleted(chat_id, &[user_id])];
            if let Some(chat) = remaining {
                events.push(events::chat_updated(chat, &member_ids(chat)));
            }
            events
        };
        match self.store.remove_member(chat_id, user_id, events).await? {
            Left::NotMember => Err(Error::not_found("not a member of this chat")),
            Left::Deleted => Ok(false),
            Left::Remains { .. } => Ok(true),
        }
    }

    /// The actor's chats, latest activity first.
    pub async fn list_chats(&self, actor: i64) -> Result<Vec<ChatView>> {
        let chats = self.store.chats_of(actor).await?;
        // Every direct chat's friendship in one call.
        let pairs: Vec<(i64, i64)> = chats.iter().filter_map(direct_pair).collect();
        let mut friends = self
            .friendships
            .check(&pairs)
            .await
            .map_err(crate::friendships::downstream)?
            .into_iter();
        Ok(chats
            .into_iter()
            .map(|chat| {
                let read_only = chat.kind == "direct"
                    && (direct_pair(&chat).is_none() || friends.next() != Some(true));
                ChatView { chat, read_only }
            })
            .collect())
    }

    /// Any chat, as its first member sees it (admin tools only; the gateway never calls it).
    pub async fn inspect_chat(&self, chat_id: &str) -> Result<ChatView> {
        let member = self
            .store
            .first_member(chat_id)
            .await?
            .ok_or_else(chat_not_found)?;
        let chat = self
            .store
            .chat_for(chat_id, member)
            .await?
            .ok_or_else(chat_not_found)?;
        self.view(chat).await
    }

    /// One of the actor's chats; `NotFound` for a chat they are not in.
    pub async fn get_chat(&self, actor: i64, chat_id: &str) -> Result<ChatView> {
        let chat = self
            .store
            .chat_for(chat_id, actor)
            .await?
            .ok_or_else(chat_not_found)?;
        self.view(chat).await
    }

    /// Sends a message (maybe a reply); a retry with the same nonce returns the first one.
    #[instrument(skip_all, fields(%actor, %chat_id), err(level = "info"))]
    pub async fn send_message(
        &self,
        actor: i64,
        chat_id: &str,
        content: &str,
        nonce: &str,
        reply_to: Option<i64>,
    ) -> Result<Message> {
        let content = MessageContent::parse(content)?;
        let nonce = parse_nonce(nonce)?;
        let members = self.sender_members(actor, chat_id).await?;
        // A direct chat takes messages while its two members are friends: asked with the
        // send, right before it is stored.
        let friends = match (members.kind.as_str(), members.users.as_slice()) {
            ("direct", [a, b]) => Some((a.id, b.id)),
            ("direct", _) => return Err(read_only()),
            _ => None,
        };
        let reply_to = match reply_to {
            Some(id) => match self.store.message(chat_id, id).await? {
                Some(answered) => Some(Preview::of(&answered)),
                None => return Err(Error::invalid("reply_to is not a message of this chat")),
            },
            None => None,
        };
        let send = Send {
            id: ids::new_id(),
            chat_id: chat_id.to_owned(),
            author_id: actor,
            mentions: mentions(content.as_str(), &members.users),
            content: content.as_str().to_owned(),
            nonce: nonce.clone(),
            reply_to,
            now_ms: time::now_ms(),
            friends,
            recipients: members.users.iter().map(|user| user.id).collect(),
            recipients_version: members.version,
        };
        // The message's event was written with it: published after the commit, or, if this
        // process dies first, by the outbox's sweeper. A retry publishes nothing more.
        let (message, members_version) = match self.sends.send(send).await? {
            Inserted::Stored {
                message,
                members_version,
            } => (*message, members_version),
            Inserted::NotAMember => {
                // Removed since the list was read (the insert checked): forget the list.
                self.member_lists.forget(chat_id);
                return Err(chat_not_found());
            }
            Inserted::NonceTaken => {
                // A retry (or a concurrent twin) of a stored send: answer with that message.
                let nonce = nonce.as_deref().unwrap_or_default();
                let first = self.store.message_by_nonce(chat_id, actor, nonce).await?;
                return Ok(first.context("a nonce collided with no message")?);
            }
        };
        metrics::counter!("astral_messages_sent_total").increment(1);
        if members_version != members.version {
            // The members changed since the list was read: read it again for the next send.
            self.reload_members(chat_id).await?;
        }
        Ok(message)
    }

    /// The author edits their message.
    #[instrument(skip_all, fields(%actor, %chat_id, %message_id), err(level = "info"))]
    pub async fn edit_message(
        &self,
        actor: i64,
        chat_id: &str,
        message_id: i64,
        content: &str,
    ) -> Result<Message> {
        let content = MessageContent::parse(content)?;
        let members = self.writable(actor, chat_id).await?;
        self.own_live_message(actor, chat_id, message_id).await?;
        let mentions = mentions(content.as_str(), &members);
        let change = Change::Edit {
            content: content.as_str(),
            mentions: &mentions,
        };
        let edited = self
            .store
            .change_message(
                chat_id,
                message_id,
                change,
                time::now_ms(),
                events::message_updated,
            )
            .await?;
        changed(edited)
    }

    /// The author deletes their message: a tombstone remains, the content is erased.
    #[instrument(skip_all, fields(%actor, %chat_id, %message_id), err(level = "info"))]
    pub async fn delete_message(
        &self,
        actor: i64,
        chat_id: &str,
        message_id: i64,
    ) -> Result<Message> {
        self.store
            .membership(chat_id, actor)
            .await?
            .ok_or_else(chat_not_found)?;
        self.own_live_message(actor, chat_id, message_id).await?;
        let deleted = self
            .store
            .change_message(
                chat_id,
                message_id,
                Change::Delete,
                time::now_ms(),
                events::message_deleted,
            )
            .await?;
        changed(deleted)
    }

    /// Adds the actor's reaction with `emoji` to a message (while they have fewer than 20
    /// different ones on it), or takes it back.
    #[instrument(skip_all, fields(%actor, %chat_id, %message_id), err(level = "info"))]
    pub async fn toggle_reaction(
        &self,
        actor: i64,
        chat_id: &str,
        message_id: i64,
        emoji: &str,
    ) -> Result<Message> {
        let emoji = Emoji::parse(emoji)?;
        self.writable(actor, chat_id).await?;
        let change = Change::ToggleReaction {
            user_id: actor,
            emoji: emoji.as_str(),
            at_most: MAX_REACTIONS_PER_USER,
        };
        let reacted = self
            .store
            .change_message(
                chat_id,
                message_id,
                change,
                time::now_ms(),
                events::message_updated,
            )
            .await?;
        changed(reacted)
    }

    /// A page of a chat's history.
    pub async fn list_messages(
        &self,
        actor: i64,
        chat_id: &str,
        before: Option<i64>,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Message>> {
        let page = match (before, after) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid("use either before or after, not both"));
            }
            (Some(seq), None) => Page::Before(seq),
            (None, Some(version)) => Page::After(version),
            (None, None) => Page::Latest,
        };
        let limit = match limit {
            0 => DEFAULT_PAGE,
            1..=MAX_PAGE => limit,
            _ => return Err(Error::invalid("limit is between 1 and 100")),
        };
        self.store
            .membership(chat_id, actor)
            .await?
            .ok_or_else(chat_not_found)?;
        self.store.messages(chat_id, page, limit).await
    }

    /// Moves the actor's read marker in a chat forward to `seq`.
    pub async fn mark_read(&self, actor: i64, chat_id: &str, seq: i64) -> Result<()> {
        if seq < 0 {
            return Err(Error::invalid("seq cannot be negative"));
        }
        self.store
            .membership(chat_id, actor)
            .await?
            .ok_or_else(chat_not_found)?;
        self.store.mark_read(chat_id, actor, seq).await
    }

    /// The actor is typing: `typing.started` for the chat's subscribers, rate-limited.
    /// Refused where sending is (a read-only direct chat).
    pub async fn typing(&self, actor: i64, chat_id: &str) -> Result<()> {
        let members = self.writable(actor, chat_id).await?;
        if self.typing.allow(actor, chat_id)
            && let Some(user) = members.iter().find(|m| m.id == actor)
        {
            self.typing_events.started(chat_id, user).await;
        }
        Ok(())
    }

    /// The chat's members if the actor is one, from the list kept since an earlier send when
    /// it has them (the insert checks again); read from the database otherwise.
    async fn sender_members(&self, actor: i64, chat_id: &str) -> Result<Arc<Members>> {
        let is_member = |members: &Members| members.users.iter().any(|user| user.id == actor);
        if let Some(members) = self.member_lists.get(chat_id).filter(|m| is_member(m)) {
            return Ok(members);
        }
        self.reload_members(chat_id)
            .await?
            .filter(|members| is_member(members))
            .ok_or_else(chat_not_found)
    }

    async fn reload_members(&self, chat_id: &str) -> Result<Option<Arc<Members>>> {
        let Some(members) = self.store.members_of(chat_id).await?.map(Arc::new) else {
            self.member_lists.forget(chat_id);
            return Ok(None);
        };
        self.member_lists.keep(chat_id, members.clone());
        Ok(Some(members))
    }

    /// The members of a chat the actor may write in: a member, and for a direct chat still
    /// friends (asked of social on every send: no message once an unfriend has committed).
    async fn writable(&self, actor: i64, chat_id: &str) -> Result<Vec<User>> {
        let (kind, members) = self
            .store
            .membership(chat_id, actor)
            .await?
            .ok_or_else(chat_not_found)?;
        if kind == "direct" && !self.direct_members_are_friends(&members).await? {
            return Err(read_only());
        }
        Ok(members)
    }

    async fn owned_group(&self, actor: i64, chat_id: &str) -> Result<Chat> {
        let chat = self
            .store
            .chat_for(chat_id, actor)
            .await?
            .ok_or_else(chat_not_found)?;
        if chat.kind != "group" {
            return Err(Error::invalid(
                "only a group chat has a name and members to manage",
            ));
        }
        if chat.owner_id != Some(actor) {
            return Err(Error::forbidden("only the owner of the group can do that"));
        }
        Ok(chat)
    }

    async fn own_live_message(
        &self,
        actor: i64,
        chat_id: &str,
        message_id: i64,
    ) -> Result<Message> {
        let message = self.store.message(chat_id, message_id).await?;
        let message = message
            .filter(|m| !m.deleted)
            .ok_or_else(message_not_found)?;
        if message.author_id != actor {
            return Err(Error::forbidden("only the author can change a message"));
        }
        Ok(message)
    }

    /// A direct chat is read-only while its two members are not friends.
    async fn view(&self, chat: Chat) -> Result<ChatView> {
        let read_only =
            chat.kind == "direct" && !self.direct_members_are_friends(&chat.members).await?;
        Ok(ChatView { chat, read_only })
    }

    async fn direct_members_are_friends(&self, members: &[User]) -> Result<bool> {
        match members {
            [a, b] => self.friendships.are_friends(a.id, b.id).await,
            _ => Ok(false),
        }
    }

    async fn users(&self, ids: &[i64]) -> Result<Vec<User>> {
        let request = GetUsersRequest {
            ids: ids.iter().map(ToString::to_string).collect(),
        };
        let answer = self
            .auth
            .clone()
            .get_users(request)
            .await
            .map_err(|status| Error::downstream(status, "look up users"))?;
        answer
            .into_inner()
            .users
            .into_iter()
            .map(|user| {
                Ok(User {
                    id: user
                        .id
                        .parse()
                        .context("auth returned a malformed user id")?,
                    username: user.username,
                })
            })
            .collect()
    }
}

/// The two members of a direct chat.
fn direct_pair(chat: &Chat) -> Option<(i64, i64)> {
    match (chat.kind.as_str(), chat.members.as_slice()) {
        ("direct", [a, b]) => Some((a.id, b.id)),
        _ => None,
    }
}

/// A chat as its creation shows it: no message yet, its members in the order they join.
fn new_chat(new: &NewChat<'_>, users: &[User]) -> Chat {
    Chat {
        id: new.id.to_owned(),
        kind: new.kind.to_owned(),
        name: new.name.to_owned(),
        owner_id: new.owner_id,
        members: new
            .members
            .iter()
            .filter_map(|id| users.iter().find(|user| user.id == *id).cloned())
            .collect(),
        last_seq: 0,
        unread: 0,
        last_activity_ms: new.now_ms,
        last_message: None,
    }
}

fn member_ids(chat: &Chat) -> Vec<i64> {
    chat.members.iter().map(|m| m.id).collect()
}

/// The members named with `@username` in `content`.
fn mentions(content: &str, members: &[User]) -> Vec<i64> {
    mentioned_usernames(content)
        .iter()
        .filter_map(|name| members.iter().find(|m| m.username == *name).map(|m| m.id))
        .collect()
}
