//! Access-token verification: EdDSA JWTs checked locally against the auth service's public
//! keys, each token's signature checked once and its claims remembered until it expires.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use std::collections::HashMap;
use std::sync::RwLock;

/// Seconds a token is still taken after its `exp` (clocks differ a little).
const LEEWAY_S: i64 = 5;
/// The most verified tokens remembered (about 200 bytes each). A client sends the same token
/// with every request until it refreshes it, every few minutes: the live tokens of far more
/// users than one process serves fit.
pub const MAX_REMEMBERED: usize = 100_000;

/// What an access token says.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// The session (login) id.
    pub sid: String,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds.
    pub exp: i64,
    /// The username (names never change), so that a gateway can greet the user without
    /// asking the auth service; empty in tokens from before it was added.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the token is malformed or its signature is wrong")]
    Invalid,
    #[error("the token has expired")]
    Expired,
    #[error("the token was signed by an unknown key")]
    UnknownKey,
}

/// The public keys that verify access tokens, by key id. Only EdDSA is accepted: `alg: none`,
/// HMAC and every other algorithm are refused before any key is looked at.
///
/// A token whose signature was checked is remembered (by a SHA-256 of the whole token) with
/// its claims and key id until it expires, so the same token on the next request costs a
/// hash and a lookup instead of an Ed25519 verification. A remembered token is still refused
/// once it expires or its key is no longer known; whether its session was revoked is the
/// caller's check, made on every use (`authenticator.rs`).
#[derive(Default)]
pub struct TokenVerifier {
    keys: RwLock<HashMap<String, DecodingKey>>,
    verified: RwLock<HashMap<[u8; 32], Verified>>,
}

/// A token whose signature was checked.
#[derive(Clone)]
struct Verified {
    kid: String,
    claims: Claims,
}

impl TokenVerifier {
    /// Replaces the known keys with `keys` (key id, raw 32-byte Ed25519 public key).
    pub fn set_keys(&self, keys: impl IntoIterator<Item = (String, Vec<u8>)>) {
        let keys = keys
            .into_iter()
            .filter(|(_, raw)| raw.len() == 32)
            .map(|(kid, raw)| (kid, DecodingKey::from_ed_der(&raw)))
            .collect();
        *self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = keys;
    }

    /// Whether a key with this id is known.
    pub fn knows(&self, kid: &str) -> bool {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains_key(kid)
    }

