//! The desktop app's logic, free of Tauri so it can be tested directly: profiles and
//! sign-in, the built-in demo, the sessions list, one-click open (tunnel, then browser
//! or terminal), SSH keys that live as long as their tunnel, settings and remembered
//! ports. The Tauri layer turns each public method into one command.

use std::collections::HashMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use porthole_core::api::{ApiError, BackendClient, ComputeSession, Credentials, Endpoint};
use porthole_core::catalog::{self, AppAction, SessionView, TrayMenu};
use porthole_core::profiles::{AuthMode, Profile, ProfileError, ProfileStore, SecretStore};
use porthole_core::settings::{port_key, PortMemory, Settings, SettingsStore};
use porthole_core::ssh::{self, KeyFile, CONTAINER_USER, KEY_FILE_NAME};
use porthole_core::ssh_config::{self, ProxySpec, SshConfigPaths};
use porthole_core::terminal;
use porthole_core::tunnel::{TunnelError, TunnelInfo, TunnelManager, TunnelOptions, TunnelTarget};
use porthole_emulator::demo::{self, Demo, DEMO_ACCESS_KEY, DEMO_SECRET_KEY};
use serde::{Deserialize, Serialize};

use crate::error::UiError;

/// The name the demo connection shows in the profile menu.
pub const DEMO_PROFILE: &str = "Demo";

/// Launches what a click opens. The app hands URLs to the browser and commands to a
/// terminal; tests record them instead.
pub trait Launcher: Send + Sync {
    /// Opens `url` in the user's browser.
    fn open_url(&self, url: &str) -> Result<(), String>;
    /// Runs `program args...` (a terminal running a command) without waiting for it.
    fn spawn(&self, program: &str, args: &[String]) -> Result<(), String>;
}

/// What "Write SSH config" did.
#[derive(Debug, Clone, Serialize)]
pub struct SshConfigReply {
    /// The hosts written, e.g. `train-1.porthole`.
    pub hosts: Vec<String>,
    /// The managed config file.
    pub config: String,
    /// The `Include` line in the user's config.
    pub include: String,
    /// The user's config file.
    pub user_config: String,
    /// Where its previous version was saved, when Porthole changed it now.
    pub backup: Option<String>,
}

/// The `porthole` command the managed SSH config runs as ProxyCommand:
/// `$PORTHOLE_CLI`, else next to this app's binary (both ship together), else on PATH.
fn porthole_command() -> Result<PathBuf, UiError> {
    let name = if cfg!(windows) {
        "porthole.exe"
    } else {
        "porthole"
    };
    let from_env = std::env::var_os("PORTHOLE_CLI").map(PathBuf::from);
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(name)));
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join(name));
    from_env
        .into_iter()
        .chain(beside)
        .chain(on_path)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            UiError::new(
                "no-cli",
                "the porthole command is not installed (ssh runs it to reach sessions); \
                 install it next to the app or on your PATH",
            )
        })
}

/// Where the app keeps its files.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `profiles.toml` (no secrets).
    pub profiles: PathBuf,
    /// `settings.toml`.
    pub settings: PathBuf,
    /// `ports.toml`, the remembered local ports.
    pub ports: PathBuf,
    /// Where downloaded SSH keys go (a private directory is made inside); `None` for the
    /// system temp dir.
    pub keys_dir: Option<PathBuf>,
    /// `~/.ssh`, for the managed SSH config; `None` without a home directory.
    pub ssh: Option<SshConfigPaths>,
}

impl Paths {
    /// The platform locations: the config dir for the files, `$XDG_RUNTIME_DIR` (a
    /// per-user tmpfs) for SSH keys when it exists.
    pub fn default_locations() -> Result<Paths, UiError> {
        let dir = porthole_core::profiles::config_dir().ok_or_else(|| {
            UiError::new("io", "cannot find the config directory (no home directory)")
        })?;
        let keys_dir = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|d| d.is_dir());
        Ok(Paths {
            profiles: dir.join("profiles.toml"),
            settings: dir.join("settings.toml"),
            ports: dir.join("ports.toml"),
            keys_dir,
            ssh: SshConfigPaths::default_location().ok(),
        })
    }
}

/// Whether the app starts on the demo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoMode {
    /// Only when the user clicks "Try the demo".
    Off,
    /// Straight into the demo (`--demo`, `PORTHOLE_DEMO=1`).
    On,
    /// Into the demo when no profile exists (`PORTHOLE_DEMO=auto`).
    Auto,
}

impl DemoMode {
    /// Reads the command line (`--demo`) and `PORTHOLE_DEMO` (`1`/`true`/`auto`).
    pub fn from_env(args: &[String], var: Option<&str>) -> DemoMode {
        if args.iter().any(|a| a == "--demo") {
            return DemoMode::On;
        }
        match var.map(str::trim) {
            Some("1" | "true" | "yes" | "on") => DemoMode::On,
            Some("auto") => DemoMode::Auto,
            _ => DemoMode::Off,
        }
    }
}

/// A profile as the sign-in form submits it, with its secret (never logged).
#[derive(Clone, Deserialize)]
pub struct ProfileInput {
    /// Unique name.
    pub name: String,
    /// Manager (API mode) or web server (web login) URL.
    pub endpoint: String,
    /// API keypair or web login.
    pub mode: AuthMode,
    /// The access key (API mode).
    #[serde(default)]
    pub access_key: Option<String>,
    /// The username (web login).
    #[serde(default)]
    pub username: Option<String>,
    /// Accept any TLS certificate.
    #[serde(default)]
    pub skip_tls_verify: bool,
    /// The secret key or password; empty when editing means "keep the stored one".
    #[serde(default)]
    pub secret: String,
}

