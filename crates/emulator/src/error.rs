//! The emulator's error type (a leaf: every module may use it).

use crate::config::{self, ConfigError};

/// Errors of the emulator's library API.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The configuration is invalid.
    #[error("invalid config: {0}")]
    Config(String),
    /// The configuration file could not be loaded.
    #[error(transparent)]
    ConfigFile(#[from] ConfigError),
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The requested address.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// No session has that name or UUID.
    #[error("no session is named {0:?} or has that id")]
    UnknownSession(String),
    /// More than one session has that name (use the UUID).
    #[error("more than one session is named {0:?}; use its id")]
    AmbiguousSession(String),
    /// Not a Backend.AI session status.
    #[error("unknown session status {0:?} (expected one of {statuses})", statuses = config::SESSION_STATUSES.join(", "))]
    UnknownStatus(String),
}
