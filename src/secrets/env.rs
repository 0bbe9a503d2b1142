//! Each role's env file (`KEY=VALUE` lines naming the files that role needs, by absolute
//! path, and the one value that is not a file: the id of the messaging service's S3 access
//! key), and the reader that turns one back into pairs.

use super::files::write_private;
use super::garage::S3Key;
use super::{Layout, ROLES, Role};
use anyhow::Context as _;
use std::path::{Path, PathBuf};

/// What a variable holds.
enum Value {
    /// The absolute path of a file of the secrets directory.
    File(PathBuf),
    /// The value itself (an S3 access key id: not secret, made per deployment).
    Text(String),
}

/// Writes `<role>.env` for every role; `s3_keys` are the ids of the roles' S3 access keys.
pub(super) fn write(layout: &Layout, s3_keys: &[S3Key]) -> anyhow::Result<()> {
    for role in Role::ALL {
        let mut text = format!(
            "# The files of Astral's {} role (written by astral-admin secrets init).\n",
            role.as_str()
        );
        for (key, value) in entries(layout, role, s3_keys) {
            match value {
                Value::File(path) => text.push_str(&format!("{key}={}\n", path.display())),
                Value::Text(value) => text.push_str(&format!("{key}={value}\n")),
            }
        }
        write_private(&layout.env(role), &text)?;
    }
    Ok(())
}

/// The variables of `role`'s env file.
fn entries(layout: &Layout, role: Role, s3_keys: &[S3Key]) -> Vec<(&'static str, Value)> {
    let mut entries = vec![
        ("ASTRAL_TLS_CA", layout.ca_cert()),
        ("ASTRAL_TLS_CERT", layout.cert(role)),
        ("ASTRAL_TLS_KEY", layout.key(role)),
        ("ASTRAL_NATS_NKEY", layout.nkey(role)),
    ];
    if role.verifies_events() {
        entries.push(("ASTRAL_EVENT_KEYS", layout.event_keys()));
    }
    if role.signs_events() {
        entries.push(("ASTRAL_EVENT_SIGNING_KEY", layout.event_key(role)));
    }
    if role == Role::Auth {
        entries.push(("ASTRAL_KEY_ENCRYPTION_KEY", layout.key_encryption_key()));
    }
    // Web Push: only the messaging service sends pushes. Its contact for the push services
    // (ASTRAL_VAPID_SUBJECT) is configuration, not a secret: Compose and Kubernetes set it.
    if role == Role::Messaging {
        entries.push(("ASTRAL_VAPID_KEY_FILE", layout.vapid_key()));
    }
    let mut entries: Vec<(&'static str, Value)> = entries
        .into_iter()
        .map(|(key, path)| (key, Value::File(path)))
        .collect();
    // The attachments' object store: the key's id as it is, its secret as a file. Where the
    // store is (ASTRAL_STORAGE_URL, ASTRAL_S3_ENDPOINT, ASTRAL_S3_REGION) is the deployment's
    // business, not a secret: Compose and Kubernetes set those.
    if let Some(key) = s3_keys.iter().find(|key| key.role == role) {
        entries.push(("ASTRAL_S3_ACCESS_KEY_ID", Value::Text(key.id.clone())));
        entries.push((
            "ASTRAL_S3_SECRET_ACCESS_KEY_FILE",
            Value::File(layout.s3_secret_key(role)),
        ));
    }
    entries
}

/// Reads `dir/<role>.env` back into `(KEY, VALUE)` pairs, skipping comments and blank lines.
pub fn role_env(dir: &Path, role: &str) -> anyhow::Result<Vec<(String, String)>> {
    let role = Role::parse(role)
        .with_context(|| format!("{role:?} is not a role (roles: {})", ROLES.join(", ")))?;
    let path = Layout::new(dir.to_path_buf()).env(role);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    parse(&text).with_context(|| format!("parse {}", path.display()))
}

fn parse(text: &str) -> anyhow::Result<Vec<(String, String)>> {
    text.lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .map(|(number, line)| {
            line.split_once('=')
                .map(|(key, value)| (key.to_owned(), value.to_owned()))
                .with_context(|| format!("line {number} is not KEY=VALUE"))
        })
        .collect()
}
