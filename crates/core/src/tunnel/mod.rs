//! The tunnel engine: one local listener per (endpoint, session, app); every accepted TCP
//! connection gets its own signed WebSocket to the app, relayed as BINARY frames.
//!
//! A [`Tunnel`] owns its listener task; the listener owns the connection tasks through a
//! [`TaskTracker`], so stopping the tunnel (cancelling its token) closes every connection
//! and releases the port before [`Tunnel::stop`] returns.

mod address;
pub(crate) mod connector;
mod host_guard;
pub mod link;
mod manager;
pub mod peer;
mod relay;
mod session_watch;
mod status;
pub mod wake;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::{ApiError, AppLaunch, BackendClient, ComputeSession, ServicePort};

pub use address::{app_url, local_host_name, LOCALHOST_SUFFIX};
pub use connector::{open_app_stream, AppStream};
pub use host_guard::{HostGuard, Refusal};
pub use manager::{TunnelEvent, TunnelInfo, TunnelKey, TunnelManager};
use peer::{PeerGuard, PeerVerdict};
pub use relay::{relay, RelayEnd, RelayError, RelayOptions, Replay, WAKE_PONG_WAIT};
pub use session_watch::{SessionEnded, SessionWatch};
use status::Refused;
pub use status::{Counters, RefusedPeer, TunnelState, TunnelStatus};

/// Tunables of a tunnel; the defaults follow the protocol doc.
#[derive(Debug, Clone)]
pub struct TunnelOptions {
    /// How long to wait for the 101: the server starts the app first, which can take
    /// 30 s, so at least 60 s.
    pub handshake_timeout: Duration,
    /// Relay tunables (chunk size, ping interval).
    pub relay: RelayOptions,
    /// Open one connection at start so the app is started (and its failure reported)
    /// before the tunnel says it is ready.
    pub warm_up: bool,
    /// Most connections relayed at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// How long a new connection keeps retrying while the app is not listening yet
    /// (close 1013), with backoff, before the failure is reported.
    pub app_start_timeout: Duration,
    /// Most bytes a connection may send before the app's first reply and still be
    /// replayed on a retry.
    pub replay_limit: usize,
    /// Web apps only: refuse requests whose `Host` is not the tunnel's own (see
    /// [`HostGuard`]).
    pub host_guard: bool,
    /// How often an idle tunnel checks that its session still runs; a tunnel whose
    /// session ended stops itself (state `failed`, with the reason). Connection ends
    /// prompt an earlier check. `None` never checks.
    pub session_check: Option<Duration>,
    /// Refuse connections from other local users (see [`peer`]): applies where the
    /// platform can tell who connects (Linux) and the tunnel listens on loopback only.
    pub owner_only: bool,
}

impl Default for TunnelOptions {
    fn default() -> Self {
        TunnelOptions {
            handshake_timeout: Duration::from_secs(60),
            relay: RelayOptions::default(),
            warm_up: true,
            max_connections: 4096,
            app_start_timeout: Duration::from_secs(60),
            replay_limit: 256 * 1024,
            host_guard: true,
            session_check: Some(Duration::from_secs(30)),
            owner_only: true,
        }
    }
}

/// Who may connect to a tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PeerCheck {
    /// Only the user who opened it (and root): other local users are refused.
    OwnerOnly,
    /// It listens on an address other machines can reach (`--bind`): the user chose to
    /// share it, and peers there have no local owner to check.
    Shared,
    /// This platform cannot tell who connects (not Linux): any local user can.
    Unguarded,
    /// The check was turned off ([`TunnelOptions::owner_only`]).
    Off,
}

impl PeerCheck {
    fn of(options: &TunnelOptions, local: SocketAddr) -> PeerCheck {
        if !options.owner_only {
            PeerCheck::Off
        } else if !peer::is_local_only(local.ip()) {
            PeerCheck::Shared
        } else if cfg!(target_os = "linux") {
            PeerCheck::OwnerOnly
        } else {
            PeerCheck::Unguarded
        }
    }

