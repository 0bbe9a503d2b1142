//! Each user's messaging settings: whether they share read receipts (shown their readers'
//! markers and showing theirs). A user without a row has the defaults.

use super::{Store, Tx};
use crate::model::Settings;
use astral_common::Result;
use astral_common::outbox::Outgoing;

/// The SQL for "does user `$N` share read receipts", as 0 or 1.
pub(super) fn shares_read_receipts(user: &str) -> String {
    format!(
        "COALESCE((SELECT s.share_read_receipts FROM user_settings s WHERE s.user_id = {user}), 1)"
    )
}

impl Store {
    /// `user`'s settings.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "settings_of"))]
    pub async fn settings_of(&self, user: i64) -> Result<Settings> {
        let mut conn = self.pool.acquire().await?;
        settings_in(&mut conn, user).await
    }

    /// Sets whether `user` shares read receipts, with the `event` of the change.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "set_share_read_receipts"))]
    pub async fn set_share_read_receipts(
        &self,
        user: i64,
        share: bool,
        event: Outgoing,
    ) -> Result<Settings> {
        let mut tx: Tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO user_settings (user_id, share_read_receipts) VALUES ($1, $2) \
             ON CONFLICT (user_id) DO UPDATE SET share_read_receipts = excluded.share_read_receipts",
        )
        .bind(user)
        .bind(i64::from(share))
        .execute(&mut *tx)
        .await?;
        let settings = settings_in(&mut tx, user).await?;
        self.outbox.commit(tx, vec![event]).await?;
        Ok(settings)
    }
}

async fn settings_in(conn: &mut sqlx::AnyConnection, user: i64) -> Result<Settings> {
    let sql = format!("SELECT {} AS share", shares_read_receipts("$1"));
    let share: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(user)
        .fetch_one(conn)
        .await?;
    Ok(Settings {
        share_read_receipts: share != 0,
    })
}
