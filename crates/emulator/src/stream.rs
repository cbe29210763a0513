//! Stream tunnels: `GET /stream/session/{id}/{httpproxy|tcpproxy}?app=NAME` (v4:
//! `/stream/kernel/{name}/...`), the WebSocket handshake in the manager's order and the
//! BINARY relay to the app's real local server (protocol doc §5 and §10).
//!
//! Handshake: parameters, session lookup, `service_ports` (null: 500), app lookup, port,
//! protocol, the app start (failure: 500 with `data`; first start: the configured delay),
//! the Upgrade check (400), then 101. Only after the 101 is the target connected: refused
//! gives CLOSE 1013, other errors 1011.
//!
//! Relay: client BINARY frames go to the target (TEXT frames are dropped, the socket stays
//! usable); target bytes come back as BINARY frames of at most 256 KiB; a client message of
//! 16 MiB or more gets CLOSE 1009; target EOF gives CLOSE 1001; a client CLOSE closes the
//! target. Both directions are awaited (no unbounded buffers). Pings are answered, never
//! sent. Session termination and emulator shutdown close the relay with 1001.
//!
//! Through the web server (`/func/stream/...`) any handshake failure is 502,
//! and closes from the manager's side are not passed on: when the target closes, refuses
//! (1013) or the session goes away, the client's WebSocket stays open, silent, dropping what
//! it is sent, until the client closes it. The web server's own limits apply there: its
//! client-facing socket closes a message of 4 MiB or more with 1009 (aiohttp's default
//! `max_msg_size`).

use std::sync::Arc;
use std::time::Duration;

use axum::http::header::{
    CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, BytesMut};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use porthole_core::tunnel::link::{self, Event, Link, LinkReader, LinkWriter, Role, HEADER_ROOM};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::auth::Caller;
use crate::params::{self, Field, Key, Kind};
use crate::problem::Problem;
use crate::state::{RelayGuard, Shared};
use porthole_core::api::version::ApiVersion;

/// Largest chunk the relay reads from the target (one BINARY frame each).
pub const RELAY_CHUNK: usize = 256 * 1024;
/// The manager's `max-wsmsg-size`: client messages of this size or more get CLOSE 1009.
pub const MANAGER_MAX_MESSAGE: usize = 16 * 1024 * 1024;
/// The web server's client-facing limit (aiohttp `WebSocketResponse` default).
pub const WEB_MAX_MESSAGE: usize = 4 * 1024 * 1024;
/// How long to wait for the target's TCP connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for the client's CLOSE reply after sending ours.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_MESSAGE_TOO_BIG: u16 = 1009;
const CLOSE_INTERNAL_ERROR: u16 = 1011;
const CLOSE_TRY_AGAIN_LATER: u16 = 1013;

/// Which server the client is talking to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The manager directly.
    Api,
    /// The web server in front of it.
    Web,
}

const PROXY_KEYS: &[Key] = &[
    Key::required(&["app", "service"], Kind::Str),
    // The port picks one of the app's container ports (23.09 compares it as a string and
    // so matches none: `Release::port_never_matches`).
    Key::optional(
        &["port"],
        Kind::OptInt {
            min: 1024,
            max: 65535,
        },
    ),
    Key::optional(&["envs"], Kind::OptStr),
    Key::optional(&["arguments"], Kind::OptStr),
];

/// The same parameters as 26.x's pydantic `StreamProxyRequest` has them.
const STREAM_FIELDS: &[Field] = &[
    Field {
        name: "app",
        required: true,
        int: None,
    },
    Field {
        name: "port",
        required: false,
        int: Some((1024, 65535)),
    },
    Field {
        name: "envs",
        required: false,
        int: None,
    },
    Field {
        name: "arguments",
        required: false,
        int: None,
    },
];

/// What the handshake settled: where to connect and what cancels the relay.
struct Prepared {
    target: String,
    session_token: CancellationToken,
}

