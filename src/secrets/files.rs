//! The secrets directory and its files, readable by their owner only.

use anyhow::{Context as _, bail};
use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// Characters a path written into the env files (unquoted) or nats.conf cannot hold.
const UNSAFE_IN_PATHS: &str = "\"'\\$#";

/// Creates `dir` (0700) or takes an existing empty one (made 0700); refuses one that holds
/// anything. Its canonical path, which the files name.
pub(super) fn prepare_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "{} is not empty: secrets are written only into a new or empty directory, \
                     never over existing ones",
                    dir.display()
                );
            }
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => create_private_dir(dir)?,
        Err(error) => return Err(error).with_context(|| format!("read {}", dir.display())),
    }
    std::fs::set_permissions(dir, Permissions::from_mode(0o700))
        .with_context(|| format!("make {} private (0700)", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("find the absolute path of {}", dir.display()))?;
    check_plain(&dir)?;
    Ok(dir)
}

/// Creates `dir` (0700); its missing parents get the usual permissions.
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if let Some(parent) = dir.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    }
    DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("create {}", dir.display()))
}

/// Refuses a path the env files could not hold as an unquoted value.
fn check_plain(dir: &Path) -> anyhow::Result<()> {
    let text = dir
        .to_str()
        .with_context(|| format!("{} is not UTF-8", dir.display()))?;
    let unsafe_char = |c: char| c.is_whitespace() || c.is_control() || UNSAFE_IN_PATHS.contains(c);
    if let Some(c) = text.chars().find(|c| unsafe_char(*c)) {
        bail!("{text} contains {c:?}, which the env files cannot hold: choose another directory");
    }
    Ok(())
}

/// Writes a new file that only its owner can read (0600).
pub(super) fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("create {}", path.display()))?;
    // The umask may take bits away from `mode`; say exactly what the file is.
    file.set_permissions(Permissions::from_mode(0o600))
        .with_context(|| format!("make {} private (0600)", path.display()))?;
    file.write_all(contents.as_bytes())
        .with_context(|| format!("write {}", path.display()))
}
