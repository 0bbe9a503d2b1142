//! The services' own random keys: an Ed25519 key for each role that publishes events (and the
//! public halves every receiver verifies with), the auth service's key-encryption key, and the
//! messaging service's Web Push (VAPID) key.

use super::files::write_private;
use super::{Layout, Role};
use anyhow::Context as _;
use astral_messaging::push::vapid::VapidKey;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use rand::RngCore as _;

const EVENT_KEYS_HEADER: &str = "\
# Astral's event-verification keys: `<role> <base64 of the raw 32-byte Ed25519 public key>`.
# An event is trusted when it verifies with a key of its publishing role; during a key
# rotation a role has several lines (the old key and the new one).
";

/// Writes `<role>.event.key` (PKCS#8 PEM) for each publishing role, and `event-keys.pub`.
pub(super) fn write_event_keys(layout: &Layout) -> anyhow::Result<()> {
    let mut public = EVENT_KEYS_HEADER.to_owned();
    for role in Role::ALL.into_iter().filter(|role| role.signs_events()) {
        let key = SigningKey::from_bytes(&random_bytes());
        let pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .context("encode an event signing key")?;
        write_private(&layout.event_key(role), &pem)?;
        let verifying_key = STANDARD.encode(key.verifying_key().as_bytes());
        public.push_str(&format!("{} {verifying_key}\n", role.as_str()));
    }
    write_private(&layout.event_keys(), &public)
}

/// Writes `auth.kek`: 32 random bytes, base64 on one line.
pub(super) fn write_key_encryption_key(layout: &Layout) -> anyhow::Result<()> {
    let key = STANDARD.encode(random_bytes::<32>());
    write_private(&layout.key_encryption_key(), &format!("{key}\n"))
}

/// Writes `messaging.vapid.pem`: a P-256 key (PKCS#8 PEM) that the messaging service signs its
/// pushes with. Browsers' push subscriptions are bound to its public half, so it is made once
/// per deployment: a new one means every browser subscribes again.
pub(super) fn write_vapid_key(layout: &Layout) -> anyhow::Result<()> {
    let pem = VapidKey::generate()
        .to_pem()
        .context("encode the VAPID key")?;
    write_private(&layout.vapid_key(), &pem)
}

/// Key material from the operating system's generator.
pub(super) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0; N];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

/// Lowercase hex, two digits a byte.
pub(super) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut text, byte| {
        let _ = write!(text, "{byte:02x}");
        text
    })
}
