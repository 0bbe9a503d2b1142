//! Asking social whether users are friends, with `CheckFriendships`: many pairs in one call
//! (a batch of sends, a chat list), each answer as fresh as a call of its own would be.
//!
//! While social cannot answer, the last word messaging has about a pair decides instead
//! (`Known`): what social last answered about it, or what the latest friendship event on
//! `friendships` said, whichever came later — so friends keep writing to each other, and an
//! unfriend or block messaging has seen refuses every later message. A pair it knows nothing
//! about (or only from over an hour ago) waits for social (503).

use astral_common::grpc::Channel;
use astral_common::{Error, EventBus, Result};
use astral_proto::events::{Event, event::Kind};
use astral_proto::social::social_service_client::SocialServiceClient;
use astral_proto::social::{CheckFriendshipsRequest, UserPair};
use futures::StreamExt as _;
use prost::Message as _;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The most pairs social answers in one call.
const MAX_PAIRS: usize = 256;
/// How long one call may take: the direct sends of this replica wait for it, so a replica
/// that hangs is given up on quickly (and the call tried once more, elsewhere).
const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Pairs remembered; past this the memory is emptied of its oldest half.
const MAX_KNOWN: usize = 100_000;
/// How long what messaging learned about a pair stands in for social.
const KNOWN_FOR: Duration = Duration::from_secs(60 * 60);

#[derive(Clone)]
pub struct Friendships {
    social: SocialServiceClient<Channel>,
    known: Arc<Known>,
}

impl Friendships {
    /// Asks `social`, and follows the friendship events on `bus`.
    pub fn new(social: SocialServiceClient<Channel>, bus: EventBus) -> Self {
        let known = Arc::new(Known::default());
        tokio::spawn(follow(bus, Arc::downgrade(&known)));
        Self { social, known }
    }

