//! A push message's payload encrypted for one browser subscription: RFC 8291's key derivation
//! into RFC 8188's `aes128gcm` content coding, as the single record Web Push allows.
//!
//! Push services relay the body without being able to read it: only the browser holding the
//! subscription's private key and auth secret can. `decrypt` is that browser's side, here so
//! that tests can read what was sent.

use aes_gcm::aead::AeadInPlace as _;
use aes_gcm::{Aes128Gcm, KeyInit as _};
use hkdf::Hkdf;
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use p256::{PublicKey, SecretKey};
use rand::RngCore as _;
use rand::rngs::OsRng;
use sha2::Sha256;

/// The record size written in the header: the body size every push service must accept.
pub const RECORD_SIZE: u32 = 4096;
/// The largest payload: header, payload, delimiter and tag fit in [`RECORD_SIZE`] bytes
/// (RFC 8291 §4), 4096 − 86 − 1 − 16.
pub const MAX_PAYLOAD: usize = RECORD_SIZE as usize - HEADER_LEN - 1 - TAG_LEN;

const SALT_LEN: usize = 16;
/// An uncompressed P-256 point: 0x04 | x | y.
const POINT_LEN: usize = 65;
const AUTH_LEN: usize = 16;
const TAG_LEN: usize = 16;
/// salt | rs (u32) | idlen (u8) | keyid (the sender's public key).
const HEADER_LEN: usize = SALT_LEN + 4 + 1 + POINT_LEN;
/// The padding delimiter that marks the last record (0x01 would announce another).
const LAST_RECORD: u8 = 0x02;

/// Why a payload could not be encrypted or a body decrypted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EncryptError {
    #[error("a push payload has at most {MAX_PAYLOAD} bytes, this one has {0}")]
    TooLarge(usize),
    #[error("the subscription's p256dh is not an uncompressed P-256 point")]
    InvalidPublicKey,
    #[error("the subscription's auth secret is not {AUTH_LEN} bytes")]
    InvalidAuthSecret,
    #[error("the body is not a single aes128gcm record")]
    Malformed,
    #[error("the record does not decrypt with this subscription's keys")]
    Undecryptable,
    /// Cannot happen with the fixed lengths used here; a variant so that no path can panic.
    #[error("the cipher refused its input")]
    Cipher,
}

/// The `aes128gcm` body carrying `payload` to the subscription whose keys are `ua_public`
/// (its `p256dh`: a 65-byte uncompressed point) and `auth_secret` (its 16-byte `auth`).
/// Each call uses a fresh salt and a fresh ephemeral key, as RFC 8291 requires.
pub fn encrypt(
    payload: &[u8],
    ua_public: &[u8],
    auth_secret: &[u8],
) -> Result<Vec<u8>, EncryptError> {
    let as_private = SecretKey::random(&mut OsRng);
    let mut salt = [0; SALT_LEN];
    OsRng.fill_bytes(&mut salt);
    encrypt_with(payload, ua_public, auth_secret, &as_private, &salt)
}

/// Whether a subscription's keys are usable: `ua_public` an uncompressed P-256 point and
/// `auth_secret` 16 bytes (checked when a browser subscribes, not at its first push).
pub fn check_keys(ua_public: &[u8], auth_secret: &[u8]) -> Result<(), EncryptError> {
    parse_point(ua_public).ok_or(EncryptError::InvalidPublicKey)?;
    parse_auth(auth_secret)?;
    Ok(())
}

