//! The running emulator's shared state: sessions with their mutable status, login sessions,
//! the relay registry and the shutdown token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::config::{Config, FileSource, KeypairConfig, Role, ServiceConfig, SESSION_STATUSES};
use axum::http::StatusCode;

use crate::error::EmulatorError;
use crate::json::J;
use crate::problem::Problem;
use porthole_core::api::version::ApiVersion;

/// Locks a mutex, recovering the data if a panicking thread poisoned it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Statuses in which a session no longer exists for lookups (`get_session` skips them).
pub(crate) fn is_dead_status(status: &str) -> bool {
    matches!(status, "TERMINATED" | "CANCELLED")
}

/// Statuses that keep open relays (and the started apps) alive: only RUNNING, the one
/// status in which the emulator reports service ports.
fn keeps_relays(status: &str) -> bool {
    status == "RUNNING"
}

/// Everything the request handlers share.
pub(crate) struct Shared {
    pub(crate) api_version: ApiVersion,
    /// How the release that reports `api_version` behaves.
    pub(crate) release: crate::release::Release,
    pub(crate) api_version_str: String,
    pub(crate) manager_version: Option<String>,
    pub(crate) skip_auth: bool,
    pub(crate) control_http: bool,
    pub(crate) keypairs: Vec<KeypairConfig>,
    pub(crate) users: Vec<crate::config::UserConfig>,
    pub(crate) sessions: Vec<Arc<SessionRt>>,
    pub(crate) web: crate::logins::Logins,
    pub(crate) shutdown: CancellationToken,
    pub(crate) tracker: TaskTracker,
    pub(crate) relays: watch::Sender<usize>,
    /// Whether the manager behind the web server answers (see
    /// [`crate::RunningEmulator::set_manager_up`]).
    pub(crate) manager_up: std::sync::atomic::AtomicBool,
    pub(crate) user_ids: HashMap<String, Uuid>,
    /// `compute_session_list` fields resolved so far (see
    /// [`crate::RunningEmulator::session_listings`]).
    pub(crate) session_listings: watch::Sender<u64>,
}

impl Shared {
    pub(crate) fn new(config: &Config, control_http: bool) -> Result<Shared, EmulatorError> {
        config.validate().map_err(EmulatorError::Config)?;
        let api_version = config.parsed_api_version().map_err(EmulatorError::Config)?;
        let manager_version = config
            .manager_version
            .clone()
            .or_else(|| crate::release::known_manager_version(api_version).map(str::to_owned));
        let now = Utc::now();
        let default_group = Uuid::new_v4();
        let first_key = config
            .keypairs
            .first()
            .map(|kp| kp.access_key.clone())
            .unwrap_or_default();
        let mut sessions = Vec::new();
        for (index, session) in config.sessions.iter().enumerate() {
            let created_at = match &session.created_at {
                Some(text) => DateTime::parse_from_rfc3339(text)
                    .map_err(|e| EmulatorError::Config(format!("created_at {text:?}: {e}")))?
                    .with_timezone(&Utc),
                None => now - chrono::Duration::seconds(i64::try_from(index).unwrap_or(0)),
            };
            let services = session
                .services
                .iter()
                .map(|cfg| ServiceRt {
                    cfg: cfg.clone(),
                    ready_at: Mutex::new(None),
                })
                .collect();
            sessions.push(Arc::new(SessionRt {
                id: session.id.unwrap_or_else(Uuid::new_v4),
                name: session.name.clone(),
                owner: session
                    .access_key
                    .clone()
                    .unwrap_or_else(|| first_key.clone()),
                image: session.image.clone(),
                session_type: session.session_type.clone(),
                scaling_group: session.scaling_group.clone(),
                group_id: session.group_id.unwrap_or(default_group),
                created_at,
                files: session.files.clone(),
                services,
                state: Mutex::new(SessionState {
                    status: session.status.clone(),
                    status_info: session.status_info.clone(),
                    terminated_at: None,
                    relays: CancellationToken::new(),
                }),
            }));
        }
        let user_ids = config
            .keypairs
            .iter()
            .map(|kp| {
                (
                    kp.access_key.clone(),
                    kp.user_id.unwrap_or_else(Uuid::new_v4),
                )
            })
            .collect();
        Ok(Shared {
            api_version,
            release: crate::release::Release::of(api_version),
            api_version_str: api_version.to_string(),
            manager_version,
            skip_auth: config.skip_auth,
            control_http,
            keypairs: config.keypairs.clone(),
            users: config.users.clone(),
            sessions,
            web: crate::logins::Logins::default(),
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
            relays: watch::Sender::new(0),
            manager_up: std::sync::atomic::AtomicBool::new(true),
            user_ids,
            session_listings: watch::Sender::new(0),
        })
    }

