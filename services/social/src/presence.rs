//! Presence and the setting that governs it: what gateways report of their connections,
//! the sweeper that ends the leases of gateways gone silent, who is connected (for push),
//! and whether a user shares their presence.

use crate::SocialService;
use crate::events;
use crate::model::{Settings, Status};
use crate::store::Store;
use astral_common::{Error, Result, time};
use std::time::Duration;
use tracing::instrument;

/// The most changes one report carries, and users one connectivity check asks about.
pub const MAX_CHANGES: usize = 1000;
pub const MAX_CHECKED: usize = 1000;
/// How often each replica looks for leases that ran out, and how many it ends at a time.
const SWEEP_EVERY: Duration = Duration::from_secs(5);
const SWEEP_BATCH: i64 = 500;

/// What a gateway reports.
pub struct Report<'a> {
    pub gateway: &'a str,
    pub changes: Vec<(i64, Status)>,
    pub renew: bool,
    pub closing: bool,
}

impl SocialService {
    /// A gateway's report of its users' connections; with `renew`, how many of its users
    /// social holds.
    #[instrument(skip_all, fields(gateway = report.gateway, changes = report.changes.len()), err(level = "info"))]
    pub async fn report_presence(&self, report: Report<'_>) -> Result<i64> {
        if report.gateway.is_empty() || report.gateway.len() > 64 {
            return Err(Error::invalid("gateway_id must be 1 to 64 characters"));
        }
        if report.changes.len() > MAX_CHANGES {
            return Err(Error::invalid(format!(
                "at most {MAX_CHANGES} changes a report"
            )));
        }
        let now = time::now_ms();
        if report.closing {
            self.store
                .close_gateway(report.gateway, now, events::presence_updated)
                .await?;
            return Ok(0);
        }
        if !report.changes.is_empty() {
            self.store
                .report_presence(
                    report.gateway,
                    &report.changes,
                    now,
                    events::presence_updated,
                )
                .await?;
        }
        if report.renew {
            return self.store.renew_presence(report.gateway, now).await;
        }
        Ok(0)
    }

    /// Whether each user has an identified connection somewhere, whatever they share.
    pub async fn check_connected(&self, users: &[i64]) -> Result<Vec<bool>> {
        if users.len() > MAX_CHECKED {
            return Err(Error::invalid(format!(
                "at most {MAX_CHECKED} users a check"
            )));
        }
        self.store.connected(users, time::now_ms()).await
    }

    /// The actor's social settings.
    pub async fn settings(&self, actor: i64) -> Result<Settings> {
        self.store.settings_of(actor).await
    }

    /// Changes the actor's social settings (what is `None` stays as it is); their friends
    /// see them offline while they do not share their presence.
    #[instrument(skip_all, fields(%actor), err(level = "info"))]
    pub async fn update_settings(
        &self,
        actor: i64,
        share_presence: Option<bool>,
    ) -> Result<Settings> {
        let Some(share) = share_presence else {
            return self.store.settings_of(actor).await;
        };
        self.store
            .set_share_presence(actor, share, |settings, shown| {
                events::settings_updated(actor, settings, shown)
            })
            .await
    }
}

/// Ends the leases of gateways that stopped renewing them (they died without a word), on
/// every replica: each lease is deleted by one of them, whichever comes first.
pub struct Sweeper {
    task: tokio::task::JoinHandle<()>,
}

impl Sweeper {
    pub fn start(store: Store) -> Self {
        let task = tokio::spawn(async move {
            let mut every = tokio::time::interval(SWEEP_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                if let Err(error) = sweep(&store).await {
                    tracing::warn!(error = format!("{error:#}"), "the presence sweep failed");
                }
            }
        });
        Self { task }
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Ends every lease that ran out, a batch at a time.
async fn sweep(store: &Store) -> Result<()> {
    loop {
        let ended = store
            .expire_presence(time::now_ms(), SWEEP_BATCH, events::presence_updated)
            .await?;
        if ended < usize::try_from(SWEEP_BATCH).unwrap_or(usize::MAX) {
            return Ok(());
        }
    }
}
