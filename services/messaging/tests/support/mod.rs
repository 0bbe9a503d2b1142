//! What the messaging service's test binaries share.

use astral_common::testing::S3Server;
use astral_messaging::storage::{Storage, StorageConfig};

/// `server`'s bucket, signed in with `secret` (the server's own, or a wrong one).
pub fn bucket(server: &S3Server, secret: &str) -> Storage {
    Storage::open(&StorageConfig {
        url: format!("s3://{}", server.bucket),
        s3_endpoint: Some(server.endpoint.clone()),
        s3_region: "us-east-1".into(),
        s3_access_key_id: Some(server.access_key_id.clone()),
        s3_secret_access_key: Some(secret.to_owned()),
    })
    .unwrap_or_else(|error| panic!("the test bucket: {error:#}"))
}