impl fmt::Debug for ProfileInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfileInput")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl ProfileInput {
    fn profile(&self) -> Profile {
        let trim = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        Profile {
            name: self.name.trim().to_owned(),
            endpoint: self.endpoint.trim().trim_end_matches('/').to_owned(),
            mode: self.mode,
            access_key: match self.mode {
                AuthMode::Api => trim(&self.access_key),
                AuthMode::Session => None,
            },
            username: match self.mode {
                AuthMode::Api => None,
                AuthMode::Session => trim(&self.username),
            },
            skip_tls_verify: self.skip_tls_verify,
            ca_file: None,
        }
    }
}

/// A saved profile as the UI lists it (no secret).
#[derive(Debug, Clone, Serialize)]
pub struct ProfileSummary {
    /// Its name.
    pub name: String,
    /// Its endpoint.
    pub endpoint: String,
    /// How it signs in.
    pub mode: AuthMode,
    /// The access key (API mode).
    pub access_key: Option<String>,
    /// The username (web login).
    pub username: Option<String>,
    /// Whether TLS verification is skipped.
    pub skip_tls_verify: bool,
    /// Whether it is the one used at start.
    pub active: bool,
}

/// The connection the app is signed in with.
#[derive(Debug, Clone, Serialize)]
pub struct Connected {
    /// The profile name ([`DEMO_PROFILE`] for the demo).
    pub profile: String,
    /// The endpoint URL as tunnel keys spell it.
    pub endpoint: String,
    /// Whether this is the built-in demo.
    pub demo: bool,
    /// The API version in use.
    pub api_version: String,
    /// The manager release, when reported.
    pub manager_version: Option<String>,
}

/// What "Test connection" found.
#[derive(Debug, Clone, Serialize)]
pub struct TestReport {
    /// The endpoint.
    pub endpoint: String,
    /// The API version the server speaks.
    pub api_version: String,
    /// The manager release, when reported.
    pub manager_version: Option<String>,
    /// How many sessions the credentials see.
    pub sessions: usize,
}

/// What the window needs when it (re)loads.
#[derive(Debug, Clone, Serialize)]
pub struct Startup {
    /// Saved profiles.
    pub profiles: Vec<ProfileSummary>,
    /// The connection, when signed in.
    pub connected: Option<Connected>,
    /// Why signing in to the active profile failed, if it did.
    pub error: Option<UiError>,
    /// The settings.
    pub settings: Settings,
    /// Running tunnels.
    pub tunnels: Vec<TunnelInfo>,
}

/// One refresh of the sessions list.
#[derive(Debug, Clone, Serialize)]
pub struct SessionsReply {
    /// The connection they belong to.
    pub connection: Connected,
    /// The sessions, in the server's order.
    pub sessions: Vec<SessionView>,
}

/// What one click did.
#[derive(Debug, Clone, Serialize)]
pub struct OpenReply {
    /// The tunnel (new or reused).
    pub tunnel: TunnelInfo,
    /// What the click does for this app.
    pub action: AppAction,
    /// The URL of a web app.
    pub url: Option<String>,
    /// `127.0.0.1:PORT`.
    pub address: String,
    /// The ssh command for `sshd` (with the downloaded key).
    pub ssh_command: Option<String>,
    /// Whether the browser or terminal was launched.
    pub launched: bool,
}

/// The settings plus what the Settings screen shows beside them.
#[derive(Debug, Clone, Serialize)]
pub struct SettingsReply {
    /// The stored settings.
    pub settings: Settings,
    /// The terminal command used when none is set.
    pub default_terminal: String,
}

#[derive(Clone)]
struct Connection {
    info: Connected,
    client: BackendClient,
}

/// The app's state and logic; shared with Tauri as an `Arc<Engine>`.
pub struct Engine {
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
    current: Mutex<Option<Connection>>,
    sessions: Mutex<Vec<ComputeSession>>,
    generation: AtomicU64,
    endpoint_error: Mutex<Option<UiError>>,
    keys: Mutex<HashMap<u64, KeyFile>>,
    demo: tokio::sync::Mutex<Option<Demo>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

impl Engine {
    /// An engine over these files, keychain and launcher.
    pub fn new(
        paths: Paths,
        secrets: Arc<dyn SecretStore>,
        launcher: Arc<dyn Launcher>,
        demo_mode: DemoMode,
    ) -> Engine {
        Engine {
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
            current: Mutex::new(None),
            sessions: Mutex::new(Vec::new()),
            generation: AtomicU64::new(0),
            endpoint_error: Mutex::new(None),
            keys: Mutex::new(HashMap::new()),
            demo: tokio::sync::Mutex::new(None),
        }
    }

    /// The tunnel manager, whose events the app turns into UI events and tray updates.
    pub fn tunnels(&self) -> &Arc<TunnelManager> {
        &self.tunnels
    }

    // ----- start, profiles, sign-in -----