    /// What it means, in a line, for a tunnel that is not owner-only (`None` when it is).
    pub fn warning(self) -> Option<&'static str> {
        match self {
            PeerCheck::OwnerOnly => None,
            PeerCheck::Shared => Some(
                "it listens beyond loopback: other machines and every local user can use it \
                 (Porthole refuses other users only on loopback addresses)",
            ),
            PeerCheck::Unguarded => {
                Some("this platform cannot tell who connects: every local user can use the tunnel")
            }
            PeerCheck::Off => Some("every local user can use the tunnel (the owner check is off)"),
        }
    }
}

/// The refusal of a connection from another user, or `None` to let it through.
fn refuse_other_user(guard: &PeerGuard, socket: &TcpStream, peer: SocketAddr) -> Option<Refused> {
    let local = socket.local_addr().ok()?;
    match guard.check(local, peer) {
        PeerVerdict::Allowed => None,
        PeerVerdict::Refused { uid } => Some(Refused::User(uid)),
        PeerVerdict::Unknown(why) => {
            tracing::warn!(%peer, %why, "refused a connection whose owner is unknown");
            Some(Refused::Unknown)
        }
    }
}

/// Why a tunnel could not start.
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    /// The local port is taken.
    #[error("local port {port} is already in use by another program")]
    PortInUse {
        /// The port asked for.
        port: u16,
    },
    /// The local address cannot be bound (permissions, not a local address).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The session does not offer the app, or not in a tunnellable way.
    #[error("{0}")]
    App(String),
    /// The server refused or failed while starting the app.
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl TunnelError {
    /// A stable short name for the error class.
    pub fn kind(&self) -> &'static str {
        match self {
            TunnelError::PortInUse { .. } => "port-in-use",
            TunnelError::Bind { .. } => "bind",
            TunnelError::App(_) => "app",
            TunnelError::Api(e) => e.kind(),
        }
    }
}

/// What a tunnel connects: one app of one session, reached through one client.
#[derive(Debug, Clone)]
pub struct TunnelTarget {
    /// The signed-in client.
    pub client: BackendClient,
    /// The session.
    pub session: ComputeSession,
    /// The app (service port).
    pub app: ServicePort,
    /// How the server should start it.
    pub launch: AppLaunch,
}

impl TunnelTarget {
    /// Opens one WebSocket to the app, waiting up to `handshake_timeout` for the 101.
    pub async fn open_stream(&self, handshake_timeout: Duration) -> Result<AppStream, ApiError> {
        open_app_stream(
            &self.client,
            &self.session,
            &self.app,
            &self.launch,
            handshake_timeout,
        )
        .await
    }
}

struct Shared {
    target: TunnelTarget,
    options: TunnelOptions,
    counters: Counters,
    guard: Option<HostGuard>,
    /// Tells when the session ended (`None`: never checked); told when a connection
    /// ends, which is when an ending shows.
    session_watch: Option<SessionWatch>,
    /// Lets only the owner's connections through (`None`: everyone, see [`PeerCheck`]).
    peer_guard: Option<PeerGuard>,
}

