//! The emulator's configuration: keypairs, web-login users and sessions, read from TOML.
//!
//! ```toml
//! api_version = "v8.20240915"          # reported by GET /; a v4 version switches to /stream/kernel paths
//! manager_version = "24.09.0"          # optional; derived from api_version when it is a known one
//! skip_auth = false                    # optional; true = no signature/date checks (benchmarks only)
//!
//! [[keypairs]]
//! access_key = "AKIAEXAMPLE0000000001"
//! secret_key = "secret"
//! role = "user"                        # optional: user (default), admin, superadmin
//!
//! [[users]]                            # web-login (session) mode
//! username = "user@example.com"
//! password = "pw"
//! access_key = "AKIAEXAMPLE0000000001"
//!
//! [[sessions]]
//! name = "train-1"
//! id = "..."                           # optional UUID, generated when absent
//! status = "RUNNING"                   # optional, default RUNNING
//! access_key = "AKIAEXAMPLE0000000001" # optional owner, default: the first keypair
//! files = { id_container = "/path/to/key", "hello.txt" = { content = "hi\n" } }
//!
//! [[sessions.services]]
//! name = "sshd"
//! protocol = "tcp"
//! container_ports = [2200]
//! target = "127.0.0.1:2222"            # the real local server behind the app
//! start_delay_ms = 0
//! ```
//!
//! Unknown keys are errors. See the crate README section of `lib.rs` for every key.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use porthole_core::api::version::ApiVersion;

/// The API version reported when the config does not set one.
pub const DEFAULT_API_VERSION: &str = "v8.20240915";

/// The image reported for sessions that do not set one.
pub const DEFAULT_IMAGE: &str = "cr.backend.ai/stable/python:3.11-ubuntu22.04";

/// Every session status the emulator knows (Backend.AI 23.09's `SessionStatus`).
pub const SESSION_STATUSES: &[&str] = &[
    "PENDING",
    "SCHEDULED",
    "PREPARING",
    "PULLING",
    "PREPARED",
    "CREATING",
    "RUNNING",
    "RESTARTING",
    "RUNNING_DEGRADED",
    "TERMINATING",
    "TERMINATED",
    "ERROR",
    "CANCELLED",
];

/// Service-port protocols a session may declare.
pub const SERVICE_PROTOCOLS: &[&str] = &["tcp", "http", "preopen", "internal", "pty", "vnc", "rdp"];

/// A whole emulator configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// API version reported by `GET /` (e.g. `v8.20240915`; `v4.*` switches to v4 paths).
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// Manager release reported by `GET /`; derived from `api_version` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager_version: Option<String>,
    /// Accept unsigned requests (no date/signature checks). For benchmarks only.
    #[serde(default)]
    pub skip_auth: bool,
    /// API keypairs.
    #[serde(default)]
    pub keypairs: Vec<KeypairConfig>,
    /// Users that can log in through `/server/login` (session mode).
    #[serde(default)]
    pub users: Vec<UserConfig>,
    /// Compute sessions.
    #[serde(default)]
    pub sessions: Vec<SessionConfig>,
}

fn default_api_version() -> String {
    DEFAULT_API_VERSION.to_owned()
}

impl Default for Config {
    fn default() -> Self {
        Config {
            api_version: default_api_version(),
            manager_version: None,
            skip_auth: false,
            keypairs: Vec::new(),
            users: Vec::new(),
            sessions: Vec::new(),
        }
    }
}

/// The role of a keypair's user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A normal user: sees only the sessions it owns.
    #[default]
    User,
    /// A domain admin: the listing shows every session.
    Admin,
    /// A superadmin: the listing shows every session.
    Superadmin,
}

impl Role {
    /// The role name as the manager spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
            Role::Superadmin => "superadmin",
        }
    }
}

/// One API keypair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeypairConfig {
    /// The access key (`credential=` in the Authorization header).
    pub access_key: String,
    /// The secret key the signature is keyed with.
    pub secret_key: String,
    /// The user's role.
    #[serde(default)]
    pub role: Role,
    /// An inactive keypair is treated as unknown ("Access key not found").
    #[serde(default = "default_true")]
    pub active: bool,
    /// The owner's user id (generated when absent); 26.x names it in permission errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
}

