//! Sends, gathered in batches (`astral_common::batch`): while a batch is on its way, the
//! sends that arrive wait, and the next free worker takes all of them (up to [`MAX_BATCH`]):
//! one `CheckFriendships` call to social for those in direct chats, then one statement for
//! those allowed (`Store::insert_messages`). One wait in line and two round trips for the
//! whole batch, instead of a call and a statement each. Nobody waits for a batch to fill:
//! a send that finds a worker free goes at once, alone.

use crate::friendships::Friendships;
use crate::model::Preview;
use crate::store::{Inserted, NewMessage, Store};
use astral_common::batch::Coalescer;
use astral_common::{Error, Result};

/// The most sends in one batch.
const MAX_BATCH: usize = 32;
/// Batches on their way at once. Few: while they are, the next sends gather into one batch,
/// and fewer, bigger batches cost less than many small ones (docs/benchmarks.md: 2 took
/// more and answered sooner than 4 or 8).
const WORKERS: usize = 2;

/// A message ready to store; `friends` names the two members of a direct chat, who must
/// still be friends when it is stored.
pub struct QueuedSend {
    pub id: i64,
    pub chat_id: String,
    pub author_id: i64,
    pub content: String,
    pub nonce: Option<String>,
    pub reply_to: Option<Preview>,
    pub mentions: Vec<i64>,
    pub attachment_ids: Vec<i64>,
    pub now_ms: i64,
    pub friends: Option<(i64, i64)>,
    /// The chat's members as the sender read them, and its `members_version` then.
    pub recipients: Vec<i64>,
    pub recipients_version: i64,
}

impl QueuedSend {
    fn message(&self) -> NewMessage<'_> {
        NewMessage {
            id: self.id,
            chat_id: &self.chat_id,
            author_id: self.author_id,
            content: &self.content,
            nonce: self.nonce.as_deref(),
            reply_to: self.reply_to.as_ref(),
            mentions: &self.mentions,
            attachment_ids: &self.attachment_ids,
            now_ms: self.now_ms,
            recipients: &self.recipients,
            recipients_version: self.recipients_version,
        }
    }
}

pub struct Sends(Coalescer<QueuedSend, Result<Inserted>>);

impl Sends {
    pub fn new(store: Store, friendships: Friendships) -> Self {
        Self(Coalescer::start("send", WORKERS, MAX_BATCH, move |sends| {
            send_all(store.clone(), friendships.clone(), sends)
        }))
    }

    /// Stores one message and its event (with whichever others are waiting): refused as
    /// read-only if its direct chat's two members are no longer friends.
    pub async fn send(&self, send: QueuedSend) -> Result<Inserted> {
        self.0
            .call(send)
            .await
            .unwrap_or_else(|| Err(anyhow::anyhow!("the send workers stopped").into()))
    }
}

async fn send_all(
    store: Store,
    friendships: Friendships,
    sends: Vec<QueuedSend>,
) -> Vec<Result<Inserted>> {
    let pairs: Vec<(i64, i64)> = sends.iter().filter_map(|send| send.friends).collect();
    let mut answers = if pairs.is_empty() {
        Ok(Vec::new().into_iter())
    } else {
        friendships.check(&pairs).await.map(Vec::into_iter)
    };
    // Whether each send may be stored; the reason if not.
    let refusals: Vec<Option<Error>> = sends
        .iter()
        .map(|send| {
            send.friends?;
            match &mut answers {
                Ok(friends) => match friends.next() {
                    Some(true) => None,
                    _ => Some(crate::domain::read_only()),
                },
                Err(status) => Some(crate::friendships::downstream(status.clone())),
            }
        })
        .collect();
    let allowed: Vec<NewMessage<'_>> = sends
        .iter()
        .zip(&refusals)
        .filter(|(_, refusal)| refusal.is_none())
        .map(|(send, _)| send.message())
        .collect();
    let mut stored = store
        .insert_messages(&allowed, &crate::events::message_created)
        .await
        .into_iter();
    refusals
        .into_iter()
        .map(|refusal| match refusal {
            Some(refusal) => Err(refusal),
            None => stored
                .next()
                .unwrap_or_else(|| Err(anyhow::anyhow!("no outcome for a message").into())),
        })
        .collect()
}
