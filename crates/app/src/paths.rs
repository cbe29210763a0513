//! Where the app keeps its files.

use std::path::PathBuf;

use porthole_core::ssh_config::SshConfigPaths;

use crate::error::UiError;

/// Where the app keeps its files.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `profiles.toml` (no secrets).
    pub profiles: PathBuf,
    /// `settings.toml`.
    pub settings: PathBuf,
    /// `ports.toml`, the remembered local ports.
    pub ports: PathBuf,
    /// Where downloaded SSH keys go (a private directory is made inside); `None` for the
    /// system temp dir.
    pub keys_dir: Option<PathBuf>,
    /// `~/.ssh`, for the managed SSH config; `None` without a home directory.
    pub ssh: Option<SshConfigPaths>,
}

impl Paths {
    /// The platform locations: the config dir for the files, `$XDG_RUNTIME_DIR` (a
    /// per-user tmpfs) for SSH keys when it exists.
    pub fn default_locations() -> Result<Paths, UiError> {
        let dir = porthole_core::profiles::config_dir().ok_or_else(|| {
            UiError::new("io", "cannot find the config directory (no home directory)")
        })?;
        let keys_dir = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|d| d.is_dir());
        Ok(Paths {
            profiles: dir.join("profiles.toml"),
            settings: dir.join("settings.toml"),
            ports: dir.join("ports.toml"),
            keys_dir,
            ssh: SshConfigPaths::default_location().ok(),
        })
    }
}