    /// Whether the manager is up (the web server's upstream calls succeed).
    pub(crate) fn manager_is_up(&self) -> bool {
        self.manager_up.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// An active keypair by access key.
    pub(crate) fn keypair(&self, access_key: &str) -> Option<&KeypairConfig> {
        self.keypairs
            .iter()
            .find(|kp| kp.active && kp.access_key == access_key)
    }

    /// The role of a keypair (user when unknown).
    pub(crate) fn role_of(&self, access_key: &str) -> Role {
        self.keypair(access_key).map_or(Role::User, |kp| kp.role)
    }

    /// The email of the user bound to a keypair, if any.
    pub(crate) fn email_of(&self, access_key: &str) -> Option<&str> {
        self.users
            .iter()
            .find(|u| u.access_key == access_key)
            .map(|u| u.username.as_str())
    }

    /// Finds a live session of `owner` by name or full UUID (`SessionRow.get_session`).
    pub(crate) fn find_session(
        &self,
        owner: &str,
        name_or_id: &str,
    ) -> Result<Arc<SessionRt>, Lookup> {
        let as_uuid = Uuid::parse_str(name_or_id).ok();
        let matches: Vec<&Arc<SessionRt>> = self
            .sessions
            .iter()
            .filter(|s| s.owner == owner)
            .filter(|s| !is_dead_status(&s.status()))
            .filter(|s| Some(s.id) == as_uuid || s.name == name_or_id)
            .collect();
        match matches.as_slice() {
            [] => Err(Lookup::NotFound),
            [one] => Ok(Arc::clone(one)),
            many => Err(Lookup::Ambiguous(
                many.iter()
                    .map(|s| {
                        J::obj()
                            .with("id", s.id.to_string())
                            .with("name", s.name.as_str())
                            .with("status", s.status())
                            .with("created_at", python_isoformat(s.created_at))
                    })
                    .collect(),
            )),
        }
    }

    /// [`Shared::find_session`], a failure answered as the manager answers it: 404s, and
    /// on 26.x a 403 for a session id the caller may not read (which includes ids of no
    /// session at all: its RBAC check comes before the lookup).
    pub(crate) fn session_for(
        &self,
        access_key: &str,
        session_ref: &str,
    ) -> Result<Arc<SessionRt>, Problem> {
        let lookup = match self.find_session(access_key, session_ref) {
            Ok(session) => return Ok(session),
            Err(lookup) => lookup,
        };
        Err(match lookup {
            Lookup::NotFound
                if self.release.entity_not_found && Uuid::parse_str(session_ref).is_ok() =>
            {
                let user = self
                    .user_ids
                    .get(access_key)
                    .map(ToString::to_string)
                    .unwrap_or_default();
                Problem::new(
                    StatusCode::FORBIDDEN,
                    "not-enough-permission",
                    "Insufficient permission to perform this operation.",
                )
                .code("permission_access_forbidden")
                .msg(format!(
                    "User {user} lacks permission <Permission.READ: 1> on session {session_ref}"
                ))
            }
            // 26.x: the repository's generic "no such row".
            Lookup::NotFound if self.release.entity_not_found => Problem::new(
                StatusCode::NOT_FOUND,
                "entity-not-found",
                "Entity not found.",
            )
            .code("session_read_not-found")
            .msg("No SessionRow matches the given key"),
            Lookup::NotFound => Problem::session_not_found(session_ref),
            Lookup::Ambiguous(matches) => Problem::new(
                StatusCode::NOT_FOUND,
                "too-many-sessions-matched",
                "Too many sessions matched.",
            )
            .data(J::obj().with("matches", J::Arr(matches))),
        })
    }

    /// Finds any session (any owner, any status) by name or UUID, for the control API.
    pub(crate) fn find_any_session(
        &self,
        name_or_id: &str,
    ) -> Result<Arc<SessionRt>, EmulatorError> {
        let as_uuid = Uuid::parse_str(name_or_id).ok();
        let matches: Vec<&Arc<SessionRt>> = self
            .sessions
            .iter()
            .filter(|s| Some(s.id) == as_uuid || s.name == name_or_id)
            .collect();
        match matches.as_slice() {
            [] => Err(EmulatorError::UnknownSession(name_or_id.to_owned())),
            [one] => Ok(Arc::clone(one)),
            _ => Err(EmulatorError::AmbiguousSession(name_or_id.to_owned())),
        }
    }

    /// Changes a session's status; leaving RUNNING closes its relays and resets its apps.
    pub(crate) fn set_status(
        &self,
        name_or_id: &str,
        status: &str,
        status_info: Option<String>,
    ) -> Result<Arc<SessionRt>, EmulatorError> {
        if !SESSION_STATUSES.contains(&status) {
            return Err(EmulatorError::UnknownStatus(status.to_owned()));
        }
        let session = self.find_any_session(name_or_id)?;
        session.set_status(status, status_info);
        Ok(session)
    }
}

/// Why a session lookup failed.
#[derive(Debug)]
pub(crate) enum Lookup {
    NotFound,
    Ambiguous(Vec<J>),
}

/// A session at run time.
pub(crate) struct SessionRt {
    pub(crate) id: Uuid,
    pub(crate) name: String,
    pub(crate) owner: String,
    pub(crate) image: String,
    pub(crate) session_type: String,
    pub(crate) scaling_group: String,
    pub(crate) group_id: Uuid,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) files: std::collections::BTreeMap<String, FileSource>,
    pub(crate) services: Vec<ServiceRt>,
    state: Mutex<SessionState>,
}