/// A running tunnel. Dropping it without [`Tunnel::stop`] also stops it (the token is
/// cancelled), but `stop` waits until every connection is closed.
pub struct Tunnel {
    local_addr: SocketAddr,
    url: Option<String>,
    peer_check: PeerCheck,
    status: watch::Receiver<TunnelStatus>,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Tunnel {
    /// Binds `bind` (port 0 for a free port), optionally warms the app up, and starts
    /// accepting. `parent` cancels the tunnel together with its siblings. The tunnel
    /// watches its session with a [`SessionWatch`] of its own, every
    /// [`TunnelOptions::session_check`].
    pub async fn start(
        target: TunnelTarget,
        bind: SocketAddr,
        options: TunnelOptions,
        parent: &CancellationToken,
    ) -> Result<Tunnel, TunnelError> {
        let watch = options
            .session_check
            .map(|interval| SessionWatch::start(target.client.clone(), interval));
        Tunnel::start_watched(target, bind, options, parent, watch).await
    }

    /// [`Tunnel::start`], with the session watched by `watch` (shared with other tunnels
    /// of the same account), or not at all.
    pub async fn start_watched(
        target: TunnelTarget,
        bind: SocketAddr,
        options: TunnelOptions,
        parent: &CancellationToken,
        watch: Option<SessionWatch>,
    ) -> Result<Tunnel, TunnelError> {
        if !target.app.is_tunnellable() {
            return Err(TunnelError::App(format!(
                "{} is a {} port, which cannot be tunnelled",
                target.app.name,
                target.app.protocol.as_str()
            )));
        }
        let listener = TcpListener::bind(bind).await.map_err(|source| {
            if source.kind() == io::ErrorKind::AddrInUse {
                TunnelError::PortInUse { port: bind.port() }
            } else {
                TunnelError::Bind { addr: bind, source }
            }
        })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| TunnelError::Bind { addr: bind, source })?;
        if options.warm_up {
            warm_up(&target, &options).await?;
        }
        let peer_check = PeerCheck::of(&options, local_addr);
        let peer_guard = match peer_check {
            PeerCheck::OwnerOnly => PeerGuard::for_this_user(),
            _ => None,
        };
        let web = target.app.protocol.is_web();
        let host_name = web.then(|| local_host_name(&target.session.name, &target.app.name));
        let url = host_name
            .as_deref()
            .map(|host| app_url(&target.app, host, local_addr));
        let guard = host_name
            .as_deref()
            .filter(|_| options.host_guard)
            .map(|host| HostGuard::new(host, local_addr));
        let shared = Arc::new(Shared {
            target,
            options,
            counters: Counters::default(),
            guard,
            session_watch: watch,
            peer_guard,
        });
        let (status_tx, status_rx) = watch::channel(shared.counters.snapshot(None));
        let cancel = parent.child_token();
        let task = tokio::spawn(accept_loop(listener, shared, status_tx, cancel.clone()));
        tracing::info!(%local_addr, "tunnel listening");
        Ok(Tunnel {
            local_addr,
            url,
            peer_check,
            status: status_rx,
            cancel,
            task: Some(task),
        })
    }

    /// The address local clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Web apps: the URL a browser opens (own host name, the app's start path).
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// Who may connect (see [`PeerCheck`]).
    pub fn peer_check(&self) -> PeerCheck {
        self.peer_check
    }

    /// A receiver of status snapshots; `changed()` wakes on every published change.
    pub fn status(&self) -> watch::Receiver<TunnelStatus> {
        self.status.clone()
    }

    /// A token that stops this tunnel when cancelled.
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Stops accepting, closes every connection, releases the port, and waits for all
    /// of it to finish.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Opens and closes one WebSocket so the server starts the app now, surfacing a start
/// failure (500 with the agent's reason) before the tunnel reports ready.
async fn warm_up(target: &TunnelTarget, options: &TunnelOptions) -> Result<(), ApiError> {
    let stream = target.open_stream(options.handshake_timeout).await?;
    // Close politely; the app side sees one short connection.
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.close()).await;
    Ok(())
}

