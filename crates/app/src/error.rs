//! The one error the window sees: a stable `kind`, a message a person can act on, and what
//! the window may offer beside it, decided here once (not in the front end).

use porthole_core::api::ApiError;
use porthole_core::profiles::ProfileError;
use porthole_core::ssh::KeyError;
use porthole_core::ssh_config::SshConfigError;
use porthole_core::toml_file::TomlFileError;
use porthole_core::tunnel::TunnelError;
use serde::Serialize;

use crate::settings::autostart::AutostartError;
use crate::settings::store::SettingsError;
use crate::terminal::TemplateError;

/// What the window offers next to an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// The same request may work later as it is: offer Retry.
    Retry,
    /// The profile's endpoint or credentials are wrong: offer Edit profile.
    EditProfile,
}

/// An error as the front end receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct UiError {
    /// A stable short name for the error class (e.g. `auth-failed`, `port-in-use`).
    pub kind: String,
    /// One line in plain words, starting with a capital letter.
    pub message: String,
    /// Whether retrying later may succeed without the user changing anything (the
    /// engine's own judgement: [`ApiError::is_transient`]).
    pub retryable: bool,
    /// Whether the endpoint could not be checked at all (unreachable, TLS, an unexpected
    /// answer), so that a profile may still be saved as it is ("Save anyway").
    pub unchecked: bool,
    /// What the window offers beside the message.
    pub action: Option<Action>,
}

impl UiError {
    /// An error of `kind` with `message`, nothing to offer.
    pub fn new(kind: &str, message: impl Into<String>) -> Self {
        UiError {
            kind: kind.to_owned(),
            message: capitalise(&message.into()),
            retryable: false,
            unchecked: false,
            action: None,
        }
    }

    fn with(mut self, retryable: bool, unchecked: bool, action: Option<Action>) -> Self {
        self.retryable = retryable;
        self.unchecked = unchecked;
        self.action = action;
        self
    }
}

/// The message with its first letter upper-cased, as the window shows sentences.
pub(crate) fn capitalise(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> Self {
        let retryable = e.is_transient();
        let unchecked = retryable
            || matches!(
                e,
                ApiError::Tls { .. } | ApiError::Http { .. } | ApiError::UnexpectedReply(_)
            );
        let action = if retryable {
            Some(Action::Retry)
        } else if matches!(
            e,
            ApiError::AuthFailed { .. }
                | ApiError::LoginFailed { .. }
                | ApiError::PasswordExpired { .. }
                | ApiError::InvalidEndpoint { .. }
                | ApiError::Tls { .. }
        ) {
            Some(Action::EditProfile)
        } else {
            None
        };
        let message = match &e {
            ApiError::SessionNotFound { .. } => {
                format!("{e}. Refresh the session list to see yours.")
            }
            _ => e.to_string(),
        };
        UiError::new(e.kind(), message).with(retryable, unchecked, action)
    }
}

impl From<TunnelError> for UiError {
    fn from(e: TunnelError) -> Self {
        match e {
            TunnelError::Api(e) => e.into(),
            other => UiError::new(other.kind(), other.to_string()),
        }
    }
}

impl From<ProfileError> for UiError {
    fn from(e: ProfileError) -> Self {
        let kind = match &e {
            ProfileError::Invalid(_) => "invalid-profile",
            ProfileError::NotFound(_) => "profile-not-found",
            ProfileError::Exists(_) => "profile-exists",
            ProfileError::File(TomlFileError::Corrupt { .. }) => "corrupt-profiles",
            ProfileError::File(_) | ProfileError::NoConfigDir => "io",
            ProfileError::Keychain(_) => "keychain",
            ProfileError::NoSecret(_) => "no-secret",
        };
        let message = match &e {
            ProfileError::Exists(name) => {
                format!("a profile named {name:?} already exists; pick another name")
            }
            ProfileError::NoSecret(_) => format!("{e}; edit the profile and enter it again"),
            other => other.to_string(),
        };
        let action = matches!(e, ProfileError::NoSecret(_)).then_some(Action::EditProfile);
        UiError::new(kind, message).with(false, false, action)
    }
}

impl From<SettingsError> for UiError {
    fn from(e: SettingsError) -> Self {
        UiError::new(e.kind(), e.to_string())
    }
}

impl From<AutostartError> for UiError {
    fn from(e: AutostartError) -> Self {
        let kind = match e {
            AutostartError::Unsupported => "unsupported",
            AutostartError::NoConfigDir | AutostartError::Io { .. } => "io",
        };
        UiError::new(kind, e.to_string())
    }
}

impl From<KeyError> for UiError {
    fn from(e: KeyError) -> Self {
        UiError::new("ssh-key", e.to_string())
    }
}

impl From<SshConfigError> for UiError {
    fn from(e: SshConfigError) -> Self {
        UiError::new(e.kind(), e.to_string())
    }
}

impl From<TemplateError> for UiError {
    fn from(e: TemplateError) -> Self {
        UiError::new(
            "terminal-command",
            format!("the terminal command is unusable: {e}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_serialise_with_what_the_window_offers() {
        let e: UiError = ApiError::AuthFailed {
            detail: "Signature mismatch".into(),
        }
        .into();
        assert_eq!(e.kind, "auth-failed");
        assert!(e
            .message
            .starts_with("The server refused the credentials (401"));
        assert_eq!((e.retryable, e.unchecked), (false, false));
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["kind"], "auth-failed");
        assert_eq!(json["action"], "edit-profile");
        let e: UiError = ApiError::Unreachable {
            endpoint: "http://x".into(),
            detail: "refused".into(),
        }
        .into();
        assert_eq!(
            (e.retryable, e.unchecked, e.action),
            (true, true, Some(Action::Retry))
        );
        let e: UiError = TunnelError::PortInUse { port: 8890 }.into();
        assert_eq!(
            e.message,
            "Local port 8890 is already in use by another program"
        );
        let e: UiError = ProfileError::Exists("a".into()).into();
        assert_eq!(e.kind, "profile-exists");
    }
}
