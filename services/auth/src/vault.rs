//! The signing keys as the database holds them: each seed sealed with the key-encryption key on
//! the way in and opened on the way out, so that a copy of the database forges no token.
//!
//! Databases from before the KEK hold their seeds in clear: at start, with a KEK, each is sealed
//! in place. Without a KEK (development only) new seeds are stored in clear.

use crate::kek::{self, Kek};
use crate::keys::SigningKeys;
use crate::store::{Store, StoredKey};
use anyhow::Context as _;
use astral_common::{ids, time};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// Why the service refuses to start when a stored seed does not open.
pub const WRONG_KEK: &str = "the key-encryption key does not open the stored signing keys: wrong ASTRAL_KEY_ENCRYPTION_KEY?";

/// The signing keys' table, read and written through the KEK.
pub struct KeyVault {
    store: Store,
    kek: Option<Kek>,
}

impl KeyVault {
    /// Seals every seed still stored in clear, creates the first key on a new database, and
    /// checks that every stored seed opens.
    pub async fn open(store: Store, kek: Option<Kek>) -> anyhow::Result<(Self, SigningKeys)> {
        let vault = Self { store, kek };
        vault.seal_clear_seeds().await?;
        if vault.store.signing_keys().await?.is_empty() {
            vault.insert_new_key(&ids::new_id_string()).await?;
        }
        // Another replica may have inserted its key at the same moment: the newest wins for all.
        let keys = vault.load().await?;
        Ok((vault, keys))
    }

    /// The keys that sign and verify now, read afresh.
    pub async fn load(&self) -> anyhow::Result<SigningKeys> {
        let opened = self
            .store
            .signing_keys()
            .await?
            .into_iter()
            .map(|stored| {
                let seed = self.open_seed(&stored.kid, &stored.seed)?;
                Ok(StoredKey { seed, ..stored })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        SigningKeys::from_stored(&opened, time::now_ms())
    }

    /// Stores a new random key under `kid` (sealed when there is a KEK).
    pub async fn insert_new_key(&self, kid: &str) -> anyhow::Result<()> {
        let seed: [u8; 32] = rand::random();
        let stored = match &self.kek {
            Some(kek) => kek.seal(kid, &seed)?,
            None => BASE64.encode(seed),
        };
        self.store
            .insert_signing_key(kid, &stored, time::now_ms())
            .await
            .context("store a new signing key")?;
        Ok(())
    }

    /// Seals, in place, each seed stored in clear by a version without the KEK.
    async fn seal_clear_seeds(&self) -> anyhow::Result<()> {
        let Some(kek) = &self.kek else { return Ok(()) };
        for StoredKey {
            kid, seed: stored, ..
        } in self.store.signing_keys().await?
        {
            if kek::is_sealed(&stored) {
                continue;
            }
            let seed = BASE64
                .decode(&stored)
                .with_context(|| format!("the clear signing key {kid} is not base64"))?;
            let sealed = kek.seal(&kid, &seed)?;
            // False when another replica sealed it first: its sealed seed is as good.
            if self
                .store
                .replace_signing_seed(&kid, &stored, &sealed)
                .await?
            {
                tracing::info!(%kid, "sealed a signing key that was stored in clear");
            }
        }
        Ok(())
    }

    /// A stored seed in the base64 form [`SigningKeys`] reads.
    fn open_seed(&self, kid: &str, stored: &str) -> anyhow::Result<String> {
        if !kek::is_sealed(stored) {
            return Ok(stored.to_owned());
        }
        let kek = self.kek.as_ref().with_context(|| {
            format!(
                "the stored signing keys are sealed: set {} to the key-encryption key that sealed them",
                kek::SETTING
            )
        })?;
        let seed = kek.open(kid, stored).context(WRONG_KEK)?;
        Ok(BASE64.encode(seed))
    }
}
