//! The roles of a deployment, and where each file lives in a secrets directory.

use std::path::PathBuf;

/// A process of a deployment that holds credentials of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Auth,
    Social,
    Messaging,
    Gateway,
    Admin,
}

impl Role {
    pub(super) const ALL: [Role; 5] = [
        Role::Auth,
        Role::Social,
        Role::Messaging,
        Role::Gateway,
        Role::Admin,
    ];

    pub(super) const fn name(self) -> &'static str {
        match self {
            Role::Auth => "auth",
            Role::Social => "social",
            Role::Messaging => "messaging",
            Role::Gateway => "gateway",
            Role::Admin => "admin",
        }
    }

    pub(super) fn parse(name: &str) -> Option<Role> {
        Self::ALL.into_iter().find(|role| role.name() == name)
    }

    /// Publishes events, so signs them with a key of its own.
    pub(super) fn signs_events(self) -> bool {
        matches!(self, Role::Auth | Role::Social | Role::Messaging)
    }

    /// Receives events, so verifies their signatures.
    pub(super) fn verifies_events(self) -> bool {
        self != Role::Admin
    }
}

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
        self.file(&format!("{}.pem", role.name()))
    }

    pub(super) fn key(&self, role: Role) -> PathBuf {
        self.file(&format!("{}.key", role.name()))
    }

    pub(super) fn nkey(&self, role: Role) -> PathBuf {
        self.file(&format!("{}.nk", role.name()))
    }

    pub(super) fn event_key(&self, role: Role) -> PathBuf {
        self.file(&format!("{}.event.key", role.name()))
    }

    pub(super) fn event_keys(&self) -> PathBuf {
        self.file("event-keys.pub")
    }

    pub(super) fn key_encryption_key(&self) -> PathBuf {
        self.file("auth.kek")
    }

    pub(super) fn nats_config(&self) -> PathBuf {
        self.file("nats.conf")
    }

    pub(super) fn jetstream(&self) -> PathBuf {
        self.file("jetstream")
    }

    pub(super) fn env(&self, role: Role) -> PathBuf {
        self.file(&format!("{}.env", role.name()))
    }
}