/// The handshake checks up to (not including) the Upgrade check and the 101.
async fn prepare(
    shared: &Shared,
    caller: &Caller,
    session_ref: &str,
    query: Option<&str>,
) -> Result<Prepared, Problem> {
    let params = if shared.release.pydantic_stream_params {
        params::check_model("StreamProxyRequest", query, STREAM_FIELDS)?
    } else {
        params::check(&params::raw_params(b"", query)?, PROXY_KEYS)?
    };
    let app = params["app"].as_str().unwrap_or_default();
    let session = shared.session_for(&caller.access_key, session_ref)?;
    if !session.has_ports() {
        if shared.release.not_running_is_404 {
            // 26.x looks the session up among the running ones, by its id.
            return Err(Problem::object_not_found("session")
                .code("session_read_not-found")
                .msg(format!("Running session {} does not exist.", session.id)));
        }
        // The manager iterates the main kernel's service_ports, which are null until the
        // session runs: a TypeError, hence a bare 500.
        return Err(Problem::internal());
    }
    let service = session.service(app).ok_or_else(|| {
        Problem::object_not_found("app service")
            .code("backendai_read_not-found")
            .msg(format!("{session_ref}:{app}"))
    })?;
    let index = match params["port"].as_i64() {
        None => 0,
        Some(port) => service
            .cfg
            .container_ports
            .iter()
            .position(|p| i64::from(*p) == port && !shared.release.port_never_matches)
            .ok_or_else(|| {
                Problem::invalid_api_params()
                    .code("api_generic_invalid-parameters")
                    .msg(format!(
                        "Service {app} does not open the port number {port}."
                    ))
            })?,
    };
    match service.cfg.protocol.as_str() {
        "tcp" | "http" | "preopen" => {}
        "vnc" | "rdp" if shared.api_version >= ApiVersion::V9 => {}
        // NotImplementedError in the manager.
        "pty" => return Err(Problem::internal()),
        other => {
            return Err(Problem::invalid_api_params()
                .code("api_generic_invalid-parameters")
                .msg(format!("Unsupported service protocol: {other}")))
        }
    }
    for key in ["arguments", "envs"] {
        if let Some(text) = params[key].as_str() {
            // load_json() failing is unhandled in the manager: 500.
            serde_json::from_str::<serde_json::Value>(text).map_err(|_| Problem::internal())?;
        }
    }
    let session_token = session.relay_token();
    if let Some(reason) = &service.cfg.start_failure {
        let problem = if shared.release.start_failed_type {
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "app-service-start-failed",
                "Failed to start the application service.",
            )
            .code("session_start_internal-error")
        } else {
            Problem::internal()
        };
        return Err(problem
            .msg("Failed to launch the app service")
            .data(reason.as_str()));
    }
    let ready = service.start();
    tokio::select! {
        () = tokio::time::sleep_until(ready) => {}
        () = shared.shutdown.cancelled() => return Err(Problem::service_unavailable()),
    }
    let target = service
        .cfg
        .target_for(index)
        .ok_or_else(Problem::internal)?
        .to_owned();
    Ok(Prepared {
        target,
        session_token,
    })
}

