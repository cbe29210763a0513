//! The settings and the local ports remembered per session and app, each in a small TOML
//! file ([`porthole_core::toml_file`]). Neither file ever holds a secret.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use porthole_core::toml_file::{self, TomlFileError};
use serde::{Deserialize, Serialize};

/// Colour scheme of the app.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Theme {
    /// Follow the system (`prefers-color-scheme`).
    #[default]
    System,
    /// Always light.
    Light,
    /// Always dark.
    Dark,
}

/// Shortest allowed sessions refresh interval, in seconds.
pub const MIN_REFRESH_SECS: u32 = 2;
/// Longest allowed sessions refresh interval, in seconds (one hour).
pub const MAX_REFRESH_SECS: u32 = 3600;

/// What the user can change in the Settings screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// How often the sessions list refreshes itself, in seconds.
    pub refresh_secs: u32,
    /// The terminal command that runs `ssh` (see [`crate::terminal`]); `None` uses the
    /// detected default for this desktop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terminal_command: Option<String>,
    /// Reuse the local port a session's app had last time, when it is free.
    pub remember_ports: bool,
    /// Start Porthole when the user logs in.
    pub start_at_login: bool,
    /// Light, dark or follow the system.
    pub theme: Theme,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            refresh_secs: 10,
            terminal_command: None,
            remember_ports: true,
            start_at_login: false,
            theme: Theme::System,
        }
    }
}

impl Settings {
    /// Checks values a user typed; returns the first problem in words.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if !(MIN_REFRESH_SECS..=MAX_REFRESH_SECS).contains(&self.refresh_secs) {
            return Err(SettingsError::Invalid(format!(
                "the refresh interval must be {MIN_REFRESH_SECS} to {MAX_REFRESH_SECS} seconds"
            )));
        }
        if let Some(command) = &self.terminal_command {
            crate::terminal::split_words(command)
                .map_err(|e| SettingsError::Invalid(format!("the terminal command: {e}")))?;
            if command.trim().is_empty() {
                return Err(SettingsError::Invalid(
                    "the terminal command is empty; clear the override to use the default".into(),
                ));
            }
        }
        Ok(())
    }
}

/// Errors of the settings and port files.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A value is unusable.
    #[error("invalid setting: {0}")]
    Invalid(String),
    /// The file could not be read or written, or is not valid.
    #[error(transparent)]
    File(#[from] TomlFileError),
}

impl SettingsError {
    /// A stable short name for the error class, for the UI.
    pub fn kind(&self) -> &'static str {
        match self {
            SettingsError::Invalid(_) | SettingsError::File(TomlFileError::Encode { .. }) => {
                "invalid-setting"
            }
            SettingsError::File(TomlFileError::Io { .. }) => "io",
            SettingsError::File(TomlFileError::Corrupt { .. }) => "corrupt-settings",
        }
    }
}

fn load_toml<T: for<'de> Deserialize<'de> + Default>(path: &Path) -> Result<T, SettingsError> {
    Ok(toml_file::load(path)?)
}

fn save_toml<T: Serialize>(path: &Path, value: &T) -> Result<(), SettingsError> {
    Ok(toml_file::save(path, value)?)
}

/// The settings file (`settings.toml` in the platform config dir).
#[derive(Debug, Clone)]
pub struct SettingsStore {
    path: PathBuf,
}

impl SettingsStore {
    /// The store at `path`.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        SettingsStore { path: path.into() }
    }

    /// The store next to the profiles file in the platform config dir.
    pub fn default_location() -> Option<Self> {
        porthole_core::profiles::config_dir().map(|dir| Self::at(dir.join("settings.toml")))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the settings; a missing file gives the defaults, missing keys their default.
    pub fn load(&self) -> Result<Settings, SettingsError> {
        load_toml(&self.path)
    }

    /// Validates and writes the settings.
    pub fn save(&self, settings: &Settings) -> Result<(), SettingsError> {
        settings.validate()?;
        save_toml(&self.path, settings)
    }
}