    /// What the window shows first: the demo when asked for, else the active profile
    /// signed in (or the reason it could not be), else the sign-in screen.
    pub async fn startup(&self) -> Result<Startup, UiError> {
        let profiles = self.list_profiles()?;
        let already = lock(&self.current).as_ref().map(|c| c.info.clone());
        let mut error = None;
        let connected = if let Some(connected) = already {
            Some(connected)
        } else if self.demo_mode == DemoMode::On
            || (self.demo_mode == DemoMode::Auto && profiles.is_empty())
        {
            Some(self.start_demo().await?)
        } else if let Some(active) = profiles.iter().find(|p| p.active) {
            match self.sign_in(&active.name).await {
                Ok(c) => Some(c),
                Err(e) => {
                    error = Some(e);
                    None
                }
            }
        } else {
            None
        };
        Ok(Startup {
            profiles: self.list_profiles()?,
            connected,
            error,
            settings: self.settings.load().unwrap_or_default(),
            tunnels: self.tunnels.list(),
        })
    }

    /// The saved profiles.
    pub fn list_profiles(&self) -> Result<Vec<ProfileSummary>, UiError> {
        let file = self.profiles.load()?;
        Ok(file
            .profiles
            .iter()
            .map(|p| ProfileSummary {
                name: p.name.clone(),
                endpoint: p.endpoint.clone(),
                mode: p.mode,
                access_key: p.access_key.clone(),
                username: p.username.clone(),
                skip_tls_verify: p.skip_tls_verify,
                active: file.active.as_deref() == Some(p.name.as_str()),
            })
            .collect())
    }

    /// Signs in with `profile` and `secret` and checks the credentials by listing
    /// sessions (in API mode only a request proves the keys).
    async fn connect(
        profile: &Profile,
        secret: String,
    ) -> Result<(BackendClient, Vec<ComputeSession>), UiError> {
        let endpoint = Endpoint::parse(&profile.endpoint)?;
        let client = BackendClient::connect(
            &endpoint,
            &profile.credentials(secret),
            &profile.client_options(),
        )
        .await?;
        let sessions = client.list_sessions(false).await?;
        Ok((client, sessions))
    }

    fn adopt(
        &self,
        name: &str,
        demo: bool,
        client: BackendClient,
        sessions: Vec<ComputeSession>,
    ) -> Connected {
        let info = Connected {
            profile: name.to_owned(),
            endpoint: client.endpoint().to_string(),
            demo,
            api_version: client.api_version().to_string(),
            manager_version: client.server_info().manager_version.clone(),
        };
        self.generation.fetch_add(1, Ordering::SeqCst);
        *lock(&self.current) = Some(Connection {
            info: info.clone(),
            client,
        });
        *lock(&self.sessions) = sessions;
        *lock(&self.endpoint_error) = None;
        tracing::info!(profile = name, endpoint = %info.endpoint, demo, "signed in");
        info
    }

    /// Checks a profile the user is typing without saving anything.
    pub async fn test_profile(&self, input: ProfileInput) -> Result<TestReport, UiError> {
        let profile = input.profile();
        profile.validate()?;
        let secret = if input.secret.is_empty() {
            // Editing: test with the stored secret.
            self.secrets.get(&profile.name)?.unwrap_or_default()
        } else {
            input.secret.clone()
        };
        if secret.is_empty() {
            return Err(missing_secret(profile.mode));
        }
        let (client, sessions) = Self::connect(&profile, secret).await?;
        Ok(TestReport {
            endpoint: client.endpoint().to_string(),
            api_version: client.api_version().to_string(),
            manager_version: client.server_info().manager_version.clone(),
            sessions: sessions.len(),
        })
    }

    /// Adds a profile: tests it, stores its secret in the keychain and the rest in the
    /// profiles file, makes it active and signs in. With `force` it is saved even when
    /// the test fails (the failure is still returned).
    pub async fn add_profile(
        &self,
        input: ProfileInput,
        force: bool,
    ) -> Result<Connected, UiError> {
        let profile = input.profile();
        profile.validate()?;
        if input.secret.is_empty() {
            return Err(missing_secret(profile.mode));
        }
        if self
            .profiles
            .load()?
            .profiles
            .iter()
            .any(|p| p.name == profile.name)
        {
            return Err(ProfileError::Exists(profile.name).into());
        }
        let tested = Self::connect(&profile, input.secret.clone()).await;
        if tested.is_ok() || force {
            self.profiles
                .add(profile.clone(), &input.secret, self.secrets.as_ref())?;
            self.profiles.set_active(&profile.name)?;
            tracing::info!(profile = %profile.name, endpoint = %profile.endpoint, "profile added");
        }
        let (client, sessions) = tested?;
        Ok(self.adopt(&profile.name, false, client, sessions))
    }

    /// Changes a saved profile (renaming moves its secret). An empty secret keeps the
    /// stored one; the stored secret is never sent back to the UI.
    pub async fn update_profile(
        &self,
        original: &str,
        input: ProfileInput,
        force: bool,
    ) -> Result<Connected, UiError> {
        let profile = input.profile();
        profile.validate()?;
        let mut file = self.profiles.load()?;
        let index = file
            .profiles
            .iter()
            .position(|p| p.name == original)
            .ok_or_else(|| ProfileError::NotFound(original.to_owned()))?;
        if profile.name != original && file.profiles.iter().any(|p| p.name == profile.name) {
            return Err(ProfileError::Exists(profile.name).into());
        }
        let secret = if input.secret.is_empty() {
            self.secrets
                .get(original)?
                .ok_or_else(|| ProfileError::NoSecret(original.to_owned()))?
        } else {
            input.secret.clone()
        };
        let tested = Self::connect(&profile, secret.clone()).await;
        if tested.is_ok() || force {
            self.secrets.set(&profile.name, &secret)?;
            file.profiles[index] = profile.clone();
            file.active = Some(profile.name.clone());
            self.profiles.save(&file)?;
            if profile.name != original {
                self.secrets.delete(original)?;
            }
            tracing::info!(profile = %profile.name, "profile updated");
        }
        let (client, sessions) = tested?;
        Ok(self.adopt(&profile.name, false, client, sessions))
    }

