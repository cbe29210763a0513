//! "Start at login": an XDG autostart entry on Linux; elsewhere not offered yet.

use std::path::PathBuf;

use crate::error::UiError;

fn entry_path() -> Option<PathBuf> {
    directories::BaseDirs::new().map(|d| d.config_dir().join("autostart/porthole.desktop"))
}

/// Adds or removes the autostart entry so it matches `enabled`.
pub fn apply(enabled: bool) -> Result<(), UiError> {
    if !cfg!(target_os = "linux") {
        return if enabled {
            Err(UiError::new(
                "unsupported",
                "starting at login is only supported on Linux so far",
            ))
        } else {
            Ok(())
        };
    }
    let path =
        entry_path().ok_or_else(|| UiError::new("io", "cannot find the config directory"))?;
    let io =
        |e: std::io::Error| UiError::new("io", format!("cannot update {}: {e}", path.display()));
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
