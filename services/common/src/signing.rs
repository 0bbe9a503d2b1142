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
use std::sync::Mutex;

/// The NATS header that carries `<key id>:<base64 signature>`.
pub const SIGNATURE_HEADER: &str = "Astral-Signature";

/// A key's id: the first 8 bytes of the SHA-256 of its public key, in hex.
pub fn key_id(public: &VerifyingKey) -> String {
    sha2::Sha256::digest(public.as_bytes())[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// What a signature covers: this context, the root of a hash tree over the event's subjects,
/// then the payload. One signature serves every subject an event is published on (a message
/// goes to its chat and to each member), and each copy carries the proof that its subject is
/// one of the tree's leaves: an event signed for some subjects does not verify on another.
const CONTEXT: &[u8] = b"astral-event-v2\0";

/// The most subjects one signature may cover (a proof is at most 16 hashes).
pub const MAX_SUBJECTS: usize = 1 << 16;

type Hash = [u8; 32];

fn leaf(subject: &str) -> Hash {
    sha2::Sha256::new()
        .chain_update([0])
        .chain_update(subject.as_bytes())
        .finalize()
        .into()
}

fn node(left: &Hash, right: &Hash) -> Hash {
    sha2::Sha256::new()
        .chain_update([1])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// The levels of the tree over `subjects`, leaves first, the root last. Neighbours are paired
/// level by level; an odd one out goes up unchanged.
fn tree(subjects: &[String]) -> Vec<Vec<Hash>> {
    let mut levels = vec![
        subjects
            .iter()
            .map(|subject| leaf(subject))
            .collect::<Vec<_>>(),
    ];
    while let Some(level) = levels.last().filter(|level| level.len() > 1) {
        let up = level
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => node(left, right),
                [alone] => *alone,
                _ => unreachable!("chunks of two"),
            })
            .collect();
        levels.push(up);
    }
    levels
}

/// The siblings on the way from leaf `index` to the root.
fn proof(levels: &[Vec<Hash>], mut index: usize) -> Vec<u8> {
    let mut proof = Vec::new();
    for level in &levels[..levels.len() - 1] {
        if let Some(sibling) = level.get(index ^ 1) {
            proof.extend_from_slice(sibling);
        }
        index /= 2;
    }
    proof
}

/// The root that `subject`, as leaf `index` of `count`, leads to through `proof`; `None` if
/// the proof does not have the length such a leaf needs.
fn root_from(subject: &str, mut index: usize, mut count: usize, proof: &[u8]) -> Option<Hash> {
    if index >= count || count > MAX_SUBJECTS {
        return None;
    }
    let mut siblings = proof.chunks_exact(32);
    if !siblings.remainder().is_empty() {
        return None;
    }
    let mut hash = leaf(subject);
    while count > 1 {
        if index ^ 1 < count {
            let sibling: &Hash = siblings.next()?.try_into().ok()?;
            hash = if index.is_multiple_of(2) {
                node(&hash, sibling)
            } else {
                node(sibling, &hash)
            };
        }
        index /= 2;
        count = count.div_ceil(2);
    }
    siblings.next().is_none().then_some(hash)
}

fn signed_bytes(root: &Hash, payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(CONTEXT.len() + root.len() + payload.len());
    bytes.extend_from_slice(CONTEXT);
    bytes.extend_from_slice(root);
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
        let mut headers = self.sign_for(std::slice::from_ref(&subject.to_owned()), payload);
        headers.pop().unwrap_or_default()
    }

    /// The header values that sign `payload` on each of `subjects` (at most
    /// [`MAX_SUBJECTS`]), in their order, with one signature: `<key id>:<signature>:<leaf
    /// index>:<leaf count>:<proof>` (base64; the proof is the sibling hashes up the tree).
    pub fn sign_for(&self, subjects: &[String], payload: &[u8]) -> Vec<String> {
        if subjects.is_empty() {
            return Vec::new();
        }
        let levels = tree(subjects);
        let root = levels[levels.len() - 1][0];
        let signature = BASE64.encode(self.key.sign(&signed_bytes(&root, payload)).to_bytes());
        (0..subjects.len())
            .map(|index| {
                format!(
                    "{}:{signature}:{index}:{}:{}",
                    self.kid,
                    subjects.len(),
                    BASE64.encode(proof(&levels, index))
                )
            })
            .collect()
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
    /// Signatures already checked: the copies of one event on other subjects (a message on
    /// its chat and on its members' subjects) cost a proof's few hashes, not a verification.
    verified: Mutex<Verified>,
}

/// How many verified signatures are remembered (times two generations): the copies of an
/// event arrive within moments of each other.
const REMEMBERED: usize = 4096;

/// Verified signatures, each with the digest of what it was found to sign (key id, root and
/// payload), in two generations: when the newer fills up, the older is forgotten.
#[derive(Default)]
struct Verified {
    newer: HashMap<[u8; 64], Hash>,
    older: HashMap<[u8; 64], Hash>,
}

impl Verified {
    fn holds(&self, signature: &[u8; 64], digest: &Hash) -> bool {
        self.newer
            .get(signature)
            .or_else(|| self.older.get(signature))
            == Some(digest)
    }

    fn remember(&mut self, signature: [u8; 64], digest: Hash) {
        if self.newer.len() >= REMEMBERED {
            self.older = std::mem::take(&mut self.newer);
        }
        self.newer.insert(signature, digest);
    }
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
        Ok(Self {
            keys,
            verified: Mutex::default(),
        })
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, Verified> {
        self.verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
        let mut parts = signature.ok_or(Rejected::Unsigned)?.split(':');
        let (Some(kid), Some(signature), Some(index), Some(count), Some(proof), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(Rejected::Unsigned);
        };
        let (role, key) = self.keys.get(kid).ok_or(Rejected::UnknownKey)?;
        let signature: [u8; 64] = BASE64
            .decode(signature)
            .ok()
            .and_then(|raw| raw.try_into().ok())
            .ok_or(Rejected::BadSignature)?;
        let root = index
            .parse()
            .ok()
            .zip(count.parse().ok())
            .zip(BASE64.decode(proof).ok())
            .and_then(|((index, count), proof)| root_from(subject, index, count, &proof))
            .ok_or(Rejected::BadSignature)?;
        let digest: Hash = sha2::Sha256::new()
            .chain_update(kid.as_bytes())
            .chain_update([0])
            .chain_update(root)
            .chain_update(payload)
            .finalize()
            .into();
        let known = self.remembered().holds(&signature, &digest);
        if !known {
            key.verify_strict(
                &signed_bytes(&root, payload),
                &Signature::from_bytes(&signature),
            )
            .map_err(|_| Rejected::BadSignature)?;
            self.remembered().remember(signature, digest);
        }
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
/// friendships made and ended on `friendships`) and presence, messaging of chats, messages
/// and read markers (the only one on `chat.*`); each tells of the settings it keeps.
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
        Kind::ReadUpdated(_) => role == Role::Messaging && subject.starts_with("chat."),
        Kind::PresenceUpdated(_) => role == Role::Social && on_user,
        Kind::SettingsUpdated(settings) => {
            on_user
                && match role {
                    Role::Social => settings.share_read_receipts.is_none(),
                    Role::Messaging => settings.share_presence.is_none(),
                    _ => false,
                }
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

    fn message_created() -> Vec<u8> {
        Event {
            id: "2".into(),
            occurred_at_ms: 0,
            kind: Some(Kind::MessageCreated(Default::default())),
        }
        .encode_to_vec()
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
    fn presence_read_markers_and_settings_come_from_their_own_services() {
        use astral_proto::events::{PresenceUpdated, ReadUpdated, SettingsUpdated};
        let read = Kind::ReadUpdated(ReadUpdated::default());
        assert!(may_publish(Role::Messaging, "chat.1", &read));
        assert!(!may_publish(Role::Messaging, "user.1", &read));
        assert!(!may_publish(Role::Social, "chat.1", &read));
        let presence = Kind::PresenceUpdated(PresenceUpdated::default());
        assert!(may_publish(Role::Social, "user.1", &presence));
        assert!(!may_publish(Role::Social, "chat.1", &presence));
        assert!(!may_publish(Role::Messaging, "user.1", &presence));
        let presence_setting = Kind::SettingsUpdated(SettingsUpdated {
            share_presence: Some(false),
            ..Default::default()
        });
        let receipts_setting = Kind::SettingsUpdated(SettingsUpdated {
            share_read_receipts: Some(false),
            ..Default::default()
        });
        assert!(may_publish(Role::Social, "user.1", &presence_setting));
        assert!(!may_publish(Role::Messaging, "user.1", &presence_setting));
        assert!(may_publish(Role::Messaging, "user.1", &receipts_setting));
        assert!(!may_publish(Role::Social, "user.1", &receipts_setting));
        assert!(!may_publish(Role::Auth, "user.1", &receipts_setting));
        assert!(!may_publish(Role::Messaging, "chat.1", &receipts_setting));
    }

    #[test]
    fn one_signature_covers_every_subject_and_no_other() {
        let messaging = key();
        let trust = EventTrust::default().with(Role::Messaging, messaging.verifying_key());
        let signer = EventSigner::new(messaging);
        let payload = message_created();
        for count in [1, 2, 3, 5, 8, 101] {
            let subjects: Vec<String> = (0..count).map(|n| format!("user.{n}")).collect();
            let headers = signer.sign_for(&subjects, &payload);
            assert_eq!(headers.len(), count);
            let signatures: std::collections::HashSet<_> = headers
                .iter()
                .map(|header| header.split(':').nth(1).unwrap())
                .collect();
            assert_eq!(signatures.len(), 1, "one signature for {count} subjects");
            for (subject, header) in subjects.iter().zip(&headers) {
                assert_eq!(
                    trust.verify(subject, &payload, Some(header)),
                    Ok(Role::Messaging),
                    "{subject} of {count}"
                );
                // Its proof, on any other subject, is refused, whether or not that subject
                // is one of the event's own.
                let others = ["user.9999", "chat.1"]
                    .into_iter()
                    .chain(subjects.iter().take(2).map(String::as_str));
                for other in others {
                    if other != subject.as_str() {
                        assert_eq!(
                            trust.verify(other, &payload, Some(header)),
                            Err(Rejected::BadSignature),
                            "{subject}'s copy moved to {other}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_remembered_signature_does_not_vouch_for_another_payload_key_or_proof() {
        let (messaging, social) = (key(), key());
        let trust = EventTrust::default()
            .with(Role::Messaging, messaging.verifying_key())
            .with(Role::Social, social.verifying_key());
        let payload = message_created();
        let subjects = vec![
            "chat.1".to_owned(),
            "user.1".to_owned(),
            "user.2".to_owned(),
        ];
        let headers = EventSigner::new(messaging).sign_for(&subjects, &payload);
        assert_eq!(
            trust.verify("chat.1", &payload, Some(&headers[0])),
            Ok(Role::Messaging)
        );
        // Now remembered: the same signature with an altered payload still fails.
        let mut altered = payload.clone();
        altered[3] ^= 1;
        assert_eq!(
            trust.verify("user.1", &altered, Some(&headers[1])),
            Err(Rejected::BadSignature)
        );
        // ... as does the same signature under another trusted key's id.
        let social_kid = key_id(&social.verifying_key());
        let relabelled = headers[1].replacen(headers[1].split(':').next().unwrap(), &social_kid, 1);
        assert_eq!(
            trust.verify("user.1", &payload, Some(&relabelled)),
            Err(Rejected::BadSignature)
        );
        // ... and a proof that claims another place in the tree.
        let moved = headers[1].replacen(":1:3:", ":0:3:", 1);
        assert_eq!(
            trust.verify("user.1", &payload, Some(&moved)),
            Err(Rejected::BadSignature)
        );
        for header in ["k:s", "k:s:0:1:", "", ":::::"] {
            assert!(
                trust.verify("user.1", &payload, Some(header)).is_err(),
                "{header:?}"
            );
        }
        assert_eq!(
            trust.verify("user.2", &payload, Some(&headers[2])),
            Ok(Role::Messaging)
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
