//! Access-token verification: EdDSA JWTs checked locally against the auth service's public keys.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::RwLock;

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
#[derive(Default)]
pub struct TokenVerifier {
    keys: RwLock<HashMap<String, DecodingKey>>,
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

    /// Checks signature, algorithm and expiry.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let kid = Self::key_id(token)?;
        let keys = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = keys.get(&kid).ok_or(TokenError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = 5;
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