/// [`encrypt`] with the ephemeral key and salt given: what RFC 8291's example fixes.
fn encrypt_with(
    payload: &[u8],
    ua_public: &[u8],
    auth_secret: &[u8],
    as_private: &SecretKey,
    salt: &[u8; SALT_LEN],
) -> Result<Vec<u8>, EncryptError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(EncryptError::TooLarge(payload.len()));
    }
    let ua = parse_point(ua_public).ok_or(EncryptError::InvalidPublicKey)?;
    let auth = parse_auth(auth_secret)?;
    let as_public = as_private.public_key().to_encoded_point(false);
    let shared = p256::ecdh::diffie_hellman(as_private.to_nonzero_scalar(), ua.as_affine());
    let keys = derive(
        shared.raw_secret_bytes(),
        auth,
        ua_public,
        as_public.as_bytes(),
        salt,
    )?;

    let mut record = Vec::with_capacity(payload.len() + 1 + TAG_LEN);
    record.extend_from_slice(payload);
    record.push(LAST_RECORD);
    Aes128Gcm::new(&keys.cek.into())
        .encrypt_in_place(&keys.nonce.into(), b"", &mut record)
        .map_err(|_| EncryptError::Cipher)?;

    let mut body = Vec::with_capacity(HEADER_LEN + record.len());
    body.extend_from_slice(salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(POINT_LEN as u8);
    body.extend_from_slice(as_public.as_bytes());
    body.extend_from_slice(&record);
    Ok(body)
}

/// The payload of `body`, read as the browser holding `ua_private` and `auth_secret` would;
/// anything malformed, tampered with or meant for other keys is an error.
pub fn decrypt(
    body: &[u8],
    ua_private: &SecretKey,
    auth_secret: &[u8],
) -> Result<Vec<u8>, EncryptError> {
    let auth = parse_auth(auth_secret)?;
    let header = Header::parse(body)?;
    let as_public = parse_point(header.keyid).ok_or(EncryptError::Malformed)?;
    let ua_public = ua_private.public_key().to_encoded_point(false);
    let shared = p256::ecdh::diffie_hellman(ua_private.to_nonzero_scalar(), as_public.as_affine());
    let keys = derive(
        shared.raw_secret_bytes(),
        auth,
        ua_public.as_bytes(),
        header.keyid,
        header.salt,
    )?;
    let mut plain = header.record.to_vec();
    Aes128Gcm::new(&keys.cek.into())
        .decrypt_in_place(&keys.nonce.into(), b"", &mut plain)
        .map_err(|_| EncryptError::Undecryptable)?;
    unpad(plain)
}

/// The parts of an `aes128gcm` body, checked to hold exactly one record.
struct Header<'a> {
    salt: &'a [u8; SALT_LEN],
    keyid: &'a [u8],
    record: &'a [u8],
}

impl<'a> Header<'a> {
    fn parse(body: &'a [u8]) -> Result<Self, EncryptError> {
        let malformed = || EncryptError::Malformed;
        let (salt, rest) = body.split_first_chunk::<SALT_LEN>().ok_or_else(malformed)?;
        let (rs, rest) = rest.split_first_chunk::<4>().ok_or_else(malformed)?;
        let (&idlen, rest) = rest.split_first().ok_or_else(malformed)?;
        if usize::from(idlen) != POINT_LEN {
            return Err(malformed());
        }
        let (keyid, record) = rest
            .split_first_chunk::<POINT_LEN>()
            .ok_or_else(malformed)?;
        // One record: no longer than rs, and holding at least the delimiter and the tag.
        let rs = u32::from_be_bytes(*rs) as usize;
        if record.len() < 1 + TAG_LEN || record.len() > rs {
            return Err(malformed());
        }
        Ok(Self {
            salt,
            keyid,
            record,
        })
    }
}

/// The content-encryption key and nonce of one message.
struct ContentKeys {
    cek: [u8; 16],
    nonce: [u8; 12],
}

/// RFC 8291 §3.4: the ECDH secret bound to the auth secret and both public keys, then RFC
/// 8188 §2.2's key and nonce from the message's salt (the first record's nonce is unchanged
/// by the sequence number 0).
fn derive(
    ecdh_secret: &[u8],
    auth: &[u8],
    ua_public: &[u8],
    as_public: &[u8],
    salt: &[u8],
) -> Result<ContentKeys, EncryptError> {
    let mut ikm = [0; 32];
    Hkdf::<Sha256>::new(Some(auth), ecdh_secret)
        .expand_multi_info(&[b"WebPush: info\0", ua_public, as_public], &mut ikm)
        .map_err(|_| EncryptError::Cipher)?;
    let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let mut keys = ContentKeys {
        cek: [0; 16],
        nonce: [0; 12],
    };
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut keys.cek)
        .map_err(|_| EncryptError::Cipher)?;
    prk.expand(b"Content-Encoding: nonce\0", &mut keys.nonce)
        .map_err(|_| EncryptError::Cipher)?;
    Ok(keys)
}