/// Handles a tunnel handshake and, on success, upgrades and spawns the relay.
pub(crate) async fn proxy(
    shared: &Arc<Shared>,
    caller: Caller,
    session_ref: &str,
    query: Option<&str>,
    parts: &mut Parts,
    mode: Mode,
) -> Response {
    let upgrade = Upgrade::from_parts(parts);
    let prepared = match prepare(shared, &caller, session_ref, query).await {
        Ok(p) => p,
        Err(problem) => {
            tracing::info!(
                session = session_ref,
                status = problem.status.as_u16(),
                title = %problem.title,
                msg = problem.msg.as_deref().unwrap_or(""),
                "tunnel handshake refused"
            );
            return match mode {
                Mode::Api => problem.into_response(),
                Mode::Web => Problem::bad_gateway().into_response(),
            };
        }
    };
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(rejection) => {
            tracing::info!(session = session_ref, %rejection, "tunnel request without a WebSocket upgrade");
            return match mode {
                Mode::Api => Problem::generic_bad_request().into_response(),
                // 26.x's web server checks the upgrade itself (aiohttp's own refusal).
                Mode::Web if shared.release.web_checks_upgrade => (
                    StatusCode::BAD_REQUEST,
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; charset=utf-8",
                    )],
                    "No WebSocket UPGRADE hdr: None\n Can \"Upgrade\" only to \"WebSocket\".",
                )
                    .into_response(),
                Mode::Web => Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal-server-error",
                    "Something has gone wrong.",
                )
                .into_response(),
            };
        }
    };
    let ctx = RelayCtx {
        mode,
        limit: match mode {
            Mode::Api => MANAGER_MAX_MESSAGE,
            Mode::Web => WEB_MAX_MESSAGE,
        },
        drop_oversized: shared.release.drop_oversized,
        target: prepared.target,
        session: prepared.session_token,
        shutdown: shared.shutdown.clone(),
    };
    let guard = RelayGuard::new(&shared.relays);
    let tracker_token = shared.tracker.token();
    tracing::info!(
        access_key = %caller.access_key,
        session = session_ref,
        target = %ctx.target,
        "tunnel opened"
    );
    upgrade.respond(move |link| async move {
        relay(link, ctx).await;
        drop(guard);
        drop(tracker_token);
    })
}

/// The connection a relay runs on once the 101 is sent.
type Io = TokioIo<Upgraded>;

/// A valid WebSocket upgrade request (RFC 6455 §4.2.1), checked as axum checks it.
struct Upgrade {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
}

/// Why a request is not a WebSocket upgrade.
#[derive(Debug, thiserror::Error)]
enum NotAnUpgrade {
    #[error("the request method is not GET")]
    NotGet,
    #[error("`Connection` does not contain `upgrade`")]
    Connection,
    #[error("`Upgrade` is not `websocket`")]
    UpgradeHeader,
    #[error("`Sec-WebSocket-Version` is not 13")]
    Version,
    #[error("`Sec-WebSocket-Key` is missing")]
    Key,
    #[error("the connection cannot be upgraded")]
    NotUpgradable,
}

impl Upgrade {
    fn from_parts(parts: &mut Parts) -> Result<Upgrade, NotAnUpgrade> {
        fn has_token(
            headers: &HeaderMap,
            name: impl axum::http::header::AsHeaderName,
            token: &str,
        ) -> bool {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        }
        if parts.method != Method::GET {
            return Err(NotAnUpgrade::NotGet);
        }
        if !has_token(&parts.headers, CONNECTION, "upgrade") {
            return Err(NotAnUpgrade::Connection);
        }
        if !has_token(&parts.headers, UPGRADE, "websocket") {
            return Err(NotAnUpgrade::UpgradeHeader);
        }
        if parts
            .headers
            .get(SEC_WEBSOCKET_VERSION)
            .map(HeaderValue::as_bytes)
            != Some(b"13")
        {
            return Err(NotAnUpgrade::Version);
        }
        let key = parts
            .headers
            .get(SEC_WEBSOCKET_KEY)
            .cloned()
            .ok_or(NotAnUpgrade::Key)?;
        let on_upgrade = parts
            .extensions
            .remove::<OnUpgrade>()
            .ok_or(NotAnUpgrade::NotUpgradable)?;
        Ok(Upgrade { key, on_upgrade })
    }

