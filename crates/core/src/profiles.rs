//! Saved endpoints ("profiles") in a TOML file in the platform config dir. The file
//! never holds a secret: secret keys and passwords live in the OS keychain behind the
//! [`SecretStore`] trait, so tests can swap in [`MemorySecrets`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::toml_file::{self, TomlFileError};
use serde::{Deserialize, Serialize};

use crate::api::{
    ApiError, ClientOptions, Credentials, Endpoint, Proxy, ProxySettings, TlsOptions,
};

/// How a profile signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Keypair signing against the manager.
    Api,
    /// Username/password login to the web server.
    Session,
}

/// One saved endpoint. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Unique name, e.g. `gpu-cluster`.
    pub name: String,
    /// Manager URL (API mode) or web server URL (session mode).
    pub endpoint: String,
    /// How to sign in.
    pub mode: AuthMode,
    /// The access key (API mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
    /// The username (session mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Accept any TLS certificate (off unless the user opts in).
    #[serde(default)]
    pub skip_tls_verify: bool,
    /// Extra CA certificates (PEM) to trust.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// The HTTP proxy: `None` follows the environment (HTTPS_PROXY and friends), `direct`
    /// uses none, else `http://[user@]host:port`; its password is in the keychain
    /// ([`proxy_secret_name`]), never here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
}

/// The keychain entry of a profile's proxy password (profile names have no `/`).
pub fn proxy_secret_name(profile: &str) -> String {
    format!("{profile}/proxy")
}

/// The value of [`Profile::proxy`] that means "no proxy".
pub const DIRECT: &str = "direct";

impl Profile {
    /// Checks the fields a user typed; returns the first problem in words.
    pub fn validate(&self) -> Result<(), ProfileError> {
        let bad = |m: &str| Err(ProfileError::Invalid(m.to_owned()));
        if self.name.trim().is_empty() || self.name.len() > 64 {
            return bad("the profile name must be 1 to 64 characters");
        }
        if self
            .name
            .chars()
            .any(|c| c.is_control() || c == '/' || c == '\\')
        {
            return bad("the profile name must not contain slashes or control characters");
        }
        Endpoint::parse(&self.endpoint).map_err(|e| ProfileError::Invalid(e.to_string()))?;
        if let Some(proxy) = self.proxy.as_deref().filter(|p| *p != DIRECT) {
            if Proxy::parse(proxy)
                .map_err(|e| ProfileError::Invalid(e.to_string()))?
                .has_password()
            {
                return bad("the proxy password belongs in the keychain, not in the profile");
            }
        }
        match self.mode {
            AuthMode::Api
                if self
                    .access_key
                    .as_deref()
                    .is_none_or(|k| k.trim().is_empty()) =>
            {
                bad("API mode needs an access key")
            }
            AuthMode::Session if self.username.as_deref().is_none_or(|u| u.trim().is_empty()) => {
                bad("web login needs a username")
            }
            _ => Ok(()),
        }
    }

    /// The client options this profile asks for; `proxy_password` is the proxy's
    /// password from the keychain, if it has one.
    pub fn client_options(&self, proxy_password: Option<&str>) -> Result<ClientOptions, ApiError> {
        let proxy = match self.proxy.as_deref() {
            None => ProxySettings::from_env()?,
            Some(DIRECT) => ProxySettings::direct(),
            Some(url) => {
                let proxy = Proxy::parse(url)?;
                let proxy = match proxy_password {
                    Some(password) => proxy.with_password(password),
                    None => proxy,
                };
                ProxySettings::all_through(proxy, "")
            }
        };
        Ok(ClientOptions {
            tls: TlsOptions {
                skip_verify: self.skip_tls_verify,
                ca_file: self.ca_file.clone(),
            },
            proxy,
            ..ClientOptions::default()
        })
    }

    /// The credentials, with `secret` (secret key or password) from the keychain.
    pub fn credentials(&self, secret: String) -> Credentials {
        match self.mode {
            AuthMode::Api => Credentials::Keypair {
                access_key: self.access_key.clone().unwrap_or_default(),
                secret_key: secret,
            },
            AuthMode::Session => Credentials::WebLogin {
                username: self.username.clone().unwrap_or_default(),
                password: secret,
                otp: None,
            },
        }
    }
}

/// Errors of the profile store.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// A field is unusable.
    #[error("invalid profile: {0}")]
    Invalid(String),
    /// No profile by that name.
    #[error("no profile named {0:?}")]
    NotFound(String),
    /// The name is taken.
    #[error("a profile named {0:?} already exists; remove it first or pick another name")]
    Exists(String),
    /// The profiles file could not be read or written, or is not valid.
    #[error(transparent)]
    File(#[from] TomlFileError),
    /// There is no home directory to keep the profiles in.
    #[error("cannot find the config directory (no home directory)")]
    NoConfigDir,
    /// The OS keychain failed.
    #[error("the OS keychain failed: {0}. On Linux a Secret Service (GNOME Keyring, KWallet) must be running and unlocked.")]
    Keychain(String),
    /// The profile has no secret stored.
    #[error("no secret is stored in the keychain for profile {0:?}")]
    NoSecret(String),
}

