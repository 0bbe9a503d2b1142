//! The key-encryption key (KEK) and the sealing of the token-signing keys' seeds with it.
//!
//! A seed is stored as `v1:<base64 of nonce || ciphertext>`: ChaCha20-Poly1305 with a random
//! 96-bit nonce per seed and the key's id as associated data, so that a sealed seed copied onto
//! another key's row does not open. A stored seed without the prefix is a legacy clear seed.

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead as _, AeadCore as _, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit as _, Nonce};
use rand::RngCore as _;
use std::path::Path;

/// What marks a sealed seed, and its format's version.
const SEALED_PREFIX: &str = "v1:";

/// The nonce's length in bytes (96 bits).
const NONCE_BYTES: usize = 12;

/// The KEK's length in bytes.
const KEY_BYTES: usize = 32;

/// The setting that names the KEK's file.
pub const SETTING: &str = "ASTRAL_KEY_ENCRYPTION_KEY";

/// The key that seals the signing keys' seeds in the database.
#[derive(Clone)]
pub struct Kek {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(…)")
    }
}

impl Kek {
    /// A fresh random key (for tests and development tools).
    pub fn random() -> Self {
        Self::from_bytes(&random_key())
    }

    /// Parses a KEK file's text: 32 bytes in standard base64 on one line. The error never
    /// quotes the text.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let bytes: [u8; KEY_BYTES] = BASE64
            .decode(text.trim())
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .context("a key-encryption key is 32 bytes in standard base64 on one line")?;
        Ok(Self::from_bytes(&bytes))
    }

    /// Reads and parses the KEK file at `path`; the error names the file, never the key.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("read the key-encryption key {}", path.display()))?;
        Self::parse(&text)
            .with_context(|| format!("the key-encryption key {} is malformed", path.display()))
    }

    fn from_bytes(bytes: &[u8; KEY_BYTES]) -> Self {
        Self {
            cipher: ChaCha20Poly1305::new(bytes.into()),
        }
    }

    /// Seals the secret of key `kid` for storage: `v1:<base64 of nonce || ciphertext>`.
    pub fn seal(&self, kid: &str, secret: &[u8]) -> anyhow::Result<String> {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let payload = Payload {
            msg: secret,
            aad: kid.as_bytes(),
        };
        let ciphertext = self
            .cipher
            .encrypt(&nonce, payload)
            .map_err(|_| anyhow::anyhow!("seal the signing key {kid}"))?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        Ok(format!("{SEALED_PREFIX}{}", BASE64.encode(sealed)))
    }

    /// Opens what [`Kek::seal`] made for key `kid`; fails with another key, another kid, or
    /// altered bytes.
    pub fn open(&self, kid: &str, stored: &str) -> anyhow::Result<Vec<u8>> {
        let encoded = stored
            .strip_prefix(SEALED_PREFIX)
            .with_context(|| format!("the signing key {kid} is not sealed"))?;
        let sealed = BASE64.decode(encoded).ok();
        let (nonce, ciphertext) = sealed
            .as_deref()
            .and_then(<[u8]>::split_first_chunk::<NONCE_BYTES>)
            .with_context(|| format!("the sealed signing key {kid} is malformed"))?;
        let payload = Payload {
            msg: ciphertext,
            aad: kid.as_bytes(),
        };
        self.cipher
            .decrypt(&Nonce::from(*nonce), payload)
            .map_err(|_| anyhow::anyhow!("the signing key {kid} does not decrypt"))
    }
}

/// Whether a stored seed is sealed (as opposed to a legacy seed in clear).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(SEALED_PREFIX)
}

/// A new KEK as its file holds it: 32 random bytes, base64 on one line.
pub fn new_key_text() -> String {
    format!("{}\n", BASE64.encode(random_key()))
}