    /// The 101, with `serve` spawned on the upgraded connection.
    fn respond<F, Fut>(self, serve: F) -> Response
    where
        F: FnOnce(Link<Io>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let accept = link::accept_key(self.key.as_bytes());
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    serve(Link::new(TokioIo::new(upgraded), Role::Server, Vec::new())).await
                }
                Err(e) => tracing::info!(error = %e, "tunnel upgrade failed"),
            }
        });
        let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
        let headers = response.headers_mut();
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(value) = HeaderValue::from_str(&accept) {
            headers.insert(SEC_WEBSOCKET_ACCEPT, value);
        }
        response
    }
}

struct RelayCtx {
    mode: Mode,
    limit: usize,
    /// An oversized message ends the connection at once, its rest unread (26.x).
    drop_oversized: bool,
    target: String,
    session: CancellationToken,
    shutdown: CancellationToken,
}

/// The sending half, shared: data goes out downstream while pings are answered upstream.
type WsTx = Mutex<LinkWriter<WriteHalf<Io>>>;
type WsRx = LinkReader<ReadHalf<Io>>;

#[derive(Debug)]
enum Outcome {
    /// The client sent a close (with this code, 1000 when it had none).
    ClientClosed(u16),
    ClientGone,
    TooBig,
    TargetGone,
    SessionGone,
    Shutdown,
}

async fn relay(link: Link<Io>, ctx: RelayCtx) {
    let (mut rx, tx) = link.split();
    rx.limit_messages(ctx.limit as u64);
    let mut tx = Mutex::new(tx);
    let connect = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(ctx.target.as_str()));
    let connected = tokio::select! {
        r = connect => r,
        () = ctx.shutdown.cancelled() => return close_and_drain(&mut tx, &mut rx, CLOSE_GOING_AWAY).await,
        () = ctx.session.cancelled() => return finish(&ctx, &mut tx, &mut rx, CLOSE_GOING_AWAY).await,
    };
    let stream = match connected {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            tracing::info!(target = %ctx.target, "app port refused the connection: close 1013");
            return finish(&ctx, &mut tx, &mut rx, CLOSE_TRY_AGAIN_LATER).await;
        }
        Ok(Err(e)) => {
            tracing::info!(target = %ctx.target, error = %e, "cannot connect to the app: close 1011");
            return finish(&ctx, &mut tx, &mut rx, CLOSE_INTERNAL_ERROR).await;
        }
        Err(_) => {
            tracing::info!(target = %ctx.target, "connect to the app timed out: close 1011");
            return finish(&ctx, &mut tx, &mut rx, CLOSE_INTERNAL_ERROR).await;
        }
    };
    let _ = stream.set_nodelay(true);
    let (mut target_rd, mut target_wr) = stream.into_split();
    let outcome = tokio::select! {
        o = upstream(&mut rx, &tx, &mut target_wr) => o,
        o = downstream(&mut target_rd, &tx) => o,
        () = ctx.shutdown.cancelled() => Outcome::Shutdown,
        () = ctx.session.cancelled() => Outcome::SessionGone,
    };
    // The app socket is closed whatever happened.
    drop(target_rd);
    drop(target_wr);
    tracing::debug!(target = %ctx.target, ?outcome, "relay ended");
    match outcome {
        // Answer the client's close, echoing its code, as the WebSocket layer did.
        Outcome::ClientClosed(code) => close_and_drain(&mut tx, &mut rx, code).await,
        Outcome::ClientGone => {}
        Outcome::TooBig if ctx.drop_oversized => {
            // The rest of the message stays unread: closing resets the connection.
            let _ = tx.get_mut().close(CLOSE_MESSAGE_TOO_BIG, "").await;
        }
        Outcome::TooBig => close_and_drain(&mut tx, &mut rx, CLOSE_MESSAGE_TOO_BIG).await,
        Outcome::Shutdown => close_and_drain(&mut tx, &mut rx, CLOSE_GOING_AWAY).await,
        Outcome::TargetGone | Outcome::SessionGone => {
            finish(&ctx, &mut tx, &mut rx, CLOSE_GOING_AWAY).await
        }
    }
}

