//! "Start at login": an XDG autostart entry on Linux; elsewhere not offered yet.

use std::path::PathBuf;

/// Why the autostart entry could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum AutostartError {
    /// This platform has no autostart support in Porthole yet.
    #[error("starting at login is only supported on Linux so far")]
    Unsupported,
    /// The user's config directory is unknown.
    #[error("cannot find the config directory")]
    NoConfigDir,
    /// The entry could not be written or removed.
    #[error("cannot update {path}: {source}")]
    Io {
        /// The entry's path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

fn entry_path() -> Option<PathBuf> {
    directories::BaseDirs::new().map(|d| d.config_dir().join("autostart/porthole.desktop"))
}

/// Adds or removes the autostart entry so it matches `enabled`.
pub fn apply(enabled: bool) -> Result<(), AutostartError> {
    if !cfg!(target_os = "linux") {
        return if enabled {
            Err(AutostartError::Unsupported)
        } else {
            Ok(())
        };
    }
    let path = entry_path().ok_or(AutostartError::NoConfigDir)?;
    let io = |source: std::io::Error| AutostartError::Io {
        path: path.clone(),
        source,
    };
    if enabled {
        let exe = std::env::current_exe().map_err(io)?;
        let entry = format!(
            "[Desktop Entry]\nType=Application\nName=Porthole\nComment=Tunnels to your Backend.AI sessions\nExec=\"{}\"\nIcon=porthole-desktop\nX-GNOME-Autostart-enabled=true\n",
            exe.display()
        );
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        std::fs::write(&path, entry).map_err(io)
    } else {
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(e)),
        }
    }
}
