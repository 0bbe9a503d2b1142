//! New messages: each stored under its chat's next number if its author is a member, with
//! its event and the pushes it makes (one by one, or a batch in one transaction: on PostgreSQL in one statement,
//! `batches.rs`).

use super::attachments::claim;
use super::chats::member_ids_in;
use super::push::queue_pushes;
use super::{Inserted, MessageEvent, NewMessage, Numbers, Store, Tx, batches, mentions_text};
use crate::model::Message;
use crate::search::index_words;
use astral_common::db::is_unique_violation;
use astral_common::outbox::Outgoing;
use astral_common::{Error, Result};

impl Store {
    /// Stores one message under the chat's next number if its author is a member, with its
    /// event.
    pub async fn insert_message(
        &self,
        new: &NewMessage<'_>,
        event: MessageEvent<'_>,
    ) -> Result<Inserted> {
        self.insert_alone(new, event).await
    }

    /// Stores messages, each under its chat's next number if its author is a member, with
    /// its event: one outcome per message, in order. Several go in one transaction (on
    /// PostgreSQL in one statement, see `batches.rs`); if that fails as a whole (a retried
    /// nonce meeting its first copy, say), each is stored in its own, so one send's error
    /// is never another's.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "insert_messages", count = batch.len()))]
    pub async fn insert_messages(
        &self,
        batch: &[NewMessage<'_>],
        event: MessageEvent<'_>,
    ) -> Vec<Result<Inserted>> {
        if batch.len() > 1 {
            match self.insert_together(batch, event).await {
                Ok(outcomes) => return outcomes,
                Err(error) => {
                    tracing::debug!(%error, size = batch.len(), "a batch failed; storing its messages one by one");
                }
            }
        }
        let mut outcomes = Vec::with_capacity(batch.len());
        for new in batch {
            outcomes.push(self.insert_alone(new, event).await);
        }
        outcomes
    }

    async fn insert_together(
        &self,
        batch: &[NewMessage<'_>],
        event: MessageEvent<'_>,
    ) -> Result<Vec<Result<Inserted>>> {
        let mut tx = self.pool.begin().await?;
        let numbers = if self.postgres {
            batches::insert_many(&mut tx, batch).await?
        } else {
            // SQLite has one writer: the gain is one transaction (one commit) for all.
            let mut numbers = Vec::with_capacity(batch.len());
            for new in batch {
                numbers.push(insert_in(&mut tx, new).await?);
            }
            numbers
        };
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut events = Vec::with_capacity(batch.len());
        let mut stored_ids = Vec::with_capacity(batch.len());
        for (new, numbers) in batch.iter().zip(numbers) {
            outcomes.push(Ok(match numbers {
                None => Inserted::NotAMember,
                Some(numbers) => {
                    let Some((inserted, outgoing)) = stored(&mut tx, new, numbers, event).await?
                    else {
                        // Stored one by one, this send alone is refused.
                        return Err(Error::invalid("a file cannot be attached"));
                    };
                    events.push(outgoing);
                    stored_ids.push(new.id);
                    inserted
                }
            }));
        }
        let queued = queue_pushes(&mut tx, &stored_ids, batch[0].now_ms).await?;
        self.outbox.commit(tx, events).await?;
        self.pushes_queued(queued);
        Ok(outcomes)
    }

    async fn insert_alone(
        &self,
        new: &NewMessage<'_>,
        event: MessageEvent<'_>,
    ) -> Result<Inserted> {
        let mut tx = self.pool.begin().await?;
        let numbers = if self.postgres {
            batches::insert_one(&mut tx, new).await
        } else {
            insert_in(&mut tx, new).await
        };
        let numbers = match numbers {
            Err(error) if is_unique_violation(&error) && new.nonce.is_some() => {
                return Ok(Inserted::NonceTaken);
            }
            other => match other? {
                Some(numbers) => numbers,
                None => return Ok(Inserted::NotAMember),
            },
        };
        let Some((inserted, outgoing)) = stored(&mut tx, new, numbers, event).await? else {
            // Rolled back: nothing of the message is kept.
            return Ok(Inserted::AttachmentsUnavailable);
        };
        let queued = queue_pushes(&mut tx, &[new.id], new.now_ms).await?;
        self.outbox.commit(tx, vec![outgoing]).await?;
        self.pushes_queued(queued);
        Ok(inserted)
    }
}

/// A message just stored under `numbers`, with its files attached, and its event for the
/// chat's members then: the sender's list unless the members changed before the message was
/// stored (then read again, under the same lock). `None` when a file could not be attached.
async fn stored(
    tx: &mut Tx,
    new: &NewMessage<'_>,
    numbers: Numbers,
    event: MessageEvent<'_>,
) -> Result<Option<(Inserted, Outgoing)>> {
    let mut message = Message {
        id: new.id,
        chat_id: new.chat_id.to_owned(),
        seq: numbers.seq,
        version: numbers.seq,
        author_id: new.author_id,
        content: new.content.to_owned(),
        nonce: new.nonce.map(str::to_owned),
        created_at_ms: new.now_ms,
        edited_at_ms: None,
        deleted: false,
        reply_to: new.reply_to.cloned(),
        mentions: new.mentions.to_vec(),
        reactions: Vec::new(),
        system: None,
        attachments: Vec::new(),
    };
    if !new.attachment_ids.is_empty() {
        match claim(tx, &message, new.attachment_ids).await? {
            Some(attachments) => message.attachments = attachments,
            None => return Ok(None),
        }
    }
    let outgoing = if numbers.members_version == new.recipients_version {
        event(&message, new.recipients)
    } else {
        event(&message, &member_ids_in(tx, new.chat_id).await?)
    };
    let inserted = Inserted::Stored {
        message: Box::new(message),
        members_version: numbers.members_version,
    };
    Ok(Some((inserted, outgoing)))
}

/// Stores one message if its author is a member (SQLite); `None` when the author is not a
/// member.
async fn insert_in(
    tx: &mut Tx,
    new: &NewMessage<'_>,
) -> std::result::Result<Option<Numbers>, sqlx::Error> {
    let next: Option<Numbers> = sqlx::query_as(
        "UPDATE chats SET last_seq = last_seq + 1, last_activity_ms = $1 \
         WHERE id = $2 AND EXISTS (SELECT 1 FROM chat_members WHERE chat_id = $2 AND user_id = $3) \
         RETURNING last_seq AS seq, members_version",
    )
    .bind(new.now_ms)
    .bind(new.chat_id)
    .bind(new.author_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(numbers) = next else {
        return Ok(None);
    };
    sqlx::query(
        "INSERT INTO messages (id, chat_id, seq, version, author_id, content, nonce, created_at_ms, reply_to_id, mentions, search_words) \
         VALUES ($1, $2, $3, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(new.id)
    .bind(new.chat_id)
    .bind(numbers.seq)
    .bind(new.author_id)
    .bind(new.content)
    .bind(new.nonce)
    .bind(new.now_ms)
    .bind(new.reply_to.map(|reply| reply.id))
    .bind(mentions_text(new.mentions))
    .bind(index_words(new.chat_id, new.content))
    .execute(&mut **tx)
    .await?;
    Ok(Some(numbers))
}
