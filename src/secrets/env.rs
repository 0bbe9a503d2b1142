//! Each role's env file (`KEY=VALUE` lines naming the files that role needs, by absolute
//! path), and the reader that turns one back into pairs.

use super::files::write_private;
use super::{Layout, ROLES, Role};
use anyhow::Context as _;
use std::path::{Path, PathBuf};

/// Writes `<role>.env` for every role.
pub(super) fn write(layout: &Layout) -> anyhow::Result<()> {
    for role in Role::ALL {
        let mut text = format!(
            "# The files of Astral's {} role (written by astral-admin secrets init).\n",
            role.as_str()
        );
        for (key, path) in entries(layout, role) {
            text.push_str(&format!("{key}={}\n", path.display()));
        }
        write_private(&layout.env(role), &text)?;
    }
    Ok(())
}

/// The variables of `role`'s env file.
fn entries(layout: &Layout, role: Role) -> Vec<(&'static str, PathBuf)> {
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
