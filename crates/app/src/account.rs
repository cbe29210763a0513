//! Profiles, sign-in and sign-out, the built-in demo, and the account state: where the app
//! stands with its endpoint, one value ([`Account`]) changed only by the transitions below,
//! each of which the window hears of ([`AccountView`], [`App::account_changes`]).
//!
//! ```text
//!            sign-in ok / demo                  listing ok / failed (same generation)
//! SignedOut ──────────────────▶ SignedIn ◀──────────────────────────────┐
//!     ▲  ▲                        │  │ └──────────────────────────────────┘
//!     │  └── sign out, profile ───┘  │ sign-in to another profile fails
//!     │      removed                 ▼
//!     └──── profile removed ────── Failed ── sign-in ok ──▶ SignedIn
//! ```
//!
//! Every transition bumps a generation, so a listing that was under way for the previous
//! connection cannot overwrite the new one's.

use std::fmt;

use porthole_core::api::Proxy;
use porthole_core::api::{BackendClient, ComputeSession, Endpoint};
use porthole_core::profiles::{proxy_secret_name, AuthMode, Profile, ProfileError, DIRECT};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::error::UiError;
use crate::presenter::TunnelView;
use crate::settings::SettingsReply;
use crate::{lock, App};

/// The name the demo connection shows in the profile menu.
pub const DEMO_PROFILE: &str = "Demo";

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
    /// The HTTP proxy: empty follows the environment (HTTPS_PROXY...), `direct` uses
    /// none, else `http://[user[:password]@]host:port` (the password goes to the keychain;
    /// none given when editing keeps the stored one).
    #[serde(default)]
    pub proxy: String,
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
            proxy: self.proxy_setting().map(|(setting, _)| setting),
        }
    }

    /// The profile's proxy setting (no password) and the password given with it.
    fn proxy_setting(&self) -> Option<(String, Option<String>)> {
        let text = self.proxy.trim();
        match text {
            "" => None,
            "direct" | "none" => Some((DIRECT.to_owned(), None)),
            url => match Proxy::parse(url) {
                Ok(proxy) => Some((proxy.to_string(), proxy.password().map(str::to_owned))),
                // Kept as typed: validation says what is wrong with it.
                Err(_) => Some((url.to_owned(), None)),
            },
        }
    }

    /// The proxy password typed in the form, if any.
    fn proxy_password(&self) -> Option<String> {
        self.proxy_setting().and_then(|(_, password)| password)
    }
}

/// A saved profile as the window lists it (no secret).
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
    /// Its proxy setting (no password): `None` follows the environment.
    pub proxy: Option<String>,
    /// Whether it is the one used at start.
    pub active: bool,
}

/// The connection the app is signed in with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

/// The account as the window shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum AccountView {
    /// No profile in use: the sign-in screen.
    SignedOut,
    /// Signed in; `error` is the last request's failure (the banner), if it failed.
    SignedIn {
        /// The connection.
        connection: Connected,
        /// Why the last listing failed, while it does.
        error: Option<UiError>,
    },
    /// Signing in to `profile` failed: the banner offers Retry and Edit profile.
    Failed {
        /// The profile.
        profile: String,
        /// Why.
        error: UiError,
    },
}

impl AccountView {
    /// The error the banner and the tray's red mark show, if any.
    pub fn error(&self) -> Option<&UiError> {
        match self {
            AccountView::SignedOut => None,
            AccountView::SignedIn { error, .. } => error.as_ref(),
            AccountView::Failed { error, .. } => Some(error),
        }
    }
}

/// What the window needs when it (re)loads.
#[derive(Debug, Clone, Serialize)]
pub struct Startup {
    /// Saved profiles.
    pub profiles: Vec<ProfileSummary>,
    /// Where the account stands.
    pub account: AccountView,
    /// The settings, with what the Settings screen shows beside them.
    pub settings: SettingsReply,
    /// Running tunnels.
    pub tunnels: Vec<TunnelView>,
}

/// A signed-in connection: what it is, and the client that talks to it.
#[derive(Clone)]
pub(crate) struct Connection {
    pub(crate) info: Connected,
    pub(crate) client: BackendClient,
}

