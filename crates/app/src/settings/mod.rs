//! Settings: what the Settings screen reads and saves (the refresh interval, the terminal
//! for SSH, remembered ports, start at login, the theme), and its "Test" button for the
//! terminal. The files live in [`store`]; "Start at login" in [`autostart`].

pub mod autostart;
pub mod store;

use serde::Serialize;

use crate::error::UiError;
use crate::terminal;
use crate::App;
pub use store::{Settings, Theme, MAX_REFRESH_SECS, MIN_REFRESH_SECS};

/// The settings plus what the Settings screen shows beside them.
#[derive(Debug, Clone, Serialize)]
pub struct SettingsReply {
    /// The stored settings.
    pub settings: Settings,
    /// The terminal command used when none is set.
    pub default_terminal: String,
    /// The refresh interval's bounds, in seconds (the form's limits).
    pub refresh_bounds: (u32, u32),
}

impl App {
    /// The settings and the detected default terminal.
    pub fn settings(&self) -> Result<SettingsReply, UiError> {
        Ok(self.settings_reply(self.settings.load()?))
    }

    pub(crate) fn settings_reply(&self, settings: Settings) -> SettingsReply {
        SettingsReply {
            settings,
            default_terminal: terminal::default_terminal(),
            refresh_bounds: (MIN_REFRESH_SECS, MAX_REFRESH_SECS),
        }
    }

    /// Validates and stores the settings; turning port memory off forgets the ports, and
    /// a change of "Start at login" adds or removes the autostart entry.
    pub fn save_settings(&self, settings: Settings) -> Result<SettingsReply, UiError> {
        let before = self
            .settings
            .load()
            .map(|s| s.start_at_login)
            .unwrap_or(false);
        if settings.start_at_login != before {
            autostart::apply(settings.start_at_login)?;
        }
        let mut settings = settings;
        settings.terminal_command = settings
            .terminal_command
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty());
        self.settings.save(&settings)?;
        if !settings.remember_ports {
            self.ports.clear()?;
        }
        self.settings()
    }

    /// Opens the terminal `template` (or the configured one) with a harmless command, for
    /// the Settings screen's "Test" button.
    pub fn test_terminal(&self, template: Option<String>) -> Result<(), UiError> {
        let configured = match template.filter(|t| !t.trim().is_empty()) {
            Some(template) => Some(template),
            None => self.settings.load().unwrap_or_default().terminal_command,
        };
        let command = [
            "sh".to_owned(),
            "-c".to_owned(),
            "echo 'Porthole: this terminal works. Press Enter to close it.'; read _".to_owned(),
        ];
        self.run_in_terminal(configured.as_deref(), &command)
    }
}
