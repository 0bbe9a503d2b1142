//! Garage, the S3-compatible store that keeps the attachments' bytes in Compose and
//! Kubernetes: its `rpc_secret` and admin API token, and the messaging service's S3 access key
//! in the form Garage's `garage key import` and admin API (`POST /v1/key/import`) accept,
//! which the deployment's bootstrap (`deploy/garage/bootstrap.sh`) imports.
//!
//! Each file holds its value alone, without a line break: Garage trims one, but Kubernetes
//! hands a Secret's bytes to an environment variable (`ASTRAL_S3_ACCESS_KEY_ID`) as they are,
//! and an S3 client signs with exactly what it reads.

use super::files::write_private;
use super::keys::{hex, random_bytes};
use super::{Layout, Role};

/// The roles that hold an S3 access key: the messaging service, the attachments' only owner.
pub(super) const S3_ROLES: [Role; 1] = [Role::Messaging];

/// A role's S3 access key id (`GK` and 24 lowercase hex digits), which its env file names.
pub(super) struct S3Key {
    pub(super) role: Role,
    pub(super) id: String,
}

/// Writes `garage.rpc-secret` (32 random bytes, hex), `garage.admin-token` (likewise), and for
/// each role of [`S3_ROLES`] `<role>.s3.id` (`GK` + 12 random bytes, hex) and
/// `<role>.s3.secret` (32 random bytes, hex). Returns the key ids.
pub(super) fn write(layout: &Layout) -> anyhow::Result<Vec<S3Key>> {
    write_private(&layout.garage_rpc_secret(), &hex(&random_bytes::<32>()))?;
    write_private(&layout.garage_admin_token(), &hex(&random_bytes::<32>()))?;
    S3_ROLES
        .into_iter()
        .map(|role| {
            let id = format!("GK{}", hex(&random_bytes::<12>()));
            write_private(&layout.s3_key_id(role), &id)?;
            write_private(&layout.s3_secret_key(role), &hex(&random_bytes::<32>()))?;
            Ok(S3Key { role, id })
        })
        .collect()
}