fn default_true() -> bool {
    true
}

impl KeypairConfig {
    /// An active `user` keypair.
    pub fn new(access_key: impl Into<String>, secret_key: impl Into<String>) -> Self {
        KeypairConfig {
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            role: Role::User,
            active: true,
            user_id: None,
        }
    }
}

/// A user that can log in through the web server (`POST /server/login`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// The login name (an email address in Backend.AI).
    pub username: String,
    /// The password.
    pub password: String,
    /// The keypair the web server signs this user's calls with.
    pub access_key: String,
    /// When set, the password has expired on this date (as the manager prints it, e.g.
    /// `2020-12-31 00:00:00+00:00`): logins are refused with `password-expired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_expired_on: Option<String>,
    /// When set, the account signs in with this one-time password too, as Backend.AI's
    /// TOTP plugin makes the web server ask for it (`require-totp-authentication`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otp: Option<String>,
}

impl UserConfig {
    /// A user bound to a keypair.
    pub fn new(
        username: impl Into<String>,
        password: impl Into<String>,
        access_key: impl Into<String>,
    ) -> Self {
        UserConfig {
            username: username.into(),
            password: password.into(),
            access_key: access_key.into(),
            password_expired_on: None,
            otp: None,
        }
    }
}

/// Where a downloadable file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FileSource {
    /// A file on the local disk, read at request time.
    Path(PathBuf),
    /// Literal contents: `{ content = "..." }`.
    Inline {
        /// The file's contents.
        content: String,
    },
}

/// One compute session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionConfig {
    /// The session name.
    pub name: String,
    /// The session UUID; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    /// The status (one of [`SESSION_STATUSES`]); `service_ports` is null unless RUNNING.
    #[serde(default = "default_status")]
    pub status: String,
    /// The `status_info` string (e.g. `no-available-instances` for a PENDING session).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_info: Option<String>,
    /// The kernel image.
    #[serde(default = "default_image")]
    pub image: String,
    /// The owner's access key; the first keypair when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
    /// Creation time, RFC 3339; "now minus the session's index in seconds" when absent, so
    /// the listing (newest first) keeps the file's order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// The session type (`INTERACTIVE`, `BATCH`, `INFERENCE`).
    #[serde(rename = "type", default = "default_session_type")]
    pub session_type: String,
    /// The resource group.
    #[serde(default = "default_scaling_group")]
    pub scaling_group: String,
    /// The project id; a fixed one per emulator when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<Uuid>,
    /// Files served by `download_single`, by name relative to `/home/work`.
    #[serde(default)]
    pub files: BTreeMap<String, FileSource>,
    /// The session's apps.
    #[serde(default)]
    pub services: Vec<ServiceConfig>,
}

fn default_status() -> String {
    "RUNNING".to_owned()
}

fn default_image() -> String {
    DEFAULT_IMAGE.to_owned()
}

fn default_session_type() -> String {
    "INTERACTIVE".to_owned()
}

fn default_scaling_group() -> String {
    "default".to_owned()
}

impl SessionConfig {
    /// A RUNNING session with defaults and no services.
    pub fn new(name: impl Into<String>) -> Self {
        SessionConfig {
            name: name.into(),
            id: None,
            status: default_status(),
            status_info: None,
            image: default_image(),
            access_key: None,
            created_at: None,
            session_type: default_session_type(),
            scaling_group: default_scaling_group(),
            group_id: None,
            files: BTreeMap::new(),
            services: Vec::new(),
        }
    }

    /// Sets the status (builder style).
    pub fn with_status(mut self, status: impl Into<String>) -> Self {
        self.status = status.into();
        self
    }

    /// Adds a service (builder style).
    pub fn with_service(mut self, service: ServiceConfig) -> Self {
        self.services.push(service);
        self
    }

