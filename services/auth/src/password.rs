//! Password hashing: argon2id, off the async runtime. `cargo run --release -p astral-auth
//! --example password_cost` measures what it costs on a machine (docs/benchmarks.md).

use anyhow::Context as _;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};

/// argon2id v19 with the crate's defaults, the OWASP minimum: m = 19 MiB, t = 2, p = 1.
fn argon2() -> argon2::Argon2<'static> {
    argon2::Argon2::default()
}

/// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) of `password` with a fresh salt.
pub async fn hash_password(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|error| anyhow::anyhow!("hash a password: {error}"))
    })
    .await
    .context("password hashing task")?
}

pub async fn verify_password(password: String, hash: String) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || {
        let hash =
            PasswordHash::new(&hash).map_err(|error| anyhow::anyhow!("stored hash: {error}"))?;
        Ok(argon2().verify_password(password.as_bytes(), &hash).is_ok())
    })
    .await
    .context("password verification task")?
}