/// The profiles file: every profile plus which one is in use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    /// The profile used when none is named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<String>,
    /// All profiles.
    #[serde(default, rename = "profile")]
    pub profiles: Vec<Profile>,
}

/// Where secrets live. Implementations must never write a secret to a plain file.
pub trait SecretStore: Send + Sync {
    /// The secret stored for `profile`, if any.
    fn get(&self, profile: &str) -> Result<Option<String>, ProfileError>;
    /// Stores (or replaces) the secret for `profile`.
    fn set(&self, profile: &str, secret: &str) -> Result<(), ProfileError>;
    /// Removes the secret for `profile`; absent is fine.
    fn delete(&self, profile: &str) -> Result<(), ProfileError>;
}

/// The OS keychain (Secret Service on Linux, Keychain on macOS, Credential Manager on
/// Windows), one entry per profile under the service name `porthole`.
#[derive(Debug, Clone)]
pub struct KeyringSecrets {
    service: String,
}

impl KeyringSecrets {
    /// Secrets under the service name `porthole`.
    pub fn new() -> Self {
        KeyringSecrets {
            service: "porthole".to_owned(),
        }
    }

    fn entry(&self, profile: &str) -> Result<keyring::Entry, ProfileError> {
        keyring::Entry::new(&self.service, &format!("profile:{profile}"))
            .map_err(|e| ProfileError::Keychain(e.to_string()))
    }
}

impl Default for KeyringSecrets {
    fn default() -> Self {
        Self::new()
    }
}

impl SecretStore for KeyringSecrets {
    fn get(&self, profile: &str) -> Result<Option<String>, ProfileError> {
        match self.entry(profile)?.get_password() {
            Ok(secret) => Ok(Some(secret)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(ProfileError::Keychain(e.to_string())),
        }
    }

    fn set(&self, profile: &str, secret: &str) -> Result<(), ProfileError> {
        self.entry(profile)?
            .set_password(secret)
            .map_err(|e| ProfileError::Keychain(e.to_string()))
    }

    fn delete(&self, profile: &str) -> Result<(), ProfileError> {
        match self.entry(profile)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(ProfileError::Keychain(e.to_string())),
        }
    }
}

/// Secrets in memory, for tests and the demo.
#[derive(Debug, Default)]
pub struct MemorySecrets {
    secrets: Mutex<HashMap<String, String>>,
}

impl SecretStore for MemorySecrets {
    fn get(&self, profile: &str) -> Result<Option<String>, ProfileError> {
        Ok(self
            .secrets
            .lock()
            .map_err(|_| ProfileError::Keychain("poisoned".into()))?
            .get(profile)
            .cloned())
    }

    fn set(&self, profile: &str, secret: &str) -> Result<(), ProfileError> {
        self.secrets
            .lock()
            .map_err(|_| ProfileError::Keychain("poisoned".into()))?
            .insert(profile.to_owned(), secret.to_owned());
        Ok(())
    }

    fn delete(&self, profile: &str) -> Result<(), ProfileError> {
        self.secrets
            .lock()
            .map_err(|_| ProfileError::Keychain("poisoned".into()))?
            .remove(profile);
        Ok(())
    }
}

/// The platform config directory for Porthole (`$XDG_CONFIG_HOME/porthole` on Linux).
pub fn config_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "porthole").map(|d| d.config_dir().to_owned())
}

/// The profiles file on disk.
#[derive(Debug, Clone)]
pub struct ProfileStore {
    path: PathBuf,
}

