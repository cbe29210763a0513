//! The sessions list: one listing of the current connection, the views the window shows of
//! it ([`crate::presenter`]), and the session a click refers to.

use porthole_core::api::{ApiError, ComputeSession};
use serde::Serialize;

use crate::account::Connected;
use crate::error::UiError;
use crate::presenter::{self, SessionView};
use crate::{lock, App};

/// One refresh of the sessions list.
#[derive(Debug, Clone, Serialize)]
pub struct SessionsReply {
    /// The connection they belong to.
    pub connection: Connected,
    /// The sessions, in the server's order.
    pub sessions: Vec<SessionView>,
}

impl App {
    /// Lists the sessions of the current connection; the result (or its failure, the
    /// banner) becomes the account's.
    pub async fn list_sessions(&self) -> Result<SessionsReply, UiError> {
        let (conn, generation) = lock(&self.account).connection()?;
        let listed = conn
            .client
            .list_sessions(false)
            .await
            .map_err(UiError::from);
        let reply = listed.as_ref().map(|sessions| SessionsReply {
            connection: conn.info.clone(),
            sessions: sessions.iter().map(presenter::session_view).collect(),
        });
        let reply = reply.map_err(Clone::clone);
        lock(&self.account).listed(generation, listed);
        reply
    }

    /// The running session `id` of the current connection: from the last listing, else
    /// listed afresh.
    pub(crate) async fn running_session(&self, id: &str) -> Result<ComputeSession, UiError> {
        let cached = lock(&self.account).session(id);
        if let Some(session) = cached.filter(ComputeSession::is_running) {
            return Ok(session);
        }
        let (conn, generation) = lock(&self.account).connection()?;
        let fresh = conn.client.list_sessions(false).await?;
        let found = fresh.iter().find(|s| s.id == id).cloned();
        lock(&self.account).listed(generation, Ok(fresh));
        let session = found.ok_or_else(|| ApiError::SessionNotFound {
            session: id.to_owned(),
        })?;
        if !session.is_running() {
            return Err(ApiError::SessionNotRunning {
                session: session.name.clone(),
                status: session.status.clone(),
            }
            .into());
        }
        Ok(session)
    }
}
