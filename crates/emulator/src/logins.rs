//! The web server's memory: login sessions (by the id of the cookie or the
//! `X-BackendAI-SessionID` header) and failed logins per username. A leaf: the handlers in
//! [`crate::webserver`] decide what the web server answers; this only remembers.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use uuid::Uuid;

/// Failed logins allowed per username within [`BLOCK_TIME`].
pub(crate) const ALLOWED_FAIL_COUNT: u32 = 10;
/// The login-failure window (`session.login_block_time`).
pub(crate) const BLOCK_TIME: Duration = Duration::from_secs(20 * 60);
/// Unauthenticated sessions kept at most (failed logins create one each).
const MAX_ANONYMOUS_SESSIONS: usize = 10_000;

/// Login sessions and login-failure counters.
#[derive(Default)]
pub(crate) struct Logins {
    sessions: Mutex<HashMap<String, WebSession>>,
    history: Mutex<HashMap<String, LoginHistory>>,
}

/// One login session: signed in as a keypair, or not (yet).
#[derive(Debug, Clone)]
pub(crate) struct WebSession {
    /// The keypair it acts as once signed in.
    pub(crate) access_key: Option<String>,
}

#[derive(Debug, Clone, Copy)]
struct LoginHistory {
    last_attempt: Instant,
    fail_count: u32,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Logins {
    /// The keypair of a logged-in session.
    pub(crate) fn logged_in(&self, id: Option<&str>) -> Option<String> {
        let sessions = lock(&self.sessions);
        id.and_then(|id| sessions.get(id))
            .and_then(|s| s.access_key.clone())
    }

    /// The session `id`, if it is known.
    pub(crate) fn session(&self, id: &str) -> Option<WebSession> {
        lock(&self.sessions).get(id).cloned()
    }

    /// Stores `session` under the request's id when that id is known, else under a new one.
    pub(crate) fn save(&self, existing: Option<&str>, session: WebSession) -> String {
        let mut sessions = lock(&self.sessions);
        let id = match existing {
            Some(id) if sessions.contains_key(id) => id.to_owned(),
            _ => Uuid::new_v4().simple().to_string(),
        };
        if sessions.len() >= MAX_ANONYMOUS_SESSIONS {
            sessions.retain(|_, s| s.access_key.is_some());
        }
        sessions.insert(id.clone(), session);
        id
    }

    /// Forgets the session `id` (logout).
    pub(crate) fn remove(&self, id: &str) {
        lock(&self.sessions).remove(id);
    }

    /// How many logins of `username` failed within [`BLOCK_TIME`] before `now`.
    pub(crate) fn recent_failures(&self, username: &str, now: Instant) -> u32 {
        match lock(&self.history).get(username) {
            Some(h) if now.duration_since(h.last_attempt) <= BLOCK_TIME => h.fail_count,
            _ => 0,
        }
    }

    /// Records an attempt of `username` at `now`, with the failures counted so far.
    pub(crate) fn record_attempt(&self, username: &str, now: Instant, fail_count: u32) {
        lock(&self.history).insert(
            username.to_owned(),
            LoginHistory {
                last_attempt: now,
                fail_count,
            },
        );
    }
}
