//! Noticing that a tunnel's session has ended. A terminated session's relays close like
//! an app that hung up (1001 or no close frame), so the close code alone cannot tell; the
//! session listing can.
//!
//! One [`SessionWatch`] lists the sessions of one account on one endpoint every
//! `interval`, and sooner (at most every [`MIN_GAP`]) when a tunnel says one of its
//! connections ended, which is when termination shows. Every tunnel of that account
//! shares it ([`crate::tunnel::TunnelManager`] hands them the same one), so five tunnels
//! cost one listing, not five. Its task ends when the last tunnel lets go of it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{watch, Notify};

use crate::api::{ApiError, BackendClient, ComputeSession};

/// Least time between two listings prompted by connection ends.
pub const MIN_GAP: Duration = Duration::from_secs(2);

/// Why the session is no longer usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEnded {
    /// The session's name.
    pub session: String,
    /// Its status when still listed (e.g. `TERMINATING`), `None` when it is gone.
    pub status: Option<String>,
}

impl std::fmt::Display for SessionEnded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.status {
            Some(status) => write!(
                f,
                "session {} is {status}; its tunnels were stopped",
                self.session
            ),
            None => write!(
                f,
                "session {} has ended (it is no longer listed); its tunnels were stopped",
                self.session
            ),
        }
    }
}

/// The latest listing the watch made.
#[derive(Debug, Clone)]
enum Listing {
    /// None yet.
    Pending,
    /// The active sessions of the account.
    Listed(Arc<Vec<ComputeSession>>),
    /// The server could not be asked; tried again at the next check.
    Failed(Arc<ApiError>),
}

/// What the listing task and the tunnels share.
struct Control {
    /// The client the next listing uses: the newest one a tunnel brought (a new sign-in
    /// replaces a login session the old client may have lost).
    client: Mutex<BackendClient>,
    /// A connection ended somewhere: list sooner.
    prompt: Notify,
}

/// A handle on one account's session listing; clones share it. The listing task runs
/// while any handle exists.
#[derive(Clone)]
pub struct SessionWatch {
    control: Arc<Control>,
    listing: watch::Receiver<Listing>,
}

impl std::fmt::Debug for SessionWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionWatch").finish_non_exhaustive()
    }
}

impl SessionWatch {
    /// Starts listing the sessions `client` sees, every `interval` (the first listing after
    /// one interval: a tunnel starts on a session just listed as running).
    pub fn start(client: BackendClient, interval: Duration) -> SessionWatch {
        let control = Arc::new(Control {
            client: Mutex::new(client),
            prompt: Notify::new(),
        });
        let (tx, listing) = watch::channel(Listing::Pending);
        tokio::spawn(list_until_unused(control.clone(), tx, interval));
        SessionWatch { control, listing }
    }

    /// Lists with `client` from now on (it signs in as the same account).
    pub fn use_client(&self, client: BackendClient) {
        *self
            .control
            .client
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = client;
    }

    /// Asks for a listing soon: a connection ended, which is when a session's end shows.
    /// A burst of prompts makes one listing.
    pub fn prompt(&self) {
        self.control.prompt.notify_one();
    }

    /// Resolves once a listing shows `session` no longer running. A failed listing is not
    /// an ending: it goes to `unreachable` (a killed server ends links much like an app
    /// hanging up, so this is where it shows), and the next listing is awaited.
    pub async fn wait_for_end(
        &self,
        session: &ComputeSession,
        unreachable: &(dyn Fn(&ApiError) + Sync),
    ) -> SessionEnded {
        let mut listing = self.listing.clone();
        // Only listings made from now on count.
        listing.mark_unchanged();
        loop {
            if listing.changed().await.is_err() {
                // The task is gone (the runtime is shutting down): never an ending.
                return std::future::pending().await;
            }
            let latest = listing.borrow_and_update().clone();
            match latest {
                Listing::Pending => {}
                Listing::Failed(e) => unreachable(&e),
                Listing::Listed(sessions) => match sessions.iter().find(|s| s.id == session.id) {
                    Some(found) if found.is_running() => {}
                    Some(found) => {
                        return SessionEnded {
                            session: session.name.clone(),
                            status: Some(found.status.clone()),
                        }
                    }
                    None => {
                        return SessionEnded {
                            session: session.name.clone(),
                            status: None,
                        }
                    }
                },
            }
        }
    }
}

/// The listing loop: every `interval`, or when prompted (then at most every [`MIN_GAP`]),
/// until no handle is left.
async fn list_until_unused(control: Arc<Control>, tx: watch::Sender<Listing>, interval: Duration) {
    loop {
        let prompted = tokio::select! {
            _ = tx.closed() => return,
            _ = tokio::time::sleep(interval) => false,
            _ = control.prompt.notified() => true,
        };
        let client = control
            .client
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let listed = tokio::select! {
            _ = tx.closed() => return,
            listed = client.list_sessions(false) => listed,
        };
        let listing = match listed {
            Ok(sessions) => Listing::Listed(Arc::new(sessions)),
            Err(e) => {
                tracing::debug!(error = %e, "session listing failed; trying again later");
                Listing::Failed(Arc::new(e))
            }
        };
        if tx.send(listing).is_err() {
            return;
        }
        if prompted {
            // A burst of closing connections makes one listing, not one each.
            tokio::select! {
                _ = tx.closed() => return,
                _ = tokio::time::sleep(MIN_GAP) => {}
            }
        }
    }
}
