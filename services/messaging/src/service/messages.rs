//! Messages: sending (a reply, mentions, a retried nonce), editing, deleting, reacting,
//! history, read markers and typing.

use super::{MessagingService, chat_not_found};
use crate::domain::{
    Emoji, MessageContent, mentioned_usernames, parse_attachment_ids, parse_nonce, read_only,
};
use crate::events;
use crate::model::{ChatKind, Members, Message, Page, Preview, Settings, User};
use crate::search::{DEFAULT_RESULTS, MAX_RESULTS, Query};
use crate::sends::QueuedSend;
use crate::store::{Change, Changed, Inserted, Search};
use anyhow::Context as _;
use astral_common::{Error, Result, ids, time};
use std::sync::Arc;
use tracing::instrument;

/// How many messages a history page holds when the caller does not say.
pub const DEFAULT_PAGE: i64 = 50;
/// The most a history page holds.
pub const MAX_PAGE: i64 = 100;
/// Where to search, and which page.
#[derive(Default)]
pub struct SearchFilters<'a> {
    pub chat_id: Option<&'a str>,
    pub author_id: Option<&'a str>,
    pub before: Option<&'a str>,
    pub limit: Option<i64>,
}

/// A page of search results, and the `before` of the next (none after the last).
pub struct SearchPage {
    pub found: Vec<Found>,
    pub next_before: Option<i64>,
}

/// A message found, and where it matched (`(start, end)` in characters of its content).
pub struct Found {
    pub message: Message,
    pub highlights: Vec<(usize, usize)>,
}

/// A message to send, as the sender wrote it.
#[derive(Default)]
pub struct Draft<'a> {
    pub content: &'a str,
    /// The sender's idempotency key; empty for none.
    pub nonce: &'a str,
    pub reply_to: Option<i64>,
    /// Files the sender uploaded, to attach (their ids, as given).
    pub attachment_ids: &'a [String],
}

/// Different reactions one user may leave on one message.
const MAX_REACTIONS_PER_USER: i64 = 20;