    /// Adds an inline file (builder style).
    pub fn with_file(mut self, name: impl Into<String>, content: impl Into<String>) -> Self {
        self.files.insert(
            name.into(),
            FileSource::Inline {
                content: content.into(),
            },
        );
        self
    }
}

/// One app ("service port") of a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// The app name (`sshd`, `jupyter`, ...).
    pub name: String,
    /// One of [`SERVICE_PROTOCOLS`]; default `tcp`.
    #[serde(default = "default_protocol")]
    pub protocol: String,
    /// Ports inside the container; the first is the primary one.
    pub container_ports: Vec<u16>,
    /// The real local server (`host:port`) behind every container port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// One target per container port, instead of `target`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<String>>,
    /// Delay before the first successful handshake (the app "starting"); concurrent first
    /// connections share it. Reset when the session leaves RUNNING.
    #[serde(default)]
    pub start_delay_ms: u64,
    /// When set, every start fails: HTTP 500 "Failed to launch the app service", data = this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_failure: Option<String>,
    /// Passed through in `service_ports` and `/apps`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_template: Option<String>,
    /// Reported in `service_ports` (API v7.20230615 and later).
    #[serde(default)]
    pub is_inference: bool,
    /// Passed through in `service_ports` and `/apps`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_arguments: Option<Vec<String>>,
    /// Passed through in `service_ports` and `/apps`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_envs: Option<Vec<String>>,
}

fn default_protocol() -> String {
    "tcp".to_owned()
}

impl ServiceConfig {
    /// A service with one container port backed by `target`.
    pub fn new(
        name: impl Into<String>,
        protocol: impl Into<String>,
        container_port: u16,
        target: impl Into<String>,
    ) -> Self {
        ServiceConfig {
            name: name.into(),
            protocol: protocol.into(),
            container_ports: vec![container_port],
            target: Some(target.into()),
            targets: None,
            start_delay_ms: 0,
            start_failure: None,
            url_template: None,
            is_inference: false,
            allowed_arguments: None,
            allowed_envs: None,
        }
    }

    /// The target of container port number `index`.
    pub fn target_for(&self, index: usize) -> Option<&str> {
        match (&self.targets, &self.target) {
            (Some(targets), _) => targets.get(index).map(String::as_str),
            (None, Some(target)) => Some(target.as_str()),
            (None, None) => None,
        }
    }
}

/// Why a configuration could not be used. `Display` is one line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown or mistyped keys.
    #[error("{origin}{location}: {message}")]
    Parse {
        /// `config FILE` or `config`.
        origin: String,
        /// ` line L, column C` when known.
        location: Location,
        /// The parser's message.
        message: String,
    },
    /// The values are inconsistent (unknown status, duplicate keys, ...).
    #[error("{origin}: {message}")]
    Invalid {
        /// `config FILE` or `config`.
        origin: String,
        /// What is wrong.
        message: String,
    },
}

/// A position in the config text (1-based), when known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Location(pub Option<(usize, usize)>);

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some((line, column)) => write!(f, " line {line}, column {column}"),
            None => Ok(()),
        }
    }
}

