//! A raw Backend.AI client for observing what a server does, byte for byte: signed (API
//! mode) or login-session (session mode) HTTP requests and WebSocket tunnels, with no
//! interpretation. Porthole's own behaviour is tested through the `porthole` binary; this
//! client records what any client would observe, for the differential check.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use porthole_testkit::signed::{iso_date, Signing};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

/// How requests are authenticated.
#[derive(Debug, Clone)]
pub enum Auth {
    /// Keypair signing with a clock offset (for skew tests).
    Keypair {
        access_key: String,
        secret_key: String,
        skew: chrono::Duration,
    },
    /// A web-server login session id, sent as the header, the cookie, or both.
    Session { id: String, via: Via },
    /// Nothing.
    None,
}

/// Where the login session id goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Header,
    Cookie,
}

/// One HTTP reply.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub session_header: Option<String>,
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// `STATUS slug "title"` plus `msg` and `data` when present: what a client can act on.
    pub fn problem(&self) -> String {
        let v = self.json();
        let slug = v["type"]
            .as_str()
            .map(|t| t.rsplit('/').next().unwrap_or(t).to_owned())
            .unwrap_or_else(|| "-".into());
        let mut out = format!(
            "{} {slug} {:?}",
            self.status,
            v["title"].as_str().unwrap_or("-")
        );
        if let Some(code) = v.get("error_code") {
            out.push_str(&format!(" code={code}"));
        }
        if let Some(msg) = v.get("msg") {
            // 26.x's pydantic reports: the field and what is wrong with it.
            match msg.as_str() {
                Some(m) if m.starts_with("<BackendAISchemaValidationFailed") => out.push_str(
                    &format!(" msg=schema({})", porthole_core::api::readable_msg(m)),
                ),
                // The web server's client error names the manager's port.
                Some(m) if m.contains("ClientConnectorError(ConnectionKey(") => {
                    out.push_str(" msg=BackendClientError(…ClientConnectorError(ConnectionKey(…), ConnectionRefusedError(111, …)))")
                }
                _ => out.push_str(&format!(" msg={msg}")),
            }
        }
        if let Some(data) = v.get("data") {
            out.push_str(&format!(" data={data}"));
        }
        if v.get("details").is_some() {
            out.push_str(" +details");
        }
        if !self.content_type.starts_with("application/problem+json") && self.status >= 400 {
            out.push_str(&format!(" content-type={}", self.content_type));
        }
        out
    }
}

/// A raw client for one endpoint.
#[derive(Debug, Clone)]
pub struct Raw {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// `""` (manager) or `"/func"` (web server).
    pub prefix: &'static str,
    pub auth: Auth,
    pub api_version: String,
}

/// The WebSocket of a tunnel.
pub type WsStream = WebSocketStream<TcpStream>;

/// What a tunnel handshake gave.
pub enum Handshake {
    /// 101.
    Open(Box<Ws>),
    /// Any other reply.
    Refused(Reply),
}

impl Handshake {
    /// The open socket; panics with the reply otherwise.
    pub fn open(self, what: &str) -> Ws {
        match self {
            Handshake::Open(ws) => *ws,
            Handshake::Refused(r) => panic!("{what}: handshake refused: {}", r.problem()),
        }
    }

    /// `101` or the problem.
    pub fn describe(&self) -> String {
        match self {
            Handshake::Open(_) => "101".into(),
            Handshake::Refused(r) => r.problem(),
        }
    }
}

/// What happened next on a tunnel's WebSocket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// BINARY data.
    Data(Vec<u8>),
    /// A TEXT frame.
    Text(String),
    /// A CLOSE frame with this code (None: no code).
    Close(Option<u16>),
    /// The connection ended without a CLOSE frame (a client reports 1006).
    Ended,
    /// Nothing within the wait.
    Silent,
}

