//! Reports this gateway's users' presence to the social service: the changes its
//! connections make (a user's first connection, their last one closing — after a grace of
//! 5 s, in which a reloading page comes back unnoticed — all of them idle), at most one
//! report every 200 ms, and every 15 s a renewal of its lease on all of them. A
//! gateway that dies stops renewing, and social ends its users' presence when the lease
//! runs out (45 s; its users are offline within a minute); one that stops cleanly says so.

use crate::connections::Connections;
use astral_common::grpc::Channel;
use astral_proto::social::{
    PresenceChange, ReportPresenceRequest, social_service_client::SocialServiceClient,
};
use std::time::Duration;
use tokio::time::Instant;

/// Changes gathered into one report; a burst waits this long to travel together.
const GATHER: Duration = Duration::from_millis(200);
/// How often the lease on every user is renewed (social holds it 45 s).
const RENEW_EVERY: Duration = Duration::from_secs(15);
/// After a failed report, how long until the next try.
const RETRY: Duration = Duration::from_secs(1);
/// The most changes one report carries (social takes at most 1000).
const CHANGES_PER_REPORT: usize = 500;
/// How long a stopping gateway waits for social to hear it.
const GOODBYE_WAIT: Duration = Duration::from_secs(2);

/// The running reporter; it stops when dropped.
pub struct PresenceReporter {
    task: tokio::task::JoinHandle<()>,
    social: SocialServiceClient<Channel>,
    gateway_id: String,
}

impl PresenceReporter {
    /// Reports for `connections` as a gateway named afresh for this process.
    pub fn start(connections: Connections, social: SocialServiceClient<Channel>) -> Self {
        let gateway_id = format!("{:032x}", rand::random::<u128>());
        let task = tokio::spawn(report(connections, social.clone(), gateway_id.clone()));
        Self {
            task,
            social,
            gateway_id,
        }
    }

    /// The gateway is stopping (its connections are closed): its users are gone from it.
    pub async fn goodbye(self) {
        self.task.abort();
        let request = ReportPresenceRequest {
            gateway_id: self.gateway_id.clone(),
            closing: true,
            ..Default::default()
        };
        let mut social = self.social.clone();
        match tokio::time::timeout(GOODBYE_WAIT, social.report_presence(request)).await {
            Ok(Ok(_)) => {}
            // Social ends them when the lease runs out.
            Ok(Err(status)) => tracing::warn!(%status, "could not tell social the gateway stopped"),
            Err(_) => tracing::warn!("social did not hear that the gateway stopped in time"),
        }
    }
}

impl Drop for PresenceReporter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn report(
    connections: Connections,
    mut social: SocialServiceClient<Channel>,
    gateway_id: String,
) {
    let mut renew_at = Instant::now() + RENEW_EVERY;
    loop {
        // An offline held in its grace falls due by itself, without a new change.
        let held_until = connections.next_change_due().unwrap_or(renew_at);
        tokio::select! {
            () = connections.presence_changed() => tokio::time::sleep(GATHER).await,
            () = tokio::time::sleep_until(renew_at.min(held_until)) => {}
        }
        let renew = Instant::now() >= renew_at;
        let changes = connections.take_changes(Instant::now());
        if changes.is_empty() && !renew {
            continue;
        }
        match send(&mut social, &gateway_id, &changes, renew).await {
            Ok(held) => {
                if renew {
                    renew_at = Instant::now() + RENEW_EVERY;
                    // Social lost some of ours (a lease ran out while it was unreachable, or
                    // its database was restored): tell it everyone again.
                    if usize::try_from(held).unwrap_or(0) < connections.users() {
                        connections.note_everyone_changed();
                    }
                }
            }
            Err(status) => {
                tracing::warn!(%status, "presence report failed: retrying");
                connections.restore_changes(changes);
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// Sends `changes` in reports of at most [`CHANGES_PER_REPORT`], the last one renewing if
/// asked; how many users social holds for this gateway (after a renewal).
async fn send(
    social: &mut SocialServiceClient<Channel>,
    gateway_id: &str,
    changes: &[(String, crate::connections::Presence)],
    renew: bool,
) -> Result<i64, tonic::Status> {
    let mut chunks: Vec<_> = changes.chunks(CHANGES_PER_REPORT).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    let last = chunks.len() - 1;
    let mut held = 0;
    for (n, chunk) in chunks.into_iter().enumerate() {
        let request = ReportPresenceRequest {
            gateway_id: gateway_id.to_owned(),
            changes: chunk
                .iter()
                .map(|(user, presence)| PresenceChange {
                    user_id: user.clone(),
                    status: presence.as_str().to_owned(),
                })
                .collect(),
            renew: renew && n == last,
            closing: false,
        };
        if request.changes.is_empty() && !request.renew {
            continue;
        }
        held = social.report_presence(request).await?.into_inner().held;
    }
    Ok(held)
}
