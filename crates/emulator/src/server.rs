//! Starting, controlling and stopping an emulator; the request dispatcher.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::control::{self, CONTROL_PREFIX};
use crate::error::EmulatorError;
use crate::manager;
use crate::problem::Problem;
use crate::request::{Req, Via};
use crate::state::Shared;
use crate::webserver;

/// Request bodies larger than this are refused (the manager's own bodies are small).
const MAX_BODY: usize = 8 * 1024 * 1024;

/// Options for [`Emulator::start_with`].
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Serve the HTTP control API under `/_emulator/` (see [`crate::control`]).
    pub control_http: bool,
}

/// Entry point: starts emulators.
#[derive(Debug)]
pub struct Emulator;

impl Emulator {
    /// Validates `config`, binds `addr` (port 0 for any free port) and starts serving.
    pub async fn start(config: Config, addr: SocketAddr) -> Result<RunningEmulator, EmulatorError> {
        Self::start_with(config, addr, StartOptions::default()).await
    }

    /// Like [`Emulator::start`], with options.
    pub async fn start_with(
        config: Config,
        addr: SocketAddr,
        options: StartOptions,
    ) -> Result<RunningEmulator, EmulatorError> {
        let shared = Arc::new(Shared::new(&config, options.control_http)?);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| EmulatorError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| EmulatorError::Bind { addr, source })?;
        let app = Router::new()
            .fallback(dispatch)
            .with_state(Arc::clone(&shared));
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let shutdown = shared.shutdown.clone();
        let server = tokio::spawn(async move {
            let result = axum::serve(listener, app)
                .with_graceful_shutdown(async move { shutdown.cancelled().await })
                .await;
            if let Err(e) = result {
                tracing::error!(error = %e, "emulator server failed");
            }
        });
        tracing::info!(%local_addr, api_version = %shared.api_version_str, sessions = shared.sessions.len(), "emulator listening");
        Ok(RunningEmulator {
            shared,
            local_addr,
            server: Some(server),
        })
    }
}

/// A running emulator. Dropping it stops serving (without waiting); prefer
/// [`RunningEmulator::shutdown`].
pub struct RunningEmulator {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    server: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for RunningEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningEmulator")
            .field("local_addr", &self.local_addr)
            .field("api_version", &self.shared.api_version_str)
            .finish_non_exhaustive()
    }
}

impl RunningEmulator {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The endpoint URL for clients, e.g. `http://127.0.0.1:8081` (API and session mode).
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// The API version reported by `GET /`.
    pub fn api_version(&self) -> &str {
        &self.shared.api_version_str
    }

    /// Sets a session's status (by name or UUID; any owner). Leaving RUNNING closes the
    /// session's open relays with 1001 (API mode; silently in session mode) and resets its
    /// apps (the next tunnel waits for `start_delay_ms` again); TERMINATED and CANCELLED
    /// sessions disappear from lookups (tunnels, `/apps`, downloads; 404) and appear in
    /// listings only when those statuses are asked for (or the status filter is null).
    pub fn set_session_status(&self, session: &str, status: &str) -> Result<(), EmulatorError> {
        self.shared.set_status(session, status, None).map(|_| ())
    }

    /// Like [`RunningEmulator::set_session_status`], also setting `status_info`.
    pub fn set_session_status_info(
        &self,
        session: &str,
        status: &str,
        status_info: Option<&str>,
    ) -> Result<(), EmulatorError> {
        self.shared
            .set_status(session, status, status_info.map(str::to_owned))
            .map(|_| ())
    }

    /// Takes the manager behind the web server down (`false`) or brings it back (`true`).
    /// While it is down, the web server side answers as 23.09's does when its manager
    /// refuses connections: 502 `bad-gateway` for `/func/...` (the anonymous `GET /func/`
    /// included) and tunnels, 502 with `details` for `POST /server/login`; login-check and
    /// logout still work. Requests made directly to the manager (API mode) are still served:
    /// to emulate an unreachable manager there, stop the emulator.
    pub fn set_manager_up(&self, up: bool) {
        self.shared
            .manager_up
            .store(up, std::sync::atomic::Ordering::SeqCst);
        tracing::info!(up, "manager availability changed");
    }

    /// A session's current status.
    pub fn session_status(&self, session: &str) -> Result<String, EmulatorError> {
        self.shared.find_any_session(session).map(|s| s.status())
    }

    /// A session's UUID (generated ones included).
    pub fn session_id(&self, session: &str) -> Result<uuid::Uuid, EmulatorError> {
        self.shared.find_any_session(session).map(|s| s.id)
    }

    /// How many session listings (`compute_session_list` fields) were answered so far:
    /// what tests count clients' polling by.
    pub fn session_listings(&self) -> u64 {
        *self.shared.session_listings.borrow()
    }

    /// Waits until at least `n` session listings were answered.
    pub async fn wait_session_listings(&self, n: u64) {
        let mut rx = self.shared.session_listings.subscribe();
        let _ = rx.wait_for(|listed| *listed >= n).await;
    }

    /// The number of open tunnel relays.
    pub fn open_relays(&self) -> usize {
        *self.shared.relays.borrow()
    }

    /// Waits until exactly `n` tunnel relays are open.
    pub async fn wait_open_relays(&self, n: usize) {
        let mut rx = self.shared.relays.subscribe();
        let _ = rx.wait_for(|open| *open == n).await;
    }

    /// Resolves once shutdown was requested (by [`RunningEmulator::shutdown`], a drop, or
    /// `POST /_emulator/shutdown`).
    pub async fn shutdown_requested(&self) {
        self.shared.shutdown.cancelled().await;
    }

    /// Stops: closes open relays with 1001, stops accepting, releases the listener, and
    /// waits for every connection task to end.
    pub async fn shutdown(mut self) {
        self.shared.shutdown.cancel();
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        self.shared.tracker.close();
        self.shared.tracker.wait().await;
        tracing::info!(local_addr = %self.local_addr, "emulator stopped");
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
    }
}

/// Every request lands here: control API, web server routes, `/func`, else the manager,
/// answered as the emulated release would.
async fn dispatch(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    crate::release::CURRENT
        .scope(shared.release, route(shared, request))
        .await
}

async fn route(shared: Arc<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(Body::new(body), MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "generic-bad-request",
                "Bad request.",
            )
            .msg("Request body too large.")
            .into_response()
        }
    };
    let path = parts.uri.path().to_owned();
    tracing::debug!(method = %parts.method, %path, "request");
    let req = Req { parts, path, body };
    if shared.control_http && req.path.starts_with(CONTROL_PREFIX) {
        return control::handle(&shared, &req);
    }
    if let Some(response) = webserver::server_route(&shared, &req) {
        return response;
    }
    if req.path == "/func" || req.path.starts_with("/func/") {
        return webserver::func(&shared, req).await;
    }
    manager::handle(&shared, req, Via::Api).await
}