struct SessionState {
    status: String,
    status_info: Option<String>,
    terminated_at: Option<DateTime<Utc>>,
    /// Cancelled (and replaced) when the session leaves RUNNING: closes the open relays.
    relays: CancellationToken,
}

impl SessionRt {
    /// The current status.
    pub(crate) fn status(&self) -> String {
        lock(&self.state).status.clone()
    }

    /// The current `status_info`.
    pub(crate) fn status_info(&self) -> Option<String> {
        lock(&self.state).status_info.clone()
    }

    /// When the session became TERMINATED/CANCELLED through the control API.
    pub(crate) fn terminated_at(&self) -> Option<DateTime<Utc>> {
        lock(&self.state).terminated_at
    }

    /// Whether the main kernel has service ports (the manager stores them once RUNNING).
    pub(crate) fn has_ports(&self) -> bool {
        lock(&self.state).status == "RUNNING"
    }

    /// A token that is cancelled when the session stops running.
    pub(crate) fn relay_token(&self) -> CancellationToken {
        lock(&self.state).relays.clone()
    }

    fn set_status(&self, status: &str, status_info: Option<String>) {
        let mut state = lock(&self.state);
        let was_live = keeps_relays(&state.status);
        state.status = status.to_owned();
        state.status_info = status_info;
        if is_dead_status(status) {
            state.terminated_at.get_or_insert_with(Utc::now);
        } else {
            state.terminated_at = None;
        }
        if was_live && !keeps_relays(status) {
            state.relays.cancel();
            state.relays = CancellationToken::new();
            for service in &self.services {
                *lock(&service.ready_at) = None;
            }
        }
    }

    /// A service by name.
    pub(crate) fn service(&self, name: &str) -> Option<&ServiceRt> {
        self.services.iter().find(|s| s.cfg.name == name)
    }

    /// The `service_ports` objects of the main kernel, or `None` while not running.
    pub(crate) fn service_ports(&self, version: ApiVersion) -> Option<J> {
        if !self.has_ports() {
            return None;
        }
        Some(J::Arr(
            self.services
                .iter()
                .map(|svc| {
                    let cfg = &svc.cfg;
                    let host_ports: Vec<J> = (0..cfg.container_ports.len())
                        .map(|i| {
                            cfg.target_for(i)
                                .and_then(|t| t.rsplit_once(':'))
                                .and_then(|(_, port)| port.parse::<u16>().ok())
                                .map_or(J::Null, J::from)
                        })
                        .collect();
                    let mut port = J::obj()
                        .with("name", cfg.name.as_str())
                        .with("protocol", cfg.protocol.as_str())
                        .with("container_ports", cfg.container_ports.clone())
                        .with("host_ports", J::Arr(host_ports));
                    if version >= ApiVersion::IS_INFERENCE {
                        port.push("is_inference", cfg.is_inference);
                    }
                    push_optional_fields(&mut port, cfg);
                    // The manager stores them in a PostgreSQL jsonb column, which hands the
                    // keys back in its own order.
                    port.jsonb_ordered()
                })
                .collect(),
        ))
    }
}

