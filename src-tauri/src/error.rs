//! The one error type the UI sees: a stable `kind` and a message a person can act on.

use porthole_core::api::ApiError;
use porthole_core::profiles::ProfileError;
use porthole_core::settings::SettingsError;
use porthole_core::ssh::KeyError;
use porthole_core::terminal::TemplateError;
use porthole_core::tunnel::TunnelError;
use serde::Serialize;

/// An error as the front end receives it: `{kind, message}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct UiError {
    /// A stable short name for the error class (e.g. `auth-failed`, `port-in-use`).
    pub kind: String,
    /// One line in plain words, starting with a capital letter.
    pub message: String,
}

impl UiError {
    /// An error of `kind` with `message`.
    pub fn new(kind: &str, message: impl Into<String>) -> Self {
        UiError {
            kind: kind.to_owned(),
            message: capitalise(&message.into()),
        }
    }
}

/// The message with its first letter upper-cased, as the UI shows sentences.
fn capitalise(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> Self {
        UiError::new(e.kind(), e.to_string())
    }
}

impl From<TunnelError> for UiError {
    fn from(e: TunnelError) -> Self {
        let message = match &e {
            TunnelError::PortInUse { port } => {
                format!("local port {port} is already in use by another program")
            }
            other => other.to_string(),
        };
        UiError::new(e.kind(), message)
    }
}

impl From<ProfileError> for UiError {
    fn from(e: ProfileError) -> Self {
        let kind = match &e {
            ProfileError::Invalid(_) => "invalid-profile",
            ProfileError::NotFound(_) => "profile-not-found",
            ProfileError::Exists(_) => "profile-exists",
            ProfileError::Io { .. } => "io",
            ProfileError::Corrupt { .. } => "corrupt-profiles",
            ProfileError::Keychain(_) => "keychain",
            ProfileError::NoSecret(_) => "no-secret",
        };
        let message = match &e {
            ProfileError::NotFound(name) => format!("there is no profile named {name:?}"),
            ProfileError::Exists(name) => {
                format!("a profile named {name:?} already exists; pick another name")
            }
            ProfileError::NoSecret(name) => format!(
                "no secret is stored in the keychain for profile {name:?}; edit the profile and enter it again"
            ),
            other => other.to_string(),
        };
        UiError::new(kind, message)
    }
}

impl From<SettingsError> for UiError {
    fn from(e: SettingsError) -> Self {
        UiError::new(e.kind(), e.to_string())
    }
}

impl From<KeyError> for UiError {
    fn from(e: KeyError) -> Self {
        UiError::new("ssh-key", e.to_string())
    }
}

impl From<porthole_core::ssh_config::SshConfigError> for UiError {
    fn from(e: porthole_core::ssh_config::SshConfigError) -> Self {
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
    fn errors_serialise_as_kind_and_message() {
        let e: UiError = ApiError::AuthFailed {
            detail: "Signature mismatch".into(),
        }
        .into();
        assert_eq!(e.kind, "auth-failed");
        assert!(e
            .message
            .starts_with("The server refused the credentials (401"));
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["kind"], "auth-failed");
        let e: UiError = TunnelError::PortInUse { port: 8890 }.into();
        assert_eq!(
            e.message,
            "Local port 8890 is already in use by another program"
        );
        let e: UiError = ProfileError::Exists("a".into()).into();
        assert_eq!(e.kind, "profile-exists");
    }
}