    /// Removes a saved profile and its keychain entry; signs out if it was in use.
    pub fn remove_profile(&self, name: &str) -> Result<(), UiError> {
        self.profiles.remove(name, self.secrets.as_ref())?;
        let mut current = lock(&self.current);
        if current
            .as_ref()
            .is_some_and(|c| !c.info.demo && c.info.profile == name)
        {
            *current = None;
            lock(&self.sessions).clear();
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
        tracing::info!(profile = name, "profile removed");
        Ok(())
    }

    /// Signs in with a saved profile (secret from the keychain) and makes it active.
    pub async fn sign_in(&self, name: &str) -> Result<Connected, UiError> {
        let profile = self.profiles.get(Some(name))?;
        let secret = self
            .secrets
            .get(&profile.name)?
            .ok_or_else(|| ProfileError::NoSecret(profile.name.clone()))?;
        self.profiles.set_active(&profile.name)?;
        match Self::connect(&profile, secret).await {
            Ok((client, sessions)) => Ok(self.adopt(&profile.name, false, client, sessions)),
            Err(e) => {
                tracing::warn!(profile = name, error = %e, "sign-in failed");
                *lock(&self.endpoint_error) = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Starts the built-in demo (once) on a free loopback port and signs in to it with its
    /// public demo keys; nothing is saved.
    pub async fn start_demo(&self) -> Result<Connected, UiError> {
        let mut demo = self.demo.lock().await;
        if demo.is_none() {
            let started = demo::start_demo(loopback(0))
                .await
                .map_err(|e| UiError::new("demo", format!("the demo could not start: {e}")))?;
            tracing::info!(endpoint = %started.endpoint_url(), "demo started");
            *demo = Some(started);
        }
        let url = demo
            .as_ref()
            .map(Demo::endpoint_url)
            .ok_or_else(|| UiError::new("demo", "the demo is not running"))?;
        drop(demo);
        let endpoint = Endpoint::parse(&url)?;
        let credentials = Credentials::Keypair {
            access_key: DEMO_ACCESS_KEY.to_owned(),
            secret_key: DEMO_SECRET_KEY.to_owned(),
        };
        let client = BackendClient::connect(&endpoint, &credentials, &Default::default()).await?;
        let sessions = client.list_sessions(false).await?;
        Ok(self.adopt(DEMO_PROFILE, true, client, sessions))
    }

    /// Forgets the current connection (tunnels keep running).
    pub fn sign_out(&self) {
        *lock(&self.current) = None;
        lock(&self.sessions).clear();
        *lock(&self.endpoint_error) = None;
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn connection(&self) -> Result<Connection, UiError> {
        lock(&self.current).clone().ok_or_else(|| {
            UiError::new(
                "signed-out",
                "not signed in; pick a profile or try the demo",
            )
        })
    }

    /// The endpoint error shown at the top of the window and as the tray's red mark.
    pub fn endpoint_error(&self) -> Option<UiError> {
        lock(&self.endpoint_error).clone()
    }

    // ----- sessions -----

    /// Lists the sessions of the current connection.
    pub async fn list_sessions(&self) -> Result<SessionsReply, UiError> {
        let conn = self.connection()?;
        let generation = self.generation.load(Ordering::SeqCst);
        match conn.client.list_sessions(false).await {
            Ok(sessions) => {
                let views = sessions.iter().map(catalog::session_view).collect();
                if self.generation.load(Ordering::SeqCst) == generation {
                    *lock(&self.sessions) = sessions;
                    *lock(&self.endpoint_error) = None;
                }
                Ok(SessionsReply {
                    connection: conn.info,
                    sessions: views,
                })
            }
            Err(e) => {
                let e = UiError::from(e);
                if self.generation.load(Ordering::SeqCst) == generation {
                    *lock(&self.endpoint_error) = Some(e.clone());
                }
                Err(e)
            }
        }
    }

    async fn session(
        &self,
        conn: &Connection,
        session_id: &str,
    ) -> Result<ComputeSession, UiError> {
        let cached = lock(&self.sessions)
            .iter()
            .find(|s| s.id == session_id)
            .cloned();
        if let Some(session) = cached.filter(ComputeSession::is_running) {
            return Ok(session);
        }
        let fresh = conn.client.list_sessions(false).await?;
        let found = fresh.iter().find(|s| s.id == session_id).cloned();
        *lock(&self.sessions) = fresh;
        found.ok_or_else(|| {
            ApiError::SessionNotFound {
                session: session_id.to_owned(),
            }
            .into()
        })
    }

    // ----- one click -----

    /// Starts (or reuses) the tunnel to `app` of a session and, with `launch`, opens the
    /// browser (web apps) or a terminal running ssh (`sshd`).
    pub async fn open_app(
        &self,
        session_id: &str,
        app: &str,
        launch: bool,
    ) -> Result<OpenReply, UiError> {
        let conn = self.connection()?;
        let session = self.session(&conn, session_id).await?;
        if !session.is_running() {
            return Err(ApiError::SessionNotRunning {
                session: session.name.clone(),
                status: session.status.clone(),
            }
            .into());
        }
        let port = session
            .app(app)
            .cloned()
            .ok_or_else(|| ApiError::AppNotFound {
                session: session.name.clone(),
                app: app.to_owned(),
            })?;
        let action = catalog::app_action(&port);
        let settings = self.settings.load().unwrap_or_default();
        let memory_key = port_key(&conn.info.endpoint, &session.name, app);
        let remembered = if settings.remember_ports {
            self.ports.get(&memory_key).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot read remembered ports");
                None
            })
        } else {
            None
        };
        let target = TunnelTarget {
            client: conn.client.clone(),
            session: session.clone(),
            app: port,
            launch: Default::default(),
        };
        tracing::info!(session = %session.name, app, "opening");
        let opened = match remembered {
            Some(p) => match self
                .tunnels
                .open(target.clone(), loopback(p), self.tunnel_options.clone())
                .await
            {
                Err(TunnelError::PortInUse { .. }) => {
                    tracing::info!(port = p, "remembered port is taken; using a free one");
                    self.tunnels
                        .open(target, loopback(0), self.tunnel_options.clone())
                        .await
                }
                other => other,
            },
            None => {
                self.tunnels
                    .open(target, loopback(0), self.tunnel_options.clone())
                    .await
            }
        };
        let tunnel = opened.map_err(|e| {
            tracing::warn!(session = %session.name, app, error = %e, "open failed");
            UiError::from(e)
        })?;
        if settings.remember_ports {
            if let Err(e) = self.ports.remember(&memory_key, tunnel.local_addr.port()) {
                tracing::warn!(error = %e, "cannot remember the local port");
            }
        }
        let url = catalog::tunnel_url(&tunnel);
        let ssh_command = if action == AppAction::Terminal {
            Some(self.ssh_argv(&conn, &session, &tunnel).await?)
        } else {
            None
        };
        let mut launched = false;
        if launch {
            match (action, &url, &ssh_command) {
                (AppAction::Browser, Some(url), _) => {
                    self.launcher.open_url(url).map_err(|e| {
                        UiError::new(
                            "browser",
                            format!("could not open the browser ({e}); the app is at {url}"),
                        )
                    })?;
                    launched = true;
                }
                (AppAction::Terminal, _, Some(argv)) => {
                    self.run_in_terminal(&settings, argv)?;
                    launched = true;
                }
                _ => {}
            }
        }
        Ok(OpenReply {
            address: tunnel.local_addr.to_string(),
            action,
            url,
            ssh_command: ssh_command.map(|argv| {
                argv.iter()
                    .map(|a| ssh::shell_quote(a))
                    .collect::<Vec<_>>()
                    .join(" ")
            }),
            launched,
            tunnel,
        })
    }

    /// `ssh ARGS...` for an sshd tunnel, downloading the session's key once per tunnel.
    async fn ssh_argv(
        &self,
        conn: &Connection,
        session: &ComputeSession,
        tunnel: &TunnelInfo,
    ) -> Result<Vec<String>, UiError> {
        let existing = lock(&self.keys)
            .get(&tunnel.id)
            .map(|k| k.path().to_owned());
        let key_path = match existing {
            Some(path) => path,
            None => {
                let bytes = conn
                    .client
                    .download_file(session, KEY_FILE_NAME)
                    .await
                    .map_err(|e| {
                        UiError::new(
                            e.kind(),
                            format!("cannot download the session's SSH key ({KEY_FILE_NAME}): {e}"),
                        )
                    })?;
                let key = KeyFile::write(&bytes, self.keys_dir.as_deref())?;
                let path = key.path().to_owned();
                lock(&self.keys).insert(tunnel.id, key);
                path
            }
        };
        let mut argv = vec!["ssh".to_owned()];
        argv.extend(ssh::ssh_args(
            tunnel.local_addr,
            &key_path,
            &self.ssh_user,
            &[],
        ));
        Ok(argv)
    }

    /// The terminal template in effect.
    pub fn terminal_template(settings: &Settings) -> String {
        settings
            .terminal_command
            .clone()
            .filter(|t| !t.trim().is_empty())
            .unwrap_or_else(default_terminal)
    }

    fn run_in_terminal(&self, settings: &Settings, command: &[String]) -> Result<(), UiError> {
        let template = Self::terminal_template(settings);
        let (program, args) = terminal::terminal_argv(&template, command)?;
        tracing::info!(terminal = %program, "launching a terminal");
        self.launcher.spawn(&program, &args).map_err(|e| {
            UiError::new(
                "terminal",
                format!("could not start the terminal {program:?} ({e}); set another in Settings or copy the ssh command"),
            )
        })
    }

    /// Opens the terminal `template` (or the configured one) with a harmless command, for
    /// the Settings screen's "Test" button.
    pub fn test_terminal(&self, template: Option<String>) -> Result<(), UiError> {
        let mut settings = self.settings.load().unwrap_or_default();
        if template.as_deref().is_some_and(|t| !t.trim().is_empty()) {
            settings.terminal_command = template;
        }
        let command = [
            "sh".to_owned(),
            "-c".to_owned(),
            "echo 'Porthole: this terminal works. Press Enter to close it.'; read _".to_owned(),
        ];
        self.run_in_terminal(&settings, &command)
    }

    /// The local address, URL or ssh command of a running tunnel, for "Copy".
    pub fn tunnel_address(&self, id: u64) -> Result<String, UiError> {
        let tunnel = self
            .tunnels
            .list()
            .into_iter()
            .find(|t| t.id == id)
            .ok_or_else(|| UiError::new("no-tunnel", "that tunnel is no longer running"))?;
        Ok(catalog::tunnel_url(&tunnel).unwrap_or_else(|| tunnel.local_addr.to_string()))
    }

    /// The URL of a running web tunnel, for the tray's "Open".
    pub fn open_tunnel(&self, id: u64) -> Result<(), UiError> {
        let url = self.tunnel_address(id)?;
        if url.starts_with("http") {
            self.launcher.open_url(&url).map_err(|e| {
                UiError::new("browser", format!("could not open the browser ({e})"))
            })?;
        }
        Ok(())
    }

    // ----- tunnels -----

    /// Every tunnel.
    pub fn list_tunnels(&self) -> Vec<TunnelInfo> {
        self.tunnels.list()
    }

    /// Stops one tunnel (closing its connections, releasing its port, removing its key).
    pub async fn stop_tunnel(&self, id: u64) -> bool {
        let existed = self.tunnels.stop(id).await;
        self.forget_key(id);
        tracing::info!(id, existed, "tunnel stopped");
        existed
    }

    /// Stops every tunnel and removes every key.
    pub async fn stop_all(&self) {
        self.tunnels.stop_all().await;
        lock(&self.keys).clear();
        tracing::info!("all tunnels stopped");
    }

    /// Removes the SSH key kept for tunnel `id`, if any (when the tunnel is gone).
    pub fn forget_key(&self, id: u64) {
        if lock(&self.keys).remove(&id).is_some() {
            tracing::debug!(id, "ssh key removed");
        }
    }

    /// The tray menu for the current tunnels.
    pub fn tray_menu(&self) -> TrayMenu {
        catalog::tray_menu(&self.tunnels.list(), lock(&self.endpoint_error).is_some())
    }

    // ----- managed ssh config -----

    /// Writes a `Host <session>.porthole` for every running session with sshd of the
    /// current profile (see [`ssh_config`]), reached through the `porthole` command.
    pub async fn write_ssh_config(&self) -> Result<SshConfigReply, UiError> {
        let conn = self.connection()?;
        if conn.info.demo {
            return Err(UiError::new(
                "demo",
                "the demo's sessions exist only while Porthole runs; sign in with a saved \
                 profile to write an SSH config",
            ));
        }
        let paths = self.ssh_paths()?;
        let program = porthole_command()?;
        let hosts = ssh_config::running_hosts(&conn.client).await?;
        let proxy = ProxySpec {
            program,
            profile: Some(conn.info.profile.clone()),
            user: self.ssh_user.clone(),
        };
        let installed = ssh_config::install(&paths, &hosts, &proxy)?;
        tracing::info!(hosts = installed.hosts.len(), "ssh config written");
        Ok(SshConfigReply {
            hosts: installed.hosts,
            config: installed.config.display().to_string(),
            include: paths.include_line(),
            user_config: paths.user_config().display().to_string(),
            backup: installed.backup.map(|b| b.display().to_string()),
        })
    }

    /// Takes the managed SSH config out again; `true` when there was something to remove.
    pub fn remove_ssh_config(&self) -> Result<bool, UiError> {
        let removed = ssh_config::remove(&self.ssh_paths()?)?;
        Ok(removed.include_removed || removed.managed_removed)
    }

    fn ssh_paths(&self) -> Result<SshConfigPaths, UiError> {
        self.ssh_paths
            .clone()
            .ok_or_else(|| UiError::new("no-home", "cannot find your home directory"))
    }

    /// Stops every tunnel, removes the keys and stops the demo: the clean part of Quit.
    pub async fn shutdown(&self) {
        self.stop_all().await;
        if let Some(demo) = self.demo.lock().await.take() {
            demo.shutdown().await;
        }
        tracing::info!("shut down");
    }

    // ----- settings -----

    /// The settings and the detected default terminal.
    pub fn settings(&self) -> Result<SettingsReply, UiError> {
        Ok(SettingsReply {
            settings: self.settings.load()?,
            default_terminal: default_terminal(),
        })
    }

    /// Validates and stores the settings; turning port memory off forgets the ports.
    pub fn save_settings(&self, settings: Settings) -> Result<SettingsReply, UiError> {
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
}

fn missing_secret(mode: AuthMode) -> UiError {
    UiError::new(
        "invalid-profile",
        match mode {
            AuthMode::Api => "enter the secret key",
            AuthMode::Session => "enter the password",
        },
    )
}

/// The detected terminal template for this desktop.
pub fn default_terminal() -> String {
    terminal::default_terminal_command(&|k| std::env::var(k).ok(), &terminal::program_on_path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use porthole_core::profiles::MemorySecrets;
    use std::io::{Read, Write};

    #[derive(Default)]
    struct Recorder {
        urls: Mutex<Vec<String>>,
        spawned: Mutex<Vec<(String, Vec<String>)>>,
    }

    impl Launcher for Recorder {
        fn open_url(&self, url: &str) -> Result<(), String> {
            lock(&self.urls).push(url.to_owned());
            Ok(())
        }
        fn spawn(&self, program: &str, args: &[String]) -> Result<(), String> {
            lock(&self.spawned).push((program.to_owned(), args.to_vec()));
            Ok(())
        }
    }

    struct Rig {
        engine: Engine,
        launcher: Arc<Recorder>,
        secrets: Arc<MemorySecrets>,
        dir: tempfile::TempDir,
    }

    fn rig(mode: DemoMode) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths {
            profiles: dir.path().join("cfg/profiles.toml"),
            settings: dir.path().join("cfg/settings.toml"),
            ports: dir.path().join("cfg/ports.toml"),
            keys_dir: Some(dir.path().to_owned()),
            ssh: Some(SshConfigPaths::in_home(&dir.path().join("home"))),
        };
        let launcher = Arc::new(Recorder::default());
        let secrets = Arc::new(MemorySecrets::default());
        let engine = Engine::new(paths, secrets.clone(), launcher.clone(), mode);
        Rig {
            engine,
            launcher,
            secrets,
            dir,
        }
    }

    /// GET / from the tunnel at `url` (`http://name.localhost:PORT/`), connecting to the
    /// loopback address as a browser would resolve the name.
    fn http_get(url: &str) -> String {
        let host = url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        let port = host.rsplit(':').next().unwrap();
        let mut s = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
        write!(s, "GET / HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        body
    }

    fn api_input(name: &str, endpoint: &str, secret: &str) -> ProfileInput {
        ProfileInput {
            name: name.into(),
            endpoint: endpoint.into(),
            mode: AuthMode::Api,
            access_key: Some(DEMO_ACCESS_KEY.into()),
            username: None,
            skip_tls_verify: false,
            secret: secret.into(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn demo_one_click_opens_the_browser_through_a_reused_tunnel() {
        let rig = rig(DemoMode::On);
        let start = rig.engine.startup().await.unwrap();
        let connected = start.connected.unwrap();
        assert!(connected.demo);
        assert_eq!(connected.profile, DEMO_PROFILE);
        assert!(
            start.profiles.is_empty(),
            "the demo is not saved as a profile"
        );
        let list = rig.engine.list_sessions().await.unwrap();
        let notebook = list
            .sessions
            .iter()
            .find(|s| s.name == "demo-notebook")
            .unwrap();
        assert!(notebook.apps.iter().any(|a| a.name == "jupyter"));
        let queued = list
            .sessions
            .iter()
            .find(|s| s.name == "demo-queued")
            .unwrap();
        assert!(queued.apps.is_empty() && queued.unavailable.is_some());

        let opened = rig
            .engine
            .open_app(&notebook.id, "jupyter", true)
            .await
            .unwrap();
        assert!(opened.launched);
        let url = lock(&rig.launcher.urls)[0].clone();
        assert_eq!(Some(url.clone()), opened.url);
        assert_eq!(
            url,
            format!(
                "http://jupyter-demo-notebook.localhost:{}/",
                opened.tunnel.local_addr.port()
            )
        );
        let page = tokio::task::spawn_blocking(move || http_get(&url))
            .await
            .unwrap();
        assert!(page.contains("Porthole demo app"), "{page}");

        let again = rig
            .engine
            .open_app(&notebook.id, "jupyter", false)
            .await
            .unwrap();
        assert_eq!(again.tunnel.id, opened.tunnel.id, "the tunnel is reused");
        assert!(!again.launched);
        let menu = rig.engine.tray_menu();
        assert_eq!(menu.tunnels.len(), 1);
        assert_eq!(menu.tunnels[0].label, "demo-notebook · Jupyter");
        let ssh_config = rig.engine.write_ssh_config().await.unwrap_err();
        assert_eq!(ssh_config.kind, "demo", "{ssh_config:?}");

        let port = opened.tunnel.local_addr.port();
        assert!(rig.engine.stop_tunnel(opened.tunnel.id).await);
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port closed"
        );
        let reopened = rig
            .engine
            .open_app(&notebook.id, "jupyter", false)
            .await
            .unwrap();
        assert_eq!(
            reopened.tunnel.local_addr.port(),
            port,
            "the remembered port is reused"
        );
        let echo = rig
            .engine
            .open_app(&notebook.id, "echo", true)
            .await
            .unwrap();
        assert_eq!(echo.action, AppAction::Address);
        assert!(!echo.launched && echo.url.is_none());
        rig.engine.shutdown().await;
        assert!(rig.engine.list_tunnels().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn profiles_keep_secrets_in_the_keychain_and_refuse_wrong_ones() {
        let demo = demo::start_demo(loopback(0)).await.unwrap();
        let url = demo.endpoint_url();
        let rig = rig(DemoMode::Auto);
        let wrong = rig
            .engine
            .add_profile(api_input("lab", &url, "not-the-secret"), false)
            .await
            .unwrap_err();
        assert_eq!(wrong.kind, "auth-failed", "{wrong:?}");
        assert!(
            wrong.message.contains("refused the credentials"),
            "{}",
            wrong.message
        );
        assert!(
            rig.engine.list_profiles().unwrap().is_empty(),
            "nothing saved"
        );

        let connected = rig
            .engine
            .add_profile(api_input("lab", &url, DEMO_SECRET_KEY), false)
            .await
            .unwrap();
        assert!(!connected.demo);
        assert_eq!(
            rig.secrets.get("lab").unwrap().as_deref(),
            Some(DEMO_SECRET_KEY)
        );
        let file = std::fs::read_to_string(rig.dir.path().join("cfg/profiles.toml")).unwrap();
        assert!(!file.contains(DEMO_SECRET_KEY));

        // Editing without a secret keeps the stored one; a rename moves it.
        let mut edit = api_input("lab2", &url, "");
        edit.skip_tls_verify = true;
        rig.engine.update_profile("lab", edit, false).await.unwrap();
        assert_eq!(rig.secrets.get("lab").unwrap(), None);
        assert_eq!(
            rig.secrets.get("lab2").unwrap().as_deref(),
            Some(DEMO_SECRET_KEY)
        );

        // A fresh engine (the app restarted) signs in to the active profile, not the demo.
        let paths = Paths {
            profiles: rig.dir.path().join("cfg/profiles.toml"),
            settings: rig.dir.path().join("cfg/settings.toml"),
            ports: rig.dir.path().join("cfg/ports.toml"),
            keys_dir: None,
            ssh: None,
        };
        let again = Engine::new(
            paths,
            rig.secrets.clone(),
            rig.launcher.clone(),
            DemoMode::Auto,
        );
        let start = again.startup().await.unwrap();
        assert_eq!(start.connected.unwrap().profile, "lab2");

        // A secret that stopped working shows as an endpoint error at start.
        rig.secrets.set("lab2", "revoked").unwrap();
        let paths = Paths {
            profiles: rig.dir.path().join("cfg/profiles.toml"),
            settings: rig.dir.path().join("cfg/settings.toml"),
            ports: rig.dir.path().join("cfg/ports.toml"),
            keys_dir: None,
            ssh: None,
        };
        let third = Engine::new(
            paths,
            rig.secrets.clone(),
            rig.launcher.clone(),
            DemoMode::Off,
        );
        let start = third.startup().await.unwrap();
        assert!(start.connected.is_none());
        assert_eq!(start.error.unwrap().kind, "auth-failed");
        assert_eq!(
            third.tray_menu().state,
            porthole_core::catalog::TrayState::Error
        );

        rig.engine.remove_profile("lab2").unwrap();
        assert_eq!(rig.secrets.get("lab2").unwrap(), None);
        assert!(rig.engine.list_sessions().await.is_err(), "signed out");
        demo.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sshd_opens_a_terminal_with_a_private_key_removed_on_stop() {
        use porthole_emulator::{Emulator, ServiceConfig, SessionConfig};
        let services = demo::DemoServices::start().await.unwrap();
        let mut config = services.config();
        let key =
            "junk\n-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
        config.sessions.push(
            SessionConfig::new("ssh-box")
                .with_service(ServiceConfig::new(
                    "sshd",
                    "tcp",
                    2200,
                    services.echo_addr().to_string(),
                ))
                .with_file("id_container", key),
        );
        let emulator = Emulator::start(config, loopback(0)).await.unwrap();
        let rig = rig(DemoMode::Off);
        rig.engine
            .add_profile(
                api_input("box", &emulator.endpoint_url(), DEMO_SECRET_KEY),
                false,
            )
            .await
            .unwrap();
        let mut settings = rig.engine.settings().unwrap().settings;
        settings.terminal_command = Some("my-term --title 'Porthole SSH' --".into());
        rig.engine.save_settings(settings).unwrap();
        let list = rig.engine.list_sessions().await.unwrap();
        let session = list.sessions.iter().find(|s| s.name == "ssh-box").unwrap();
        let opened = rig
            .engine
            .open_app(&session.id, "sshd", true)
            .await
            .unwrap();
        assert_eq!(opened.action, AppAction::Terminal);
        let (program, args) = lock(&rig.launcher.spawned)[0].clone();
        assert_eq!(program, "my-term");
        assert_eq!(&args[..4], ["--title", "Porthole SSH", "--", "ssh"]);
        assert_eq!(
            args.last().unwrap(),
            &format!("{}@127.0.0.1", rig.engine.ssh_user)
        );
        let key_path = PathBuf::from(&args[args.iter().position(|a| a == "-i").unwrap() + 1]);
        assert!(key_path.starts_with(rig.dir.path()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let cmd = opened.ssh_command.unwrap();
        assert!(
            cmd.starts_with("ssh -i ")
                && cmd.contains(&format!("-p {}", opened.tunnel.local_addr.port()))
        );
        // Copy again: same key, no second download.
        let again = rig
            .engine
            .open_app(&session.id, "sshd", false)
            .await
            .unwrap();
        assert_eq!(again.ssh_command.unwrap(), cmd);
        rig.engine.stop_tunnel(opened.tunnel.id).await;
        assert!(!key_path.exists(), "the key goes with its tunnel");
        emulator.shutdown().await;
        services.shutdown().await;
    }

    #[test]
    fn demo_mode_comes_from_the_flag_or_the_variable() {
        let none: Vec<String> = Vec::new();
        assert_eq!(DemoMode::from_env(&["--demo".into()], None), DemoMode::On);
        assert_eq!(DemoMode::from_env(&none, Some("1")), DemoMode::On);
        assert_eq!(DemoMode::from_env(&none, Some("auto")), DemoMode::Auto);
        assert_eq!(DemoMode::from_env(&none, Some("0")), DemoMode::Off);
        assert_eq!(DemoMode::from_env(&none, None), DemoMode::Off);
    }

    #[test]
    fn profile_input_debug_hides_the_secret() {
        let input = api_input("x", "http://127.0.0.1:1", "hunter2");
        assert!(!format!("{input:?}").contains("hunter2"));
    }
}