impl ProfileStore {
    /// The store at `path`.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        ProfileStore { path: path.into() }
    }

    /// The store in the platform config directory.
    pub fn default_location() -> Result<Self, ProfileError> {
        let dir = config_dir().ok_or(ProfileError::NoConfigDir)?;
        Ok(Self::at(dir.join("profiles.toml")))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the file; a missing file is an empty one.
    pub fn load(&self) -> Result<ProfileFile, ProfileError> {
        Ok(toml_file::load(&self.path)?)
    }

    /// Writes the file atomically (temp file + rename), so a crash never leaves half.
    pub fn save(&self, file: &ProfileFile) -> Result<(), ProfileError> {
        Ok(toml_file::save(&self.path, file)?)
    }

    /// Adds a profile and its secret. The secret is stored first, so a failing keychain
    /// leaves no profile without a secret behind.
    pub fn add(
        &self,
        profile: Profile,
        secret: &str,
        secrets: &dyn SecretStore,
    ) -> Result<(), ProfileError> {
        profile.validate()?;
        if secret.is_empty() {
            return Err(ProfileError::Invalid(match profile.mode {
                AuthMode::Api => "the secret key is empty".into(),
                AuthMode::Session => "the password is empty".into(),
            }));
        }
        let mut file = self.load()?;
        if file.profiles.iter().any(|p| p.name == profile.name) {
            return Err(ProfileError::Exists(profile.name));
        }
        secrets.set(&profile.name, secret)?;
        if file.active.is_none() {
            file.active = Some(profile.name.clone());
        }
        file.profiles.push(profile);
        self.save(&file)
    }

    /// Removes a profile and its secret.
    pub fn remove(&self, name: &str, secrets: &dyn SecretStore) -> Result<(), ProfileError> {
        let mut file = self.load()?;
        let before = file.profiles.len();
        file.profiles.retain(|p| p.name != name);
        if file.profiles.len() == before {
            return Err(ProfileError::NotFound(name.to_owned()));
        }
        if file.active.as_deref() == Some(name) {
            file.active = file.profiles.first().map(|p| p.name.clone());
        }
        self.save(&file)?;
        secrets.delete(&proxy_secret_name(name))?;
        secrets.delete(name)
    }

    /// Makes `name` the profile used when none is named.
    pub fn set_active(&self, name: &str) -> Result<(), ProfileError> {
        let mut file = self.load()?;
        if !file.profiles.iter().any(|p| p.name == name) {
            return Err(ProfileError::NotFound(name.to_owned()));
        }
        file.active = Some(name.to_owned());
        self.save(&file)
    }

    /// The named profile, or the active one when `name` is `None`.
    pub fn get(&self, name: Option<&str>) -> Result<Profile, ProfileError> {
        let file = self.load()?;
        let wanted = name
            .map(str::to_owned)
            .or(file.active.clone())
            .ok_or_else(|| ProfileError::NotFound("(none active)".into()))?;
        file.profiles
            .into_iter()
            .find(|p| p.name == wanted)
            .ok_or(ProfileError::NotFound(wanted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn api_profile(name: &str) -> Profile {
        Profile {
            name: name.into(),
            endpoint: "https://api.example.com".into(),
            mode: AuthMode::Api,
            access_key: Some("AKIAEXAMPLE".into()),
            username: None,
            skip_tls_verify: false,
            ca_file: None,
            proxy: None,
        }
    }

    #[test]
    fn a_profile_proxy_keeps_its_password_out_of_the_file() {
        let mut profile = api_profile("p");
        profile.proxy = Some("http://alice:hunter2@proxy.corp:3128".into());
        assert!(profile.validate().is_err(), "no password in the file");
        profile.proxy = Some("http://alice@proxy.corp:3128".into());
        profile.validate().unwrap();
        let options = profile.client_options(Some("hunter2")).unwrap();
        let url = url::Url::parse("https://api.example.com").unwrap();
        let proxy = options.proxy.for_url(&url).unwrap();
        assert_eq!(proxy.password(), Some("hunter2"));
        profile.proxy = Some(DIRECT.into());
        let options = profile.client_options(None).unwrap();
        assert!(options.proxy.is_direct());
        assert_eq!(proxy_secret_name("p"), "p/proxy");
    }

    #[test]
    fn add_use_remove_keeps_secrets_out_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = ProfileStore::at(dir.path().join("sub/profiles.toml"));
        let secrets = MemorySecrets::default();
        store
            .add(api_profile("a"), "s3cr3t-value", &secrets)
            .unwrap();
        store
            .add(api_profile("b"), "other-secret", &secrets)
            .unwrap();
        assert!(matches!(
            store.add(api_profile("a"), "x", &secrets),
            Err(ProfileError::Exists(_))
        ));
        let text = fs::read_to_string(store.path()).unwrap();
        assert!(!text.contains("s3cr3t-value") && !text.contains("other-secret"));
        assert_eq!(store.get(None).unwrap().name, "a");
        store.set_active("b").unwrap();
        assert_eq!(store.get(None).unwrap().name, "b");
        store.remove("b", &secrets).unwrap();
        assert_eq!(store.get(None).unwrap().name, "a");
        assert_eq!(secrets.get("b").unwrap(), None);
        assert!(matches!(
            store.remove("zzz", &secrets),
            Err(ProfileError::NotFound(_))
        ));
    }

    #[test]
    fn bad_input_is_refused_without_half_state() {
        let dir = tempfile::tempdir().unwrap();
        let store = ProfileStore::at(dir.path().join("profiles.toml"));
        let secrets = MemorySecrets::default();
        let mut p = api_profile("x");
        p.endpoint = "not a url".into();
        assert!(store.add(p, "s", &secrets).is_err());
        let mut p = api_profile("x");
        p.access_key = None;
        assert!(store.add(p, "s", &secrets).is_err());
        assert!(store.add(api_profile("x"), "", &secrets).is_err());
        assert!(store.add(api_profile("a/b"), "s", &secrets).is_err());
        assert!(!store.path().exists());
        assert_eq!(secrets.get("x").unwrap(), None);
        fs::write(store.path(), "profile = 3").unwrap();
        assert!(matches!(
            store.load(),
            Err(ProfileError::File(TomlFileError::Corrupt { .. }))
        ));
    }
}
