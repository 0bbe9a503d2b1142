//! The application server's VAPID identity (RFC 8292): the key push services know us by, the
//! signed `Authorization` header each push carries, and the push service's check of it.
//!
//! Browsers subscribe with our public key as `applicationServerKey`; a push service then
//! accepts pushes to that subscription only with a token signed by the matching private key.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, LineEnding};
use rand::rngs::OsRng;

/// How long a token we sign stays valid: half the most a push service accepts, so that a
/// push service whose clock runs a little behind ours does not refuse it.
const VALIDITY_SECS: u64 = 12 * 60 * 60;
/// The furthest ahead a push service accepts a token's expiry (RFC 8292 §2).
pub const MAX_VALIDITY_SECS: u64 = 24 * 60 * 60;
/// The JOSE header of every token: ES256 is the only algorithm RFC 8292 allows.
const JWT_HEADER: &str = r#"{"typ":"JWT","alg":"ES256"}"#;

/// Why a key or a token was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VapidError {
    #[error("the VAPID key is not a P-256 private key in PKCS#8 PEM")]
    InvalidKey,
    #[error("the push endpoint is not an absolute http(s) URL: {0}")]
    InvalidEndpoint(String),
    #[error("the Authorization header is not `vapid t=<ES256 JWT>, k=<P-256 key>`")]
    Malformed,
    #[error("the token's signature does not verify with its key")]
    BadSignature,
    #[error("the token is for {found}, not {expected}")]
    WrongAudience { expected: String, found: String },
    #[error("the token has expired")]
    Expired,
    #[error("the token expires more than 24 hours from now")]
    TooLong,
}

/// What a push service learns from a token that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedVapid {
    /// The application server's key (`k`), as it was sent.
    pub public_key_base64url: String,
    /// The contact the push service may reach the server's operator at (`sub`).
    pub subject: String,
    /// When the token expires, Unix seconds.
    pub expires: u64,
}

/// A token's claims.
#[derive(serde::Deserialize)]
struct Claims {
    aud: String,
    exp: u64,
    sub: String,
}

/// The JOSE header's one field that matters.
#[derive(serde::Deserialize)]
struct JoseHeader {
    alg: String,
}

/// The application server's P-256 signing key.
pub struct VapidKey(SigningKey);

impl VapidKey {
    pub fn generate() -> Self {
        Self(SigningKey::random(&mut OsRng))
    }

    /// A key kept as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pem(pem: &str) -> Result<Self, VapidError> {
        SigningKey::from_pkcs8_pem(pem)
            .map(Self)
            .map_err(|_| VapidError::InvalidKey)
    }

    /// The key as PKCS#8 PEM, for [`VapidKey::from_pem`].
    pub fn to_pem(&self) -> Result<String, VapidError> {
        self.0
            .to_pkcs8_pem(LineEnding::LF)
            .map(|pem| pem.as_str().to_owned())
            .map_err(|_| VapidError::InvalidKey)
    }

    /// The public key as browsers take it for `applicationServerKey`: the 65-byte uncompressed
    /// point, base64url without padding.
    pub fn public_key_base64url(&self) -> String {
        let point = self.0.verifying_key().to_encoded_point(false);
        URL_SAFE_NO_PAD.encode(point.as_bytes())
    }

    /// The `Authorization` header for a push to `endpoint`: `vapid t=<JWT>, k=<public key>`,
    /// the token signed for the endpoint's origin and valid for 12 hours from `now_unix_secs`.
    pub fn authorization(
        &self,
        endpoint: &str,
        subject: &str,
        now_unix_secs: u64,
    ) -> Result<String, VapidError> {
        let claims = serde_json::json!({
            "aud": origin(endpoint)?,
            "exp": now_unix_secs.saturating_add(VALIDITY_SECS),
            "sub": subject,
        });
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(JWT_HEADER),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature: Signature = self.0.sign(signed.as_bytes());
        Ok(format!(
            "vapid t={signed}.{}, k={}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes()),
            self.public_key_base64url()
        ))
    }
}

impl std::fmt::Debug for VapidKey {
    /// The public half only: a log line never shows the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("VapidKey")
            .field(&self.public_key_base64url())
            .finish()
    }
}

/// The push service's side: the token in `header_value` verified with the key it names, for
/// `expected_audience` (the push service's origin), unexpired and expiring within 24 hours.
pub fn verify(
    header_value: &str,
    expected_audience: &str,
    now_unix_secs: u64,
) -> Result<VerifiedVapid, VapidError> {
    let (token, key) = parse_header(header_value)?;
    let claims = verify_token(token, &parse_key(key)?)?;
    if claims.aud != expected_audience {
        return Err(VapidError::WrongAudience {
            expected: expected_audience.to_owned(),
            found: claims.aud,
        });
    }
    if claims.exp <= now_unix_secs {
        return Err(VapidError::Expired);
    }
    if claims.exp > now_unix_secs.saturating_add(MAX_VALIDITY_SECS) {
        return Err(VapidError::TooLong);
    }
    Ok(VerifiedVapid {
        public_key_base64url: key.to_owned(),
        subject: claims.sub,
        expires: claims.exp,
    })
}

