//! Signed events. Each publishing service signs what it publishes (Ed25519 over the subject
//! and the payload, naming its key); a subscriber delivers only what a key it trusts signed,
//! and only the kinds of events that key's role may publish. A process on the bus that is
//! not a publishing service — or is one, but another — can then disrupt delivery but not put
//! words in anyone's mouth or end anyone's session.

use crate::guard::Role;
use anyhow::Context as _;
use astral_proto::events::event::Kind;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::pkcs8::DecodePrivateKey as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::Digest as _;
use std::collections::HashMap;
use std::path::Path;

/// The NATS header that carries `<key id>:<base64 signature>`.
pub const SIGNATURE_HEADER: &str = "Astral-Signature";

/// A key's id: the first 8 bytes of the SHA-256 of its public key, in hex.
pub fn key_id(public: &VerifyingKey) -> String {
    sha2::Sha256::digest(public.as_bytes())[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// What is signed: the subject, a zero byte, the payload (an event signed for one subject
/// does not verify on another).
fn signed_bytes(subject: &str, payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(subject.len() + 1 + payload.len());
    bytes.extend_from_slice(subject.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(payload);
    bytes
}

/// A service's event-signing key.
pub struct EventSigner {
    kid: String,
    key: SigningKey,
}

impl EventSigner {
    /// Reads a PKCS#8 PEM Ed25519 key (`ASTRAL_EVENT_SIGNING_KEY`).
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let pem = std::fs::read_to_string(path)
            .with_context(|| format!("ASTRAL_EVENT_SIGNING_KEY: cannot read {}", path.display()))?;
        let key = SigningKey::from_pkcs8_pem(&pem).map_err(|error| {
            anyhow::anyhow!(
                "ASTRAL_EVENT_SIGNING_KEY: {} is not an Ed25519 private key (PKCS#8 PEM): {error}",
                path.display()
            )
        })?;
        Ok(Self::new(key))
    }

    pub fn new(key: SigningKey) -> Self {
        Self {
            kid: key_id(&key.verifying_key()),
            key,
        }
    }

    /// The header value that signs `payload` on `subject`.
    pub fn sign(&self, subject: &str, payload: &[u8]) -> String {
        let signature = self.key.sign(&signed_bytes(subject, payload));
        format!("{}:{}", self.kid, BASE64.encode(signature.to_bytes()))
    }
}

/// Why an event was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    Unsigned,
    UnknownKey,
    BadSignature,
    Undecodable,
    /// Signed by a role that does not publish this kind of event on this subject.
    NotItsToPublish,
}

impl Rejected {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unsigned => "unsigned",
            Self::UnknownKey => "unknown_key",
            Self::BadSignature => "bad_signature",
            Self::Undecodable => "undecodable",
            Self::NotItsToPublish => "not_its_to_publish",
        }
    }
}

/// The event-verification keys a subscriber trusts, by key id, with the role each belongs to.
#[derive(Default)]
pub struct EventTrust {
    keys: HashMap<String, (Role, VerifyingKey)>,
}

impl EventTrust {
    /// Reads `ASTRAL_EVENT_KEYS`: lines `<role> <base64 of the raw 32-byte public key>`, `#`
    /// comments; a role has several lines while its key is being rotated.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("ASTRAL_EVENT_KEYS: cannot read {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("ASTRAL_EVENT_KEYS: {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut keys = HashMap::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (role, key) = line
                .split_once(char::is_whitespace)
                .with_context(|| format!("line {} is not `<role> <key>`", number + 1))?;
            let role = Role::parse(role)
                .with_context(|| format!("line {}: {role:?} is not a role", number + 1))?;
            let raw: [u8; 32] = BASE64
                .decode(key.trim())
                .ok()
                .and_then(|raw| raw.try_into().ok())
                .with_context(|| format!("line {}: not a base64 Ed25519 key", number + 1))?;
            let key = VerifyingKey::from_bytes(&raw)
                .with_context(|| format!("line {}: not an Ed25519 key", number + 1))?;
            keys.insert(key_id(&key), (role, key));
        }
        anyhow::ensure!(!keys.is_empty(), "no keys");
        Ok(Self { keys })
    }

    /// Trusts `key` as one of `role`'s.
    pub fn with(mut self, role: Role, key: VerifyingKey) -> Self {
        self.keys.insert(key_id(&key), (role, key));
        self
    }

    /// The role whose key signed `payload` on `subject`, if the signature holds and that role
    /// may publish this event there.
    pub fn verify(
        &self,
        subject: &str,
        payload: &[u8],
        signature: Option<&str>,
    ) -> Result<Role, Rejected> {
        let (kid, signature) = signature
            .and_then(|value| value.split_once(':'))
            .ok_or(Rejected::Unsigned)?;
        let (role, key) = self.keys.get(kid).ok_or(Rejected::UnknownKey)?;
        let signature: [u8; 64] = BASE64
            .decode(signature)
            .ok()
            .and_then(|raw| raw.try_into().ok())
            .ok_or(Rejected::BadSignature)?;
        key.verify_strict(
            &signed_bytes(subject, payload),
            &Signature::from_bytes(&signature),
        )
        .map_err(|_| Rejected::BadSignature)?;
        let event = <astral_proto::events::Event as prost::Message>::decode(payload)
            .map_err(|_| Rejected::Undecodable)?;
        let kind = event.kind.as_ref().ok_or(Rejected::Undecodable)?;
        if !may_publish(*role, subject, kind) {
            return Err(Rejected::NotItsToPublish);
        }
        Ok(*role)
    }
}

