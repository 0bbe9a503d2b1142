//! An identified session's loop: the client's frames, the bus events (in order, once each,
//! gaps filled), the heartbeat deadline, a queue that overflowed, and the gateway draining.

use super::backend::Backend;
use super::frames::{ClientFrame, CloseCode, FrameError, ServerFrame, Subscribed, Unsubscribed};
use super::session::{Closing, Identified, Identity, ReadError, Reidentify, Session, Step};
use crate::delivery::Delivery;
use crate::error::{ApiError, ErrorCode};
use crate::hub::Subscriptions;
use crate::limits::{Admit, FrameRate};
use astral_proto::events::event::Kind;
use astral_proto::subjects;
use futures::{Sink, Stream};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// Changes fetched per call when filling a gap in a chat's events, and the most pages
/// fetched before the client is told to catch up by itself.
const FILL_PAGE: i64 = 100;
const MAX_FILL_PAGES: usize = 10;

impl<W, R, B> Session<W, R, B>
where
    W: Sink<Message> + Unpin + Send,
    R: Stream<Item = Result<Message, ReadError>> + Unpin + Send,
    B: Backend,
{
    /// Serves an identified connection until it closes, or until a cookie-identified one
    /// identifies as another session.
    pub(super) async fn serve(&mut self, identified: Identified) -> Step<Reidentify> {
        let Identified {
            mut identity,
            mut subscriptions,
            queue,
        } = identified;
        let mut draining = std::pin::pin!(self.connections.draining());
        let mut bus_connections = self.hub.bus_connections();
        bus_connections.mark_unchanged();
        let mut rate = FrameRate::default();
        let timeout = self.settings.heartbeat * 2;
        let mut deadline = Instant::now() + timeout;
        loop {
            // One timer for both: the heartbeat deadline, and the next gap to fetch.
            let wake = self
                .order
                .next_fetch()
                .map_or(deadline, |fetch| fetch.min(deadline));
            tokio::select! {
                frame = self.next_message() => {
                    let frame = match frame? {
                        None => continue,
                        Some(Err(error @ (FrameError::Malformed | FrameError::Binary))) => {
                            self.send_error(error.code(), error.message()).await?;
                            continue;
                        }
                        Some(frame) => frame,
                    };
                    deadline = Instant::now() + timeout;
                    match rate.admit(Instant::now()) {
                        Admit::Yes => {
                            let handled = Box::pin(self.handle(&mut identity, frame, &mut subscriptions));
                            if let Some(reidentify) = handled.await? {
                                return Ok(reidentify);
                            }
                        }
                        Admit::Refuse => self.send_error(ErrorCode::RateLimited, "too many frames: slow down").await?,
                        Admit::Close => return Err(Closing::Close(CloseCode::TooFast)),
                    }
                }
                event = queue.recv() => {
                    if let Some(Kind::ChatDeleted(deleted)) = &event.event.kind {
                        // Left, removed, or the chat is gone: its events are no longer theirs.
                        subscriptions.leave(&subjects::chat(&deleted.chat_id));
                        self.order.forget(&deleted.chat_id);
                    }
                    let ready = self.order.accept(event, Instant::now());
                    // A client that stops reading blocks this send once the socket's buffers are
                    // full; its queue then overflows, which ends the wait.
                    tokio::select! {
                        delivered = Box::pin(self.deliver_all(&identity, ready)) => delivered?,
                        () = queue.overflowed() => return Err(Closing::Close(CloseCode::TooSlow)),
                    }
                }
                () = tokio::time::sleep_until(wake) => {
                    if Instant::now() >= deadline {
                        return Err(Closing::Close(CloseCode::HeartbeatTimeout));
                    }
                    Box::pin(self.fill_gaps(&identity)).await?;
                }
                Ok(()) = bus_connections.changed() => {
                    // The bus reconnected: events published meanwhile never reached us.
                    self.send(ServerFrame::CatchUp).await?;
                }
                () = queue.overflowed() => return Err(Closing::Close(CloseCode::TooSlow)),
                () = &mut draining => {
                    self.send(ServerFrame::Reconnect).await?;
                    return Err(Closing::Close(CloseCode::GoingAway));
                }
            }
        }
    }

    /// Answers one client frame; `Some` when the connection is to start over as another
    /// session.
    async fn handle(
        &mut self,
        identity: &mut Identity,
        frame: Result<ClientFrame, FrameError>,
        subscriptions: &mut Subscriptions,
    ) -> Step<Option<Reidentify>> {
        let frame = match frame {
            Ok(frame) => frame,
            Err(error) => {
                self.send_error(error.code(), error.message()).await?;
                return Ok(None);
            }
        };
        match frame {
            ClientFrame::Heartbeat => self.send(ServerFrame::HeartbeatAck).await?,
            ClientFrame::Identify { token } => return self.identify_again(identity, token).await,
            ClientFrame::Subscribe { chat_id } => {
                self.subscribe(identity, chat_id, subscriptions).await?;
            }
            ClientFrame::Unsubscribe { chat_id } => {
                subscriptions.leave(&subjects::chat(&chat_id));
                self.order.forget(&chat_id);
                let d = Unsubscribed { chat_id };
                self.send(ServerFrame::Unsubscribed { d }).await?;
            }
            ClientFrame::Presence { idle } => identity.slot.set_idle(idle),
            ClientFrame::Typing { chat_id } => {
                // Membership and the 3-second limit are the messaging service's to check.
                if let Err(status) = self.backend.typing(chat_id, &identity.token).await {
                    self.send_api_error(ApiError::from(status)).await?;
                }
            }
        }
        Ok(None)
    }

    /// Joins a chat's events, before the chat is read: a change made meanwhile is either in
    /// what was read or among the events, which start after the version read.
    async fn subscribe(
        &mut self,
        identity: &Identity,
        chat_id: String,
        subscriptions: &mut Subscriptions,
    ) -> Step<()> {
        let subject = subjects::chat(&chat_id);
        let joined_now = !subscriptions.contains(&subject);
        if let Err(error) = subscriptions.join(subject.clone()).await {
            tracing::error!(error = format!("{error:#}"), "cannot subscribe");
            return Err(Closing::Close(CloseCode::CannotServe(
                "event bus unavailable",
            )));
        }
        let chat = match self.backend.chat(chat_id.clone(), &identity.token).await {
            Ok(chat) => chat,
            Err(status) => {
                if joined_now {
                    subscriptions.leave(&subject);
                }
                return self.send_api_error(ApiError::from(status)).await;
            }
        };
        if joined_now {
            self.order.track(&chat_id, chat.last_seq);
        }
        let d = Subscribed {
            chat_id,
            version: chat.last_seq,
        };
        self.send(ServerFrame::Subscribed { d }).await
    }

    /// An `identify` on an identified connection. A token of the connection's own session
    /// (refreshed before the last one expired) replaces the one it passes on to the
    /// services, unanswered. A connection only the cookie identified takes its first
    /// `identify` as if it had come before the cookie was used: another session starts the
    /// connection over as that one (a new `ready`), a bad token closes it (4001). Once the
    /// client has identified, a token of another session is refused and changes nothing.
    async fn identify_again(
        &mut self,
        identity: &mut Identity,
        token: String,
    ) -> Step<Option<Reidentify>> {
        let same_session = |claims: &astral_common::tokens::Claims| {
            claims.sub == identity.user_id && claims.sid == identity.session_id
        };
        match self.backend.authenticate(&token).await {
            Ok(claims) if same_session(&claims) => {
                identity.token = token;
                identity.explicit = true;
            }
            Ok(claims) if !identity.explicit => return Ok(Some(Reidentify { claims, token })),
            Ok(_) => {
                let message = "a connection keeps its session: identify with a token of it";
                self.send_error(ErrorCode::InvalidArgument, message).await?;
            }
            Err(error) if !identity.explicit => return Err(self.refuse(&error).await),
            Err(error) => self.send_api_error(error).await?,
        }
        Ok(None)
    }

    async fn deliver_all(&mut self, identity: &Identity, events: Vec<Arc<Delivery>>) -> Step<()> {
        for event in events {
            self.deliver(identity, event).await?;
        }
        Ok(())
    }

    /// Fetches the changes missing before the early events of each chat whose wait is over,
    /// and delivers them in order. A chat that cannot be fetched (after a few tries), or that
    /// lacks more than [`MAX_FILL_PAGES`] pages, gets what waited, and the client is told to
    /// catch up.
    async fn fill_gaps(&mut self, identity: &Identity) -> Step<()> {
        for (chat_id, mut after) in self.order.due(Instant::now()) {
            let mut pages = 0;
            loop {
                pages += 1;
                let fetched = self
                    .backend
                    .changes(chat_id.clone(), after, FILL_PAGE, &identity.token)
                    .await;
                metrics::counter!("astral_gaps_filled_total").increment(1);
                let messages = match fetched {
                    Ok(messages) => messages,
                    Err(status) => {
                        tracing::warn!(%status, %chat_id, "cannot fetch the missing changes of a chat");
                        if let Some(waited) = self.order.fetch_failed(&chat_id, Instant::now()) {
                            // Told first: what follows skips the changes it could not fetch.
                            self.send(ServerFrame::CatchUp).await?;
                            self.deliver_all(identity, waited).await?;
                        }
                        break;
                    }
                };
                let complete = messages.len() < FILL_PAGE as usize;
                if let Some(last) = messages.last() {
                    after = last.version;
                }
                let give_up = !complete && pages >= MAX_FILL_PAGES;
                let ready = self.order.filled(&chat_id, messages, complete || give_up);
                if give_up {
                    self.send(ServerFrame::CatchUp).await?;
                }
                self.deliver_all(identity, ready).await?;
                if complete || give_up {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Sends an event (its frame, rendered once for every connection) unless this connection
    /// has already had it; `session.ended` for this connection's own session closes it.
    async fn deliver(&mut self, identity: &Identity, event: Arc<Delivery>) -> Step<()> {
        let Some(frame) = &event.frame else {
            return Ok(());
        };
        if !self.seen.first_time(&event.id) {
            return Ok(());
        }
        match &event.event.kind {
            // Read receipts are a trade: only those who show theirs see others'.
            Some(Kind::ReadUpdated(_)) if !identity.sees_read_receipts.load(Relaxed) => {
                return Ok(());
            }
            Some(Kind::SettingsUpdated(settings)) => {
                if let Some(share) = settings.share_read_receipts {
                    identity.sees_read_receipts.store(share, Relaxed);
                }
            }
            _ => {}
        }
        if let Some(Kind::SessionEnded(ended)) = &event.event.kind
            && event.first_to_note()
        {
            // The same news as on `sessions.revoked`; whichever comes first takes effect
            // (once for the gateway, by the first connection to deliver it).
            self.backend
                .revoke(ended.session_id.clone(), ended.revoked_at_ms);
        }
        self.send_text(frame.clone()).await?;
        metrics::counter!("astral_events_sent_total").increment(1);
        match &event.event.kind {
            Some(Kind::SessionEnded(ended)) if ended.session_id == identity.session_id => {
                Err(Closing::Close(CloseCode::Unauthenticated("session ended")))
            }
            _ => Ok(()),
        }
    }
}
