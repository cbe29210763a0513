//! Helpers shared by the emulator's integration tests: starting emulators and local target
//! servers, signing requests with `porthole_core::api::signing`, WebSocket clients.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use futures_util::{SinkExt, StreamExt};
use porthole_core::api::signing::{self, SignedRequest, DEFAULT_CONTENT_TYPE};
use porthole_emulator::{Config, Emulator, RunningEmulator, StartOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const AK: &str = "AKIAEXAMPLE0000000001";
pub const SK: &str = "secret-key-one";
pub const AK2: &str = "AKIAEXAMPLE0000000002";
pub const SK2: &str = "secret-key-two";
pub const USER: &str = "user@example.com";
pub const PASSWORD: &str = "pw";

/// Everything a single wait in a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(15);

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Awaits `fut` or fails the test after [`WAIT`].
pub async fn within<F: std::future::Future>(fut: F) -> F::Output {
    tokio::time::timeout(WAIT, fut).await.expect("timed out")
}

/// A TCP echo server on 127.0.0.1:0.
pub async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut rd, mut wr) = stream.into_split();
                let _ = tokio::io::copy(&mut rd, &mut wr).await;
            });
        }
    });
    addr
}

/// A server that writes `greeting` to each connection and closes it.
pub async fn greeting_server(greeting: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.write_all(greeting).await;
            let _ = stream.shutdown().await;
        }
    });
    addr
}

/// A server that reports, per connection, everything it read once the peer closed.
pub async fn sink_server() -> (SocketAddr, mpsc::UnboundedReceiver<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut all = Vec::new();
                let _ = stream.read_to_end(&mut all).await;
                let _ = tx.send(all);
            });
        }
    });
    (addr, rx)
}

/// An address nothing listens on.
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// The standard test config: two keypairs, one user, sessions `train-1` (RUNNING, with
/// `echo` backed by `echo`), `queued` (PENDING) and `other` (owned by AK2).
pub fn config_toml(api_version: &str, echo: SocketAddr, extra: &str) -> String {
    format!(
        r#"
api_version = "{api_version}"
[[keypairs]]
access_key = "{AK}"
secret_key = "{SK}"
[[keypairs]]
access_key = "{AK2}"
secret_key = "{SK2}"
[[users]]
username = "{USER}"
password = "{PASSWORD}"
access_key = "{AK}"

[[sessions]]
name = "train-1"
id = "5a1e0000-0000-4000-8000-00000000a001"
created_at = "2024-03-28T05:06:07+00:00"
files = {{ id_container = {{ content = "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n" }} }}
[[sessions.services]]
name = "echo"
protocol = "tcp"
container_ports = [7007, 7008]
target = "{echo}"
[[sessions.services]]
name = "jupyter"
protocol = "http"
container_ports = [8081]
target = "{echo}"
url_template = "http://{{host}}:{{port}}/"

[[sessions]]
name = "queued"
status = "PENDING"
status_info = "no-available-instances"
created_at = "2024-03-28T05:00:00+00:00"
[[sessions.services]]
name = "echo"
container_ports = [7007]
target = "{echo}"

[[sessions]]
name = "other"
access_key = "{AK2}"
[[sessions.services]]
name = "echo"
container_ports = [7007]
target = "{echo}"
{extra}
"#
    )
}

/// Starts an emulator from TOML on 127.0.0.1:0.
pub async fn start(toml: &str) -> RunningEmulator {
    start_with(toml, false).await
}

/// Starts an emulator from TOML on 127.0.0.1:0, optionally with the HTTP control API.
pub async fn start_with(toml: &str, control_http: bool) -> RunningEmulator {
    let config = Config::from_toml_str(toml).unwrap();
    Emulator::start_with(
        config,
        "127.0.0.1:0".parse().unwrap(),
        StartOptions { control_http },
    )
    .await
    .unwrap()
}

/// The ISO date clients send.
pub fn now_date() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, false)
}

/// Request headers for a signed call.
pub struct Signing<'a> {
    pub access_key: &'a str,
    pub secret_key: &'a str,
    pub date: String,
    pub version: &'a str,
    /// Sent Content-Type (None = no header; `application/octet-stream` is signed).
    pub content_type: Option<&'a str>,
}

impl Signing<'_> {
    pub fn new(version: &str) -> Signing<'_> {
        Signing {
            access_key: AK,
            secret_key: SK,
            date: now_date(),
            version,
            content_type: None,
        }
    }

    /// `(name, value)` headers for `method path_and_query` sent to `host`.
    pub fn headers(&self, method: &str, path_and_query: &str, host: &str) -> Vec<(String, String)> {
        let content_type = self.content_type.unwrap_or(DEFAULT_CONTENT_TYPE);
        let request = SignedRequest {
            method,
            path_and_query,
            date: &self.date,
            host,
            content_type,
            api_version: self.version,
        };
        let day = signing::day_of_iso_date(&self.date).unwrap();
        let sig = signing::signature(self.secret_key, &day, &request);
        let mut headers = vec![
            ("Date".to_owned(), self.date.clone()),
            ("X-BackendAI-Version".to_owned(), self.version.to_owned()),
            (
                "Authorization".to_owned(),
                signing::authorization(self.access_key, &sig),
            ),
        ];
        if let Some(ct) = self.content_type {
            headers.push(("Content-Type".to_owned(), ct.to_owned()));
        }
        headers
    }
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// A signed HTTP request (JSON body when `body` is given).
pub async fn signed(
    emu: &RunningEmulator,
    signing: &Signing<'_>,
    method: &str,
    path_and_query: &str,
    body: Option<&str>,
) -> reqwest::Response {
    let host = emu.local_addr().to_string();
    let mut headers = signing.headers(method, path_and_query, &host);
    let mut req = http().request(
        method.parse().unwrap(),
        format!("{}{}", emu.endpoint_url(), path_and_query),
    );
    for (k, v) in headers.drain(..) {
        req = req.header(k, v);
    }
    if let Some(body) = body {
        req = req.body(body.to_owned());
    }
    within(req.send()).await.unwrap()
}