/// The KEK named by the setting, if any. Required unless `insecure_dev`: without one the seeds
/// stay in clear, with a warning.
pub fn from_setting(path: Option<&Path>, insecure_dev: bool) -> anyhow::Result<Option<Kek>> {
    match path {
        Some(path) => Kek::load(path)
            .map(Some)
            .with_context(|| format!("{SETTING}={} does not give a usable key", path.display())),
        None if insecure_dev => {
            tracing::warn!(
                "{SETTING} is not set: the token-signing keys are stored in clear; never in production"
            );
            Ok(None)
        }
        None => anyhow::bail!(
            "{SETTING} is not set: give the auth service its key-encryption key (`astral-admin secrets init DIR` writes DIR/auth.kek), or set ASTRAL_INSECURE_DEV=1 for development"
        ),
    }
}

/// Key material from the operating system's generator.
fn random_key() -> [u8; KEY_BYTES] {
    let mut bytes = [0; KEY_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: [u8; 32] = [7; 32];

    #[test]
    fn a_sealed_seed_opens_with_the_same_key_and_kid() {
        let kek = Kek::random();
        let sealed = kek.seal("k1", &SEED).unwrap();
        assert!(sealed.starts_with("v1:") && is_sealed(&sealed));
        assert!(!sealed.contains(&BASE64.encode(SEED)));
        assert_eq!(kek.open("k1", &sealed).unwrap(), SEED);
    }

    #[test]
    fn sealing_twice_uses_two_nonces() {
        let kek = Kek::random();
        assert_ne!(
            kek.seal("k1", &SEED).unwrap(),
            kek.seal("k1", &SEED).unwrap()
        );
    }

    #[test]
    fn another_key_does_not_open_a_sealed_seed() {
        let sealed = Kek::random().seal("k1", &SEED).unwrap();
        let error = Kek::random().open("k1", &sealed).unwrap_err();
        assert_eq!(error.to_string(), "the signing key k1 does not decrypt");
    }

    #[test]
    fn a_sealed_seed_moved_to_another_kid_does_not_open() {
        let kek = Kek::random();
        let sealed = kek.seal("k1", &SEED).unwrap();
        assert!(kek.open("k2", &sealed).is_err());
    }

    #[test]
    fn an_altered_sealed_seed_does_not_open() {
        let kek = Kek::random();
        let mut sealed = BASE64.decode(&kek.seal("k1", &SEED).unwrap()[3..]).unwrap();
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        let altered = format!("v1:{}", BASE64.encode(sealed));
        assert!(kek.open("k1", &altered).is_err());
        assert!(kek.open("k1", "v1:AAAA").is_err());
    }

    #[test]
    fn a_legacy_clear_seed_is_recognised_as_not_sealed() {
        let clear = BASE64.encode(SEED);
        assert!(!is_sealed(&clear));
        assert!(Kek::random().open("k1", &clear).is_err());
    }

    #[test]
    fn a_key_file_is_32_bytes_in_base64_and_errors_never_quote_it() {
        assert!(Kek::parse(&new_key_text()).is_ok());
        let short = BASE64.encode([1u8; 16]);
        for bad in [short.as_str(), "not base64 at all!", ""] {
            let error = format!("{:#}", Kek::parse(bad).unwrap_err());
            assert!(bad.is_empty() || !error.contains(bad), "{error}");
        }
    }

    #[test]
    fn without_the_setting_the_service_refuses_unless_insecure_dev() {
        let error = from_setting(None, false).unwrap_err().to_string();
        assert!(error.contains("ASTRAL_KEY_ENCRYPTION_KEY"), "{error}");
        assert!(from_setting(None, true).unwrap().is_none());
    }

    #[test]
    fn an_unreadable_or_malformed_file_names_the_setting_and_the_file() {
        let dir = std::env::temp_dir().join(format!("astral-kek-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let malformed = dir.join("malformed.kek");
        std::fs::write(&malformed, "c2VjcmV0\n").unwrap();
        for path in [dir.join("missing.kek"), malformed] {
            let error = format!("{:#}", from_setting(Some(&path), true).unwrap_err());
            assert!(error.contains("ASTRAL_KEY_ENCRYPTION_KEY"), "{error}");
            assert!(error.contains(&path.display().to_string()), "{error}");
            assert!(!error.contains("c2VjcmV0"), "{error}");
        }
        let good = dir.join("good.kek");
        std::fs::write(&good, new_key_text()).unwrap();
        assert!(from_setting(Some(&good), false).unwrap().is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
