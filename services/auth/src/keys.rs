//! Token-signing keys (Ed25519) and the access tokens they sign.

use crate::store::{StoredKey, User};
use anyhow::Context as _;
use astral_common::tokens::{Claims, TokenVerifier};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

/// How long an access token lives.
pub const ACCESS_TOKEN_SECONDS: i64 = 15 * 60;

/// How long a replaced key keeps verifying: the tokens it signed live at most this long.
const RETIRE_AFTER_MS: i64 = (ACCESS_TOKEN_SECONDS + 60) * 1000;

/// The keys this service knows: the newest signs; an older one verifies until every token it
/// can have signed has expired (so rotating the key logs nobody out).
pub struct SigningKeys {
    signing_kid: String,
    signing_key: EncodingKey,
    public: Vec<(String, Vec<u8>)>,
    verifier: TokenVerifier,
}

impl SigningKeys {
    /// Builds the key set from the stored keys with their seeds in clear (base64), newest
    /// first.
    pub fn from_stored(stored: &[StoredKey], now_ms: i64) -> anyhow::Result<Self> {
        let newest = stored.first().context("no signing key stored")?;
        let (signing_kid, signing) = (&newest.kid, signing_key(&newest.seed)?);
        let der = signing.to_pkcs8_der().context("encode the signing key")?;
        // A key stopped signing when the next newer one was created.
        let replaced_at =
            std::iter::once(i64::MAX).chain(stored.iter().map(|key| key.created_at_ms));
        let public = stored
            .iter()
            .zip(replaced_at)
            .filter(|(_, replaced_at)| now_ms.saturating_sub(*replaced_at) < RETIRE_AFTER_MS)
            .map(|(key, _)| {
                let public = signing_key(&key.seed)?.verifying_key().to_bytes().to_vec();
                Ok((key.kid.clone(), public))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let verifier = TokenVerifier::default();
        verifier.set_keys(public.clone());
        Ok(Self {
            signing_kid: signing_kid.clone(),
            signing_key: EncodingKey::from_ed_der(der.as_bytes()),
            public,
            verifier,
        })
    }

    /// Signs an access token for `user_id` in session `session_id`, valid from `now_s`.
    pub fn sign(&self, user: &User, session_id: i64, now_s: i64) -> anyhow::Result<(String, i64)> {
        let claims = Claims {
            sub: user.id.to_string(),
            sid: session_id.to_string(),
            iat: now_s,
            exp: now_s + ACCESS_TOKEN_SECONDS,
            name: user.username.clone(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.signing_kid.clone());
        let token =
            jsonwebtoken::encode(&header, &claims, &self.signing_key).context("sign a token")?;
        Ok((token, claims.exp))
    }

    /// The id of the key that signs.
    pub fn signing_kid(&self) -> &str {
        &self.signing_kid
    }

    /// Checks a token against every key that still verifies.
    pub fn verifier(&self) -> &TokenVerifier {
        &self.verifier
    }

    /// `(kid, raw 32-byte public key)` of every key that still verifies.
    pub fn public_keys(&self) -> &[(String, Vec<u8>)] {
        &self.public
    }
}

fn signing_key(seed: &str) -> anyhow::Result<SigningKey> {
    let bytes: [u8; 32] = BASE64
        .decode(seed)
        .context("decode a stored key")?
        .try_into()
        .map_err(|_| anyhow::anyhow!("a stored key is not 32 bytes"))?;
    Ok(SigningKey::from_bytes(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use astral_common::tokens::{TokenError, TokenVerifier};
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;

    fn stored(kid: &str, created_at_ms: i64) -> StoredKey {
        StoredKey {
            kid: kid.into(),
            seed: BASE64.encode(rand::random::<[u8; 32]>()),
            created_at_ms,
        }
    }

    fn keys() -> (SigningKeys, TokenVerifier) {
        let keys = SigningKeys::from_stored(&[stored("k1", 0)], now() * 1000).unwrap();
        let verifier = TokenVerifier::default();
        verifier.set_keys(keys.public_keys().to_vec());
        (keys, verifier)
    }

    fn now() -> i64 {
        astral_common::time::now_ms() / 1000
    }

    fn seven() -> User {
        User {
            id: 7,
            username: "seven".into(),
        }
    }

    #[test]
    fn a_signed_token_verifies_and_carries_user_and_session() {
        let (keys, verifier) = keys();
        let (token, _) = keys.sign(&seven(), 9, now()).unwrap();
        let claims = verifier.verify(&token).unwrap();
        assert_eq!(
            (
                claims.sub.as_str(),
                claims.sid.as_str(),
                claims.name.as_str()
            ),
            ("7", "9", "seven")
        );
    }

    #[test]
    fn a_tampered_payload_is_refused() {
        let (keys, verifier) = keys();
        let (token, _) = keys.sign(&seven(), 9, now()).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let payload = String::from_utf8(B64URL.decode(parts[1]).unwrap())
            .unwrap()
            .replace("\"7\"", "\"8\"");
        let forged = format!("{}.{}.{}", parts[0], B64URL.encode(payload), parts[2]);
        assert_eq!(verifier.verify(&forged), Err(TokenError::Invalid));
    }

    #[test]
    fn alg_none_and_hmac_tokens_are_refused() {
        let (_, verifier) = keys();
        let claims = format!(r#"{{"sub":"7","sid":"9","iat":0,"exp":{}}}"#, now() + 600);
        let none = format!(
            "{}.{}.",
            B64URL.encode(r#"{"alg":"none","kid":"k1"}"#),
            B64URL.encode(&claims)
        );
        assert_eq!(verifier.verify(&none), Err(TokenError::Invalid));
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        let claims: Claims = serde_json::from_str(&claims).unwrap();
        let hmac =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(b"k1")).unwrap();
        assert_eq!(verifier.verify(&hmac), Err(TokenError::Invalid));
    }

    #[test]
    fn an_expired_token_is_refused() {
        let (keys, verifier) = keys();
        let (token, _) = keys
            .sign(&seven(), 9, now() - 2 * ACCESS_TOKEN_SECONDS)
            .unwrap();
        assert_eq!(verifier.verify(&token), Err(TokenError::Expired));
    }

    #[test]
    fn a_replaced_key_verifies_until_its_tokens_have_expired() {
        let now_ms = now() * 1000;
        let old = stored("old", now_ms - 3_600_000);
        let just_replaced =
            SigningKeys::from_stored(&[stored("new", now_ms - 1000), old.clone()], now_ms).unwrap();
        assert_eq!(just_replaced.signing_kid(), "new");
        let kids: Vec<&str> = just_replaced
            .public_keys()
            .iter()
            .map(|(kid, _)| kid.as_str())
            .collect();
        assert_eq!(kids, ["new", "old"]);
        let long_replaced =
            SigningKeys::from_stored(&[stored("new", now_ms - RETIRE_AFTER_MS - 1), old], now_ms)
                .unwrap();
        let kids: Vec<&str> = long_replaced
            .public_keys()
            .iter()
            .map(|(kid, _)| kid.as_str())
            .collect();
        assert_eq!(kids, ["new"]);
    }

    #[test]
    fn a_token_from_an_unknown_key_is_refused() {
        let (_, verifier) = keys();
        let other = SigningKeys::from_stored(&[stored("k2", 0)], now() * 1000).unwrap();
        let (token, _) = other.sign(&seven(), 9, now()).unwrap();
        assert_eq!(verifier.verify(&token), Err(TokenError::UnknownKey));
    }
}
