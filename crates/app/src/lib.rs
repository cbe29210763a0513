//! `porthole-app`: the desktop app's logic, free of Tauri, so that it is tested without a
//! window (and without building WebKit). The Tauri crate (`src-tauri/`) turns each public
//! method of [`App`] into one command and its events into window events and tray updates.
//!
//! By domain, one file each:
//!
//! | File | What |
//! |---|---|
//! | [`account`] | profiles, sign-in and sign-out, the built-in demo: the account state, one value with explicit transitions |
//! | [`sessions`] | the sessions list and the views the window shows of it |
//! | [`open`] | one click on an app: its tunnel, then the browser or a terminal running ssh |
//! | [`tunnels`] | the running tunnels: list, stop, copy, the tray's model |
//! | [`ssh_config`] | Settings → SSH config: the managed `Host <session>.porthole` entries |
//! | [`settings`] | the Settings screen: its file and the remembered local ports ([`settings::store`]), "Start at login" ([`settings::autostart`]) |
//! | [`presenter`] | labels, icons, words: how sessions, apps, tunnels and the tray look |
//! | [`terminal`] | terminal command templates and the desktop's default terminal |
//! | [`launcher`] | what opens URLs and runs programs (the Tauri crate's, or a test's) |
//! | [`logs`] | logging to a rotated file and to the Logs view, pushed line by line |
//! | [`error`] | the one error the window sees: kind, message, whether a retry can help |

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod account;
#[cfg(feature = "demo")]
mod demo;
pub mod error;
pub mod launcher;
pub mod logs;
pub mod open;
mod paths;
pub mod presenter;
pub mod sessions;
pub mod settings;
pub mod ssh_config;
pub mod terminal;
pub mod tunnels;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use porthole_core::profiles::{ProfileStore, SecretStore};
use porthole_core::ssh::{KeyFile, CONTAINER_USER};
use porthole_core::ssh_config::SshConfigPaths;
use porthole_core::tunnel::{TunnelManager, TunnelOptions};

pub use account::{
    Connected, DemoMode, ProfileInput, ProfileSummary, Startup, TestReport, DEMO_PROFILE,
};
pub use error::UiError;
pub use launcher::Launcher;
pub use open::OpenReply;
pub use paths::Paths;
pub use sessions::SessionsReply;
pub use settings::SettingsReply;
pub use ssh_config::SshConfigReply;

use account::Account;
use settings::store::{PortMemory, SettingsStore};

/// The app's state and logic; shared with Tauri as an `Arc<App>`. Each domain's methods
/// live in its module (see the crate docs).
pub struct App {
    profiles: ProfileStore,
    secrets: Arc<dyn SecretStore>,
    settings: SettingsStore,
    ports: PortMemory,
    keys_dir: Option<PathBuf>,
    ssh_paths: Option<SshConfigPaths>,
    launcher: Arc<dyn Launcher>,
    demo_mode: DemoMode,
    ssh_user: String,
    tunnels: Arc<TunnelManager>,
    tunnel_options: TunnelOptions,
    /// Where the app stands with its endpoint: one value, changed only by its transitions.
    account: Mutex<Account>,
    /// The SSH key of each `sshd` tunnel, removed with the tunnel.
    keys: Mutex<HashMap<u64, KeyFile>>,
    #[cfg(feature = "demo")]
    demo: tokio::sync::Mutex<Option<demo::Demo>>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

impl App {
    /// An app over these files, keychain and launcher.
    pub fn new(
        paths: Paths,
        secrets: Arc<dyn SecretStore>,
        launcher: Arc<dyn Launcher>,
        demo_mode: DemoMode,
    ) -> App {
        App {
            profiles: ProfileStore::at(paths.profiles),
            secrets,
            settings: SettingsStore::at(paths.settings),
            ports: PortMemory::at(paths.ports),
            keys_dir: paths.keys_dir,
            ssh_paths: paths.ssh,
            launcher,
            demo_mode,
            ssh_user: std::env::var("PORTHOLE_SSH_USER")
                .ok()
                .filter(|u| !u.trim().is_empty())
                .unwrap_or_else(|| CONTAINER_USER.to_owned()),
            tunnels: Arc::new(TunnelManager::new()),
            tunnel_options: TunnelOptions::default(),
            account: Mutex::new(Account::default()),
            keys: Mutex::new(HashMap::new()),
            #[cfg(feature = "demo")]
            demo: tokio::sync::Mutex::new(None),
        }
    }

    /// The tunnel manager, whose events the app turns into window events and tray updates.
    pub fn tunnel_manager(&self) -> &Arc<TunnelManager> {
        &self.tunnels
    }

    /// The user ssh logs in as (`work`, as in Backend.AI containers, unless
    /// `PORTHOLE_SSH_USER` says otherwise).
    pub fn ssh_user(&self) -> &str {
        &self.ssh_user
    }

    /// Stops every tunnel, removes the keys and stops the demo: the clean part of Quit.
    pub async fn shutdown(&self) {
        self.stop_all().await;
        #[cfg(feature = "demo")]
        if let Some(demo) = self.demo.lock().await.take() {
            demo.shutdown().await;
        }
        tracing::info!("shut down");
    }
}
