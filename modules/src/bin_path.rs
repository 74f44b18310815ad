//! Finding the host's own tools as Ansible's `get_bin_path` does: `PATH`, then the sbin folders.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::ModuleError;

/// The folders searched, in order: `PATH`, then `/sbin`, `/usr/sbin`, `/usr/local/sbin`.
fn search_path() -> Vec<String> {
    let mut dirs: Vec<String> = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .filter(|d| !d.is_empty())
        .map(str::to_string)
        .collect();
    for extra in ["/sbin", "/usr/sbin", "/usr/local/sbin"] {
        if !dirs.iter().any(|d| d == extra) {
            dirs.push(extra.to_string());
        }
    }
    dirs
}

/// The full path of an executable, or `None`.
pub(crate) fn find(name: &str) -> Option<PathBuf> {
    search_path().into_iter().find_map(|dir| {
        let path = PathBuf::from(dir).join(name);
        let meta = std::fs::metadata(&path).ok()?;
        (meta.is_file() && meta.permissions().mode() & 0o111 != 0).then_some(path)
    })
}

/// The full path of an executable the module cannot do without, failing with Ansible's message.
pub(crate) fn required(name: &str) -> Result<String, ModuleError> {
    find(name).map(|p| p.display().to_string()).ok_or_else(|| {
        ModuleError::Failed(format!(
            "Failed to find required executable \"{name}\" in paths: {}",
            search_path().join(":")
        ))
    })
}