/// A signed JSON POST with `Content-Type: application/json`.
pub async fn post_json(
    emu: &RunningEmulator,
    version: &str,
    path: &str,
    body: &serde_json::Value,
) -> reqwest::Response {
    let mut s = Signing::new(version);
    s.content_type = Some("application/json");
    signed(emu, &s, "POST", path, Some(&body.to_string())).await
}

/// The §4 listing query.
pub const LIST_QUERY: &str = "query($limit:Int!,$offset:Int!,$status:String){ compute_session_list(limit:$limit, offset:$offset, status:$status){ items { id name type status status_info image scaling_group group_id created_at service_ports } total_count } }";

/// Lists sessions as AK through `/admin/gql`.
pub async fn list(emu: &RunningEmulator, version: &str, status: Option<&str>) -> serde_json::Value {
    let body = serde_json::json!({
        "query": LIST_QUERY,
        "variables": {"limit": 50, "offset": 0, "status": status},
    });
    let resp = post_json(emu, version, "/admin/gql", &body).await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// Opens a signed WebSocket to `path_and_query`.
pub async fn ws_signed(
    emu: &RunningEmulator,
    signing: &Signing<'_>,
    path_and_query: &str,
) -> Result<Ws, tungstenite::Error> {
    let host = emu.local_addr().to_string();
    let mut request = format!("ws://{host}{path_and_query}")
        .into_client_request()
        .unwrap();
    for (k, v) in signing.headers("GET", path_and_query, &host) {
        let name: tungstenite::http::HeaderName = k.parse().unwrap();
        request
            .headers_mut()
            .insert(name, HeaderValue::from_str(&v).unwrap());
    }
    within(tokio_tungstenite::connect_async(request))
        .await
        .map(|(ws, _)| ws)
}

/// Opens a WebSocket with extra headers and no signature (session mode).
pub async fn ws_with_headers(
    emu: &RunningEmulator,
    path_and_query: &str,
    headers: &[(&str, &str)],
) -> Result<Ws, tungstenite::Error> {
    let mut request = format!("ws://{}{path_and_query}", emu.local_addr())
        .into_client_request()
        .unwrap();
    for (k, v) in headers {
        let name: tungstenite::http::HeaderName = k.parse().unwrap();
        request
            .headers_mut()
            .insert(name, HeaderValue::from_str(v).unwrap());
    }
    within(tokio_tungstenite::connect_async(request))
        .await
        .map(|(ws, _)| ws)
}

/// The status and JSON body of a failed WebSocket handshake.
pub fn handshake_error(err: tungstenite::Error) -> (u16, serde_json::Value) {
    match err {
        tungstenite::Error::Http(response) => {
            let status = response.status().as_u16();
            let body = response.body().clone().unwrap_or_default();
            let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
            (status, json)
        }
        other => panic!("expected an HTTP error, got {other:?}"),
    }
}

/// The next non-ping/pong message.
pub async fn next_message(ws: &mut Ws) -> Option<Message> {
    loop {
        match within(ws.next()).await {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(m)) => return Some(m),
            Some(Err(_)) | None => return None,
        }
    }
}

/// Reads BINARY frames until `n` bytes arrived; returns them and the largest frame size.
pub async fn read_exact_binary(ws: &mut Ws, n: usize) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(n);
    let mut largest = 0;
    while out.len() < n {
        match next_message(ws).await {
            Some(Message::Binary(b)) => {
                largest = largest.max(b.len());
                out.extend_from_slice(&b);
            }
            other => panic!("expected binary data, got {other:?}"),
        }
    }
    (out, largest)
}

/// Waits for a CLOSE frame and returns its code (after letting the close handshake finish).
pub async fn expect_close(ws: &mut Ws) -> u16 {
    loop {
        let code = match next_message(ws).await {
            Some(Message::Close(Some(frame))) => u16::from(frame.code),
            Some(Message::Close(None)) => 1005,
            Some(Message::Binary(_) | Message::Text(_)) => continue,
            other => panic!("expected a CLOSE frame, got {other:?}"),
        };
        // Reading on sends our CLOSE reply; the server then ends the connection.
        while let Some(Ok(_)) = within(ws.next()).await {}
        return code;
    }
}

/// Sends binary data.
pub async fn send_binary(ws: &mut Ws, data: &[u8]) {
    within(ws.send(Message::binary(data.to_vec())))
        .await
        .unwrap();
}

/// Closes with 1000 and waits for the server's reply.
pub async fn close(ws: &mut Ws) {
    let _ = within(ws.close(Some(tungstenite::protocol::CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    })))
    .await;
    while let Some(Ok(_)) = within(ws.next()).await {}
}

/// Logs in through `/server/login`; returns the session id.
pub async fn login(emu: &RunningEmulator, username: &str, password: &str) -> reqwest::Response {
    within(
        http()
            .post(format!("{}/server/login", emu.endpoint_url()))
            .json(&serde_json::json!({"username": username, "password": password}))
            .send(),
    )
    .await
    .unwrap()
}