/// A P-256 point in the uncompressed form only: that is what browsers send, and the key
/// derivation binds these exact bytes (a compressed point would derive other keys).
fn parse_point(bytes: &[u8]) -> Option<PublicKey> {
    if bytes.len() != POINT_LEN || bytes.first() != Some(&0x04) {
        return None;
    }
    PublicKey::from_sec1_bytes(bytes).ok()
}

fn parse_auth(auth_secret: &[u8]) -> Result<&[u8], EncryptError> {
    if auth_secret.len() == AUTH_LEN {
        Ok(auth_secret)
    } else {
        Err(EncryptError::InvalidAuthSecret)
    }
}

/// Strips RFC 8188's padding: any zeros after the delimiter, which must be the last record's.
fn unpad(mut plain: Vec<u8>) -> Result<Vec<u8>, EncryptError> {
    let delimiter = plain
        .iter()
        .rposition(|&byte| byte != 0)
        .ok_or(EncryptError::Malformed)?;
    if plain[delimiter] != LAST_RECORD {
        return Err(EncryptError::Malformed);
    }
    plain.truncate(delimiter);
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    /// RFC 8291 Appendix A.
    const PLAINTEXT: &[u8] = b"When I grow up, I want to be a watermelon";
    const AS_PRIVATE: &str = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
    const UA_PRIVATE: &str = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
    const UA_PUBLIC: &str =
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
    const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";
    const SALT: &str = "DGv6ra1nlYgDCS1FRnbzlw";
    const BODY: &str = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN";

    fn b64(text: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(text).unwrap()
    }

    /// A subscription's keys: its private key, its p256dh and its auth secret.
    fn subscription() -> (SecretKey, Vec<u8>, [u8; AUTH_LEN]) {
        let private = SecretKey::random(&mut OsRng);
        let public = private
            .public_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec();
        let mut auth = [0; AUTH_LEN];
        OsRng.fill_bytes(&mut auth);
        (private, public, auth)
    }

    #[test]
    fn the_rfc_8291_example_encrypts_byte_for_byte() {
        let as_private = SecretKey::from_slice(&b64(AS_PRIVATE)).unwrap();
        let salt: [u8; SALT_LEN] = b64(SALT).try_into().unwrap();
        let body = encrypt_with(PLAINTEXT, &b64(UA_PUBLIC), &b64(AUTH), &as_private, &salt);
        assert_eq!(URL_SAFE_NO_PAD.encode(body.unwrap()), BODY);
    }

    #[test]
    fn the_rfc_8291_example_decrypts() {
        let ua_private = SecretKey::from_slice(&b64(UA_PRIVATE)).unwrap();
        assert_eq!(
            decrypt(&b64(BODY), &ua_private, &b64(AUTH)).unwrap(),
            PLAINTEXT
        );
    }

    #[test]
    fn a_payload_round_trips_and_each_message_has_fresh_keys() {
        let (private, public, auth) = subscription();
        let first = encrypt(b"hello push", &public, &auth).unwrap();
        let second = encrypt(b"hello push", &public, &auth).unwrap();
        assert_eq!(first.len(), HEADER_LEN + 10 + 1 + TAG_LEN);
        assert_ne!(first[..HEADER_LEN], second[..HEADER_LEN], "salt and key");
        assert_eq!(decrypt(&first, &private, &auth).unwrap(), b"hello push");
        assert_eq!(decrypt(&second, &private, &auth).unwrap(), b"hello push");
        assert_eq!(
            decrypt(&encrypt(b"", &public, &auth).unwrap(), &private, &auth).unwrap(),
            b""
        );
    }

    #[test]
    fn a_tampered_body_is_refused_wherever_it_was_changed() {
        let (private, public, auth) = subscription();
        let body = encrypt(b"hello push", &public, &auth).unwrap();
        // rs only says where records split: not authenticated, and a larger one changes
        // nothing for a single record. Every other byte is bound to the keys or the tag.
        let rs = SALT_LEN..SALT_LEN + 4;
        for at in (0..body.len()).filter(|at| !rs.contains(at)) {
            let mut tampered = body.clone();
            tampered[at] ^= 0x01;
            assert!(decrypt(&tampered, &private, &auth).is_err(), "byte {at}");
        }
        let mut tampered = body.clone();
        tampered[HEADER_LEN] ^= 0x01;
        assert_eq!(
            decrypt(&tampered, &private, &auth),
            Err(EncryptError::Undecryptable)
        );
        let mut shorter_records = body.clone();
        shorter_records[rs].copy_from_slice(&18u32.to_be_bytes());
        assert_eq!(
            decrypt(&shorter_records, &private, &auth),
            Err(EncryptError::Malformed),
            "a second record"
        );
    }

    #[test]
    fn the_wrong_auth_secret_or_private_key_is_refused() {
        let (private, public, auth) = subscription();
        let body = encrypt(b"hello push", &public, &auth).unwrap();
        let (other_private, _, other_auth) = subscription();
        assert_eq!(
            decrypt(&body, &private, &other_auth),
            Err(EncryptError::Undecryptable)
        );
        assert_eq!(
            decrypt(&body, &other_private, &auth),
            Err(EncryptError::Undecryptable)
        );
        assert_eq!(
            decrypt(&body, &private, &auth[..15]),
            Err(EncryptError::InvalidAuthSecret)
        );
    }

    #[test]
    fn a_payload_over_3993_bytes_is_refused() {
        let (private, public, auth) = subscription();
        let largest = encrypt(&[7; MAX_PAYLOAD], &public, &auth).unwrap();
        assert_eq!(MAX_PAYLOAD, 3993);
        assert_eq!(largest.len(), 4096);
        assert_eq!(
            decrypt(&largest, &private, &auth).unwrap(),
            [7; MAX_PAYLOAD]
        );
        assert_eq!(
            encrypt(&[7; MAX_PAYLOAD + 1], &public, &auth),
            Err(EncryptError::TooLarge(MAX_PAYLOAD + 1))
        );
    }

    #[test]
    fn keys_that_are_not_a_subscriptions_are_refused() {
        let (private, public, auth) = subscription();
        let compressed = private.public_key().to_encoded_point(true);
        let mut off_the_curve = public.clone();
        off_the_curve[64] ^= 0x01;
        for ua_public in [
            compressed.as_bytes(),
            &off_the_curve[..],
            &public[..64],
            &[],
        ] {
            assert_eq!(
                encrypt(b"hi", ua_public, &auth),
                Err(EncryptError::InvalidPublicKey)
            );
        }
        for auth_secret in [&auth[..15], &[0; 17][..], &[]] {
            assert_eq!(
                encrypt(b"hi", &public, auth_secret),
                Err(EncryptError::InvalidAuthSecret)
            );
        }
    }

    #[test]
    fn truncated_bodies_are_refused_without_panicking() {
        let (private, public, auth) = subscription();
        let body = encrypt(b"hello push", &public, &auth).unwrap();
        for len in 0..(HEADER_LEN + 20).min(body.len()) {
            assert!(
                decrypt(&body[..len], &private, &auth).is_err(),
                "{len} bytes"
            );
        }
    }

    #[test]
    fn padding_after_the_last_records_delimiter_is_stripped() {
        assert_eq!(unpad(vec![1, 2, 2, 0, 0]), Ok(vec![1, 2]));
        assert_eq!(unpad(vec![2]), Ok(vec![]));
        assert_eq!(
            unpad(vec![1, 1, 0]),
            Err(EncryptError::Malformed),
            "not last"
        );
        assert_eq!(unpad(vec![0, 0]), Err(EncryptError::Malformed));
        assert_eq!(unpad(vec![]), Err(EncryptError::Malformed));
    }
}
