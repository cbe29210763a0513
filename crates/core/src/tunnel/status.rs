//! What a tunnel reports about itself: a [`TunnelStatus`] snapshot on a watch channel,
//! fed by lock-free counters that the connection tasks bump on the hot path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;
use tokio::sync::Notify;

/// The life cycle of a tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TunnelState {
    /// Binding the port and asking the server to start the app, or connections are
    /// waiting for the app to start listening (close 1013, retried with backoff).
    Starting,
    /// Ready, no connection open.
    Listening,
    /// At least one connection is open.
    Active,
    /// Still listening, but the last connection attempt failed (server down, app not
    /// listening, ...); the next connection tries again.
    Degraded,
    /// The tunnel gave up; `last_error` says why.
    Failed,
    /// Stopped by the user; the port is released.
    Stopped,
}

impl TunnelState {
    /// Whether the tunnel still holds its port.
    pub fn is_running(self) -> bool {
        !matches!(self, TunnelState::Failed | TunnelState::Stopped)
    }
}

/// A snapshot of one tunnel's state and counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TunnelStatus {
    /// Where the tunnel is in its life cycle.
    pub state: TunnelState,
    /// Connections open now.
    pub active_connections: u64,
    /// Connections accepted since the start.
    pub total_connections: u64,
    /// Connections that failed (handshake refused, app not listening, dead link).
    pub failed_connections: u64,
    /// Bytes from local clients to the app.
    pub bytes_up: u64,
    /// Bytes from the app to local clients.
    pub bytes_down: u64,
    /// The most recent failure, in words a person can act on.
    pub last_error: Option<String>,
    /// Connections refused because another local user made them, per user, in the order
    /// first seen (see [`super::peer`]).
    pub refused: Vec<RefusedPeer>,
}

/// Connections from one other user that a tunnel refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefusedPeer {
    /// The user's id; `None` when the connection's owner could not be found.
    pub uid: Option<u32>,
    /// The user as messages name them: `bob`, `uid 1234`, or `an unknown user`.
    pub user: String,
    /// How many of their connections were refused.
    pub connections: u64,
}

impl std::fmt::Display for RefusedPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.connections;
        let s = if n == 1 { "" } else { "s" };
        write!(f, "refused {n} connection{s} from {}", self.user)
    }
}

/// Why the guard refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Another user's.
    User(u32),
    /// Nobody could say whose.
    Unknown,
}

impl TunnelStatus {
    /// The status of a tunnel that has not bound its port yet.
    pub fn starting() -> Self {
        TunnelStatus {
            state: TunnelState::Starting,
            active_connections: 0,
            total_connections: 0,
            failed_connections: 0,
            bytes_up: 0,
            bytes_down: 0,
            last_error: None,
            refused: Vec::new(),
        }
    }
}

/// Counters shared by a tunnel's connection tasks. Bytes are bumped per chunk without
/// waking anyone; connection events wake the publisher through `changed`.
#[derive(Debug, Default)]
pub struct Counters {
    pub(crate) active: AtomicU64,
    pub(crate) total: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) bytes_up: AtomicU64,
    pub(crate) bytes_down: AtomicU64,
    /// Connections retrying while the app starts listening.
    pub(crate) waiting: AtomicU64,
    /// Set after a failure, cleared by the next connection that gets through.
    pub(crate) degraded: std::sync::atomic::AtomicBool,
    pub(crate) last_error: Mutex<Option<String>>,
    /// Refused connections per user (a handful of users at most on any machine).
    pub(crate) refused: Mutex<Vec<RefusedPeer>>,
    pub(crate) changed: Notify,
}

impl Counters {
    pub(crate) fn connection_opened(&self) {
        self.active.fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
        self.changed.notify_one();
    }

    pub(crate) fn connection_established(&self) {
        if self.degraded.swap(false, Ordering::Relaxed) {
            self.changed.notify_one();
        }
    }

    pub(crate) fn connection_closed(&self, error: Option<String>) {
        self.active.fetch_sub(1, Ordering::Relaxed);
        if let Some(error) = error {
            self.failed.fetch_add(1, Ordering::Relaxed);
            self.degraded.store(true, Ordering::Relaxed);
            if let Ok(mut last) = self.last_error.lock() {
                *last = Some(error);
            }
        }
        self.changed.notify_one();
    }