impl Event {
    /// A short description; app EOF (CLOSE 1001 or no CLOSE at all, which 23.09 does 39
    /// times in 40) is one observation, as Porthole treats both alike.
    pub fn describe(&self) -> String {
        match self {
            Event::Data(d) => format!("{} bytes", d.len()),
            Event::Text(t) => format!("TEXT {t:?}"),
            Event::Close(Some(1001)) | Event::Ended => "app EOF (close 1001 or none)".into(),
            Event::Close(Some(code)) => format!("close {code}"),
            Event::Close(None) => "close (no code)".into(),
            Event::Silent => "silent".into(),
        }
    }
}

/// An open tunnel WebSocket.
pub struct Ws(pub WsStream);

impl Ws {
    pub async fn send(&mut self, data: &[u8]) {
        self.try_send(data).await.expect("send BINARY");
    }

    /// Sends one BINARY message; the error when the server ended the connection first.
    pub async fn try_send(
        &mut self,
        data: &[u8],
    ) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        self.0.send(Message::Binary(data.to_vec().into())).await
    }

    pub async fn send_text(&mut self, text: &str) {
        self.0
            .send(Message::Text(text.into()))
            .await
            .expect("send TEXT");
    }

    /// The next data, close or end, or [`Event::Silent`] after `wait`.
    pub async fn next(&mut self, wait: Duration) -> Event {
        loop {
            let item = match tokio::time::timeout(wait, self.0.next()).await {
                Err(_) => return Event::Silent,
                Ok(item) => item,
            };
            return match item {
                None => Event::Ended,
                Some(Ok(Message::Binary(d))) => Event::Data(d.to_vec()),
                Some(Ok(Message::Text(t))) => Event::Text(t.to_string()),
                Some(Ok(Message::Close(frame))) => Event::Close(frame.map(|f| u16::from(f.code))),
                Some(Ok(_)) => continue,
                Some(Err(
                    tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed,
                )) => Event::Ended,
                Some(Err(tungstenite::Error::Protocol(_) | tungstenite::Error::Io(_))) => {
                    Event::Ended
                }
                Some(Err(e)) => panic!("WebSocket error: {e}"),
            };
        }
    }

    /// Reads BINARY data until `n` bytes came, returning them and what ended the read
    /// early, if anything (each wait at most `wait`).
    pub async fn read(&mut self, n: usize, wait: Duration) -> (Vec<u8>, Option<Event>) {
        let mut got = Vec::with_capacity(n);
        while got.len() < n {
            match self.next(wait).await {
                Event::Data(d) => got.extend_from_slice(&d),
                other => return (got, Some(other)),
            }
        }
        (got, None)
    }

    /// Reads until the connection ends (or `wait` passes without anything), returning the
    /// data and the final event.
    pub async fn read_to_end(&mut self, wait: Duration) -> (Vec<u8>, Event) {
        let mut got = Vec::new();
        loop {
            match self.next(wait).await {
                Event::Data(d) => got.extend_from_slice(&d),
                Event::Text(_) => {}
                other => return (got, other),
            }
        }
    }

    /// Sends a PING and waits for its PONG (true) or `wait` (false).
    pub async fn ping(&mut self, payload: &[u8], wait: Duration) -> bool {
        self.0
            .send(Message::Ping(payload.to_vec().into()))
            .await
            .expect("send PING");
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.0.next()).await {
                Ok(Some(Ok(Message::Pong(p)))) if p.as_ref() == payload => return true,
                Ok(Some(Ok(_))) => continue,
                _ => return false,
            }
        }
    }

    /// Closes politely (bounded).
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.0.close(None)).await;
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .expect("reqwest client")
}

impl Raw {
    fn host(&self) -> &str {
        self.base
            .strip_prefix("http://")
            .unwrap_or(&self.base)
            .trim_end_matches('/')
    }

    /// Authentication headers for a request to `target` (the path as sent, with prefix).
    fn auth_headers(
        &self,
        method: &str,
        target: &str,
        content_type: Option<&str>,
    ) -> Vec<(String, String)> {
        let mut headers = vec![("X-BackendAI-Version".to_owned(), self.api_version.clone())];
        match &self.auth {
            Auth::Keypair {
                access_key,
                secret_key,
                skew,
            } => {
                let signing = Signing {
                    access_key,
                    secret_key,
                    date: iso_date(chrono::Utc::now() + *skew),
                    version: &self.api_version,
                    content_type,
                };
                // The version header is there already; Content-Type goes with the body.
                headers.extend(
                    signing
                        .headers(method, target, self.host())
                        .into_iter()
                        .filter(|(k, _)| k == "Date" || k == "Authorization"),
                );
            }
            Auth::Session { id, via } => match via {
                Via::Header => headers.push(("X-BackendAI-SessionID".into(), id.clone())),
                Via::Cookie => headers.push(("Cookie".into(), format!("AIOHTTP_SESSION={id}"))),
            },
            Auth::None => {}
        }
        headers
    }

