//! The roles of a deployment, and where each file lives in a secrets directory.

use std::path::PathBuf;

pub(super) use astral_common::guard::Role;

/// Where each file lives in a secrets directory.
pub(super) struct Layout {
    dir: PathBuf,
}

impl Layout {
    pub(super) fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub(super) fn ca_cert(&self) -> PathBuf {
        self.file("ca.pem")
    }

    pub(super) fn ca_key(&self) -> PathBuf {
        self.file("ca.key")
    }

    pub(super) fn cert(&self, role: Role) -> PathBuf {
        self.file(&format!("{}.pem", role.as_str()))
    }

    pub(super) fn key(&self, role: Role) -> PathBuf {
        self.file(&format!("{}.key", role.as_str()))
    }

    pub(super) fn nkey(&self, role: Role) -> PathBuf {
        self.file(&format!("{}.nk", role.as_str()))
    }

    pub(super) fn event_key(&self, role: Role) -> PathBuf {
        self.file(&format!("{}.event.key", role.as_str()))
    }

    pub(super) fn event_keys(&self) -> PathBuf {
        self.file("event-keys.pub")
    }

    pub(super) fn key_encryption_key(&self) -> PathBuf {
        self.file("auth.kek")
    }

    /// The messaging service's Web Push (VAPID) key, which signs its pushes.
    pub(super) fn vapid_key(&self) -> PathBuf {
        self.file("messaging.vapid.pem")
    }

    pub(super) fn nats_config(&self) -> PathBuf {
        self.file("nats.conf")
    }

    pub(super) fn jetstream(&self) -> PathBuf {
        self.file("jetstream")
    }

    pub(super) fn env(&self, role: Role) -> PathBuf {
        self.file(&format!("{}.env", role.as_str()))
    }

    /// Garage's `rpc_secret` (its nodes' shared network key), for Garage only.
    pub(super) fn garage_rpc_secret(&self) -> PathBuf {
        self.file("garage.rpc-secret")
    }

    /// Garage's admin API token: Garage, and the bootstrap that configures it.
    pub(super) fn garage_admin_token(&self) -> PathBuf {
        self.file("garage.admin-token")
    }

    /// The id of `role`'s S3 access key (`GK…`; not secret, but made per deployment).
    pub(super) fn s3_key_id(&self, role: Role) -> PathBuf {
        self.file(&format!("{}.s3.id", role.as_str()))
    }

    /// The secret of `role`'s S3 access key.
    pub(super) fn s3_secret_key(&self, role: Role) -> PathBuf {
        self.file(&format!("{}.s3.secret", role.as_str()))
    }
}