/// Adds `url_template`, `allowed_arguments` and `allowed_envs` when configured.
pub(crate) fn push_optional_fields(obj: &mut J, cfg: &ServiceConfig) {
    if let Some(t) = &cfg.url_template {
        obj.push("url_template", t.as_str());
    }
    if let Some(a) = &cfg.allowed_arguments {
        obj.push("allowed_arguments", a.clone());
    }
    if let Some(e) = &cfg.allowed_envs {
        obj.push("allowed_envs", e.clone());
    }
}

/// An app of a session at run time.
pub(crate) struct ServiceRt {
    pub(crate) cfg: ServiceConfig,
    /// When the app is (or will be) up: set by the first start, cleared when the session
    /// leaves RUNNING.
    ready_at: Mutex<Option<Instant>>,
}

impl ServiceRt {
    /// The instant the app is ready; the first call starts the app.
    pub(crate) fn start(&self) -> Instant {
        let delay = std::time::Duration::from_millis(self.cfg.start_delay_ms);
        *lock(&self.ready_at).get_or_insert_with(|| Instant::now() + delay)
    }
}

/// Python's `datetime.isoformat()` of a UTC time (`+00:00`, microseconds only when non-zero).
pub(crate) fn python_isoformat(t: DateTime<Utc>) -> String {
    if t.timestamp_subsec_micros() == 0 {
        t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
    }
}

/// Counts a relay as open for as long as it lives.
pub(crate) struct RelayGuard {
    relays: watch::Sender<usize>,
}

impl RelayGuard {
    pub(crate) fn new(relays: &watch::Sender<usize>) -> Self {
        relays.send_modify(|n| *n += 1);
        RelayGuard {
            relays: relays.clone(),
        }
    }
}

impl Drop for RelayGuard {
    fn drop(&mut self) {
        self.relays.send_modify(|n| *n = n.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ServiceConfig, SessionConfig};

    fn shared() -> Shared {
        let mut config = Config::default();
        config.keypairs.push(KeypairConfig::new("AK1", "s1"));
        config.keypairs.push(KeypairConfig::new("AK2", "s2"));
        config
            .sessions
            .push(SessionConfig::new("a").with_service(ServiceConfig::new(
                "sshd",
                "tcp",
                2200,
                "127.0.0.1:1",
            )));
        let mut other = SessionConfig::new("b");
        other.access_key = Some("AK2".into());
        config.sessions.push(other);
        Shared::new(&config, false).unwrap()
    }

    #[test]
    fn lookup_is_per_owner_and_skips_dead_sessions() {
        let state = shared();
        let a = state.find_session("AK1", "a").unwrap();
        assert!(state.find_session("AK1", &a.id.to_string()).is_ok());
        assert!(matches!(
            state.find_session("AK1", "b"),
            Err(Lookup::NotFound)
        ));
        assert!(matches!(
            state.find_session("AK2", "a"),
            Err(Lookup::NotFound)
        ));
        let prefix = &a.id.to_string()[..8];
        assert!(matches!(
            state.find_session("AK1", prefix),
            Err(Lookup::NotFound)
        ));

        let token = a.relay_token();
        state.set_status("a", "TERMINATED", None).unwrap();
        assert!(token.is_cancelled());
        assert!(a.terminated_at().is_some());
        assert!(matches!(
            state.find_session("AK1", "a"),
            Err(Lookup::NotFound)
        ));
        assert!(a.service_ports(ApiVersion::POST_DOWNLOAD).is_none());
        assert!(matches!(
            state.set_status("a", "BOGUS", None),
            Err(EmulatorError::UnknownStatus(_))
        ));
    }

    #[test]
    fn service_ports_shape() {
        let state = shared();
        let a = state.find_session("AK1", "a").unwrap();
        assert_eq!(
            a.service_ports(ApiVersion::POST_DOWNLOAD).unwrap().dumps(),
            r#"[{"name": "sshd", "protocol": "tcp", "host_ports": [1], "is_inference": false, "container_ports": [2200]}]"#
        );
        assert_eq!(
            a.service_ports(ApiVersion::SESSION_PATHS).unwrap().dumps(),
            r#"[{"name": "sshd", "protocol": "tcp", "host_ports": [1], "container_ports": [2200]}]"#
        );
    }

    #[test]
    fn isoformat_matches_python() {
        let t = DateTime::parse_from_rfc3339("2024-03-28T05:06:07Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(python_isoformat(t), "2024-03-28T05:06:07+00:00");
        let t = DateTime::parse_from_rfc3339("2024-03-28T05:06:07.5Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(python_isoformat(t), "2024-03-28T05:06:07.500000+00:00");
    }
}