    /// The key id a token names, if it is a well-formed EdDSA token.
    pub fn key_id(token: &str) -> Result<String, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Invalid);
        }
        header.kid.ok_or(TokenError::Invalid)
    }

    /// Checks signature, algorithm and expiry (the signature once per token).
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let now_s = crate::time::now_ms() / 1000;
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        if let Some(known) = self.remembered(&digest, now_s) {
            return known;
        }
        let kid = Self::key_id(token)?;
        let claims = self.check_signature(token, &kid)?;
        self.remember(
            digest,
            Verified {
                kid,
                claims: claims.clone(),
            },
            now_s,
        );
        Ok(claims)
    }

    /// What was found of a remembered token at `now_s`, if it is remembered.
    fn remembered(&self, digest: &[u8; 32], now_s: i64) -> Option<Result<Claims, TokenError>> {
        let verified = self
            .verified
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let known = verified.get(digest)?;
        if known.claims.exp + LEEWAY_S < now_s {
            return Some(Err(TokenError::Expired));
        }
        if !self.knows(&known.kid) {
            return Some(Err(TokenError::UnknownKey));
        }
        Some(Ok(known.claims.clone()))
    }

    /// Remembers a verified token; when [`MAX_REMEMBERED`] are, the expired ones are
    /// forgotten first, then (if that was not enough) all of them.
    fn remember(&self, digest: [u8; 32], verified: Verified, now_s: i64) {
        let mut remembered = self
            .verified
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if remembered.len() >= MAX_REMEMBERED {
            remembered.retain(|_, known| known.claims.exp + LEEWAY_S >= now_s);
            if remembered.len() >= MAX_REMEMBERED {
                remembered.clear();
            }
        }
        remembered.insert(digest, verified);
    }

    /// Checks a token's signature with key `kid`, its algorithm and its expiry.
    fn check_signature(&self, token: &str, kid: &str) -> Result<Claims, TokenError> {
        let keys = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = keys.get(kid).ok_or(TokenError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = LEEWAY_S.unsigned_abs();
        validation.set_required_spec_claims(&["exp", "sub"]);
        match jsonwebtoken::decode::<Claims>(token, key, &validation) {
            Ok(data) => Ok(data.claims),
            Err(error)
                if matches!(
                    error.kind(),
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature
                ) =>
            {
                Err(TokenError::Expired)
            }
            Err(_) => Err(TokenError::Invalid),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap does
    use super::*;

    /// A token for user 1 signed by the key made from `seed`, naming `kid`, expiring at
    /// `exp`; and that key's public half.
    fn token(kid: &str, seed: u8, exp: i64) -> (String, (String, Vec<u8>)) {
        use ed25519_dalek::pkcs8::EncodePrivateKey as _;
        let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
        let der = key.to_pkcs8_der().unwrap();
        let mut header = jsonwebtoken::Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.to_owned());
        let claims = Claims {
            sub: "1".into(),
            sid: "2".into(),
            iat: exp - 900,
            exp,
            name: "ann".into(),
        };
        let encoding = jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes());
        let token = jsonwebtoken::encode(&header, &claims, &encoding).unwrap();
        (
            token,
            (kid.to_owned(), key.verifying_key().to_bytes().to_vec()),
        )
    }

    fn now_s() -> i64 {
        crate::time::now_ms() / 1000
    }

    fn digest(token: &str) -> [u8; 32] {
        sha2::Sha256::digest(token.as_bytes()).into()
    }

    fn remembered(verifier: &TokenVerifier) -> usize {
        verifier.verified.read().unwrap().len()
    }

    #[test]
    fn a_token_is_verified_once_and_remembered_until_it_expires() {
        let exp = now_s() + 60;
        let (token, key) = token("k1", 1, exp);
        let verifier = TokenVerifier::default();
        verifier.set_keys([key]);
        let claims = verifier.verify(&token).unwrap();
        assert_eq!((claims.sub.as_str(), claims.exp), ("1", exp));
        assert_eq!(remembered(&verifier), 1);
        assert_eq!(verifier.verify(&token), Ok(claims.clone()), "from memory");
        assert_eq!(remembered(&verifier), 1);
        let remembered_at = |now_s| verifier.remembered(&digest(&token), now_s);
        assert_eq!(remembered_at(exp + LEEWAY_S), Some(Ok(claims)));
        assert_eq!(
            remembered_at(exp + LEEWAY_S + 1),
            Some(Err(TokenError::Expired)),
            "an expired token is refused though remembered"
        );
    }

    #[test]
    fn a_remembered_token_of_a_key_no_longer_known_is_refused() {
        let (token, key) = token("old", 1, now_s() + 60);
        let (_, new_key) = self::token("new", 2, now_s() + 60);
        let verifier = TokenVerifier::default();
        verifier.set_keys([key]);
        verifier.verify(&token).unwrap();
        verifier.set_keys([new_key]);
        assert_eq!(verifier.verify(&token), Err(TokenError::UnknownKey));
    }

    #[test]
    fn refused_tokens_are_not_remembered() {
        let (token, key) = token("k1", 1, now_s() + 60);
        let (forged, _) = self::token("k1", 9, now_s() + 60);
        let (expired, _) = self::token("k1", 1, now_s() - 60);
        let verifier = TokenVerifier::default();
        verifier.set_keys([key]);
        // The payload of one token under the signature of another.
        let (head, _) = token.rsplit_once('.').unwrap();
        let (_, signature) = forged.rsplit_once('.').unwrap();
        for bad in [
            forged.clone(),
            expired,
            format!("{head}.{signature}"),
            "x.y.z".into(),
        ] {
            assert!(verifier.verify(&bad).is_err(), "{bad}");
        }
        assert_eq!(remembered(&verifier), 0);
        assert!(verifier.verify(&token).is_ok());
        assert_eq!(remembered(&verifier), 1);
    }

    #[test]
    fn memory_is_bounded() {
        let verifier = TokenVerifier::default();
        let claims = |exp| Verified {
            kid: "k".into(),
            claims: Claims {
                sub: "1".into(),
                sid: "2".into(),
                iat: 0,
                exp,
                name: String::new(),
            },
        };
        let now = now_s();
        for n in 0..MAX_REMEMBERED {
            let mut digest = [0; 32];
            digest[..8].copy_from_slice(&(n as u64).to_le_bytes());
            // Every other one expired.
            let exp = if n % 2 == 0 { now - 60 } else { now + 60 };
            verifier.remember(digest, claims(exp), now);
        }
        assert_eq!(remembered(&verifier), MAX_REMEMBERED);
        verifier.remember([0xff; 32], claims(now + 60), now);
        assert_eq!(
            remembered(&verifier),
            MAX_REMEMBERED / 2 + 1,
            "the expired went first"
        );
    }
}