/// The origin of `endpoint`, `scheme://host[:port]` (the port only when not the scheme's
/// default): the audience a push service expects.
fn origin(endpoint: &str) -> Result<String, VapidError> {
    let invalid = || VapidError::InvalidEndpoint(endpoint.to_owned());
    let uri: http::Uri = endpoint.parse().map_err(|_| invalid())?;
    let (scheme, default_port) = match uri.scheme_str() {
        Some("https") => ("https", 443),
        Some("http") => ("http", 80),
        _ => return Err(invalid()),
    };
    let host = uri
        .host()
        .filter(|host| !host.is_empty())
        .ok_or_else(invalid)?
        .to_ascii_lowercase();
    Ok(match uri.port_u16() {
        Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// The token and the key of `vapid t=<token>, k=<key>` (RFC 8292 §3), in either order.
fn parse_header(value: &str) -> Result<(&str, &str), VapidError> {
    let (scheme, params) = value.trim().split_once(' ').ok_or(VapidError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("vapid") {
        return Err(VapidError::Malformed);
    }
    let (mut token, mut key) = (None, None);
    for param in params.split(',') {
        let slot = match param.trim().split_once('=') {
            Some(("t", value)) => token.replace(value),
            Some(("k", value)) => key.replace(value),
            _ => return Err(VapidError::Malformed),
        };
        if slot.is_some() {
            return Err(VapidError::Malformed);
        }
    }
    token.zip(key).ok_or(VapidError::Malformed)
}

/// `k`: an uncompressed P-256 point, base64url.
fn parse_key(key: &str) -> Result<VerifyingKey, VapidError> {
    let point = URL_SAFE_NO_PAD
        .decode(key)
        .map_err(|_| VapidError::Malformed)?;
    if point.len() != 65 || point.first() != Some(&0x04) {
        return Err(VapidError::Malformed);
    }
    VerifyingKey::from_sec1_bytes(&point).map_err(|_| VapidError::Malformed)
}

/// The claims of `token` once its ES256 signature (raw r || s) verifies with `key`.
fn verify_token(token: &str, key: &VerifyingKey) -> Result<Claims, VapidError> {
    let (signed, signature) = token.rsplit_once('.').ok_or(VapidError::Malformed)?;
    let (header, claims) = signed.split_once('.').ok_or(VapidError::Malformed)?;
    let header: JoseHeader = decode_json(header)?;
    if header.alg != "ES256" {
        return Err(VapidError::Malformed);
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .ok()
        .and_then(|bytes| Signature::from_slice(&bytes).ok())
        .ok_or(VapidError::Malformed)?;
    key.verify(signed.as_bytes(), &signature)
        .map_err(|_| VapidError::BadSignature)?;
    decode_json(claims)
}

fn decode_json<T: serde::de::DeserializeOwned>(segment: &str) -> Result<T, VapidError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| VapidError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| VapidError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_750_000_000;
    const ENDPOINT: &str = "https://push.example.net/wpush/v2/gAAAAABm";
    const AUDIENCE: &str = "https://push.example.net";
    const SUBJECT: &str = "mailto:ops@astral.example";

    /// The token and the key of a header we made.
    fn parts(header: &str) -> (String, String) {
        let (token, key) = parse_header(header).unwrap();
        (token.to_owned(), key.to_owned())
    }

    #[test]
    fn an_authorization_verifies_for_its_push_service() {
        let key = VapidKey::generate();
        let header = key.authorization(ENDPOINT, SUBJECT, NOW).unwrap();
        assert!(header.starts_with("vapid t=ey"), "{header}");
        let verified = verify(&header, AUDIENCE, NOW).unwrap();
        assert_eq!(
            verified,
            VerifiedVapid {
                public_key_base64url: key.public_key_base64url(),
                subject: SUBJECT.to_owned(),
                expires: NOW + 12 * 60 * 60,
            }
        );
    }

    #[test]
    fn the_audience_is_the_endpoints_origin() {
        for (endpoint, origin_) in [
            (
                "https://push.example.net/a/b?c=d",
                "https://push.example.net",
            ),
            ("https://Push.Example.NET:443/a", "https://push.example.net"),
            (
                "https://push.example.net:8443/a",
                "https://push.example.net:8443",
            ),
            ("http://127.0.0.1:4100/push/x", "http://127.0.0.1:4100"),
            ("http://user@[::1]:80/push", "http://[::1]"),
        ] {
            assert_eq!(origin(endpoint).unwrap(), origin_, "{endpoint}");
        }
        for endpoint in ["/push/x", "ftp://example.net/x", "not a url", ""] {
            assert!(origin(endpoint).is_err(), "{endpoint}");
        }
    }

    #[test]
    fn a_tampered_claim_is_refused() {
        let key = VapidKey::generate();
        let (token, k) = parts(&key.authorization(ENDPOINT, SUBJECT, NOW).unwrap());
        let mut segments: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"aud":"{AUDIENCE}","exp":{},"sub":"mailto:mallory@example.net"}}"#,
            NOW + 60
        ));
        segments[1] = &forged;
        let header = format!("vapid t={}, k={k}", segments.join("."));
        assert_eq!(
            verify(&header, AUDIENCE, NOW),
            Err(VapidError::BadSignature)
        );
    }

    #[test]
    fn a_tampered_signature_is_refused() {
        let key = VapidKey::generate();
        let (token, k) = parts(&key.authorization(ENDPOINT, SUBJECT, NOW).unwrap());
        let (signed, signature) = token.rsplit_once('.').unwrap();
        let mut signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        signature[10] ^= 0x01;
        let header = format!(
            "vapid t={signed}.{}, k={k}",
            URL_SAFE_NO_PAD.encode(signature)
        );
        assert_eq!(
            verify(&header, AUDIENCE, NOW),
            Err(VapidError::BadSignature)
        );
    }

    #[test]
    fn a_token_presented_with_another_key_is_refused() {
        let (token, _) = parts(
            &VapidKey::generate()
                .authorization(ENDPOINT, SUBJECT, NOW)
                .unwrap(),
        );
        let other = VapidKey::generate().public_key_base64url();
        let header = format!("vapid k={other}, t={token}");
        assert_eq!(
            verify(&header, AUDIENCE, NOW),
            Err(VapidError::BadSignature)
        );
    }

    #[test]
    fn a_token_for_another_push_service_is_refused() {
        let header = VapidKey::generate()
            .authorization(ENDPOINT, SUBJECT, NOW)
            .unwrap();
        assert_eq!(
            verify(&header, "https://push.example.org", NOW),
            Err(VapidError::WrongAudience {
                expected: "https://push.example.org".to_owned(),
                found: AUDIENCE.to_owned(),
            })
        );
    }

    #[test]
    fn an_expired_token_is_refused() {
        let header = VapidKey::generate()
            .authorization(ENDPOINT, SUBJECT, NOW)
            .unwrap();
        assert!(verify(&header, AUDIENCE, NOW + VALIDITY_SECS - 1).is_ok());
        assert_eq!(
            verify(&header, AUDIENCE, NOW + VALIDITY_SECS),
            Err(VapidError::Expired)
        );
    }

    #[test]
    fn a_token_expiring_more_than_a_day_ahead_is_refused() {
        // Signed by a clock 13 hours ahead: it expires 25 hours from the push service's now.
        let header = VapidKey::generate()
            .authorization(ENDPOINT, SUBJECT, NOW + 13 * 60 * 60)
            .unwrap();
        assert_eq!(verify(&header, AUDIENCE, NOW), Err(VapidError::TooLong));
    }

    #[test]
    fn a_malformed_header_is_refused() {
        let key = VapidKey::generate();
        let (token, k) = parts(&key.authorization(ENDPOINT, SUBJECT, NOW).unwrap());
        let hs256 = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(r#"{"typ":"JWT","alg":"HS256"}"#),
            token.split_once('.').unwrap().1
        );
        for header in [
            String::new(),
            format!("Bearer {token}"),
            format!("vapid t={token}"),
            format!("vapid k={k}"),
            format!("vapid t={token}, k={k}, t={token}"),
            format!("vapid t={token}, k={k}="),
            format!("vapid t={token}, k={}", &k[..40]),
            format!("vapid t={}, k={k}", &token[..token.len() - 3]),
            format!("vapid t=a.b.c, k={k}"),
            format!("vapid t={hs256}, k={k}"),
        ] {
            assert_eq!(
                verify(&header, AUDIENCE, NOW),
                Err(VapidError::Malformed),
                "{header}"
            );
        }
    }

    #[test]
    fn the_key_survives_a_pem_round_trip() {
        let key = VapidKey::generate();
        let pem = key.to_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
        let again = VapidKey::from_pem(&pem).unwrap();
        assert_eq!(again.public_key_base64url(), key.public_key_base64url());
        let header = again.authorization(ENDPOINT, SUBJECT, NOW).unwrap();
        assert!(verify(&header, AUDIENCE, NOW).is_ok());
        assert_eq!(
            VapidKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
                .err(),
            Some(VapidError::InvalidKey)
        );
    }

    #[test]
    fn the_public_key_is_an_uncompressed_point_in_base64url() {
        let key = VapidKey::generate();
        let public = key.public_key_base64url();
        assert_eq!(public.len(), 87);
        let point = URL_SAFE_NO_PAD.decode(&public).unwrap();
        assert_eq!((point.len(), point[0]), (65, 0x04));
        assert_eq!(format!("{key:?}"), format!("VapidKey({public:?})"));
    }
}
