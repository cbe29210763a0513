//! The built-in demo: real local services plus an emulator whose sessions point at them, for
//! the desktop app's "Try the demo" and `porthole-emulator --demo`.
//!
//! Services (all on 127.0.0.1, OS-assigned ports):
//! - three small HTTP apps ("Notebook", "Terminal", "TensorBoard" stand-ins), each with an
//!   HTML page saying it is a Porthole demo app, a WebSocket echo at `/ws` used by the page's
//!   script, `GET /health` (JSON) and `GET /big?n=BYTES` (that many bytes, for throughput);
//! - a TCP echo server.
//!
//! Sessions (owned by [`DEMO_ACCESS_KEY`], also reachable by logging in as
//! [`DEMO_USERNAME`] / [`DEMO_PASSWORD`]):
//! - `demo-notebook` (RUNNING): `jupyter` (http 8081), `ttyd` (http 7681), `echo` (tcp 7007);
//! - `demo-training` (RUNNING): `tensorboard` (http 6006, takes 1.5 s to start the first
//!   time), `jupyterlab` (http 8090), `echo` (tcp 7007);
//! - `demo-queued` (PENDING, `no-available-instances`): no ports yet.

use std::net::SocketAddr;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, KeypairConfig, ServiceConfig, SessionConfig, UserConfig};
use crate::error::EmulatorError;
use crate::server::{Emulator, RunningEmulator, StartOptions};

/// The demo keypair's access key.
pub const DEMO_ACCESS_KEY: &str = "AKIAPORTHOLEDEMO0001";
/// The demo keypair's secret key.
pub const DEMO_SECRET_KEY: &str = "porthole-demo-secret-key-not-a-real-secret";
/// The demo user's login name (session mode).
pub const DEMO_USERNAME: &str = "demo@porthole.example";
/// The demo user's password (session mode).
pub const DEMO_PASSWORD: &str = "porthole-demo";

/// The demo's local services.
pub struct DemoServices {
    notebook: SocketAddr,
    terminal: SocketAddr,
    tensorboard: SocketAddr,
    echo: SocketAddr,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl std::fmt::Debug for DemoServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoServices")
            .field("notebook", &self.notebook)
            .field("terminal", &self.terminal)
            .field("tensorboard", &self.tensorboard)
            .field("echo", &self.echo)
            .finish_non_exhaustive()
    }
}

impl DemoServices {
    /// Starts the demo services on 127.0.0.1 (OS-assigned ports).
    pub async fn start() -> Result<DemoServices, EmulatorError> {
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        // Stops whatever already started if a later service fails to start.
        let cleanup = cancel.clone().drop_guard();
        let spawn_web = |title: &'static str, blurb: &'static str| {
            start_web_app(title, blurb, cancel.clone(), tracker.clone())
        };
        let notebook = spawn_web(
            "Notebook",
            "Pretend this is Jupyter: in a real session your notebooks would be here.",
        )
        .await?;
        let terminal = spawn_web(
            "Terminal",
            "Pretend this is ttyd: in a real session a shell would be here.",
        )
        .await?;
        let tensorboard = spawn_web(
            "TensorBoard",
            "Pretend this is TensorBoard: in a real session your training curves would be here.",
        )
        .await?;
        let echo = start_tcp_echo(cancel.clone(), tracker.clone()).await?;
        cleanup.disarm();
        Ok(DemoServices {
            notebook,
            terminal,
            tensorboard,
            echo,
            cancel,
            tracker,
        })
    }

    /// The address of the TCP echo server.
    pub fn echo_addr(&self) -> SocketAddr {
        self.echo
    }

    /// The address of the "Notebook" web app.
    pub fn notebook_addr(&self) -> SocketAddr {
        self.notebook
    }