/// The key under which a local port is remembered: one app of one session (by name, so a
/// session recreated under the same name gets its ports back) on one endpoint.
pub fn port_key(endpoint: &str, session_name: &str, app: &str) -> String {
    format!("{} {session_name} {app}", endpoint.trim_end_matches('/'))
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct PortFile {
    #[serde(default)]
    ports: BTreeMap<String, u16>,
}

/// Most remembered ports kept; the oldest entries beyond this are dropped.
const MAX_REMEMBERED: usize = 512;

/// Local ports remembered per (endpoint, session, app), in `ports.toml`.
#[derive(Debug, Clone)]
pub struct PortMemory {
    path: PathBuf,
}

impl PortMemory {
    /// The memory at `path`.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        PortMemory { path: path.into() }
    }

    /// The memory in the platform config dir.
    pub fn default_location() -> Option<Self> {
        porthole_core::profiles::config_dir().map(|dir| Self::at(dir.join("ports.toml")))
    }

    /// The port remembered for `key` (see [`port_key`]).
    pub fn get(&self, key: &str) -> Result<Option<u16>, SettingsError> {
        let file: PortFile = load_toml(&self.path)?;
        Ok(file.ports.get(key).copied().filter(|p| *p != 0))
    }

    /// Remembers `port` for `key`; another key holding the same port loses it, so one
    /// port is never offered to two apps.
    pub fn remember(&self, key: &str, port: u16) -> Result<(), SettingsError> {
        let mut file: PortFile = load_toml(&self.path).unwrap_or_default();
        if file.ports.get(key) == Some(&port) {
            return Ok(());
        }
        file.ports.retain(|k, p| *p != port || k == key);
        file.ports.insert(key.to_owned(), port);
        while file.ports.len() > MAX_REMEMBERED {
            let Some(first) = file.ports.keys().next().cloned() else {
                break;
            };
            file.ports.remove(&first);
        }
        save_toml(&self.path, &file)
    }

    /// Forgets every remembered port.
    pub fn clear(&self) -> Result<(), SettingsError> {
        Ok(toml_file::remove(&self.path)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn settings_round_trip_with_defaults_for_missing_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = SettingsStore::at(dir.path().join("a/settings.toml"));
        assert_eq!(store.load().unwrap(), Settings::default());
        let settings = Settings {
            refresh_secs: 30,
            terminal_command: Some("xterm -e".into()),
            theme: Theme::Dark,
            ..Settings::default()
        };
        store.save(&settings).unwrap();
        assert_eq!(store.load().unwrap(), settings);
        fs::write(store.path(), "theme = \"light\"\n").unwrap();
        let loaded = store.load().unwrap();
        assert_eq!(loaded.theme, Theme::Light);
        assert_eq!(loaded.refresh_secs, 10);
        assert!(loaded.remember_ports);
    }

    #[test]
    fn bad_settings_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = SettingsStore::at(dir.path().join("settings.toml"));
        let too_fast = Settings {
            refresh_secs: 1,
            ..Settings::default()
        };
        assert!(matches!(
            store.save(&too_fast),
            Err(SettingsError::Invalid(_))
        ));
        let unbalanced = Settings {
            terminal_command: Some("xterm -e 'oops".into()),
            ..Settings::default()
        };
        assert!(store.save(&unbalanced).is_err());
        assert!(!store.path().exists());
        fs::write(store.path(), "refresh_secs = \"x\"").unwrap();
        let err = store.load().unwrap_err();
        assert_eq!(err.kind(), "corrupt-settings");
    }

    #[test]
    fn ports_are_remembered_per_app_and_never_shared() {
        let dir = tempfile::tempdir().unwrap();
        let memory = PortMemory::at(dir.path().join("ports.toml"));
        let a = port_key("http://127.0.0.1:8081/", "train", "jupyter");
        let b = port_key("http://127.0.0.1:8081", "train", "sshd");
        assert_eq!(a, "http://127.0.0.1:8081 train jupyter");
        assert_eq!(memory.get(&a).unwrap(), None);
        memory.remember(&a, 8890).unwrap();
        memory.remember(&b, 9022).unwrap();
        assert_eq!(memory.get(&a).unwrap(), Some(8890));
        memory.remember(&b, 8890).unwrap();
        assert_eq!(
            memory.get(&a).unwrap(),
            None,
            "the port moved to the other app"
        );
        assert_eq!(memory.get(&b).unwrap(), Some(8890));
        memory.clear().unwrap();
        assert_eq!(memory.get(&b).unwrap(), None);
    }
}
