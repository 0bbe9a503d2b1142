//! Benchmark: what checking an access token costs, the first time (an Ed25519 verification)
//! and every time after (a SHA-256 of the token and a lookup), as every request and every
//! WebSocket call does.
//!
//! `cargo run --release -p astral-common --example token_verify -- [tokens] [uses each]`

#![allow(clippy::unwrap_used)] // a benchmark fails loudly

use astral_common::tokens::{Claims, TokenVerifier};
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use std::time::Instant;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let tokens = args.first().copied().unwrap_or(10_000);
    let uses = args.get(1).copied().unwrap_or(10);
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let encoding = jsonwebtoken::EncodingKey::from_ed_der(key.to_pkcs8_der().unwrap().as_bytes());
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some("k".into());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .cast_signed();
    let signed: Vec<String> = (0..tokens)
        .map(|n| {
            let claims = Claims {
                sub: n.to_string(),
                sid: format!("s{n}"),
                iat: now,
                exp: now + 900,
                name: format!("user{n}"),
            };
            jsonwebtoken::encode(&header, &claims, &encoding).unwrap()
        })
        .collect();
    let verifier = TokenVerifier::default();
    verifier.set_keys([("k".to_owned(), key.verifying_key().to_bytes().to_vec())]);
    let started = Instant::now();
    for token in &signed {
        verifier.verify(token).unwrap();
    }
    let first = started.elapsed();
    let started = Instant::now();
    for _ in 0..uses {
        for token in &signed {
            verifier.verify(token).unwrap();
        }
    }
    let again = started.elapsed();
    let per = |elapsed: std::time::Duration, n: usize| elapsed.as_secs_f64() * 1e6 / n as f64;
    println!(
        "{tokens} tokens: first check {:.2} µs each ({:.0}/s); {uses} uses more of each {:.2} µs each ({:.0}/s)",
        per(first, tokens),
        tokens as f64 / first.as_secs_f64(),
        per(again, tokens * uses),
        (tokens * uses) as f64 / again.as_secs_f64(),
    );
}