/// Where the app stands with its endpoint.
#[derive(Default)]
enum State {
    #[default]
    SignedOut,
    SignedIn {
        conn: Box<Connection>,
        /// The last listing: what clicks look sessions up in.
        sessions: Vec<ComputeSession>,
        error: Option<UiError>,
    },
    Failed {
        profile: String,
        error: UiError,
    },
}

/// The account state and its transitions (see the module docs).
pub(crate) struct Account {
    state: State,
    generation: u64,
    changes: watch::Sender<AccountView>,
}

impl Default for Account {
    fn default() -> Self {
        Account {
            state: State::SignedOut,
            generation: 0,
            changes: watch::Sender::new(AccountView::SignedOut),
        }
    }
}

impl Account {
    fn view(&self) -> AccountView {
        match &self.state {
            State::SignedOut => AccountView::SignedOut,
            State::SignedIn { conn, error, .. } => AccountView::SignedIn {
                connection: conn.info.clone(),
                error: error.clone(),
            },
            State::Failed { profile, error } => AccountView::Failed {
                profile: profile.clone(),
                error: error.clone(),
            },
        }
    }

    fn enter(&mut self, state: State) {
        self.state = state;
        self.generation += 1;
        self.publish();
    }

    fn publish(&self) {
        let view = self.view();
        self.changes.send_if_modified(|current| {
            let changed = *current != view;
            *current = view;
            changed
        });
    }

    /// Signed in (from any state): the previous connection, if any, is dropped.
    pub(crate) fn signed_in(&mut self, conn: Connection, sessions: Vec<ComputeSession>) {
        self.enter(State::SignedIn {
            conn: Box::new(conn),
            sessions,
            error: None,
        });
    }

    /// Signing in to `profile` failed (from any state): no connection is kept.
    pub(crate) fn failed(&mut self, profile: &str, error: UiError) {
        self.enter(State::Failed {
            profile: profile.to_owned(),
            error,
        });
    }

    /// Signed out (from any state).
    pub(crate) fn signed_out(&mut self) {
        self.enter(State::SignedOut);
    }

    /// The profile `name` was removed: signed out if it was the one in use (or failing).
    pub(crate) fn profile_removed(&mut self, name: &str) {
        let affected = match &self.state {
            State::SignedIn { conn, .. } => !conn.info.demo && conn.info.profile == name,
            State::Failed { profile, .. } => profile == name,
            State::SignedOut => false,
        };
        if affected {
            self.signed_out();
        }
    }

    /// A listing of the connection of `generation` came back (a newer connection's
    /// listing state is left alone).
    pub(crate) fn listed(&mut self, generation: u64, result: Result<Vec<ComputeSession>, UiError>) {
        if generation != self.generation {
            return;
        }
        if let State::SignedIn {
            sessions, error, ..
        } = &mut self.state
        {
            match result {
                Ok(list) => {
                    *sessions = list;
                    *error = None;
                }
                Err(e) => *error = Some(e),
            }
            self.publish();
        }
    }

    /// The connection and its generation, when signed in.
    pub(crate) fn connection(&self) -> Result<(Connection, u64), UiError> {
        match &self.state {
            State::SignedIn { conn, .. } => Ok(((**conn).clone(), self.generation)),
            _ => Err(UiError::new(
                "signed-out",
                "not signed in; pick a profile or try the demo",
            )),
        }
    }

    /// The last listing's session `id`, if it is there.
    pub(crate) fn session(&self, id: &str) -> Option<ComputeSession> {
        match &self.state {
            State::SignedIn { sessions, .. } => sessions.iter().find(|s| s.id == id).cloned(),
            _ => None,
        }
    }
}

impl App {
    /// What the window shows first: the demo when asked for, else the active profile
    /// signed in (or the reason it could not be), else the sign-in screen.
    pub async fn startup(&self) -> Result<Startup, UiError> {
        let profiles = self.list_profiles()?;
        let fresh = matches!(lock(&self.account).view(), AccountView::SignedOut);
        if fresh {
            if self.demo_mode == DemoMode::On
                || (self.demo_mode == DemoMode::Auto && profiles.is_empty())
            {
                self.start_demo().await?;
            } else if let Some(active) = profiles.iter().find(|p| p.active) {
                // A failure is part of the state the window shows.
                let _ = self.sign_in(&active.name).await;
            }
        }
        Ok(Startup {
            profiles: self.list_profiles()?,
            account: self.account(),
            // A broken settings file must not keep the window from starting.
            settings: self.settings_reply(self.settings.load().unwrap_or_default()),
            tunnels: self.list_tunnels(),
        })
    }