    /// An emulator config whose sessions point at these services.
    pub fn config(&self) -> Config {
        let web = |name: &str, port: u16, addr: SocketAddr| {
            ServiceConfig::new(name, "http", port, addr.to_string())
        };
        let echo = ServiceConfig::new("echo", "tcp", 7007, self.echo.to_string());
        let mut tensorboard = web("tensorboard", 6006, self.tensorboard);
        tensorboard.start_delay_ms = 1500;

        let mut notebook = SessionConfig::new("demo-notebook")
            .with_service(web("jupyter", 8081, self.notebook))
            .with_service(web("ttyd", 7681, self.terminal))
            .with_service(echo.clone())
            .with_file(
                "README.txt",
                "This file lives in a Porthole demo session.\n",
            );
        notebook.image = "cr.backend.ai/stable/python:3.11-ubuntu22.04".into();

        let mut training = SessionConfig::new("demo-training")
            .with_service(tensorboard)
            .with_service(web("jupyterlab", 8090, self.notebook))
            .with_service(echo);
        training.image = "cr.backend.ai/stable/pytorch:2.3-py311-cuda12.1".into();

        let mut queued = SessionConfig::new("demo-queued").with_status("PENDING");
        queued.status_info = Some("no-available-instances".into());
        queued.image = "cr.backend.ai/stable/python:3.11-ubuntu22.04".into();
        queued = queued.with_service(web("jupyter", 8081, self.notebook));

        Config {
            api_version: crate::config::DEFAULT_API_VERSION.into(),
            manager_version: None,
            skip_auth: false,
            keypairs: vec![KeypairConfig::new(DEMO_ACCESS_KEY, DEMO_SECRET_KEY)],
            users: vec![UserConfig::new(
                DEMO_USERNAME,
                DEMO_PASSWORD,
                DEMO_ACCESS_KEY,
            )],
            sessions: vec![notebook, training, queued],
        }
    }

    /// Stops the services and waits for their tasks.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

impl Drop for DemoServices {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// The demo services plus an emulator serving them.
#[derive(Debug)]
pub struct Demo {
    /// The emulator (endpoint, control, shutdown).
    pub emulator: RunningEmulator,
    /// The local services behind the demo sessions.
    pub services: DemoServices,
}

impl Demo {
    /// The emulator's endpoint URL.
    pub fn endpoint_url(&self) -> String {
        self.emulator.endpoint_url()
    }

    /// Stops the emulator (closing relays) and then the services.
    pub async fn shutdown(self) {
        let Demo { emulator, services } = self;
        emulator.shutdown().await;
        services.shutdown().await;
    }
}

/// Starts the demo services and an emulator for them listening on `addr`.
pub async fn start_demo(addr: SocketAddr) -> Result<Demo, EmulatorError> {
    start_demo_with(addr, StartOptions::default()).await
}

/// Like [`start_demo`], with emulator options.
pub async fn start_demo_with(
    addr: SocketAddr,
    options: StartOptions,
) -> Result<Demo, EmulatorError> {
    let services = DemoServices::start().await?;
    let emulator = Emulator::start_with(services.config(), addr, options).await?;
    Ok(Demo { emulator, services })
}

async fn bind_loopback() -> Result<TcpListener, EmulatorError> {
    let addr = SocketAddr::from(([127, 0, 0, 1], 0));
    TcpListener::bind(addr)
        .await
        .map_err(|source| EmulatorError::Bind { addr, source })
}

fn local_addr(listener: &TcpListener) -> Result<SocketAddr, EmulatorError> {
    listener.local_addr().map_err(|source| EmulatorError::Bind {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        source,
    })
}

#[derive(Clone)]
struct AppState {
    title: &'static str,
    blurb: &'static str,
    cancel: CancellationToken,
}

async fn start_web_app(
    title: &'static str,
    blurb: &'static str,
    cancel: CancellationToken,
    tracker: TaskTracker,
) -> Result<SocketAddr, EmulatorError> {
    let listener = bind_loopback().await?;
    let addr = local_addr(&listener)?;
    let state = AppState {
        title,
        blurb,
        cancel: cancel.clone(),
    };
    let app = Router::new()
        .route("/", get(page))
        .route("/ws", get(ws_echo))
        .route("/health", get(health))
        .route("/big", get(big))
        .with_state(state);
    tracker.spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { cancel.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "demo web app failed");
        }
    });
    Ok(addr)
}

async fn page(State(state): State<AppState>) -> Html<String> {
    Html(
        PAGE.replace("{title}", state.title)
            .replace("{blurb}", state.blurb),
    )
}

