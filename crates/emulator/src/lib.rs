//! `porthole-emulator`: a Backend.AI-compatible manager (and web server) on loopback, for
//! Porthole's tests, benchmarks and the desktop app's demo.
//!
//! It behaves like the real manager 23.09 where a client can tell (protocol doc §10):
//! keypair signatures and the ±15 min date window, `GET /`, GraphQL session listing with
//! `service_ports` as a JSON string, `/stream/session/{id}/apps`, WebSocket tunnels with the
//! manager's handshake errors and close codes (1001, 1009, 1011, 1013), BINARY-only relays,
//! `download_single`, problem+json errors, and session mode (`/server/login`, `/func/...`,
//! 502 for failed tunnel handshakes, closes not passed on). Each app of a session is backed
//! by a real local `host:port` from the config, so a test can put a real sshd or Jupyter
//! behind it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), porthole_emulator::EmulatorError> {
//! use porthole_emulator::{Config, Emulator};
//! let config = Config::from_toml_str(r#"
//!     [[keypairs]]
//!     access_key = "AKIAEXAMPLE0000000001"
//!     secret_key = "secret"
//!     [[sessions]]
//!     name = "train-1"
//!     [[sessions.services]]
//!     name = "sshd"
//!     protocol = "tcp"
//!     container_ports = [2200]
//!     target = "127.0.0.1:2222"
//! "#)?;
//! let emulator = Emulator::start(config, "127.0.0.1:0".parse().unwrap()).await?;
//! println!("{}", emulator.endpoint_url());
//! emulator.set_session_status("train-1", "TERMINATED")?;
//! emulator.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! The configuration keys are documented on [`Config`] and its parts; the HTTP control API
//! (started with [`StartOptions::control_http`]) in [`control`]; the built-in demo in [`demo`].

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod auth;
pub mod config;
pub mod control;
pub mod demo;
mod error;
mod files;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod graphql;
mod json;
mod logins;
mod manager;
mod params;
mod problem;
mod release;
mod request;
mod server;
mod state;
pub mod stream;
pub mod webserver;

pub use config::{
    Config, ConfigError, FileSource, KeypairConfig, Role, ServiceConfig, SessionConfig, UserConfig,
};
pub use error::EmulatorError;
pub use porthole_core::api::version::ApiVersion;
pub use server::{Emulator, RunningEmulator, StartOptions};