/// Publishes status while the tunnel runs: on every connection event, and every
/// `BYTES_TICK` while connections are open so byte counters move. Idle tunnels sleep.
const BYTES_TICK: Duration = Duration::from_millis(500);

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    status: watch::Sender<TunnelStatus>,
    cancel: CancellationToken,
) {
    let tracker = TaskTracker::new();
    let slots = Arc::new(Semaphore::new(shared.options.max_connections));
    let mut tick = tokio::time::interval(BYTES_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let publish = |status: &watch::Sender<TunnelStatus>| {
        let snapshot = shared.counters.snapshot(None);
        status.send_if_modified(|current| {
            let changed = *current != snapshot;
            *current = snapshot;
            changed
        });
    };
    publish(&status);
    let session_ended = async {
        match &shared.session_watch {
            Some(watch) => {
                let unreachable = |e: &ApiError| shared.counters.record_failure(e.to_string());
                watch
                    .wait_for_end(&shared.target.session, &unreachable)
                    .await
            }
            None => std::future::pending().await,
        }
    };
    tokio::pin!(session_ended);
    let mut final_state = TunnelState::Stopped;
    // Why the tunnel stopped itself: the last word, whatever its closing connections say.
    let mut final_reason: Option<String> = None;
    // A connection slot is taken before accepting, so a full tunnel leaves new clients in
    // the listen backlog instead of piling up tasks; every branch stays live meanwhile, so
    // status keeps flowing while the tunnel waits.
    let mut permit: Option<OwnedSemaphorePermit> = None;
    loop {
        let busy = shared.counters.active.load(Ordering::Relaxed) > 0;
        tokio::select! {
            _ = cancel.cancelled() => break,
            ended = &mut session_ended => {
                tracing::info!(reason = %ended, "session ended; stopping the tunnel");
                shared.counters.record_error(ended.to_string());
                final_state = TunnelState::Failed;
                final_reason = Some(ended.to_string());
                break;
            }
            _ = shared.counters.changed.notified() => publish(&status),
            _ = tick.tick(), if busy => publish(&status),
            acquired = slots.clone().acquire_owned(), if permit.is_none() => match acquired {
                Ok(p) => permit = Some(p),
                Err(_) => break,
            },
            accepted = listener.accept(), if permit.is_some() => match accepted {
                Ok((socket, peer)) => {
                    if let Some(guard) = &shared.peer_guard {
                        if let Some(refused) = refuse_other_user(guard, &socket, peer) {
                            // Closed before a byte reaches the server.
                            drop(socket);
                            shared.counters.connection_refused(refused);
                            continue;
                        }
                    }
                    let _ = socket.set_nodelay(true);
                    shared.counters.connection_opened();
                    let shared = shared.clone();
                    let cancel = cancel.clone();
                    let slot = permit.take();
                    tracker.spawn(async move {
                        let error = serve_connection(socket, &shared, &cancel).await;
                        if let Some(e) = &error {
                            tracing::warn!(%peer, error = %e, "tunnelled connection failed");
                        }
                        shared.counters.connection_closed(error);
                        if let Some(watch) = &shared.session_watch {
                            watch.prompt();
                        }
                        drop(slot);
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: report, back off, keep serving.
                    shared
                        .counters
                        .record_error(format!("cannot accept a local connection: {e}"));
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                        _ = cancel.cancelled() => break,
                    }
                }
            },
        }
    }
    drop(listener);
    // A tunnel that stops itself closes its connections too.
    cancel.cancel();
    tracker.close();
    tracker.wait().await;
    let mut last = shared.counters.snapshot(Some(final_state));
    last.active_connections = 0;
    if final_reason.is_some() {
        last.last_error = final_reason;
    }
    status.send_replace(last);
}

/// In session mode, how long a connection's first bytes may go unanswered before the
/// silent relay is reported (the web server passes no close on).
pub const SESSION_MODE_FIRST_REPLY: Duration = Duration::from_secs(30);

/// Serves one local connection; returns the failure to report, if any.
async fn serve_connection(
    mut socket: TcpStream,
    shared: &Shared,
    cancel: &CancellationToken,
) -> Option<String> {
    let mut pending = BytesMut::new();
    if let Some(guard) = &shared.guard {
        let checked = tokio::select! {
            checked = guard.read_and_check(&mut socket, &mut pending) => checked,
            _ = cancel.cancelled() => return None,
        };
        match checked {
            Ok(true) => {}
            // The client left (or never spoke): nothing was asked, nothing failed.
            Ok(false) => return None,
            Err(refusal) => {
                let _ = socket.write_all(refusal.response().as_bytes()).await;
                let _ = socket.shutdown().await;
                // Reported, but the tunnel is fine: a web page's rebinding attempt must
                // not mark the user's tunnel as failing.
                tracing::warn!(error = %refusal, "web tunnel refused a request");
                shared.counters.record_error(refusal.to_string());
                return None;
            }
        }
    }
    let replay = Replay::with_pending(shared.options.replay_limit, pending);
    let (mut local_rx, mut local_tx) = socket.split();
    let outcome = relay_to_app(
        &mut local_rx,
        &mut local_tx,
        &shared.target,
        &shared.options,
        &shared.counters,
        cancel,
        replay,
    )
    .await;
    // Tell the local client (TCP FIN) in every case.
    let _ = local_tx.shutdown().await;
    outcome.err().map(|e| e.to_string())
}

/// Why one relayed connection failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The WebSocket handshake was refused or failed.
    #[error(transparent)]
    Handshake(#[from] ApiError),
    /// The relay ended with an error.
    #[error(transparent)]
    Relay(#[from] RelayError),
    /// The app kept refusing (close 1013) until the deadline.
    #[error("{app} did not start listening within {secs} s (close 1013); check that it runs in the session")]
    AppNotStarted {
        /// The app's name.
        app: String,
        /// How long Porthole kept trying.
        secs: u64,
    },
}

/// Relays one local byte stream to the app over a new WebSocket until either side ends,
/// retrying with backoff while the app is not listening yet (close 1013 before it
/// answered; see [`Replay`]). Returns `Ok` when the connection ended normally or the
/// tunnel was stopped. Web apps get an error page on a failed handshake. The caller
/// shuts `local_tx` down.
pub async fn relay_to_app<R, W>(
    local_rx: &mut R,
    local_tx: &mut W,
    target: &TunnelTarget,
    options: &TunnelOptions,
    counters: &Counters,
    cancel: &CancellationToken,
    mut replay: Replay,
) -> Result<(), ConnectionError>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let mut relay_options = options.relay;
    if target.client.is_session_mode() && relay_options.first_reply_timeout.is_none() {
        relay_options.first_reply_timeout = Some(SESSION_MODE_FIRST_REPLY);
    }
    let mut waiting = AppStartWait::new(counters, options.app_start_timeout);
    loop {
        let open = target.open_stream(options.handshake_timeout);
        let stream = tokio::select! {
            stream = open => stream,
            _ = cancel.cancelled() => return Ok(()),
        };
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                if target.app.protocol.is_web() {
                    // A browser shows this page instead of a bare reset.
                    let page = error_page(&target.app.name, &e.to_string());
                    let _ = local_tx.write_all(page.as_bytes()).await;
                }
                return Err(e.into());
            }
        };
        counters.connection_established();
        let relayed = relay(
            local_rx,
            local_tx,
            stream,
            counters,
            relay_options,
            cancel,
            &mut replay,
        )
        .await;
        match relayed {
            Err(RelayError::AppNotListening) if replay.can_replay() => {
                if !waiting.backoff(cancel).await {
                    if cancel.is_cancelled() {
                        return Ok(());
                    }
                    return Err(ConnectionError::AppNotStarted {
                        app: target.app.name.clone(),
                        secs: options.app_start_timeout.as_secs(),
                    });
                }
            }
            Ok(_) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}

/// A connection waiting for its app to start listening: counted as waiting (the tunnel
/// reports `starting`) and retried with exponential backoff until a deadline.
struct AppStartWait<'a> {
    counters: &'a Counters,
    deadline: tokio::time::Instant,
    delay: Duration,
    counted: bool,
}

impl<'a> AppStartWait<'a> {
    const FIRST_DELAY: Duration = Duration::from_millis(100);
    const MAX_DELAY: Duration = Duration::from_secs(2);

    fn new(counters: &'a Counters, timeout: Duration) -> Self {
        AppStartWait {
            counters,
            deadline: tokio::time::Instant::now() + timeout,
            delay: Self::FIRST_DELAY,
            counted: false,
        }
    }

    /// Waits before the next attempt; `false` when the deadline has passed or the
    /// tunnel is stopping.
    async fn backoff(&mut self, cancel: &CancellationToken) -> bool {
        let now = tokio::time::Instant::now();
        if now >= self.deadline {
            return false;
        }
        if !self.counted {
            self.counted = true;
            self.counters.waiting_started();
        }
        let wake = (now + self.delay).min(self.deadline);
        self.delay = (self.delay * 2).min(Self::MAX_DELAY);
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => true,
            _ = cancel.cancelled() => false,
        }
    }
}

impl Drop for AppStartWait<'_> {
    fn drop(&mut self) {
        if self.counted {
            self.counters.waiting_ended();
        }
    }
}

fn error_page(app: &str, reason: &str) -> String {
    html_reply(
        "502 Bad Gateway",
        &format!("Porthole: {app} unavailable"),
        &format!("Porthole could not reach {app}"),
        &[reason, "Reload to try again."],
    )
}

/// A whole HTTP/1.1 reply with a short HTML page (every text escaped) that closes the
/// connection: what a browser shows when a tunnel answers by itself.
pub(crate) fn html_reply(status: &str, title: &str, heading: &str, paragraphs: &[&str]) -> String {
    let mut body = format!(
        "<!doctype html><meta charset=utf-8><title>{}</title><h1>{}</h1>",
        html_escape(title),
        html_escape(heading)
    );
    for p in paragraphs {
        body.push_str(&format!("<p>{}</p>", html_escape(p)));
    }
    body.push('\n');
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\nCache-Control: no-store\r\n\r\n{body}",
        body.len()
    )
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
