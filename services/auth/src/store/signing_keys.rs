//! The token signing keys' seeds (encrypted by the key-encryption key).

use super::Store;
use astral_common::Result;

/// A signing key as stored: its id, its seed (sealed by the KEK, or base64 in clear) and
/// when it was made.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredKey {
    pub kid: String,
    pub seed: String,
    pub created_at_ms: i64,
}

impl Store {
    /// The stored signing keys, newest first.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "signing_keys"))]
    pub async fn signing_keys(&self) -> Result<Vec<StoredKey>> {
        Ok(sqlx::query_as(
            "SELECT kid, seed, created_at_ms FROM signing_keys ORDER BY created_at_ms DESC, kid DESC",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Stores a signing key unless one with that id exists.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "insert_signing_key"))]
    pub async fn insert_signing_key(&self, kid: &str, seed: &str, now_ms: i64) -> Result<()> {
        sqlx::query("INSERT INTO signing_keys (kid, seed, created_at_ms) VALUES ($1, $2, $3) ON CONFLICT (kid) DO NOTHING")
            .bind(kid)
            .bind(seed)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Replaces the stored seed of key `kid` if it still is `current`; false if it was not
    /// (another replica replaced it first).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "replace_signing_seed"))]
    pub async fn replace_signing_seed(&self, kid: &str, current: &str, new: &str) -> Result<bool> {
        let result = sqlx::query("UPDATE signing_keys SET seed = $1 WHERE kid = $2 AND seed = $3")
            .bind(new)
            .bind(kid)
            .bind(current)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() == 1)
    }
}