impl Config {
    /// Parses and validates a TOML config.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        Self::parse(text, "config")
    }

    /// Reads, parses and validates a TOML config file. Relative `files` paths are taken
    /// relative to the file's directory.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Self::parse(&text, &format!("config {}", path.display()))?;
        let base = path.parent().unwrap_or_else(|| Path::new(""));
        for session in &mut config.sessions {
            for source in session.files.values_mut() {
                if let FileSource::Path(file) = source {
                    if file.is_relative() {
                        *file = base.join(&*file);
                    }
                }
            }
        }
        Ok(config)
    }

    fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_owned(),
            location: Location(e.span().map(|span| line_column(text, span.start))),
            message: e.message().replace('\n', " ").trim().to_owned(),
        })?;
        config.validate().map_err(|message| ConfigError::Invalid {
            origin: origin.to_owned(),
            message,
        })?;
        Ok(config)
    }

    /// Serialises the config back to TOML (e.g. to hand a demo config to a subprocess).
    pub fn to_toml_string(&self) -> Result<String, ConfigError> {
        toml::to_string(self).map_err(|e| ConfigError::Invalid {
            origin: "config".to_owned(),
            message: e.to_string(),
        })
    }

    /// The parsed `api_version`.
    pub fn parsed_api_version(&self) -> Result<ApiVersion, String> {
        self.api_version
            .parse::<ApiVersion>()
            .map_err(|e| format!("api_version: {e}"))
    }

    /// Checks the values for consistency; the error names the offending entry.
    pub fn validate(&self) -> Result<(), String> {
        let version = self.parsed_api_version()?;
        if version < ApiVersion::OLDEST {
            return Err(format!(
                "api_version {version} is older than {} (the oldest any client speaks)",
                ApiVersion::OLDEST
            ));
        }
        let mut access_keys = HashSet::new();
        for (i, kp) in self.keypairs.iter().enumerate() {
            if kp.access_key.is_empty() || kp.secret_key.is_empty() {
                return Err(format!(
                    "keypairs[{i}]: access_key and secret_key must not be empty"
                ));
            }
            if !access_keys.insert(kp.access_key.as_str()) {
                return Err(format!(
                    "keypairs[{i}]: duplicate access_key {:?}",
                    kp.access_key
                ));
            }
        }
        let mut usernames = HashSet::new();
        for (i, user) in self.users.iter().enumerate() {
            if user.username.is_empty() || user.password.is_empty() {
                return Err(format!(
                    "users[{i}]: username and password must not be empty"
                ));
            }
            if !usernames.insert(user.username.as_str()) {
                return Err(format!(
                    "users[{i}]: duplicate username {:?}",
                    user.username
                ));
            }
            if !access_keys.contains(user.access_key.as_str()) {
                return Err(format!(
                    "users[{i}] ({}): access_key {:?} is not one of the keypairs",
                    user.username, user.access_key
                ));
            }
        }
        if !self.sessions.is_empty() && self.keypairs.is_empty() {
            return Err("sessions need an owner: add at least one [[keypairs]]".to_owned());
        }
        let mut ids = HashSet::new();
        for (i, session) in self.sessions.iter().enumerate() {
            let at = format!("sessions[{i}] ({})", session.name);
            if session.name.is_empty() {
                return Err(format!("sessions[{i}]: name must not be empty"));
            }
            if !SESSION_STATUSES.contains(&session.status.as_str()) {
                return Err(format!(
                    "{at}: unknown status {:?} (expected one of {})",
                    session.status,
                    SESSION_STATUSES.join(", ")
                ));
            }
            if let Some(id) = session.id {
                if !ids.insert(id) {
                    return Err(format!("{at}: duplicate id {id}"));
                }
            }
            if let Some(owner) = &session.access_key {
                if !access_keys.contains(owner.as_str()) {
                    return Err(format!(
                        "{at}: access_key {owner:?} is not one of the keypairs"
                    ));
                }
            }
            if let Some(created_at) = &session.created_at {
                chrono::DateTime::parse_from_rfc3339(created_at).map_err(|e| {
                    format!("{at}: created_at {created_at:?} is not an RFC 3339 date: {e}")
                })?;
            }
            let mut names = HashSet::new();
            for service in &session.services {
                let at = format!("{at}, service {:?}", service.name);
                if service.name.is_empty() {
                    return Err(format!("{at}: name must not be empty"));
                }
                if !names.insert(service.name.as_str()) {
                    return Err(format!("{at}: duplicate service name"));
                }
                validate_service(service).map_err(|e| format!("{at}: {e}"))?;
            }
        }
        Ok(())
    }
}

