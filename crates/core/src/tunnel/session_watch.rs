//! Noticing that a tunnel's session has ended. A terminated session's relays close like
//! an app that hung up (1001 or no close frame), so the close code alone cannot tell; the
//! session listing can. A tunnel asks it every `interval`, and sooner (at most every
//! [`MIN_GAP`]) after one of its connections ended, which is when termination shows.

use std::time::Duration;

use tokio::sync::Notify;

use crate::api::{ApiError, BackendClient, ComputeSession};

/// Least time between two checks prompted by connection ends.
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

/// Resolves once the listing shows `session` no longer running. Errors reaching the
/// server are not an ending: they go to `unreachable` (a killed server ends links much
/// like an app hanging up, so this is where it shows) and are retried at the next check.
pub async fn wait_for_session_end(
    client: &BackendClient,
    session: &ComputeSession,
    interval: Duration,
    prompt: &Notify,
    unreachable: &(dyn Fn(&ApiError) + Sync),
) -> SessionEnded {
    loop {
        let prompted = tokio::select! {
            _ = tokio::time::sleep(interval) => false,
            _ = prompt.notified() => true,
        };
        match client.find_session(&session.id).await {
            Ok(found) if found.is_running() => {}
            Ok(found) => {
                return SessionEnded {
                    session: session.name.clone(),
                    status: Some(found.status),
                }
            }
            Err(ApiError::SessionNotFound { .. }) => {
                return SessionEnded {
                    session: session.name.clone(),
                    status: None,
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "session check failed; trying again later");
                unreachable(&e);
            }
        }
        if prompted {
            // A burst of closing connections makes one check, not one each.
            tokio::time::sleep(MIN_GAP).await;
        }
    }
}
