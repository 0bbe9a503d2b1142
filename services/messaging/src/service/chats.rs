//! Managing chats: opening a direct chat, creating and running a group, and the lists and
//! views of chats a member sees.

use super::{MessagingService, chat_not_found};
use crate::domain::ChatName;
use crate::events;
use crate::model::{Chat, ChatKind, ChatView, Message, User, direct_chat_id};
use crate::store::{AddOutcome, Left, NewChat};
use astral_common::{Error, Result, ids, time};
use tracing::instrument;

/// The most members a group chat has, its owner included.
pub const MAX_GROUP_MEMBERS: i64 = 100;

impl MessagingService {
    /// The direct chat between the actor and a friend, created on first use. Once created it
    /// stays, read-only while they are not friends.
    #[instrument(skip_all, fields(%actor, %other), err(level = "info"))]
    pub async fn open_direct_chat(&self, actor: i64, other: i64) -> Result<ChatView> {
        if actor == other {
            return Err(Error::invalid("a direct chat needs another user"));
        }
        let chat_id = direct_chat_id(actor, other);
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
        let new = NewChat {
            id: &chat_id,
            kind: ChatKind::Direct,
            name: "",
            owner_id: None,
            members: &[actor, other],
            now_ms: time::now_ms(),
        };
        self.create(actor, &new, &users).await
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
        let chat_id = ids::new_id_string();
        let new = NewChat {
            id: &chat_id,
            kind: ChatKind::Group,
            name: name.as_str(),
            owner_id: Some(actor),
            members: &members,
            now_ms: time::now_ms(),
        };
        self.create(actor, &new, &users).await
    }

    /// The owner renames a group chat.
    #[instrument(skip_all, fields(%actor, %chat_id), err(level = "info"))]
    pub async fn rename_chat(&self, actor: i64, chat_id: &str, name: &str) -> Result<ChatView> {
        let name = ChatName::parse(name)?;
        self.owned_group(actor, chat_id).await?;
        self.store
            .rename(
                chat_id,
                actor,
                name.as_str(),
                time::now_ms(),
                |chat, recorded| {
                    let members = chat.member_ids();
                    let mut events = vec![events::chat_updated(chat, &members)];
                    events.extend(events::group_changes(recorded, &members));
                    events
                },
            )
            .await?;
        self.get_chat(actor, chat_id).await
    }

    /// The actor's own settings of a chat: muted or not (what is left out stays as it is).
    #[instrument(skip_all, fields(%actor, %chat_id), err(level = "info"))]
    pub async fn update_chat_settings(
        &self,
        actor: i64,
        chat_id: &str,
        muted: Option<bool>,
    ) -> Result<ChatView> {
        if let Some(muted) = muted
            && !self.store.set_muted(chat_id, actor, muted).await?
        {
            return Err(chat_not_found());
        }
        self.get_chat(actor, chat_id).await
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
        let events = |chat: &Chat, recorded: &[Message]| {
            let members = chat.member_ids();
            let others: Vec<i64> = members
                .iter()
                .copied()
                .filter(|id| *id != user_id)
                .collect();
            let mut events = vec![
                events::chat_created(chat, &[user_id]),
                events::chat_updated(chat, &others),
            ];
            events.extend(events::group_changes(recorded, &members));
            events
        };
        let now_ms = time::now_ms();
        match self
            .store
            .add_member(chat_id, actor, user_id, MAX_GROUP_MEMBERS, now_ms, events)
            .await?
        {
            AddOutcome::Added => {}
            AddOutcome::AlreadyMember => return Err(Error::conflict("already a member")),
            AddOutcome::Full => return Err(Error::invalid("a group chat has at most 100 members")),
        }
        self.get_chat(actor, chat_id).await
    }

    /// The owner removes a member, or a member leaves (`user_id` is the actor). Returns
    /// whether the chat remains.
    #[instrument(skip_all, fields(%actor, %chat_id, %user_id), err(level = "info"))]
    pub async fn remove_member(&self, actor: i64, chat_id: &str, user_id: i64) -> Result<bool> {
        let chat = self.chat_for(actor, chat_id).await?;
        if chat.kind != ChatKind::Group {
            return Err(Error::invalid("a direct chat has no members to remove"));
        }
        if user_id != actor && chat.owner_id != Some(actor) {
            return Err(Error::forbidden("only the owner removes other members"));
        }
        let events = |remaining: Option<&Chat>, recorded: &[Message]| {
            let mut events = vec![events::chat_deleted(chat_id, &[user_id])];
            if let Some(chat) = remaining {
                let members = chat.member_ids();
                events.push(events::chat_updated(chat, &members));
                events.extend(events::group_changes(recorded, &members));
            }
            events
        };
        let now_ms = time::now_ms();
        match self
            .store
            .remove_member(chat_id, actor, user_id, now_ms, events)
            .await?
        {
            Left::NotMember => Err(Error::not_found("not a member of this chat")),
            Left::Deleted => Ok(false),
            Left::Remains { .. } => Ok(true),
        }
    }

    /// The actor's chats, latest activity first.
    pub async fn list_chats(&self, actor: i64) -> Result<Vec<ChatView>> {
        let chats = self.store.chats_of(actor).await?;
        // Every direct chat's friendship in one call.
        let pairs: Vec<(i64, i64)> = chats.iter().filter_map(Chat::direct_pair).collect();
        let mut friends = self
            .friendships
            .check(&pairs)
            .await
            .map_err(crate::friendships::downstream)?
            .into_iter();
        Ok(chats
            .into_iter()
            .map(|chat| {
                let read_only = chat.kind == ChatKind::Direct
                    && (chat.direct_pair().is_none() || friends.next() != Some(true));
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
        self.get_chat(member, chat_id).await
    }

    /// One of the actor's chats; `NotFound` for a chat they are not in.
    pub async fn get_chat(&self, actor: i64, chat_id: &str) -> Result<ChatView> {
        let chat = self.chat_for(actor, chat_id).await?;
        self.view(chat).await
    }

    /// Creates `new` (unless a concurrent call just did) and answers it as `actor` sees it.
    async fn create(&self, actor: i64, new: &NewChat<'_>, users: &[User]) -> Result<ChatView> {
        self.store.remember_users(users).await?;
        let created = events::chat_created(&new_chat(new, users), new.members);
        self.store
            .create_chat(new, |recorded| {
                let mut events = vec![created];
                events.extend(events::group_changes(recorded, new.members));
                events
            })
            .await?;
        self.get_chat(actor, new.id).await
    }

    /// The group chat `chat_id` if the actor owns it.
    async fn owned_group(&self, actor: i64, chat_id: &str) -> Result<Chat> {
        let chat = self.chat_for(actor, chat_id).await?;
        if chat.kind != ChatKind::Group {
            return Err(Error::invalid(
                "only a group chat has a name and members to manage",
            ));
        }
        if chat.owner_id != Some(actor) {
            return Err(Error::forbidden("only the owner of the group can do that"));
        }
        Ok(chat)
    }
}

/// A chat as its creation shows it: no message yet, its members in the order they join.
fn new_chat(new: &NewChat<'_>, users: &[User]) -> Chat {
    Chat {
        id: new.id.to_owned(),
        kind: new.kind,
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
        viewed: None,
    }
}
