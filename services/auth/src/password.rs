//! Password hashing: argon2id, a bounded number at once, each in working memory reused from a
//! pool, so that the process's footprint stays flat however many people sign in at once.
//! `cargo run --release -p astral-auth --example password_cost` measures what it costs on a
//! machine, `--example hashing_memory` what it holds (docs/benchmarks.md).

use anyhow::Context as _;
use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use astral_common::{Error, Result};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Calls that may wait for a free slot, per slot: beyond them a call is refused at once.
const QUEUE_PER_SLOT: usize = 100;
/// The longest a call waits for a slot before it is refused.
const LONGEST_WAIT: Duration = Duration::from_secs(5);

/// Hashes and verifies passwords, at most one per slot at a time.
pub struct Hasher {
    slots: Semaphore,
    /// Argon2's working memory, one set of blocks per slot that has run, handed from call to
    /// call instead of allocated (19 MiB) and freed each time.
    memory: Mutex<Vec<Vec<Block>>>,
    /// Calls running or waiting for a slot.
    admitted: AtomicUsize,
    capacity: usize,
}

impl Hasher {
    /// One slot per core: argon2 is CPU-bound, more at once only queue inside the OS.
    pub fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, usize::from))
    }

    pub fn new(slots: usize) -> Self {
        let slots = slots.max(1);
        Self {
            slots: Semaphore::new(slots),
            memory: Mutex::new(Vec::with_capacity(slots)),
            admitted: AtomicUsize::new(0),
            capacity: slots * (1 + QUEUE_PER_SLOT),
        }
    }

    /// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) of `password` with a fresh salt:
    /// argon2id v19 with the OWASP minimum, m = 19 MiB, t = 2, p = 1.
    pub async fn hash(&self, password: String) -> Result<String> {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        self.run(move |memory| {
            let params = Params::default();
            let hash = compute(
                Algorithm::Argon2id,
                Version::V0x13,
                params.clone(),
                &password,
                &salt,
                Params::DEFAULT_OUTPUT_LEN,
                memory,
            )?;
            let phc = PasswordHash {
                algorithm: Algorithm::Argon2id.ident(),
                version: Some(Version::V0x13.into()),
                // `password_hash::Error` is not a `std::error::Error` (no_std crate): it can
                // only be carried as text, here and below.
                params: (&params)
                    .try_into()
                    .map_err(|error| anyhow::anyhow!("password parameters: {error}"))?,
                salt: Some(salt.as_salt()),
                hash: Some(hash),
            };
            Ok(phc.to_string())
        })
        .await
    }

    /// Whether `password` is the one `hash` (a PHC string) was made from.
    pub async fn verify(&self, password: String, hash: String) -> Result<bool> {
        self.run(move |memory| {
            let stored = PasswordHash::new(&hash)
                .map_err(|error| anyhow::anyhow!("stored hash: {error}"))?;
            let expected = stored.hash.context("the stored hash has no output")?;
            let algorithm = Algorithm::try_from(stored.algorithm)
                .map_err(|error| anyhow::anyhow!("stored hash: {error}"))?;
            let version = stored
                .version
                .map_or(Ok(Version::V0x13), Version::try_from)
                .map_err(|error| anyhow::anyhow!("stored hash: {error}"))?;
            let params = Params::try_from(&stored)
                .map_err(|error| anyhow::anyhow!("stored hash: {error}"))?;
            let salt = stored.salt.context("the stored hash has no salt")?;
            let computed = compute(
                algorithm,
                version,
                params,
                &password,
                &SaltString::from_b64(salt.as_str())
                    .map_err(|error| anyhow::anyhow!("stored salt: {error}"))?,
                expected.len(),
                memory,
            )?;
            // `Output` compares in constant time.
            Ok(computed == expected)
        })
        .await
    }

    /// Runs `work` on a blocking thread with a slot and its memory; refuses with
    /// `Unavailable` when too many calls are already running or waiting, or the wait is long.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T> {
        let _admitted = Admitted::enter(&self.admitted, self.capacity).ok_or_else(busy)?;
        let _slot = tokio::time::timeout(LONGEST_WAIT, self.slots.acquire())
            .await
            .map_err(|_| busy())?
            .map_err(|_| busy())?;
        let mut memory = self
            .memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
            .unwrap_or_default();
        let (memory, result) = tokio::task::spawn_blocking(move || {
            let result = work(&mut memory);
            (memory, result)
        })
        .await
        .context("password hashing task")?;
        self.memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(memory);
        Ok(result?)
    }
}