    /// Whether each pair are friends, in order: social's answer, or while social cannot
    /// answer, what messaging last learned (an error if it knows nothing recent of a pair).
    pub async fn check(
        &self,
        pairs: &[(i64, i64)],
    ) -> std::result::Result<Vec<bool>, tonic::Status> {
        let mut friends = Vec::with_capacity(pairs.len());
        for chunk in pairs.chunks(MAX_PAIRS) {
            let asked_at = Instant::now();
            match self.ask(chunk).await {
                Ok(answers) => {
                    let facts = chunk.iter().copied().zip(answers.iter().copied());
                    self.known.learn(facts, asked_at);
                    friends.extend(answers);
                }
                Err(status) if transient(&status) => {
                    let remembered = self.known.recall(chunk).ok_or(status)?;
                    metrics::counter!("astral_friendship_checks_remembered_total")
                        .increment(chunk.len() as u64);
                    friends.extend(remembered);
                }
                Err(status) => return Err(status),
            }
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
                .map(|(a, b)| UserPair {
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
        if matches!(&answer, Err(status) if transient(status)) {
            answer = social.check_friendships(request()).await;
        }
        let friends = answer?.into_inner().friends;
        if friends.len() != pairs.len() {
            return Err(tonic::Status::internal("social answered for other pairs"));
        }
        Ok(friends)
    }
}

/// Social could not answer (down, unreachable, too slow).
fn transient(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
    )
}

/// What messaging last learned about pairs of users, and when.
#[derive(Default)]
struct Known {
    pairs: Mutex<HashMap<(i64, i64), (bool, Instant)>>,
}

impl Known {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(i64, i64), (bool, Instant)>> {
        self.pairs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Learns what was true at `as_of`, unless something learned since says otherwise (an
    /// event that came while the answer to an earlier question was on its way).
    fn learn(&self, facts: impl IntoIterator<Item = ((i64, i64), bool)>, as_of: Instant) {
        let mut pairs = self.lock();
        for ((a, b), friends) in facts {
            let pair = ordered(a, b);
            if pairs.get(&pair).is_none_or(|(_, at)| *at <= as_of) {
                pairs.insert(pair, (friends, as_of));
            }
        }
        if pairs.len() > MAX_KNOWN {
            let mut ages: Vec<Instant> = pairs.values().map(|(_, at)| *at).collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 2];
            pairs.retain(|_, (_, at)| *at > cut);
        }
    }

    /// What is known of every pair, or `None` if a pair is unknown or known too long ago.
    fn recall(&self, asked: &[(i64, i64)]) -> Option<Vec<bool>> {
        let pairs = self.lock();
        asked
            .iter()
            .map(|(a, b)| {
                pairs
                    .get(&ordered(*a, *b))
                    .filter(|(_, at)| at.elapsed() < KNOWN_FOR)
                    .map(|(friends, _)| *friends)
            })
            .collect()
    }

    /// The bus reconnected: events may have been missed meanwhile, so a friendship is no
    /// longer taken on trust (an ended one still refuses).
    fn doubt_friendships(&self) {
        self.lock().retain(|_, (friends, _)| !*friends);
    }
}

fn ordered(a: i64, b: i64) -> (i64, i64) {
    if a < b { (a, b) } else { (b, a) }
}

/// Learns every friendship made or ended from `friendships`, until the memory is dropped.
async fn follow(bus: EventBus, known: std::sync::Weak<Known>) {
    let mut connections = bus.connections();
    connections.mark_unchanged();
    let mut events = loop {
        match bus
            .subscribe(astral_proto::subjects::FRIENDSHIPS.to_owned())
            .await
        {
            Ok(events) => break events,
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "cannot follow friendships; trying again"
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    loop {
        tokio::select! {
            delivery = events.next() => {
                let Some(delivery) = delivery else { return };
                let Some(known) = known.upgrade() else { return };
                let Ok(event) = Event::decode(delivery.payload) else { continue };
                if let Some(fact) = friendship(&event) {
                    known.learn([fact], Instant::now());
                    metrics::counter!("astral_friendship_events_total").increment(1);
                }
            }
            Ok(()) = connections.changed() => {
                let Some(known) = known.upgrade() else { return };
                known.doubt_friendships();
            }
        }
    }
}

/// The pair an event is about, and whether they are friends after it.
fn friendship(event: &Event) -> Option<((i64, i64), bool)> {
    let id = |text: &str| text.parse::<i64>().ok();
    match event.kind.as_ref()? {
        Kind::FriendRequestAccepted(accepted) => {
            let request = accepted.request.as_ref()?;
            let (from, to) = (request.from.as_ref()?, request.to.as_ref()?);
            Some(((id(&from.id)?, id(&to.id)?), true))
        }
        Kind::FriendRemoved(removed) => {
            Some(((id(&removed.user_id)?, id(&removed.friend_id)?), false))
        }
        _ => None,
    }
}

/// A failed friendship check, as the caller's error.
pub fn downstream(status: tonic::Status) -> Error {
    Error::downstream(status, "ask social whether two users are friends")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_word_on_a_pair_decides_and_an_answer_counts_from_when_it_was_asked() {
        let known = Known::default();
        let asked = Instant::now();
        assert_eq!(known.recall(&[(1, 2)]), None, "nothing known");
        // An unfriend event arrives while an answer asked before it is on its way.
        known.learn([((2, 1), false)], Instant::now());
        known.learn([((1, 2), true)], asked);
        assert_eq!(
            known.recall(&[(1, 2)]),
            Some(vec![false]),
            "the event is newer"
        );
        known.learn([((1, 2), true)], Instant::now());
        assert_eq!(known.recall(&[(2, 1)]), Some(vec![true]), "friends again");
        assert_eq!(known.recall(&[(1, 2), (3, 4)]), None, "one pair unknown");
    }

    #[test]
    fn after_the_bus_reconnects_only_ended_friendships_are_remembered() {
        let known = Known::default();
        known.learn([((1, 2), true), ((3, 4), false)], Instant::now());
        known.doubt_friendships();
        assert_eq!(known.recall(&[(1, 2)]), None);
        assert_eq!(known.recall(&[(3, 4)]), Some(vec![false]));
    }

    #[test]
    fn the_memory_is_bounded() {
        let known = Known::default();
        let facts = (0..(MAX_KNOWN as i64 + 1)).map(|n| ((n, n + 1_000_000), true));
        known.learn(facts, Instant::now());
        assert!(known.lock().len() <= MAX_KNOWN);
    }
}