    /// Where the account stands now.
    pub fn account(&self) -> AccountView {
        lock(&self.account).view()
    }

    /// Every change of the account from now on (the window's `account` events).
    pub fn account_changes(&self) -> watch::Receiver<AccountView> {
        lock(&self.account).changes.subscribe()
    }

    /// The error the banner and the tray's red mark show, if any.
    pub fn endpoint_error(&self) -> Option<UiError> {
        lock(&self.account).view().error().cloned()
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
                proxy: p.proxy.clone(),
                active: file.active.as_deref() == Some(p.name.as_str()),
            })
            .collect())
    }

    /// Signs in with `profile` and `secret` and checks the credentials by listing
    /// sessions (in API mode only a request proves the keys).
    async fn connect(
        profile: &Profile,
        secret: String,
        proxy_password: Option<&str>,
    ) -> Result<(BackendClient, Vec<ComputeSession>), UiError> {
        let endpoint = Endpoint::parse(&profile.endpoint)?;
        let options = profile.client_options(proxy_password)?;
        let client =
            BackendClient::connect(&endpoint, &profile.credentials(secret), &options).await?;
        let sessions = client.list_sessions(false).await?;
        Ok((client, sessions))
    }

    /// Makes `client` the connection (the previous one, if any, is dropped).
    pub(crate) fn adopt(
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
        tracing::info!(profile = name, endpoint = %info.endpoint, demo, "signed in");
        lock(&self.account).signed_in(
            Connection {
                info: info.clone(),
                client,
            },
            sessions,
        );
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
        let proxy_password = match input.proxy_password() {
            Some(password) => Some(password),
            None => self.secrets.get(&proxy_secret_name(&profile.name))?,
        };
        let (client, sessions) = Self::connect(&profile, secret, proxy_password.as_deref()).await?;
        Ok(TestReport {
            endpoint: client.endpoint().to_string(),
            api_version: client.api_version().to_string(),
            manager_version: client.server_info().manager_version.clone(),
            sessions: sessions.len(),
        })
    }

    /// Adds a profile: tests it, stores its secret in the keychain and the rest in the
    /// profiles file, makes it active and signs in. With `force` it is saved even when
    /// the test fails (the failure is still returned, and is the account's state).
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
        let proxy_password = input.proxy_password();
        let tested = Self::connect(&profile, input.secret.clone(), proxy_password.as_deref()).await;
        if tested.is_ok() || force {
            self.profiles
                .add(profile.clone(), &input.secret, self.secrets.as_ref())?;
            self.keep_proxy_password(&profile.name, proxy_password.as_deref())?;
            self.profiles.set_active(&profile.name)?;
            tracing::info!(profile = %profile.name, endpoint = %profile.endpoint, "profile added");
        }
        self.settle(&profile.name, tested, force)
    }

    /// Changes a saved profile (renaming moves its secret). An empty secret keeps the
    /// stored one; the stored secret is never sent back to the window.
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
        // A proxy with a user but no password typed keeps the stored password.
        let proxy_password = match input.proxy_password() {
            Some(password) => Some(password),
            None if input.proxy.contains('@') => self.secrets.get(&proxy_secret_name(original))?,
            None => None,
        };
        let tested = Self::connect(&profile, secret.clone(), proxy_password.as_deref()).await;
        if tested.is_ok() || force {
            self.secrets.set(&profile.name, &secret)?;
            file.profiles[index] = profile.clone();
            file.active = Some(profile.name.clone());
            self.profiles.save(&file)?;
            if profile.name != original {
                self.secrets.delete(original)?;
                self.secrets.delete(&proxy_secret_name(original))?;
            }
            self.keep_proxy_password(&profile.name, proxy_password.as_deref())?;
            tracing::info!(profile = %profile.name, "profile updated");
        }
        self.settle(&profile.name, tested, force)
    }

    /// Stores (or, with `None`, removes) the proxy password of profile `name`.
    fn keep_proxy_password(&self, name: &str, password: Option<&str>) -> Result<(), UiError> {
        let key = proxy_secret_name(name);
        match password {
            Some(password) => self.secrets.set(&key, password)?,
            None => self.secrets.delete(&key)?,
        }
        Ok(())
    }

    /// After a form's test: signed in, or (when the profile was saved anyway) failed with
    /// the test's reason; a failed test of an unsaved profile leaves the account alone.
    fn settle(
        &self,
        name: &str,
        tested: Result<(BackendClient, Vec<ComputeSession>), UiError>,
        saved_anyway: bool,
    ) -> Result<Connected, UiError> {
        match tested {
            Ok((client, sessions)) => Ok(self.adopt(name, false, client, sessions)),
            Err(e) => {
                if saved_anyway {
                    lock(&self.account).failed(name, e.clone());
                }
                Err(e)
            }
        }
    }

    /// Removes a saved profile and its keychain entry; signs out if it was in use (or was
    /// the one failing).
    pub fn remove_profile(&self, name: &str) -> Result<(), UiError> {
        self.profiles.remove(name, self.secrets.as_ref())?;
        lock(&self.account).profile_removed(name);
        tracing::info!(profile = name, "profile removed");
        Ok(())
    }

    /// Signs in with a saved profile (secret from the keychain) and makes it active; on
    /// failure the account is `Failed` with the reason, the previous connection dropped.
    pub async fn sign_in(&self, name: &str) -> Result<Connected, UiError> {
        let attempt = async {
            let profile = self.profiles.get(Some(name))?;
            let secret = self
                .secrets
                .get(&profile.name)?
                .ok_or_else(|| ProfileError::NoSecret(profile.name.clone()))?;
            self.profiles.set_active(&profile.name)?;
            let proxy_password = self.secrets.get(&proxy_secret_name(&profile.name))?;
            Self::connect(&profile, secret, proxy_password.as_deref()).await
        };
        match attempt.await {
            Ok((client, sessions)) => Ok(self.adopt(name, false, client, sessions)),
            Err(e) => {
                tracing::warn!(profile = name, error = %e, "sign-in failed");
                lock(&self.account).failed(name, e.clone());
                Err(e)
            }
        }
    }

    /// Forgets the current connection (tunnels keep running).
    pub fn sign_out(&self) {
        lock(&self.account).signed_out();
    }

    /// Starts the built-in demo (once) on a free loopback port and signs in to it with its
    /// public demo keys; nothing is saved.
    pub async fn start_demo(&self) -> Result<Connected, UiError> {
        #[cfg(feature = "demo")]
        {
            let (client, sessions) = crate::demo::connect(&self.demo).await?;
            Ok(self.adopt(DEMO_PROFILE, true, client, sessions))
        }
        #[cfg(not(feature = "demo"))]
        {
            Err(UiError::new(
                "demo",
                "this build of Porthole has no built-in demo",
            ))
        }
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let input = ProfileInput {
            name: "x".into(),
            endpoint: "http://127.0.0.1:1".into(),
            mode: AuthMode::Api,
            access_key: Some("AK".into()),
            username: None,
            skip_tls_verify: false,
            secret: "hunter2".into(),
            proxy: "http://bob:proxy-pw@proxy.corp:3128".into(),
        };
        assert!(!format!("{input:?}").contains("hunter2"));
        assert!(!format!("{input:?}").contains("proxy-pw"));
        let profile = input.profile();
        assert_eq!(profile.proxy.as_deref(), Some("http://bob@proxy.corp:3128"));
        assert_eq!(input.proxy_password().as_deref(), Some("proxy-pw"));
    }

    #[test]
    fn transitions_drop_what_no_longer_holds() {
        let mut account = Account::default();
        let mut changes = account.changes.subscribe();
        account.failed("lab", UiError::new("auth-failed", "refused"));
        assert!(changes.has_changed().unwrap());
        assert_eq!(account.view().error().unwrap().kind, "auth-failed");
        assert!(account.connection().is_err(), "no connection while failed");
        changes.mark_unchanged();
        account.profile_removed("other");
        assert!(
            !changes.has_changed().unwrap(),
            "another profile changes nothing"
        );
        account.profile_removed("lab");
        assert_eq!(account.view(), AccountView::SignedOut);
        assert!(account.view().error().is_none(), "no error left over");
        // A listing of an older generation does not land.
        let old = account.generation;
        account.signed_out();
        account.listed(old, Err(UiError::new("unreachable", "x")));
        assert_eq!(account.view(), AccountView::SignedOut);
    }
}