    /// A connection of another user was refused; the first from each user is logged.
    pub(crate) fn connection_refused(&self, why: Refused) {
        let uid = match why {
            Refused::User(uid) => Some(uid),
            Refused::Unknown => None,
        };
        let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        match refused.iter_mut().find(|r| r.uid == uid) {
            Some(peer) => peer.connections += 1,
            None => {
                let user =
                    uid.map_or_else(|| "an unknown user".to_owned(), super::peer::describe_user);
                // Info, not a warning: the front ends tell the user themselves.
                tracing::info!(
                    user = %user,
                    "refused a connection from another user: only the tunnel's owner may use it"
                );
                refused.push(RefusedPeer {
                    uid,
                    user,
                    connections: 1,
                });
            }
        }
        drop(refused);
        self.changed.notify_one();
    }

    pub(crate) fn waiting_started(&self) {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        self.changed.notify_one();
    }

    pub(crate) fn waiting_ended(&self) {
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        self.changed.notify_one();
    }

    /// A failure outside any connection (the server unreachable): degraded, with the
    /// reason, until a connection gets through again.
    pub(crate) fn record_failure(&self, error: String) {
        self.degraded.store(true, Ordering::Relaxed);
        self.record_error(error);
    }

    pub(crate) fn record_error(&self, error: String) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(error);
        }
        self.changed.notify_one();
    }

    /// The snapshot to publish, with `state` derived from the counters unless the tunnel
    /// is in a terminal or starting state.
    pub(crate) fn snapshot(&self, fixed_state: Option<TunnelState>) -> TunnelStatus {
        let active = self.active.load(Ordering::Relaxed);
        let state = fixed_state.unwrap_or(if self.waiting.load(Ordering::Relaxed) > 0 {
            TunnelState::Starting
        } else if active > 0 {
            TunnelState::Active
        } else if self.degraded.load(Ordering::Relaxed) {
            TunnelState::Degraded
        } else {
            TunnelState::Listening
        });
        TunnelStatus {
            state,
            active_connections: active,
            total_connections: self.total.load(Ordering::Relaxed),
            failed_connections: self.failed.load(Ordering::Relaxed),
            bytes_up: self.bytes_up.load(Ordering::Relaxed),
            bytes_down: self.bytes_down.load(Ordering::Relaxed),
            last_error: self.last_error.lock().ok().and_then(|e| e.clone()),
            refused: self.refused.lock().map(|r| r.clone()).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_follows_connections_and_failures() {
        let c = Counters::default();
        assert_eq!(c.snapshot(None).state, TunnelState::Listening);
        c.connection_opened();
        assert_eq!(c.snapshot(None).state, TunnelState::Active);
        c.connection_closed(Some("app is not listening".into()));
        let s = c.snapshot(None);
        assert_eq!(s.state, TunnelState::Degraded);
        assert_eq!((s.total_connections, s.failed_connections), (1, 1));
        assert_eq!(s.last_error.as_deref(), Some("app is not listening"));
        c.connection_opened();
        c.connection_established();
        c.connection_closed(None);
        let s = c.snapshot(None);
        assert_eq!(s.state, TunnelState::Listening);
        assert_eq!(
            s.last_error.as_deref(),
            Some("app is not listening"),
            "history is kept"
        );
        assert_eq!(
            c.snapshot(Some(TunnelState::Stopped)).state,
            TunnelState::Stopped
        );
    }

    #[test]
    fn refused_connections_are_counted_per_user() {
        let c = Counters::default();
        c.connection_refused(Refused::User(4242));
        c.connection_refused(Refused::User(4242));
        c.connection_refused(Refused::Unknown);
        let s = c.snapshot(None);
        assert_eq!(
            s.total_connections, 0,
            "a refused connection is no connection"
        );
        assert_eq!(s.refused.len(), 2);
        assert_eq!(s.refused[0].uid, Some(4242));
        assert_eq!(s.refused[0].connections, 2);
        assert!(s.refused[0]
            .to_string()
            .starts_with("refused 2 connections from "));
        assert_eq!(
            s.refused[1].to_string(),
            "refused 1 connection from an unknown user"
        );
    }
}
