//! The social service's events, on the users' subjects: built here and written to the
//! outbox in the change's transaction (`store/`), which publishes them after the commit.

use crate::convert;
use crate::model::{FriendRequest, Settings, Shown};
use crate::store::{Blocked, Sent};
use astral_common::outbox::Outgoing;
use astral_proto::events::{
    FriendRemoved, FriendRequestEvent, PresenceUpdated, SettingsUpdated, event::Kind,
};
use astral_proto::subjects;

/// What sending a request did: a new request, or theirs accepted.
pub fn sent(sent: &Sent) -> Vec<Outgoing> {
    match sent {
        Sent::Requested(request) => vec![to_both(request, Kind::FriendRequestCreated)],
        Sent::AcceptedTheirs(request) => vec![accepted(request)],
        _ => Vec::new(),
    }
}

/// Also on `friendships`: two users became friends.
pub fn accepted(request: &FriendRequest) -> Outgoing {
    let mut event = to_both(request, Kind::FriendRequestAccepted);
    event.also_on(subjects::FRIENDSHIPS);
    event
}

pub fn declined(request: &FriendRequest) -> Outgoing {
    to_both(request, Kind::FriendRequestDeclined)
}

pub fn cancelled(request: &FriendRequest) -> Outgoing {
    to_both(request, Kind::FriendRequestCancelled)
}

/// `friend.removed` to each side, naming the friend they lost (the first also on
/// `friendships`).
pub fn friend_removed(a: i64, b: i64) -> Vec<Outgoing> {
    let mut events: Vec<Outgoing> = [(a, b), (b, a)]
        .into_iter()
        .map(|(user, friend)| {
            let kind = Kind::FriendRemoved(FriendRemoved {
                user_id: user.to_string(),
                friend_id: friend.to_string(),
            });
            Outgoing::new(vec![subjects::user(&user.to_string())], kind)
        })
        .collect();
    events[0].also_on(subjects::FRIENDSHIPS);
    events
}

/// What `blocker`'s block undid: the friendship, and the requests between them (declined
/// if it was the blocker's to answer, cancelled otherwise).
pub fn blocked(blocker: i64, blocked: i64, undone: &Blocked) -> Vec<Outgoing> {
    let mut events = if undone.unfriended {
        friend_removed(blocker, blocked)
    } else {
        Vec::new()
    };
    for request in &undone.requests {
        events.push(if request.to.id == blocker {
            declined(request)
        } else {
            cancelled(request)
        });
    }
    events
}

fn to_both(request: &FriendRequest, kind: fn(FriendRequestEvent) -> Kind) -> Outgoing {
    let event = kind(FriendRequestEvent {
        request: Some(convert::friend_request(request)),
    });
    let subjects = vec![
        subjects::user(&request.from.id.to_string()),
        subjects::user(&request.to.id.to_string()),
    ];
    Outgoing::new(subjects, event)
}

/// `presence.updated` on each friend's `user.<id>`: what they now see of the user.
pub fn presence_updated(shown: &Shown) -> Outgoing {
    let kind = Kind::PresenceUpdated(PresenceUpdated {
        user_id: shown.user.to_string(),
        status: shown.presence.status.as_str().to_owned(),
        last_seen_at_ms: shown.presence.last_seen_at_ms,
    });
    let subjects = shown
        .friends
        .iter()
        .map(|friend| subjects::user(&friend.to_string()))
        .collect();
    Outgoing::new(subjects, kind)
}

/// The user changed their settings: `settings.updated` to their other devices, and what
/// their friends now see of them, if that changed.
pub fn settings_updated(user: i64, settings: &Settings, shown: Option<&Shown>) -> Vec<Outgoing> {
    let kind = Kind::SettingsUpdated(SettingsUpdated {
        user_id: user.to_string(),
        share_presence: Some(settings.share_presence),
        share_read_receipts: None,
    });
    let mut events = vec![Outgoing::new(vec![subjects::user(&user.to_string())], kind)];
    events.extend(shown.map(presence_updated));
    events
}