impl MessagingService {
    /// Sends a message (maybe a reply, maybe with files); a retry with the same nonce returns
    /// the first one.
    #[instrument(skip_all, fields(%actor, %chat_id), err(level = "info"))]
    pub async fn send_message(
        &self,
        actor: i64,
        chat_id: &str,
        draft: Draft<'_>,
    ) -> Result<Message> {
        let attachment_ids = parse_attachment_ids(draft.attachment_ids)?;
        let content = if attachment_ids.is_empty() {
            MessageContent::parse(draft.content)?
        } else {
            MessageContent::parse_beside_files(draft.content)?
        };
        let nonce = parse_nonce(draft.nonce)?;
        let members = self.sender_members(actor, chat_id).await?;
        // A direct chat takes messages while its two members are friends: asked with the
        // send, right before it is stored.
        let friends = match (members.kind, members.users.as_slice()) {
            (ChatKind::Direct, [a, b]) => Some((a.id, b.id)),
            (ChatKind::Direct, _) => return Err(read_only()),
            (ChatKind::Group, _) => None,
        };
        let reply_to = match draft.reply_to {
            Some(id) => match self.store.message(chat_id, id).await? {
                Some(answered) if answered.system.is_none() => Some(Preview::of(&answered)),
                Some(_) => return Err(Error::invalid("a group change cannot be replied to")),
                None => return Err(Error::invalid("reply_to is not a message of this chat")),
            },
            None => None,
        };
        let send = QueuedSend {
            id: ids::new_id(),
            chat_id: chat_id.to_owned(),
            author_id: actor,
            mentions: mentions(content.as_str(), &members.users),
            content: content.as_str().to_owned(),
            nonce: nonce.clone(),
            reply_to,
            attachment_ids,
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
            Inserted::AttachmentsUnavailable => {
                return Err(Error::invalid(
                    "attachment_ids names a file that is not yours to attach \
                     (another's, already sent, expired, or none)",
                ));
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
        // Empty only if the message carries files (known once it is read).
        let content = MessageContent::parse_beside_files(content)?;
        let members = self.writable(actor, chat_id).await?;
        let editing = self.own_live_message(actor, chat_id, message_id).await?;
        if content.as_str().is_empty() && editing.attachments.is_empty() {
            return Err(Error::invalid("a message cannot be empty"));
        }
        let mentions = mentions(content.as_str(), &members.users);
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
        self.membership(actor, chat_id).await?;
        let deleting = self.own_live_message(actor, chat_id, message_id).await?;
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
        if !deleting.attachments.is_empty() {
            // Its files were queued for removal with the delete: remove them now.
            self.janitor.wake();
        }
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
        limit: Option<i64>,
    ) -> Result<Vec<Message>> {
        let page = match (before, after) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid("use either before or after, not both"));
            }
            (Some(seq), None) => Page::Before(seq),
            (None, Some(version)) => Page::After(version),
            (None, None) => Page::Latest,
        };
        let limit = astral_common::paging::page_size(limit, DEFAULT_PAGE, MAX_PAGE)?;
        self.membership(actor, chat_id).await?;
        self.store.messages(chat_id, page, limit).await
    }

    /// Searches the actor's chats (those they are a member of now) for `q`: newest first, each
    /// message with where it matched (`crate::search`).
    pub async fn search_messages(
        &self,
        actor: i64,
        q: &str,
        filters: SearchFilters<'_>,
    ) -> Result<SearchPage> {
        let query = Query::parse(q)?;
        let id = |text: Option<&str>, what: &str| {
            text.map(|text| {
                ids::parse_id(text).ok_or_else(|| Error::invalid(format!("{what} is not an id")))
            })
            .transpose()
        };
        let search = Search {
            user_id: actor,
            query: &query,
            chat_id: filters.chat_id,
            author_id: id(filters.author_id, "author_id")?,
            before: id(filters.before, "before")?,
            limit: astral_common::paging::page_size(filters.limit, DEFAULT_RESULTS, MAX_RESULTS)?,
        };
        let messages = self.store.search(&search).await?;
        let full = i64::try_from(messages.len()).is_ok_and(|found| found == search.limit);
        let next_before = messages.last().filter(|_| full).map(|last| last.id);
        // Only what the message says now, as these rules read it: an index may hold words
        // cut by an earlier version of them (until its messages are indexed again).
        let found = messages
            .into_iter()
            .filter(|message| !message.deleted && query.matches(&message.content))
            .map(|message| Found {
                highlights: query.highlights(&message.content),
                message,
            })
            .collect();
        Ok(SearchPage { found, next_before })
    }

    /// Moves the actor's read marker in a chat forward to `seq`.
    pub async fn mark_read(&self, actor: i64, chat_id: &str, seq: i64) -> Result<()> {
        if seq < 0 {
            return Err(Error::invalid("seq cannot be negative"));
        }
        self.membership(actor, chat_id).await?;
        self.store
            .mark_read(chat_id, actor, seq, |read| {
                events::read_updated(chat_id, actor, read)
            })
            .await
    }

    /// The actor's messaging settings.
    pub async fn settings(&self, actor: i64) -> Result<Settings> {
        self.store.settings_of(actor).await
    }

    /// Changes the actor's messaging settings (what is `None` stays as it is).
    pub async fn update_settings(
        &self,
        actor: i64,
        share_read_receipts: Option<bool>,
    ) -> Result<Settings> {
        let Some(share) = share_read_receipts else {
            return self.store.settings_of(actor).await;
        };
        let changed = Settings {
            share_read_receipts: share,
        };
        self.store
            .set_share_read_receipts(actor, share, events::settings_updated(actor, &changed))
            .await
    }

    /// The actor is typing: `typing.started` for the chat's subscribers, rate-limited.
    /// Refused where sending is (a read-only direct chat).
    pub async fn typing(&self, actor: i64, chat_id: &str) -> Result<()> {
        let members = self.writable(actor, chat_id).await?;
        if self.typing.allow(actor, chat_id)
            && let Some(user) = members.users.iter().find(|m| m.id == actor)
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

    /// The actor's own message, unless it is deleted.
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
}

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

fn message_not_found() -> Error {
    Error::not_found("no such message")
}

/// The members named with `@username` in `content`.
fn mentions(content: &str, members: &[User]) -> Vec<i64> {
    mentioned_usernames(content)
        .iter()
        .filter_map(|name| members.iter().find(|m| m.username == *name).map(|m| m.id))
        .collect()
}