fn validate_service(service: &ServiceConfig) -> Result<(), String> {
    if !SERVICE_PROTOCOLS.contains(&service.protocol.as_str()) {
        return Err(format!(
            "unknown protocol {:?} (expected one of {})",
            service.protocol,
            SERVICE_PROTOCOLS.join(", ")
        ));
    }
    if service.container_ports.is_empty() {
        return Err("container_ports must list at least one port".to_owned());
    }
    let needs_target = !matches!(service.protocol.as_str(), "pty" | "internal");
    match (&service.target, &service.targets) {
        (Some(_), Some(_)) => return Err("set either target or targets, not both".to_owned()),
        (None, None) if needs_target => {
            return Err("target is required (the local host:port behind the app)".to_owned())
        }
        (_, Some(targets)) if targets.len() != service.container_ports.len() => {
            return Err(format!(
                "targets has {} entries but container_ports has {}",
                targets.len(),
                service.container_ports.len()
            ))
        }
        _ => {}
    }
    let all_targets = service
        .target
        .iter()
        .chain(service.targets.iter().flatten());
    for target in all_targets {
        check_host_port(target)?;
    }
    Ok(())
}

/// `host:port` with a numeric port (IPv6 as `[::1]:port`).
fn check_host_port(target: &str) -> Result<(), String> {
    let bad = || format!("target {target:?} must be host:port, e.g. 127.0.0.1:2222");
    let (host, port) = target.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    Ok(())
}

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
api_version = "v8.20240915"
manager_version = "24.09.0"
[[keypairs]]
access_key = "AKIAEXAMPLE0000000001"
secret_key = "secret"
[[users]]
username = "user@example.com"
password = "pw"
access_key = "AKIAEXAMPLE0000000001"
[[sessions]]
name = "train-1"
status = "RUNNING"
image = "cr.backend.ai/stable/python:3.11"
files = { id_container = "/path/to/private/key", "note.txt" = { content = "hi" } }
[[sessions.services]]
name = "sshd"
protocol = "tcp"
container_ports = [2200]
target = "127.0.0.1:2222"
start_delay_ms = 0
url_template = "ssh://{host}:{port}"
"#;

    #[test]
    fn parses_the_sample() {
        let config = Config::from_toml_str(SAMPLE).unwrap();
        assert_eq!(config.keypairs.len(), 1);
        let session = &config.sessions[0];
        assert_eq!(session.services[0].target_for(0), Some("127.0.0.1:2222"));
        assert_eq!(
            session.files.get("note.txt"),
            Some(&FileSource::Inline {
                content: "hi".into()
            })
        );
        assert_eq!(
            session.files.get("id_container"),
            Some(&FileSource::Path("/path/to/private/key".into()))
        );
        let again = Config::from_toml_str(&config.to_toml_string().unwrap()).unwrap();
        assert_eq!(again, config);
    }

    #[test]
    fn unknown_keys_are_one_line_errors() {
        let err = Config::from_toml_str("api_version = \"v8.20240915\"\nbogus = 1\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("bogus"), "{text}");
        assert!(text.contains("line 2"), "{text}");
        assert!(!text.contains('\n'), "{text}");

        let err =
            Config::from_toml_str(&SAMPLE.replace("start_delay_ms", "start_delay")).unwrap_err();
        assert!(err.to_string().contains("start_delay"), "{err}");
    }

    #[test]
    fn inconsistent_values_are_rejected() {
        let cases = [
            (SAMPLE.replace("\"RUNNING\"", "\"BOGUS\""), "unknown status"),
            (SAMPLE.replace("v8.20240915", "v8"), "api_version"),
            (SAMPLE.replace("127.0.0.1:2222", "nowhere"), "host:port"),
            (
                SAMPLE.replace("protocol = \"tcp\"", "protocol = \"smtp\""),
                "protocol",
            ),
            (
                SAMPLE.replace(
                    "access_key = \"AKIAEXAMPLE0000000001\"\n[[sessions]]",
                    "access_key = \"NOPE\"\n[[sessions]]",
                ),
                "not one of the keypairs",
            ),
            (
                SAMPLE.replace("container_ports = [2200]", "container_ports = []"),
                "container_ports",
            ),
        ];
        for (text, needle) in cases {
            let err = Config::from_toml_str(&text).unwrap_err().to_string();
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }
}