    /// One request to `prefix + path_and_query`, with an optional JSON body.
    pub async fn request(&self, method: &str, path_and_query: &str, body: Option<&Value>) -> Reply {
        let target = format!("{}{path_and_query}", self.prefix);
        let content_type = body.map(|_| "application/json");
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = http().request(method.clone(), format!("{}{target}", self.base));
        for (k, v) in self.auth_headers(method.as_str(), &target, content_type) {
            req = req.header(k, v);
        }
        if let Some(body) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(body.to_string());
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {target}: {e}"));
        reply_of(resp).await
    }

    /// POST /server/login (web server only; no prefix, no auth).
    pub async fn login(base: &str, username: &str, password: &str) -> Reply {
        let resp = http()
            .post(format!("{base}/server/login"))
            .json(&serde_json::json!({"username": username, "password": password}))
            .send()
            .await
            .expect("POST /server/login");
        reply_of(resp).await
    }

    /// Opens the tunnel WebSocket `prefix + path_and_query`. The upgrade is done by hand so
    /// that a refusal's body is read in full (aiohttp sends it after the head).
    pub async fn ws(&self, path_and_query: &str) -> Handshake {
        let target = format!("{}{path_and_query}", self.prefix);
        let attempt = async {
            let mut stream = TcpStream::connect(self.host()).await.expect("connect");
            stream.set_nodelay(true).unwrap();
            let key = generate_key();
            let mut head = format!(
                "GET {target} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                 Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n",
                self.host()
            );
            for (k, v) in self.auth_headers("GET", &target, None) {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            stream
                .write_all(head.as_bytes())
                .await
                .expect("send upgrade");
            let mut buf = Vec::new();
            let end = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                let n = stream.read_buf(&mut buf).await.expect("read reply");
                assert!(
                    n > 0,
                    "GET {target}: connection closed before the reply head"
                );
            };
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let status: u16 = head[9..12].parse().expect("status code");
            let header = |name: &str| {
                head.lines().find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.trim()
                        .eq_ignore_ascii_case(name)
                        .then(|| v.trim().to_owned())
                })
            };
            let rest = buf.split_off(end);
            if status == 101 {
                assert_eq!(
                    header("sec-websocket-accept").as_deref(),
                    Some(derive_accept_key(key.as_bytes()).as_str())
                );
                let config = WebSocketConfig::default()
                    .max_message_size(Some(64 << 20))
                    .max_frame_size(Some(64 << 20));
                let ws =
                    WebSocketStream::from_partially_read(stream, rest, Role::Client, Some(config))
                        .await;
                return Handshake::Open(Box::new(Ws(ws)));
            }
            let mut body = rest;
            let length: Option<usize> = header("content-length").and_then(|v| v.parse().ok());
            while length.is_none_or(|n| body.len() < n) {
                if stream.read_buf(&mut body).await.unwrap_or(0) == 0 {
                    break;
                }
            }
            Handshake::Refused(Reply {
                status,
                content_type: header("content-type").unwrap_or_default(),
                session_header: header("x-backendai-sessionid"),
                body,
            })
        };
        tokio::time::timeout(Duration::from_secs(60), attempt)
            .await
            .unwrap_or_else(|_| panic!("GET {target}: no complete handshake reply within 60 s"))
    }
}

async fn reply_of(resp: reqwest::Response) -> Reply {
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let session_header = resp
        .headers()
        .get("x-backendai-sessionid")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = resp.bytes().await.expect("read body").to_vec();
    Reply {
        status,
        content_type,
        session_header,
        body,
    }
}
