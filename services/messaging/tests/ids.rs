//! Id nodes leased from the database (the same `id_nodes` table in every service's), on
//! SQLite and PostgreSQL: processes sharing a database never hold the same node at once.

#![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap does

use astral_common::ids::{LEASE, claim, renew};
use astral_common::testing::MigratedDatabase;
use std::collections::HashSet;

const LEASE_MS: i64 = LEASE.as_millis() as i64;

#[tokio::test]
async fn processes_claiming_at_once_get_different_nodes_until_none_is_left() {
    for MigratedDatabase { backend, pool, .. } in
        MigratedDatabase::both(&astral_messaging::MIGRATOR).await
    {
        // Every node claimed by a different holder, 64 at a time.
        let mut nodes = HashSet::new();
        for round in 0..16 {
            let claims = (0..64).map(|i| claim(&pool, round * 64 + i, 1_000));
            for node in futures::future::join_all(claims).await {
                assert!(
                    nodes.insert(node.unwrap()),
                    "{backend}: a node claimed twice"
                );
            }
        }
        assert_eq!(nodes.len(), 1024, "{backend}");
        assert!(
            claim(&pool, 5000, 1_000).await.is_err(),
            "{backend}: none left"
        );
        // A lease that ran out is free again; the one who held it can no longer renew it.
        let node = claim(&pool, 5000, 1_000 + LEASE_MS + 1).await.unwrap();
        assert!(
            renew(&pool, node, 5000, 2_000 + LEASE_MS).await.unwrap(),
            "{backend}"
        );
        for holder in 0..1024 {
            assert!(
                !renew(&pool, node, holder, 2_000 + LEASE_MS).await.unwrap(),
                "{backend}: the former holder lost it"
            );
        }
    }
}