fn busy() -> Error {
    metrics::counter!("astral_auth_hashing_refused_total").increment(1);
    Error::Unavailable("too many sign-ins at once: try again in a moment".into())
}

/// The raw argon2 output for these inputs, computed in `memory` (grown to the parameters'
/// size once; a larger stored cost than the pool's is computed in a one-off allocation).
fn compute(
    algorithm: Algorithm,
    version: Version,
    params: Params,
    password: &str,
    salt: &SaltString,
    output_len: usize,
    memory: &mut Vec<Block>,
) -> anyhow::Result<Output> {
    let blocks = params.block_count();
    let pooled = Params::default().block_count();
    let mut one_off = Vec::new();
    let memory = if blocks <= pooled {
        if memory.len() < pooled {
            memory.resize(pooled, Block::default());
        }
        &mut memory[..blocks]
    } else {
        one_off.resize(blocks, Block::default());
        &mut one_off[..]
    };
    let mut salt_bytes = [0u8; 64];
    let salt = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|error| anyhow::anyhow!("salt: {error}"))?;
    let argon2 = Argon2::new(algorithm, version, params);
    Output::init_with(output_len, |out| {
        argon2
            .hash_password_into_with_memory(password.as_bytes(), salt, out, &mut *memory)
            .map_err(|_| argon2::password_hash::Error::Crypto)
    })
    .map_err(|error| anyhow::anyhow!("argon2: {error}"))
}

/// A place among the calls admitted, given back when dropped.
struct Admitted<'a>(&'a AtomicUsize);

impl<'a> Admitted<'a> {
    fn enter(count: &'a AtomicUsize, capacity: usize) -> Option<Self> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < capacity).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(count))
    }
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

    #[tokio::test]
    async fn hashes_are_standard_phc_strings_both_ways() {
        let hasher = Hasher::new(1);
        let ours = hasher.hash("correct horse".into()).await.unwrap();
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let theirs = Argon2::default()
            .hash_password(b"battery staple", &salt)
            .unwrap()
            .to_string();
        assert!(
            hasher
                .verify("battery staple".into(), theirs.clone())
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify("battery stapler".into(), theirs)
                .await
                .unwrap()
        );
        assert!(!hasher.verify("correct horsE".into(), ours).await.unwrap());
    }

    #[tokio::test]
    async fn a_cheaper_stored_cost_still_verifies_in_pooled_memory() {
        let params = Params::new(8 * 1024, 1, 1, None).unwrap();
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let cheap = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"pw", &salt)
            .unwrap()
            .to_string();
        let hasher = Hasher::new(1);
        assert!(hasher.verify("pw".into(), cheap).await.unwrap());
    }

    #[tokio::test]
    async fn past_the_queue_calls_are_refused_not_piled_up() {
        let hasher = std::sync::Arc::new(Hasher::new(1));
        let calls: Vec<_> = (0..(QUEUE_PER_SLOT + 1) * 2)
            .map(|_| {
                let hasher = hasher.clone();
                tokio::spawn(async move { hasher.hash("pw".into()).await })
            })
            .collect();
        let mut refused = 0;
        for call in calls {
            if let Err(Error::Unavailable(_)) = call.await.unwrap() {
                refused += 1;
            }
        }
        assert!(refused >= QUEUE_PER_SLOT, "{refused} refused");
        assert_eq!(
            hasher.memory.lock().unwrap().len(),
            1,
            "one slot, one memory"
        );
    }
}