async fn health(State(state): State<AppState>) -> Response {
    let body = format!(
        "{{\"status\": \"ok\", \"app\": \"{}\", \"demo\": true}}",
        state.title
    );
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

#[derive(serde::Deserialize)]
struct BigQuery {
    n: Option<u64>,
}

/// `GET /big?n=BYTES`: that many bytes (at most 4 GiB), streamed in 64 KiB chunks.
async fn big(State(state): State<AppState>, Query(q): Query<BigQuery>) -> Response {
    const CHUNK: u64 = 64 * 1024;
    let total = q.n.unwrap_or(1024 * 1024).min(4 << 30);
    let chunk = Bytes::from(vec![b'x'; CHUNK as usize]);
    let stream = futures_util::stream::unfold(total, move |left| {
        let chunk = chunk.clone();
        async move {
            if left == 0 {
                return None;
            }
            let n = left.min(CHUNK);
            let piece = chunk.slice(..usize::try_from(n).unwrap_or(0));
            Some((Ok::<Bytes, std::io::Error>(piece), left - n))
        }
    })
    // Shutdown cuts long downloads short instead of waiting for them.
    .take_until(state.cancel.cancelled_owned());
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, total.to_string()),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response()
}

async fn ws_echo(State(state): State<AppState>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| echo_socket(socket, state.cancel))
}

async fn echo_socket(mut socket: WebSocket, cancel: CancellationToken) {
    loop {
        let message = tokio::select! {
            () = cancel.cancelled() => return,
            m = socket.next() => m,
        };
        match message {
            Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => {
                if socket.send(m).await.is_err() {
                    return;
                }
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
            Some(Ok(_)) => {}
        }
    }
}

async fn start_tcp_echo(
    cancel: CancellationToken,
    tracker: TaskTracker,
) -> Result<SocketAddr, EmulatorError> {
    let listener = bind_loopback().await?;
    let addr = local_addr(&listener)?;
    let conn_tracker = tracker.clone();
    tracker.spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = cancel.cancelled() => return,
                a = listener.accept() => a,
            };
            match accepted {
                Ok((stream, _)) => {
                    let cancel = cancel.clone();
                    conn_tracker.spawn(async move {
                        tokio::select! {
                            () = cancel.cancelled() => {}
                            () = echo_tcp(stream) => {}
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "demo echo: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    });
    Ok(addr)
}

/// Echoes a TCP connection until EOF, then closes it.
pub(crate) async fn echo_tcp(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let _ = tokio::io::copy(&mut rd, &mut wr).await;
    let _ = wr.shutdown().await;
}

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} — Porthole demo app</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 42rem; margin: 3rem auto; padding: 0 1rem; color: #1d2433; }
  h1 { margin-bottom: .2rem; }
  .tag { display: inline-block; background: #e6f0ff; color: #1f4fbf; border-radius: 1rem; padding: .1rem .7rem; font-size: .85rem; }
  #log { background: #f5f7fa; border-radius: .5rem; padding: .8rem; min-height: 6rem; font-family: ui-monospace, monospace; white-space: pre-wrap; }
  input { width: 70%; padding: .4rem; } button { padding: .4rem .9rem; }
</style>
</head>
<body>
<span class="tag">Porthole demo app</span>
<h1>{title}</h1>
<p>This page is a <strong>Porthole demo app</strong>. It runs on your own computer and reached
your browser through a Porthole tunnel, exactly as an app inside a Backend.AI compute session
would. {blurb}</p>
<p>WebSocket echo (<code>/ws</code>, through the same tunnel): <span id="state">connecting…</span></p>
<p><input id="text" value="Hello through the tunnel!"> <button id="send">Send</button></p>
<div id="log"></div>
<script>
  const log = (line) => { document.getElementById('log').textContent += line + '\n'; };
  const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
  const ws = new WebSocket(scheme + location.host + '/ws');
  ws.onopen = () => { document.getElementById('state').textContent = 'connected'; };
  ws.onclose = () => { document.getElementById('state').textContent = 'closed'; };
  ws.onmessage = (event) => log('echo: ' + event.data);
  document.getElementById('send').onclick = () => {
    const text = document.getElementById('text').value;
    if (ws.readyState === WebSocket.OPEN) { ws.send(text); log('sent: ' + text); }
  };
</script>
</body>
</html>
"#;