/// The manager closes with `code`; behind the web server the client hears nothing.
async fn finish(ctx: &RelayCtx, tx: &mut WsTx, rx: &mut WsRx, code: u16) {
    match ctx.mode {
        Mode::Api => close_and_drain(tx, rx, code).await,
        Mode::Web => silent(ctx, tx, rx).await,
    }
}

/// Client to app: BINARY payload is written as it arrives (awaiting the target), TEXT
/// dropped, pings answered.
async fn upstream(rx: &mut WsRx, tx: &WsTx, target: &mut OwnedWriteHalf) -> Outcome {
    loop {
        match rx.next().await {
            Ok(Event::Data(data)) => {
                if target.write_all(data).await.is_err() {
                    return Outcome::TargetGone;
                }
            }
            Ok(Event::Ping(payload)) => {
                if tx.lock().await.pong(&payload).await.is_err() {
                    return Outcome::ClientGone;
                }
            }
            Ok(Event::Other) => {}
            Ok(Event::Close(frame)) => {
                return Outcome::ClientClosed(frame.map_or(1000, |(code, _)| code))
            }
            Ok(Event::Eof) => return Outcome::ClientGone,
            Err(link::LinkError::TooLarge(_)) => return Outcome::TooBig,
            Err(_) => return Outcome::ClientGone,
        }
    }
}

/// App to client: chunks of at most [`RELAY_CHUNK`] as BINARY frames, each send awaited.
async fn downstream(target: &mut OwnedReadHalf, tx: &WsTx) -> Outcome {
    // Read in behind the frame header's room, sent from where the bytes landed.
    let mut buf = BytesMut::with_capacity(HEADER_ROOM + RELAY_CHUNK);
    buf.resize(HEADER_ROOM, 0);
    loop {
        match target.read_buf(&mut (&mut buf).limit(RELAY_CHUNK)).await {
            Ok(0) | Err(_) => return Outcome::TargetGone,
            Ok(_) => {
                if tx.lock().await.send_binary(&mut buf).await.is_err() {
                    return Outcome::ClientGone;
                }
                buf.truncate(HEADER_ROOM);
            }
        }
    }
}

/// Sends CLOSE `code` (ours, or the answer to the client's), then waits briefly for the
/// client's CLOSE reply or the end of the connection.
async fn close_and_drain(tx: &mut WsTx, rx: &mut WsRx, code: u16) {
    if tx.get_mut().close(code, "").await.is_err() {
        return;
    }
    drain(rx).await;
}

/// Reads (and drops) until the client's close or the end of the connection.
async fn drain(rx: &mut WsRx) {
    let _ = tokio::time::timeout(CLOSE_LINGER, async {
        loop {
            match rx.next().await {
                Ok(Event::Close(_) | Event::Eof) => return,
                Ok(_) | Err(link::LinkError::TooLarge(_)) => {}
                Err(_) => return,
            }
        }
    })
    .await;
}

/// Web-server mode after the manager side went away: stay open, answer pings, drop
/// everything, until the client closes (or the emulator shuts down).
async fn silent(ctx: &RelayCtx, tx: &mut WsTx, rx: &mut WsRx) {
    loop {
        tokio::select! {
            () = ctx.shutdown.cancelled() => return close_and_drain(tx, rx, CLOSE_GOING_AWAY).await,
            event = rx.next() => match event {
                Ok(Event::Close(frame)) => {
                    return close_and_drain(tx, rx, frame.map_or(1000, |(code, _)| code)).await
                }
                Ok(Event::Ping(payload)) => {
                    if tx.get_mut().pong(&payload).await.is_err() {
                        return;
                    }
                }
                Ok(Event::Data(_) | Event::Other) => {}
                Err(link::LinkError::TooLarge(_)) => {
                    return close_and_drain(tx, rx, CLOSE_MESSAGE_TOO_BIG).await
                }
                Ok(Event::Eof) | Err(_) => return,
            },
        }
    }
}
