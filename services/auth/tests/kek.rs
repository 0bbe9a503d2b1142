//! The signing keys at rest: sealed with the key-encryption key, on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap does

use astral_auth::store::{Store, StoredKey};
use astral_auth::vault::WRONG_KEK;
use astral_auth::{AuthService, Kek, Settings};
use astral_common::testing::{MigratedDatabase, TestDatabase};
use astral_common::time;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::sync::Arc;

async fn stores() -> Vec<(&'static str, Store, TestDatabase)> {
    let mut stores = Vec::new();
    for MigratedDatabase {
        backend,
        pool,
        database,
    } in MigratedDatabase::both(&astral_auth::MIGRATOR).await
    {
        stores.push((
            backend,
            Store::new(
                pool.clone(),
                astral_common::outbox::Outbox::start(pool, astral_common::EventBus::local()),
            ),
            database,
        ));
    }
    stores
}

async fn start(store: &Store, kek: &Kek) -> Arc<AuthService> {
    AuthService::start(store.clone(), Some(kek.clone()), Settings::default())
        .await
        .unwrap()
}

/// Checks that every stored seed is sealed and that its clear form appears nowhere in the
/// row; returns the kids.
async fn assert_all_sealed(backend: &str, store: &Store, kek: &Kek) -> Vec<String> {
    let stored = store.signing_keys().await.unwrap();
    for StoredKey { kid, seed, .. } in &stored {
        assert!(seed.starts_with("v1:"), "{backend}: {kid} is not sealed");
        let clear = BASE64.encode(kek.open(kid, seed).unwrap());
        assert!(!seed.contains(&clear), "{backend}: {kid} holds its seed");
    }
    stored.into_iter().map(|key| key.kid).collect()
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

#[tokio::test]
async fn with_a_kek_no_seed_is_stored_in_clear_and_tokens_sign_verify_and_rotate() {
    for (backend, store, _db) in stores().await {
        let kek = Kek::random();
        let auth = start(&store, &kek).await;
        let first = assert_all_sealed(backend, &store, &kek).await;
        assert_eq!(first.len(), 1, "{backend}");
        let alice = auth
            .register("alice", "password1".into(), "t", "127.0.0.1")
            .await
            .unwrap();
        assert_eq!(kid_of(&alice.access_token), first[0], "{backend}");
        auth.authenticate(&alice.access_token).await.unwrap();

        let (rotated, _) = auth.rotate_signing_key().await.unwrap();
        assert_eq!(assert_all_sealed(backend, &store, &kek).await.len(), 2);
        let bob = auth
            .register("bob", "password2".into(), "t", "127.0.0.1")
            .await
            .unwrap();
        assert_eq!(kid_of(&bob.access_token), rotated, "{backend}");
        let published: Vec<String> = auth
            .public_keys()
            .await
            .unwrap()
            .into_iter()
            .map(|(kid, _)| kid)
            .collect();
        assert_eq!(published, [rotated.clone(), first[0].clone()], "{backend}");

        // Another start (a restart, a replica) opens the same sealed keys.
        let again = start(&store, &kek).await;
        again.authenticate(&alice.access_token).await.unwrap();
        again.authenticate(&bob.access_token).await.unwrap();
    }
}

#[tokio::test]
async fn a_legacy_clear_seed_is_sealed_in_place_at_start() {
    for (backend, store, _db) in stores().await {
        let seed = [9u8; 32];
        let clear = BASE64.encode(seed);
        store
            .insert_signing_key("legacy", &clear, time::now_ms())
            .await
            .unwrap();
        let kek = Kek::random();
        let auth = start(&store, &kek).await;
        let stored = store.signing_keys().await.unwrap();
        assert_eq!(stored.len(), 1, "{backend}: no new key was made");
        let StoredKey {
            kid, seed: sealed, ..
        } = &stored[0];
        assert_eq!(kid, "legacy");
        assert!(
            sealed.starts_with("v1:") && !sealed.contains(&clear),
            "{backend}"
        );
        assert_eq!(kek.open(kid, sealed).unwrap(), seed, "{backend}");

        // The same key still signs: what it signed before the migration still verifies.
        let public = ed25519_dalek::SigningKey::from_bytes(&seed)
            .verifying_key()
            .to_bytes()
            .to_vec();
        assert_eq!(
            auth.public_keys().await.unwrap(),
            [("legacy".to_owned(), public)]
        );
        let alice = auth
            .register("alice", "password1".into(), "t", "127.0.0.1")
            .await
            .unwrap();
        assert_eq!(kid_of(&alice.access_token), "legacy", "{backend}");
    }
}

#[tokio::test]
async fn a_wrong_kek_or_none_refuses_to_start_with_a_clear_message() {
    for (backend, store, _db) in stores().await {
        start(&store, &Kek::random()).await;
        let wrong = AuthService::start(store.clone(), Some(Kek::random()), Settings::default())
            .await
            .err()
            .unwrap();
        assert_eq!(wrong.to_string(), WRONG_KEK, "{backend}: {wrong:#}");
        assert!(WRONG_KEK.contains("wrong ASTRAL_KEY_ENCRYPTION_KEY?"));
        let none = AuthService::start(store.clone(), None, Settings::default())
            .await
            .err()
            .unwrap();
        let none = format!("{none:#}");
        assert!(
            none.contains("ASTRAL_KEY_ENCRYPTION_KEY"),
            "{backend}: {none}"
        );
    }
}