/// Which service publishes what: auth ends sessions, social tells of friends (and of
/// friendships made and ended on `friendships`), messaging of chats and messages (the only
/// one on `chat.*`).
pub fn may_publish(role: Role, subject: &str, kind: &Kind) -> bool {
    let on_user = subject.starts_with("user.");
    match kind {
        Kind::SessionEnded(_) => {
            role == Role::Auth && (on_user || subject == astral_proto::subjects::SESSIONS_REVOKED)
        }
        Kind::FriendRequestAccepted(_) | Kind::FriendRemoved(_) => {
            role == Role::Social && (on_user || subject == astral_proto::subjects::FRIENDSHIPS)
        }
        Kind::FriendRequestCreated(_)
        | Kind::FriendRequestDeclined(_)
        | Kind::FriendRequestCancelled(_) => role == Role::Social && on_user,
        Kind::ChatCreated(_)
        | Kind::ChatUpdated(_)
        | Kind::ChatDeleted(_)
        | Kind::MessageCreated(_)
        | Kind::MessageUpdated(_)
        | Kind::MessageDeleted(_)
        | Kind::TypingStarted(_) => {
            role == Role::Messaging && (on_user || subject.starts_with("chat."))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use astral_proto::events::{Event, SessionEnded};
    use prost::Message as _;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&rand::random::<[u8; 32]>())
    }

    fn session_ended() -> Vec<u8> {
        Event {
            id: "1".into(),
            occurred_at_ms: 0,
            kind: Some(Kind::SessionEnded(SessionEnded::default())),
        }
        .encode_to_vec()
    }

    #[test]
    fn a_signed_event_verifies_as_its_roles() {
        let auth = key();
        let trust = EventTrust::default().with(Role::Auth, auth.verifying_key());
        let payload = session_ended();
        let signature = EventSigner::new(auth).sign("user.7", &payload);
        assert_eq!(
            trust.verify("user.7", &payload, Some(&signature)),
            Ok(Role::Auth)
        );
    }

    #[test]
    fn unsigned_forged_moved_or_foreign_events_are_rejected() {
        let (auth, social) = (key(), key());
        let trust = EventTrust::default()
            .with(Role::Auth, auth.verifying_key())
            .with(Role::Social, social.verifying_key());
        let payload = session_ended();
        let signed = EventSigner::new(auth).sign("user.7", &payload);
        assert_eq!(
            trust.verify("user.7", &payload, None),
            Err(Rejected::Unsigned)
        );
        assert_eq!(
            trust.verify("user.8", &payload, Some(&signed)),
            Err(Rejected::BadSignature),
            "signed for another subject"
        );
        let mut altered = payload.clone();
        altered[2] ^= 1;
        assert_eq!(
            trust.verify("user.7", &altered, Some(&signed)),
            Err(Rejected::BadSignature)
        );
        let stranger = EventSigner::new(key()).sign("user.7", &payload);
        assert_eq!(
            trust.verify("user.7", &payload, Some(&stranger)),
            Err(Rejected::UnknownKey)
        );
        // Social's own key, but ending sessions is auth's to say.
        let by_social = EventSigner::new(social).sign("user.7", &payload);
        assert_eq!(
            trust.verify("user.7", &payload, Some(&by_social)),
            Err(Rejected::NotItsToPublish)
        );
    }

    #[test]
    fn during_a_rotation_both_keys_of_a_role_verify() {
        let (old, new) = (key(), key());
        let text = format!(
            "auth {}\nauth {}\n",
            BASE64.encode(old.verifying_key().as_bytes()),
            BASE64.encode(new.verifying_key().as_bytes())
        );
        let trust = EventTrust::parse(&text).unwrap();
        let payload = session_ended();
        for key in [old, new] {
            let signature = EventSigner::new(key).sign("sessions.revoked", &payload);
            assert_eq!(
                trust.verify("sessions.revoked", &payload, Some(&signature)),
                Ok(Role::Auth)
            );
        }
    }

    #[test]
    fn the_keys_file_names_a_role_per_key() {
        let key = key();
        let text = format!(
            "# comment\nmessaging {}\n",
            BASE64.encode(key.verifying_key().as_bytes())
        );
        let trust = EventTrust::parse(&text).unwrap();
        assert_eq!(trust.keys.len(), 1);
        assert!(EventTrust::parse("gateway nonsense").is_err());
        assert!(EventTrust::parse("# nothing\n").is_err());
    }
}
