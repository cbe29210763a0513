//! Porthole's engine: a Backend.AI client ([`api`]), the local tunnel engine ([`tunnel`])
//! and saved endpoints ([`profiles`]). It knows nothing of any GUI; the desktop app and
//! the `porthole` command are thin layers over it.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod api;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod known_hosts;
pub mod profiles;
pub mod ssh;
pub mod ssh_config;
pub mod toml_file;
pub mod tunnel;
